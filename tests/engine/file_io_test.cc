#include "engine/file_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

namespace svmkey {
namespace {

TEST(SyncFileIoTest, OpenWriteReadSyncClose) {
  testing::TempDir dir;
  auto io = MakeSyncFileIo();
  EXPECT_EQ(io->name(), "sync");
  const std::string path = dir / "f";
  IoOp open_op = IoOp::Open(AT_FDCWD, path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_TRUE(io->Execute({&open_op, 1}).ok());
  ASSERT_GE(open_op.result, 0);
  const int fd = open_op.result;
  std::vector<uint8_t> data(4096, 0x3c), back(4096);
  IoOp ops[] = {IoOp::Write(fd, data.data(), 4096, 0)};
  ASSERT_TRUE(io->Execute(ops).ok());
  EXPECT_EQ(ops[0].result, 4096);
  IoOp more[] = {IoOp::Read(fd, back.data(), 4096, 0), IoOp::Fdatasync(fd)};
  ASSERT_TRUE(io->Execute(more).ok());
  EXPECT_EQ(more[0].result, 4096);
  EXPECT_EQ(more[1].result, 0);
  EXPECT_EQ(data, back);
  EXPECT_EQ(io->SyncFs(fd), 0);
  // Reading past the end is short, not an error.
  IoOp tail = IoOp::Read(fd, back.data(), 4096, 4000);
  ASSERT_TRUE(io->Execute({&tail, 1}).ok());
  EXPECT_EQ(tail.result, 96);
  IoOp close_op = IoOp::Close(fd);
  ASSERT_TRUE(io->Execute({&close_op, 1}).ok());
  EXPECT_EQ(close_op.result, 0);
}

TEST(SyncFileIoTest, ErrorsAreNegativeErrno) {
  testing::TempDir dir;
  auto io = MakeSyncFileIo();
  const std::string missing = dir / "missing";
  IoOp ops[] = {IoOp::Open(AT_FDCWD, missing.c_str(), O_RDONLY), IoOp::Close(-1)};
  ASSERT_TRUE(io->Execute(ops).ok());
  EXPECT_EQ(ops[0].result, -ENOENT);
  EXPECT_EQ(ops[1].result, -EBADF);
  EXPECT_EQ(io->SyncFs(-1), -EBADF);
}

// The calling thread (only it: seccomp filters are per thread unless synchronised) gets
// ENOSYS for every openat2, as systemd's RestrictSUIDSGID= filter answers under
// svmkeyd's unit. Returns false if the filter cannot be installed.
bool RefuseOpenat2InThisThread() {
#if defined(__x86_64__)
  constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
#error "add this architecture's AUDIT_ARCH_ value"
#endif
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// One open and what it gave: a descriptor (reported as 0 after closing it) or -errno.
struct OpenCase {
  int dirfd;
  std::string path;
  uint64_t flags;
  uint64_t resolve;
};

int RunCase(const OpenCase& c) {
  open_how how{};
  how.flags = c.flags | O_NOFOLLOW | O_CLOEXEC;
  if ((c.flags & O_CREAT) != 0) how.mode = 0600;
  how.resolve = c.resolve;
  const int fd = OpenResolved(c.dirfd, c.path.c_str(), how);
  if (fd < 0) return fd;
  ::close(fd);
  return 0;
}

// The component walk that replaces openat2 where seccomp refuses it gives the kernel's
// answer for every case that matters to us: files and directories beneath, symlinks as
// the last or a middle component, "..", absolute paths, missing names, creation.
TEST(OpenResolvedTest, FallbackMatchesOpenat2WhereSeccompRefusesIt) {
  testing::TempDir dir;
  namespace fs = std::filesystem;
  const fs::path base(dir.path());
  const fs::path root = base / "root";
  fs::create_directories(root / "a" / "b");
  fs::create_directories(base / "outside");
  { std::FILE* f = std::fopen((root / "a" / "b" / "file").c_str(), "w"); std::fclose(f); }
  { std::FILE* f = std::fopen((base / "outside" / "secret").c_str(), "w"); std::fclose(f); }
  fs::create_symlink(root / "a" / "b" / "file", root / "a" / "link-to-file");
  fs::create_symlink(base / "outside", root / "a" / "link-to-dir");
  fs::create_symlink("b", root / "a" / "relative-link");
  const int rootfd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(rootfd, 0);
  constexpr uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  constexpr uint64_t kNoLinks = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const std::string abs_file = (root / "a" / "b" / "file").string();
  const std::vector<OpenCase> cases = {
      {rootfd, "a/b/file", O_RDONLY, kBeneath},
      {rootfd, "a//b/./file", O_RDWR, kBeneath},
      {rootfd, "a/b", O_RDONLY | O_DIRECTORY, kBeneath},
      {rootfd, "a/b/", O_RDONLY, kBeneath},
      {rootfd, "a/b/file/", O_RDONLY, kBeneath},
      {rootfd, ".", O_RDONLY | O_DIRECTORY, kBeneath},
      {rootfd, "a/link-to-file", O_RDONLY, kBeneath},
      {rootfd, "a/link-to-dir/secret", O_RDONLY, kBeneath},
      {rootfd, "a/relative-link/file", O_RDONLY, kBeneath},
      {rootfd, "a/../a/b/file", O_RDONLY, kBeneath},
      {rootfd, "../outside/secret", O_RDONLY, kBeneath},
      {rootfd, abs_file, O_RDONLY, kBeneath},
      {rootfd, "a/missing", O_RDONLY, kBeneath},
      {rootfd, "a/missing/file", O_RDONLY, kBeneath},
      {rootfd, "a/b/file/x", O_RDONLY, kBeneath},
      {rootfd, "", O_RDONLY, kBeneath},
      {rootfd, "a/b/new", O_RDWR | O_CREAT | O_EXCL, kBeneath},
      {rootfd, "a/b/file", O_RDWR | O_CREAT | O_EXCL, kBeneath},
      {AT_FDCWD, abs_file, O_RDONLY, kNoLinks},
      {AT_FDCWD, (root / "a" / "link-to-dir" / "secret").string(), O_RDONLY, kNoLinks},
      {AT_FDCWD, (root / "a" / "b" / ".." / "b" / "file").string(), O_RDONLY, kNoLinks},
  };
  // The kernel's answers first (no filter on this thread); "new" is removed between runs.
  std::vector<int> kernel;
  for (const OpenCase& c : cases) kernel.push_back(RunCase(c));
  fs::remove(root / "a" / "b" / "new");
  ASSERT_EQ(kernel[0], 0);
  ASSERT_EQ(kernel[6], -ELOOP);
  ASSERT_EQ(kernel[10], -EXDEV);

  bool filtered = false;
  int probe = 0;
  std::vector<int> walked;
  std::thread t([&] {
    filtered = RefuseOpenat2InThisThread();
    if (!filtered) return;
    open_how how{};
    how.flags = O_RDONLY;
    probe = ::syscall(SYS_openat2, rootfd, "a/b/file", &how, sizeof how) < 0 ? errno : 0;
    for (const OpenCase& c : cases) walked.push_back(RunCase(c));
  });
  t.join();
  ::close(rootfd);
  ASSERT_TRUE(filtered) << "cannot install a seccomp filter: " << std::strerror(errno);
  ASSERT_EQ(probe, ENOSYS) << "the filter did not refuse openat2; the fallback was not run";
  ASSERT_EQ(walked.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(walked[i], kernel[i]) << "case " << i << ": " << cases[i].path;
  }
  struct stat st;
  ASSERT_EQ(::stat((root / "a" / "b" / "new").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// The sync FileIo's opens (the path the daemon takes without io_uring) work under the
// filter and still refuse a symlink.
TEST(OpenResolvedTest, SyncFileIoOpensWhereOpenat2IsRefused) {
  testing::TempDir dir;
  const std::string file = dir / "f";
  const std::string link = dir / "l";
  { std::FILE* f = std::fopen(file.c_str(), "w"); std::fclose(f); }
  ASSERT_EQ(::symlink(file.c_str(), link.c_str()), 0);
  bool filtered = false;
  int opened = 0, refused = 0;
  std::thread t([&] {
    filtered = RefuseOpenat2InThisThread();
    if (!filtered) return;
    auto io = MakeSyncFileIo();
    IoOp ops[] = {IoOp::Open(AT_FDCWD, file.c_str(), O_RDONLY),
                  IoOp::Open(AT_FDCWD, link.c_str(), O_RDONLY)};
    if (!io->Execute(ops).ok()) return;
    opened = ops[0].result;
    refused = ops[1].result;
    if (opened >= 0) ::close(opened);
  });
  t.join();
  ASSERT_TRUE(filtered);
  EXPECT_GE(opened, 0);
  EXPECT_EQ(refused, -ELOOP);
}

// A resolve set the walk cannot honour keeps the kernel's ENOSYS instead of guessing.
TEST(OpenResolvedTest, NoFallbackWithoutNoSymlinks) {
  testing::TempDir dir;
  int result = 0;
  bool filtered = false;
  std::thread t([&] {
    filtered = RefuseOpenat2InThisThread();
    if (!filtered) return;
    open_how how{};
    how.flags = O_RDONLY | O_DIRECTORY;
    how.resolve = RESOLVE_BENEATH;
    result = OpenResolved(AT_FDCWD, dir.path().c_str(), how);
    if (result >= 0) ::close(result);
  });
  t.join();
  ASSERT_TRUE(filtered);
  EXPECT_EQ(result, -ENOSYS);
}

}  // namespace
}  // namespace svmkey
