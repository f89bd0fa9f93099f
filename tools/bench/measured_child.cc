#include "tools/bench/measured_child.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace svmkey::bench {
namespace {

// Fixed-size message from child to parent (one write, well under PIPE_BUF).
struct ChildMessage {
  uint32_t code = 0;  // ErrorCode of the body's status (0 = OK)
  double seconds = 0;
  uint64_t volumes = 0;
  char message[400] = {};
};
static_assert(sizeof(ChildMessage) < 4096);

bool WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    const ssize_t n = ::write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

size_t ReadAll(int fd, void* data, size_t len) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < len) {
    const ssize_t n = ::read(fd, p + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

}  // namespace

ChildOutcome RunMeasuredChild(const std::function<Result<TimedWork>()>& body) {
  ChildOutcome out;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    out.status = Status(ErrorCode::kUnexpectedException, std::string("pipe: ") + std::strerror(errno));
    return out;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    out.status = Status(ErrorCode::kUnexpectedException, std::string("fork: ") + std::strerror(errno));
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return out;
  }
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ChildMessage msg;
    Result<TimedWork> result = body();
    if (result.ok()) {
      msg.seconds = result->seconds;
      msg.volumes = result->volumes;
    } else {
      msg.code = result.status().numeric_code();
      std::snprintf(msg.message, sizeof msg.message, "%s", result.status().message().c_str());
    }
    const bool sent = WriteAll(pipe_fds[1], &msg, sizeof msg);
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(sent && msg.code == 0 ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  ChildMessage msg;
  const size_t got = ReadAll(pipe_fds[0], &msg, sizeof msg);
  ::close(pipe_fds[0]);
  int wait_status = 0;
  rusage usage{};
  while (::wait4(pid, &wait_status, 0, &usage) < 0 && errno == EINTR) {
  }
  out.peak_rss_kib = usage.ru_maxrss;
  out.cpu_seconds = Seconds(usage.ru_utime) + Seconds(usage.ru_stime);
  if (got != sizeof msg) {
    out.status = Status(ErrorCode::kUnexpectedException,
                        "benchmark child died without a report (wait status " +
                            std::to_string(wait_status) + ")");
    return out;
  }
  if (msg.code != 0) {
    msg.message[sizeof msg.message - 1] = '\0';
    out.status = Status(static_cast<ErrorCode>(msg.code), msg.message);
    return out;
  }
  out.work.seconds = msg.seconds;
  out.work.volumes = msg.volumes;
  return out;
}

}  // namespace svmkey::bench
