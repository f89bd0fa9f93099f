#include "engine/volset/kek_file.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/secure_memory.h"

namespace svmkey::volset {
namespace {

Status IoFailure(const std::string& what) {
  return Status(ErrorCode::kUnexpectedException, what + ": " + std::strerror(errno));
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Result<KeyHandle> ImportKekFile(KeyTable& table, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status(ErrorCode::kEntryNotFound, "KEK file " + path + " not found");
    return IoFailure("open KEK file " + path);
  }
  auto handle = ImportKekFd(table, fd, path);
  ::close(fd);
  return handle;
}

Result<KeyHandle> ImportKekFd(KeyTable& table, int fd, const std::string& name) {
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  // One byte more than a key, so an oversized file is caught.
  auto buffer = SecureBuffer::Allocate(kKeyBytes + 1);
  if (!buffer.ok()) return buffer.status();
  size_t got = 0;
  while (got < buffer->size()) {
    const ssize_t n = ::read(fd, buffer->data() + got, buffer->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      buffer->Wipe();
      return IoFailure("read KEK file " + name);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != kKeyBytes) {
    buffer->Wipe();
    return Status(ErrorCode::kInvalidValue,
                  "KEK file " + name + " must hold exactly 32 raw bytes");
  }
  auto handle = table.Import(*buffer);
  buffer->Wipe();
  return handle;
}

Result<KeyHandle> ImportKekBytes(KeyTable& table, const SecureBuffer& bytes, const std::string& name) {
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  if (bytes.size() != kKeyBytes) {
    return Status(ErrorCode::kInvalidValue, name + " must hold exactly 32 raw bytes");
  }
  return table.Import(bytes);
}

Result<KeyHandle> GenerateKekFile(KeyTable& table, const std::string& path, bool replace) {
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  if (!replace && ::access(path.c_str(), F_OK) == 0) {
    return Status(ErrorCode::kDuplicateEntry, "KEK file " + path + " already exists");
  }
  auto buffer = SecureBuffer::Allocate(kKeyBytes);
  if (!buffer.ok()) return buffer.status();
  randombytes_buf(buffer->data(), kKeyBytes);

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    buffer->Wipe();
    return IoFailure("create KEK file " + tmp);
  }
  ::fchmod(fd, 0600);  // O_CREAT's mode is masked by the umask; make sure.
  size_t put = 0;
  while (put < kKeyBytes) {
    const ssize_t n = ::write(fd, buffer->data() + put, kKeyBytes - put);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = IoFailure("write KEK file " + tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      buffer->Wipe();
      return s;
    }
    put += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = IoFailure("fsync KEK file " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    buffer->Wipe();
    return s;
  }
  ::close(fd);
  if (!replace && ::link(tmp.c_str(), path.c_str()) != 0) {
    // link(2) refuses to overwrite: the no-replace case stays race-free.
    Status s = errno == EEXIST ? Status(ErrorCode::kDuplicateEntry, "KEK file " + path + " already exists")
                               : IoFailure("link KEK file " + path);
    ::unlink(tmp.c_str());
    buffer->Wipe();
    return s;
  }
  if (!replace) {
    ::unlink(tmp.c_str());
  } else if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = IoFailure("rename KEK file " + path);
    ::unlink(tmp.c_str());
    buffer->Wipe();
    return s;
  }
  const int dir_fd = ::open(DirOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  auto handle = table.Import(*buffer);
  buffer->Wipe();
  return handle;
}

}  // namespace svmkey::volset
