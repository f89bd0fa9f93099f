// The bounded reads of caller-supplied descriptors (daemon/service/caller_input.h):
// each kind of descriptor a hostile caller can pass ends within the deadline or the
// size bound, with InvalidValue naming the argument, and a cancel ends a pending read.
#include "daemon/service/caller_input.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace svmkey::daemon {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<CallerFd> One(const std::string& name, int fd, size_t max) {
  std::vector<CallerFd> v;
  v.emplace_back(name, fd, max);
  return v;
}

Result<CallerBytes> ReadWithin(std::vector<CallerFd> args, std::chrono::milliseconds within,
                               int cancel_fd = -1) {
  return ReadCallerFds(args, Clock::now() + within, cancel_fd);
}

TEST(CallerInput, ReadsAPipeToEndOfFile) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], "s3cret\n", 7), 7);
  ::close(p[1]);
  auto r = ReadWithin(One("x_fd", p[0], kMaxSecretBytes), std::chrono::seconds(2));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto trimmed = TrimSecret((*r)[0], "x_fd");
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(trimmed->data()), trimmed->size()), "s3cret");
}

TEST(CallerInput, SilentPipeFailsAtTheDeadlineNamingTheArgument) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);  // the writer stays open and silent
  const auto start = Clock::now();
  auto r = ReadWithin(One("application_cred_secret_fd", p[0], kMaxSecretBytes),
                      std::chrono::milliseconds(300));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidValue);
  EXPECT_NE(r.status().message().find("application_cred_secret_fd: no data within"),
            std::string::npos)
      << r.status().message();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  ::close(p[1]);
}

TEST(CallerInput, DevZeroIsRefusedAsTooLong) {
  const int fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto r = ReadWithin(One("ca_fd", fd, kMaxCaBundleBytes), std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidValue);
  EXPECT_NE(r.status().message().find("ca_fd: longer than 1048576 bytes"), std::string::npos);
}

TEST(CallerInput, LargeSparseFileIsRefusedAsTooLong) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string templ = std::string(tmpdir ? tmpdir : "/tmp") + "/caller_input_XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  const int fd = ::mkstemp(buf.data());
  ASSERT_GE(fd, 0);
  ::unlink(buf.data());
  ASSERT_EQ(::ftruncate(fd, off_t{10} << 30), 0);  // 10 GiB, sparse
  auto r = ReadWithin(One("kek_fd", fd, kKekBytes), std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("kek_fd: longer than 32 bytes"), std::string::npos);
}

TEST(CallerInput, FifoWithoutWriterDataFailsAtTheDeadline) {
  std::string dir = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
  const std::string fifo = dir + "/caller_input_fifo_" + std::to_string(::getpid());
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int fd = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);  // holds a writer: never EOF
  ASSERT_GE(fd, 0);
  ::unlink(fifo.c_str());
  auto r = ReadWithin(One("proxy_password_fd", fd, kMaxSecretBytes), std::chrono::milliseconds(300));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("proxy_password_fd: no data within"), std::string::npos);
}

TEST(CallerInput, WriteOnlyDescriptorIsRefused) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[0]);
  auto r = ReadWithin(One("kek_fd", p[1], kKekBytes), std::chrono::seconds(1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("kek_fd: not open for reading"), std::string::npos);
}

TEST(CallerInput, EmptySecretIsRefused) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], "\n", 1), 1);
  ::close(p[1]);
  auto r = ReadWithin(One("s_fd", p[0], kMaxSecretBytes), std::chrono::seconds(1));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(TrimSecret((*r)[0], "s_fd").ok());
}

TEST(CallerInput, ShutdownCancelsAPendingReaderPromptly) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  CallerInputReader reader;
  std::atomic<int> calls{0};
  Status got;
  std::mutex mu;
  ASSERT_TRUE(reader
                  .Start(One("application_cred_secret_fd", p[0], kMaxSecretBytes),
                         [&](Result<CallerBytes> r) {
                           std::lock_guard<std::mutex> lock(mu);
                           got = r.status();
                           ++calls;
                         })
                  .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto start = Clock::now();
  reader.Shutdown();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(calls.load(), 1);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(got.code(), ErrorCode::kResourceInUse);
  ::close(p[1]);
}

TEST(CallerInput, PendingReadersAreBounded) {
  CallerInputReader reader;
  std::vector<int> writers;
  for (size_t i = 0; i < kMaxPendingCallerReads; ++i) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    writers.push_back(p[1]);
    ASSERT_TRUE(reader.Start(One("x_fd", p[0], 16), [](Result<CallerBytes>) {}).ok());
  }
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  Status refused = reader.Start(One("x_fd", p[0], 16), [](Result<CallerBytes>) {});
  EXPECT_EQ(refused.code(), ErrorCode::kResourceLimit);
  reader.Shutdown();
  ::close(p[1]);
  for (int w : writers) ::close(w);
}

}  // namespace
}  // namespace svmkey::daemon
