// UringFileIo and the FileIo factory (engine/uring_file_io.cc), on a real io_uring.
#include "engine/uring_file_io.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/engine/volume_set.h"

namespace svmkey {
namespace {

std::unique_ptr<UringFileIo> MakeRing(unsigned depth) {
  UringOptions o;
  o.queue_depth = depth;
  std::unique_ptr<UringFileIo> io;
  const int rc = UringFileIo::Create(o, &io);
  EXPECT_EQ(rc, 0) << std::strerror(-rc);
  return io;
}

TEST(UringFileIoTest, ManyMoreOpsThanQueueDepth) {
  testing::TempDir dir;
  auto io = MakeRing(8);
  ASSERT_TRUE(io);
  EXPECT_EQ(io->queue_depth(), 8u);
  constexpr size_t kFiles = 100;
  std::vector<std::string> paths(kFiles);
  std::vector<IoOp> ops(kFiles);
  for (size_t i = 0; i < kFiles; ++i) {
    paths[i] = dir.path() + "/f" + std::to_string(i);
    ops[i] = IoOp::Open(AT_FDCWD, paths[i].c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  }
  ASSERT_TRUE(io->Execute(ops).ok());
  std::vector<int> fds(kFiles);
  for (size_t i = 0; i < kFiles; ++i) {
    ASSERT_GE(ops[i].result, 0) << std::strerror(-ops[i].result);
    fds[i] = ops[i].result;
  }
  std::vector<uint8_t> out(kFiles * 4096), in(kFiles * 4096, 0);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i * 31 + i / 4096);
  for (size_t i = 0; i < kFiles; ++i) ops[i] = IoOp::Write(fds[i], &out[i * 4096], 4096, 0);
  ASSERT_TRUE(io->Execute(ops).ok());
  for (const auto& op : ops) EXPECT_EQ(op.result, 4096);
  for (size_t i = 0; i < kFiles; ++i) ops[i] = IoOp::Fdatasync(fds[i]);
  ASSERT_TRUE(io->Execute(ops).ok());
  for (const auto& op : ops) EXPECT_EQ(op.result, 0);
  for (size_t i = 0; i < kFiles; ++i) ops[i] = IoOp::Read(fds[i], &in[i * 4096], 4096, 0);
  ASSERT_TRUE(io->Execute(ops).ok());
  for (const auto& op : ops) EXPECT_EQ(op.result, 4096);
  EXPECT_EQ(in, out);
  EXPECT_EQ(io->SyncFs(fds[0]), 0);
  for (size_t i = 0; i < kFiles; ++i) ops[i] = IoOp::Close(fds[i]);
  ASSERT_TRUE(io->Execute(ops).ok());
  for (const auto& op : ops) EXPECT_EQ(op.result, 0);
  EXPECT_EQ(::fcntl(fds[0], F_GETFD), -1);  // really closed
}

TEST(UringFileIoTest, PerOpErrorsDoNotDisturbOtherOps) {
  testing::TempDir dir;
  auto io = MakeRing(16);
  const std::string good = dir.path() + "/good";
  ASSERT_TRUE(testing::WriteWholeFile(good, std::vector<uint8_t>(512, 7)));
  const std::string missing = dir.path() + "/missing";
  IoOp opens[2] = {IoOp::Open(AT_FDCWD, good.c_str(), O_RDONLY),
                   IoOp::Open(AT_FDCWD, missing.c_str(), O_RDONLY)};
  ASSERT_TRUE(io->Execute(opens).ok());
  ASSERT_GE(opens[0].result, 0);
  EXPECT_EQ(opens[1].result, -ENOENT);
  const int fd = opens[0].result;
  uint8_t buf[512] = {};
  IoOp ops[3] = {IoOp::Read(fd, buf, 512, 0), IoOp::Write(fd, buf, 512, 0),
                 IoOp::Read(-1, buf, 16, 0)};
  ASSERT_TRUE(io->Execute(ops).ok());
  EXPECT_EQ(ops[0].result, 512);
  EXPECT_EQ(ops[1].result, -EBADF);  // opened read-only
  EXPECT_EQ(ops[2].result, -EBADF);
  EXPECT_EQ(buf[100], 7);
  IoOp close_op = IoOp::Close(fd);
  ASSERT_TRUE(io->Execute({&close_op, 1}).ok());
  EXPECT_EQ(io->SyncFs(-1), -EBADF);
  EXPECT_TRUE(io->Execute({}).ok());
}

// A short read is resubmitted for the rest unless the op says a short read is EOF.
TEST(UringFileIoTest, ShortReadsResubmittedOrTakenAsEof) {
  testing::TempDir dir;
  auto io = MakeRing(4);
  const std::string path = dir.path() + "/short";
  ASSERT_TRUE(testing::WriteWholeFile(path, std::vector<uint8_t>(100, 9)));
  IoOp open_op = IoOp::Open(AT_FDCWD, path.c_str(), O_RDONLY);
  ASSERT_TRUE(io->Execute({&open_op, 1}).ok());
  const int fd = open_op.result;
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> buf(4608);
  IoOp plain = IoOp::Read(fd, buf.data(), 4608, 0);
  const uint64_t before = io->resubmissions();
  ASSERT_TRUE(io->Execute({&plain, 1}).ok());
  EXPECT_EQ(plain.result, 100);
  EXPECT_EQ(io->resubmissions(), before + 1);  // the rest was asked for, and was EOF
  IoOp eof = IoOp::ReadToEof(fd, buf.data(), 4608, 0);
  ASSERT_TRUE(io->Execute({&eof, 1}).ok());
  EXPECT_EQ(eof.result, 100);
  EXPECT_EQ(io->resubmissions(), before + 1);  // one request only
  IoOp close_op = IoOp::Close(fd);
  ASSERT_TRUE(io->Execute({&close_op, 1}).ok());
}

TEST(UringFileIoTest, RegisteredBuffersCarryTheData) {
  testing::TempDir dir;
  auto io = MakeRing(32);
  std::vector<uint8_t> arena(64 * 1024);
  iovec iov{arena.data(), arena.size()};
  ASSERT_TRUE(io->RegisterBuffers({&iov, 1}).ok());
  EXPECT_TRUE(io->buffers_registered());
  const std::string path = dir.path() + "/fixed";
  IoOp open_op = IoOp::Open(AT_FDCWD, path.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(io->Execute({&open_op, 1}).ok());
  const int fd = open_op.result;
  ASSERT_GE(fd, 0);
  for (size_t i = 0; i < 4096; ++i) arena[i] = static_cast<uint8_t>(i ^ 0x3C);
  uint8_t outside[512];
  std::memset(outside, 0xEE, sizeof outside);
  IoOp writes[2] = {IoOp::Write(fd, arena.data(), 4096, 0),       // fixed
                    IoOp::Write(fd, outside, 512, 4096)};         // not registered
  ASSERT_TRUE(io->Execute(writes).ok());
  EXPECT_EQ(writes[0].result, 4096);
  EXPECT_EQ(writes[1].result, 512);
  IoOp read = IoOp::Read(fd, arena.data() + 8192, 4608, 0);
  ASSERT_TRUE(io->Execute({&read, 1}).ok());
  EXPECT_EQ(read.result, 4608);
  EXPECT_EQ(0, std::memcmp(arena.data(), arena.data() + 8192, 4096));
  EXPECT_EQ(arena[8192 + 4096 + 10], 0xEE);
  io->UnregisterBuffers();
  EXPECT_FALSE(io->buffers_registered());
  IoOp close_op = IoOp::Close(fd);
  ASSERT_TRUE(io->Execute({&close_op, 1}).ok());
}

TEST(UringFileIoTest, SetupClampsAnOversizedQueue) {
  auto io = MakeRing(1u << 20);
  ASSERT_TRUE(io);
  EXPECT_NE(io->setup_flags() & IORING_SETUP_CLAMP, 0u);
  EXPECT_LE(io->queue_depth(), 32768u);
  EXPECT_GT(io->queue_depth(), 0u);
}

TEST(FileIoFactoryTest, ModesAndParsing) {
  IoMode mode;
  EXPECT_TRUE(ParseIoMode("auto", &mode));
  EXPECT_EQ(mode, IoMode::kAuto);
  EXPECT_TRUE(ParseIoMode("io_uring", &mode));
  EXPECT_EQ(mode, IoMode::kUring);
  EXPECT_TRUE(ParseIoMode("sync", &mode));
  EXPECT_EQ(mode, IoMode::kSync);
  EXPECT_FALSE(ParseIoMode("aio", &mode));
  std::string note;
  auto a = MakeFileIo(IoMode::kAuto, &note);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->name(), "io_uring");  // io_uring works on this kernel
  EXPECT_TRUE(note.empty());
  auto s = MakeFileIo(IoMode::kSync, &note);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->name(), "sync");
  auto u = MakeUringFileIo();
  ASSERT_TRUE(u.ok());
  EXPECT_EQ((*u)->name(), "io_uring");
}

// Blocks io_uring_setup with `err` in this process (seccomp, as a container runtime's
// profile would). Irreversible: call only in a death-test child.
bool BlockIoUringSetup(int err) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// In the child: the exit code says which expectation failed (0 = all held).
int FallbackChild(int err) {
  if (!BlockIoUringSetup(err)) return 10;
  std::string note;
  auto a = MakeFileIo(IoMode::kAuto, &note);
  if (!a.ok() || (*a)->name() != "sync") return 11;
  if (note.find("io_uring unavailable") == std::string::npos) return 12;
  if (note.find(std::strerror(err)) == std::string::npos) return 13;
  // The fallback really does I/O.
  char path[] = "/tmp/svmkey-fallback-XXXXXX";
  const int tmp = ::mkstemp(path);
  if (tmp < 0) return 14;
  ::unlink(path);
  uint8_t byte = 42;
  IoOp w = IoOp::Write(tmp, &byte, 1, 0);
  if (!(*a)->Execute({&w, 1}).ok() || w.result != 1) return 15;
  ::close(tmp);
  // Forcing io_uring fails instead of falling back.
  if (MakeFileIo(IoMode::kUring, &note).ok()) return 16;
  if (MakeUringFileIo().ok()) return 17;
  // Without a note the fallback is logged on stderr, once per process.
  char log[] = "/tmp/svmkey-fallback-log-XXXXXX";
  const int logfd = ::mkstemp(log);
  if (logfd < 0) return 18;
  ::unlink(log);
  const int saved = ::dup(2);
  ::dup2(logfd, 2);
  const bool ok1 = MakeFileIo(IoMode::kAuto).ok();
  const bool ok2 = MakeFileIo(IoMode::kAuto).ok();
  std::fflush(stderr);
  ::dup2(saved, 2);
  if (!ok1 || !ok2) return 19;
  char text[1024] = {};
  const ssize_t n = ::pread(logfd, text, sizeof text - 1, 0);
  if (n <= 0) return 20;
  const std::string s(text, static_cast<size_t>(n));
  const size_t first = s.find("<4>svmkey: io_uring unavailable");
  if (first != 0) return 21;
  if (s.find("<4>", first + 1) != std::string::npos) return 22;  // logged twice
  return 0;
}

TEST(FileIoFactoryDeathTest, FallsBackToSyncWhenSeccompReturnsEnosys) {
  EXPECT_EXIT(std::_Exit(FallbackChild(ENOSYS)), ::testing::ExitedWithCode(0), "");
}

TEST(FileIoFactoryDeathTest, FallsBackToSyncWhenSeccompReturnsEperm) {
  EXPECT_EXIT(std::_Exit(FallbackChild(EPERM)), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace svmkey
