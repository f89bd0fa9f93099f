#include "daemon/table/host_key.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "tests/daemon/table/table_test_util.h"

namespace svmkey::table {
namespace {

using testing::TempDir;
using testing::U;

const Uuid kOwner = U("11111111-2222-4333-8444-555555555555");
const Uuid kOther = U("11111111-2222-4333-8444-666666666666");

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string AsString(const SecureBuffer& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void WriteFile(const std::string& path, size_t size, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> bytes(size, 0x5a);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(size));
  ::close(fd);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

TEST(HostKeyTest, CreatesAnOwnerOnlyKeyFileOfThirtyTwoBytes) {
  TempDir dir;
  Result<HostKey> key = HostKey::LoadOrCreateFile(dir / "host.key");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat((dir / "host.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
}

TEST(HostKeyTest, ReloadedKeyOpensWhatTheFirstSealed) {
  TempDir dir;
  Result<HostKey> first = HostKey::LoadOrCreateFile(dir / "host.key");
  ASSERT_TRUE(first.ok());
  Result<std::vector<uint8_t>> sealed = first->Seal(kOwner, "field", Bytes("hunter2"));
  ASSERT_TRUE(sealed.ok());
  Result<HostKey> second = HostKey::LoadOrCreateFile(dir / "host.key");
  ASSERT_TRUE(second.ok());
  Result<SecureBuffer> opened = second->Open(kOwner, "field", sealed.value());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(AsString(opened.value()), "hunter2");
}

TEST(HostKeyTest, RefusesKeyFilesOthersCanReadOrOfTheWrongSize) {
  TempDir dir;
  WriteFile(dir / "readable.key", 32, 0644);
  EXPECT_CODE(HostKey::LoadOrCreateFile(dir / "readable.key").status(), kPermissionDenied);
  WriteFile(dir / "short.key", 31, 0600);
  EXPECT_CODE(HostKey::LoadOrCreateFile(dir / "short.key").status(), kInvalidValue);
  // The refused files are left alone, never replaced by a new key.
  EXPECT_EQ(testing::ReadAllBytes(dir / "short.key").size(), 31u);
}

TEST(HostKeyTest, CredentialIsLoadedButNeverCreated) {
  TempDir dir;
  EXPECT_CODE(HostKey::LoadCredential(dir / "host-key").status(), kEntryNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir / "host-key"));
  // systemd hands credentials out as 0400 (or 0440 with a group); both are fine.
  WriteFile(dir / "host-key", 32, 0440);
  Result<HostKey> key = HostKey::LoadCredential(dir / "host-key");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  WriteFile(dir / "world-key", 32, 0444);
  EXPECT_CODE(HostKey::LoadCredential(dir / "world-key").status(), kPermissionDenied);
}

TEST(HostKeyTest, CredentialPathComesFromCredentialsDirectory) {
  ::setenv("CREDENTIALS_DIRECTORY", "/run/credentials/svmkeyd.service", 1);
  EXPECT_EQ(HostKey::CredentialPathFromEnvironment(), "/run/credentials/svmkeyd.service/host-key");
  ::unsetenv("CREDENTIALS_DIRECTORY");
  EXPECT_EQ(HostKey::CredentialPathFromEnvironment(), "");
}

TEST(HostKeyTest, SealedValueIsBoundToOwnerAndField) {
  TempDir dir;
  Result<HostKey> key = HostKey::LoadOrCreateFile(dir / "host.key");
  ASSERT_TRUE(key.ok());
  Result<std::vector<uint8_t>> sealed = key->Seal(kOwner, "application_cred_secret", Bytes("s3"));
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), kSealOverhead + 2);
  EXPECT_CODE(key->Open(kOther, "application_cred_secret", sealed.value()).status(),
              kDecryptFailed);
  EXPECT_CODE(key->Open(kOwner, "proxy_password", sealed.value()).status(), kDecryptFailed);
  std::vector<uint8_t> tampered = sealed.value();
  tampered.back() ^= 1;
  EXPECT_CODE(key->Open(kOwner, "application_cred_secret", tampered).status(), kDecryptFailed);
  std::vector<uint8_t> truncated(sealed->begin(), sealed->begin() + 10);
  EXPECT_CODE(key->Open(kOwner, "application_cred_secret", truncated).status(), kInvalidValue);
}

TEST(HostKeyTest, AnotherHostKeyCannotOpen) {
  TempDir dir;
  Result<HostKey> a = HostKey::LoadOrCreateFile(dir / "a.key");
  Result<HostKey> b = HostKey::LoadOrCreateFile(dir / "b.key");
  ASSERT_TRUE(a.ok() && b.ok());
  Result<std::vector<uint8_t>> sealed = a->Seal(kOwner, "f", Bytes("secret"));
  ASSERT_TRUE(sealed.ok());
  EXPECT_CODE(b->Open(kOwner, "f", sealed.value()).status(), kDecryptFailed);
}

TEST(HostKeyTest, EverySealUsesAFreshNonceAndHidesThePlaintext) {
  TempDir dir;
  Result<HostKey> key = HostKey::LoadOrCreateFile(dir / "host.key");
  ASSERT_TRUE(key.ok());
  const std::string secret = "correct horse battery staple";
  std::set<std::vector<uint8_t>> seen;
  for (int i = 0; i < 64; ++i) {
    Result<std::vector<uint8_t>> s = key->Seal(kOwner, "f", Bytes(secret));
    ASSERT_TRUE(s.ok());
    const std::string raw(s->begin(), s->end());
    EXPECT_EQ(raw.find(secret), std::string::npos);
    seen.insert(std::move(s).value());
  }
  EXPECT_EQ(seen.size(), 64u);
}

}  // namespace
}  // namespace svmkey::table
