// CallerFile (daemon/service/caller_file.h): which paths a caller may have the daemon
// open, read and remove. Files are made by the test's own uid; "another owner" is any
// other uid passed as the caller.
#include "daemon/service/caller_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace svmkey::daemon {
namespace {

class CallerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    dir_ = std::filesystem::canonical(tmp_.path()).string();
  }
  std::string Make(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  static std::string ReadAll(int fd) {
    std::string out;
    char buf[64];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  static void ExpectRefused(const std::string& path, uid_t owner) {
    auto f = CallerFile::Open(path, owner, "x_file");
    ASSERT_FALSE(f.ok()) << path;
    EXPECT_EQ(f.status().code(), ErrorCode::kInvalidValue);
    EXPECT_NE(f.status().message().find("'x_file'"), std::string::npos) << f.status().message();
  }

  testing::TempDir tmp_;
  std::string dir_;
  const uid_t me_ = ::geteuid();
};

TEST_F(CallerFileTest, OwnPrivateFileIsReadAndRemoved) {
  const std::string path = Make("own", "payload");
  auto f = CallerFile::Open(path, me_, "x_file");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(ReadAll(f->fd()), "payload");
  ASSERT_TRUE(f->Remove().ok());
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(CallerFileTest, RefusesWhatTheCallerCouldNotHandOver) {
  ExpectRefused(Make("other", "secret"), me_ + 1);            // another owner
  ExpectRefused(Make("group", "secret", 0640), me_);         // group bits
  ExpectRefused(Make("world", "secret", 0604), me_);         // other bits
  ExpectRefused(dir_, me_);                                   // a directory
  ExpectRefused(dir_ + "/missing", me_);                      // nothing there
  ExpectRefused("relative/path", me_);                        // not absolute
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ExpectRefused(fifo, me_);  // refused without opening it (an open would block)
  // A symlink as the last component, and as a directory component, even to a file the
  // caller owns.
  const std::string target = Make("target", "secret");
  std::filesystem::create_symlink(target, dir_ + "/link");
  ExpectRefused(dir_ + "/link", me_);
  std::filesystem::create_directory(dir_ + "/real");
  Make("real/inner", "secret");
  std::filesystem::create_directory_symlink(dir_ + "/real", dir_ + "/dirlink");
  ExpectRefused(dir_ + "/dirlink/inner", me_);
  ASSERT_TRUE(CallerFile::Open(dir_ + "/real/inner", me_, "x_file").ok());
}

TEST_F(CallerFileTest, RemoveLeavesAFileSwappedInAlone) {
  const std::string path = Make("kek", "first");
  auto f = CallerFile::Open(path, me_, "x_file");
  ASSERT_TRUE(f.ok()) << f.status().message();
  const std::string other = Make("other", "second");
  std::filesystem::rename(other, path);
  EXPECT_FALSE(f->Remove().ok());
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "second");
}

}  // namespace
}  // namespace svmkey::daemon
