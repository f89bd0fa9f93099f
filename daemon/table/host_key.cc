#include "daemon/table/host_key.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace svmkey::table {
namespace {

constexpr std::string_view kAadLabel = "svmkey-rdb-secret/1";

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// AAD = label ‖ 0 ‖ owner uuid (16 bytes) ‖ field name.
std::vector<uint8_t> MakeAad(const Uuid& owner, std::string_view field) {
  // Sized up front and filled with memcpy: g++ 12 warns falsely (stringop-overflow) on
  // the equivalent chain of vector::insert calls.
  std::vector<uint8_t> aad(kAadLabel.size() + 1 + owner.bytes.size() + field.size());
  uint8_t* p = aad.data();
  std::memcpy(p, kAadLabel.data(), kAadLabel.size());
  p += kAadLabel.size();
  *p++ = 0;
  std::memcpy(p, owner.bytes.data(), owner.bytes.size());
  p += owner.bytes.size();
  if (!field.empty()) std::memcpy(p, field.data(), field.size());
  return aad;
}

Status FsyncDirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status(ErrorCode::kUnexpectedException, Errno("open " + dir));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status(ErrorCode::kUnexpectedException, Errno("fsync " + dir));
  return Status::Ok();
}

}  // namespace

Result<HostKey> HostKey::ReadKeyFile(const std::string& path, bool require_owner_only) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return Status(errno == ENOENT ? ErrorCode::kEntryNotFound : ErrorCode::kPermissionDenied,
                  Errno("open host key " + path));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const Status s(ErrorCode::kUnexpectedException, Errno("fstat host key " + path));
    ::close(fd);
    return s;
  }
  // Our own key file must be private to its owner. A systemd credential is managed by
  // systemd (mode 0400 or 0440 on a private mount), so only world access is refused.
  const mode_t forbidden = require_owner_only ? 077 : 007;
  if ((st.st_mode & forbidden) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status(ErrorCode::kPermissionDenied,
                  "host key " + path + " must be a regular file not accessible to others");
  }
  if (st.st_size != static_cast<off_t>(kHostKeyBytes)) {
    ::close(fd);
    return Status(ErrorCode::kInvalidValue,
                  "host key " + path + " must be exactly 32 bytes, is " +
                      std::to_string(st.st_size));
  }
  Result<SecureBuffer> key = SecureBuffer::Allocate(kHostKeyBytes);
  if (!key.ok()) {
    ::close(fd);
    return key.status();
  }
  // Read straight into secure memory: the key never passes through an ordinary buffer.
  size_t got = 0;
  while (got < kHostKeyBytes) {
    const ssize_t n = ::read(fd, key->data() + got, kHostKeyBytes - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return Status(ErrorCode::kUnexpectedException, "short read of host key " + path);
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  HostKey hk;
  hk.key_ = std::move(key).value();
  return hk;
}

Result<HostKey> HostKey::LoadOrCreateFile(const std::string& path) {
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  Result<HostKey> existing = ReadKeyFile(path, /*require_owner_only=*/true);
  if (existing.ok() || existing.status().code() != ErrorCode::kEntryNotFound) return existing;

  // O_EXCL: if another process creates the key between our read and this open, we
  // must load theirs rather than overwrite it (that would orphan every sealed secret).
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return ReadKeyFile(path, true);
    return Status(ErrorCode::kPermissionDenied, Errno("create host key " + path));
  }
  Result<SecureBuffer> key = SecureBuffer::Allocate(kHostKeyBytes);
  if (!key.ok()) {
    ::close(fd);
    ::unlink(path.c_str());
    return key.status();
  }
  randombytes_buf(key->data(), kHostKeyBytes);
  size_t put = 0;
  bool ok = true;
  while (put < kHostKeyBytes) {
    const ssize_t n = ::write(fd, key->data() + put, kHostKeyBytes - put);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    put += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    // A partial key file would be refused on the next load anyway; remove it so the
    // next start can create a good one.
    ::unlink(path.c_str());
    return Status(ErrorCode::kUnexpectedException, "cannot write host key " + path);
  }
  SVMKEY_RETURN_IF_ERROR(FsyncDirOf(path));
  HostKey hk;
  hk.key_ = std::move(key).value();
  return hk;
}

Result<HostKey> HostKey::LoadCredential(const std::string& path) {
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  return ReadKeyFile(path, /*require_owner_only=*/false);
}

std::string HostKey::CredentialPathFromEnvironment() {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (dir == nullptr || *dir == '\0') return {};
  return std::string(dir) + "/host-key";
}

Result<std::vector<uint8_t>> HostKey::Seal(const Uuid& owner, std::string_view field,
                                           std::span<const uint8_t> plaintext) const {
  const std::vector<uint8_t> aad = MakeAad(owner, field);
  std::vector<uint8_t> out(kSealOverhead + plaintext.size());
  out[0] = kSealVersion;
  uint8_t* nonce = out.data() + 1;
  randombytes_buf(nonce, kSealNonceBytes);
  unsigned long long clen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(
          out.data() + 1 + kSealNonceBytes, &clen, plaintext.data(), plaintext.size(),
          aad.data(), aad.size(), nullptr, nonce, key_.data()) != 0) {
    return Status(ErrorCode::kEncryptFailed, "sealing " + std::string(field));
  }
  return out;
}

Result<SecureBuffer> HostKey::Open(const Uuid& owner, std::string_view field,
                                   std::span<const uint8_t> sealed) const {
  if (sealed.size() < kSealOverhead || sealed[0] != kSealVersion) {
    return Status(ErrorCode::kInvalidValue, "malformed sealed " + std::string(field));
  }
  const size_t plen = sealed.size() - kSealOverhead;
  // Allocate at least one byte so an empty secret still has a buffer to decrypt into.
  Result<SecureBuffer> out = SecureBuffer::Allocate(plen == 0 ? 1 : plen);
  if (!out.ok()) return out.status();
  const std::vector<uint8_t> aad = MakeAad(owner, field);
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          out->data(), &mlen, nullptr, sealed.data() + 1 + kSealNonceBytes,
          sealed.size() - 1 - kSealNonceBytes, aad.data(), aad.size(), sealed.data() + 1,
          key_.data()) != 0) {
    return Status(ErrorCode::kDecryptFailed,
                  "sealed " + std::string(field) + " does not open under the host key");
  }
  if (plen == 0) {
    Result<SecureBuffer> empty = SecureBuffer::Allocate(0);
    return empty;
  }
  return out;
}

}  // namespace svmkey::table
