#include "daemon/service/caller_input.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

namespace svmkey::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// How long Shutdown waits for cancelled readers to hand back before dropping them.
constexpr std::chrono::seconds kShutdownGrace{1};

Status Invalid(const std::string& what, const std::string& why) {
  return Status(ErrorCode::kInvalidValue, what + ": " + why);
}

std::string Seconds() { return std::to_string(kCallerInputTimeout.count()) + " s"; }

// Reads `arg` to end of file into a buffer of max_bytes + 1 (so an oversized input is
// caught without reading it all).
Result<SecureBuffer> ReadOne(const CallerFd& arg, Clock::time_point deadline, int cancel_fd) {
  const int flags = ::fcntl(arg.fd, F_GETFL);
  if (flags < 0) return Invalid(arg.name, "not an open descriptor");
  if ((flags & O_ACCMODE) == O_WRONLY) return Invalid(arg.name, "not open for reading");
  if (!(flags & O_NONBLOCK)) ::fcntl(arg.fd, F_SETFL, flags | O_NONBLOCK);
  auto buf = SecureBuffer::Allocate(arg.max_bytes + 1);
  if (!buf.ok()) return buf.status();
  size_t len = 0;
  for (;;) {
    const ssize_t n = ::read(arg.fd, buf->data() + len, buf->size() - len);
    if (n > 0) {
      len += static_cast<size_t>(n);
      if (len > arg.max_bytes) {
        return Invalid(arg.name, "longer than " + std::to_string(arg.max_bytes) + " bytes");
      }
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Invalid(arg.name, std::string("cannot read: ") + std::strerror(errno));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Invalid(arg.name, len == 0 ? "no data within " + Seconds()
                                        : "not complete within " + Seconds());
    }
    pollfd fds[2] = {{arg.fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    const int r = ::poll(fds, cancel_fd >= 0 ? 2 : 1, static_cast<int>(left.count()) + 1);
    if (r < 0 && errno != EINTR) return Invalid(arg.name, std::string("poll: ") + std::strerror(errno));
    if (cancel_fd >= 0 && (fds[1].revents & POLLIN)) {
      return Status(ErrorCode::kResourceInUse, "svmkeyd is stopping");
    }
  }
  auto out = SecureBuffer::Allocate(len);
  if (!out.ok()) return out.status();
  if (len > 0) std::memcpy(out->data(), buf->data(), len);
  buf->Wipe();
  return std::move(out).value();
}

}  // namespace

CallerFd::CallerFd(std::string name_in, int fd_in, size_t max_bytes_in)
    : name(std::move(name_in)), fd(fd_in), max_bytes(max_bytes_in) {}

CallerFd::CallerFd(CallerFd&& other) noexcept
    : name(std::move(other.name)), fd(other.fd), max_bytes(other.max_bytes) {
  other.fd = -1;
}

CallerFd::~CallerFd() {
  if (fd >= 0) ::close(fd);
}

Result<CallerBytes> ReadCallerFds(std::vector<CallerFd>& args, Clock::time_point deadline,
                                  int cancel_fd) {
  CallerBytes out;
  out.reserve(args.size());
  for (const CallerFd& arg : args) {
    auto bytes = ReadOne(arg, deadline, cancel_fd);
    if (!bytes.ok()) return bytes.status();
    out.push_back(std::move(bytes).value());
  }
  return out;
}

Result<SecureBuffer> TrimSecret(const SecureBuffer& raw, const std::string& what) {
  size_t len = raw.size();
  if (len > 0 && raw.data()[len - 1] == '\n') --len;
  if (len > 0 && raw.data()[len - 1] == '\r') --len;
  if (len == 0) return Invalid(what, "empty");
  auto out = SecureBuffer::Allocate(len);
  if (!out.ok()) return out.status();
  std::memcpy(out->data(), raw.data(), len);
  return std::move(out).value();
}

// Shared by the owner and every reader thread, so a reader that outlives Shutdown
// touches nothing freed. `pending` holds each started call's `done` until its reader
// takes it (and runs it under `mu`) or Shutdown drops it.
struct CallerInputReader::Core {
  std::mutex mu;
  std::condition_variable idle;
  std::map<uint64_t, Done> pending;
  uint64_t next_id = 0;
  bool stopped = false;
  int cancel_fd = -1;
  ~Core() {
    if (cancel_fd >= 0) ::close(cancel_fd);
  }
};

CallerInputReader::CallerInputReader() : core_(std::make_shared<Core>()) {
  core_->cancel_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

CallerInputReader::~CallerInputReader() { Shutdown(); }

Status CallerInputReader::Start(std::vector<CallerFd> args, Done done) {
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    if (core_->stopped) return Status(ErrorCode::kResourceInUse, "svmkeyd is stopping");
    if (core_->pending.size() >= kMaxPendingCallerReads) {
      return Status(ErrorCode::kResourceLimit,
                    "too many descriptor arguments being read; try again");
    }
    id = core_->next_id++;
    core_->pending.emplace(id, std::move(done));
  }
  const Clock::time_point deadline = Clock::now() + kCallerInputTimeout;
  std::thread([core = core_, id, deadline, args = std::move(args)]() mutable {
    Result<CallerBytes> read = ReadCallerFds(args, deadline, core->cancel_fd);
    std::lock_guard<std::mutex> lock(core->mu);
    auto it = core->pending.find(id);
    if (it == core->pending.end()) return;  // dropped by Shutdown
    {
      Done taken = std::move(it->second);
      core->pending.erase(it);
      taken(std::move(read));
    }
    core->idle.notify_all();
  }).detach();
  return Status::Ok();
}

void CallerInputReader::Shutdown() {
  std::map<uint64_t, Done> dropped;
  {
    std::unique_lock<std::mutex> lock(core_->mu);
    if (core_->stopped) return;
    core_->stopped = true;
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(core_->cancel_fd, &one, sizeof one);
    core_->idle.wait_for(lock, kShutdownGrace, [this] { return core_->pending.empty(); });
    dropped.swap(core_->pending);
  }
  // `dropped` is destroyed here, on the owner's thread.
}

}  // namespace svmkey::daemon
