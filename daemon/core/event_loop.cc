#include "daemon/core/event_loop.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "daemon/core/log.h"

namespace svmkey::daemon {

EventLoop::EventLoop() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  signal_fd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (signal_fd_ < 0 || wake_fd_ < 0) {
    throw std::runtime_error(std::string("event loop setup failed: ") + std::strerror(errno));
  }
}

EventLoop::~EventLoop() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool EventLoop::InLoopThread() const { return std::this_thread::get_id() == loop_thread_; }

void EventLoop::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void EventLoop::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(std::move(task));
  }
  Wake();
}

void EventLoop::RunAt(Clock::time_point when, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    timers_.emplace(when, std::move(task));
  }
  Wake();
}

void EventLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  Wake();
}

void EventLoop::DropPending() {
  std::vector<std::function<void()>> posted;
  std::multimap<Clock::time_point, std::function<void()>> timers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted.swap(posted_);
    timers.swap(timers_);
  }
}

void EventLoop::RunDueTasks() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(posted_);
    const auto now = Clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      tasks.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
  }
  for (auto& task : tasks) {
    try {
      task();
    } catch (const std::exception& e) {
      LogErr(std::string("internal error in a loop task: ") + e.what());
    }
  }
}

bool EventLoop::ProcessBusMessages() {
  if (connection_ == nullptr) return false;
  // Fairness: at most kBusMessagesPerTurn incoming messages, and none started after
  // kBusTimePerTurn, then every posted task and due timer. A flood of requests thus
  // delays a posted reply or the watchdog tick by one turn (a bounded number of
  // handlers), never by the length of the flood.
  bool more = false;
  const auto turn_end = Clock::now() + kBusTimePerTurn;
  try {
    for (size_t i = 0; i < kBusMessagesPerTurn && Clock::now() < turn_end; ++i) {
      more = connection_->processPendingRequest();
      if (!more) break;
    }
  } catch (const sdbus::Error& e) {
    LoseConnection(e.getMessage());
    return false;
  }
  return more;
}

void EventLoop::LoseConnection(const std::string& why) {
  connection_ = nullptr;
  LogErr("lost the bus connection: " + why);
  if (connection_lost_) connection_lost_(why);
}

int EventLoop::Run() {
  loop_thread_ = std::this_thread::get_id();
  for (;;) {
    const bool more_bus_work = ProcessBusMessages();
    RunDueTasks();
    int timeout_ms;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return 0;
      timeout_ms = -1;
      if (!posted_.empty() || more_bus_work) {
        timeout_ms = 0;  // only look at the signal fd, then go on
      } else if (!timers_.empty()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              timers_.begin()->first - Clock::now()).count() + 1;
        timeout_ms = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(left, INT_MAX)));
      }
    }
    pollfd fds[3] = {{-1, 0, 0}, {signal_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (connection_ != nullptr) {
      try {
        const auto pd = connection_->getEventLoopPollData();
        const int bus_timeout = pd.getPollTimeout();
        if (bus_timeout >= 0 && (timeout_ms < 0 || bus_timeout < timeout_ms)) {
          timeout_ms = bus_timeout;
        }
        fds[0] = {pd.fd, static_cast<short>(pd.events), 0};
      } catch (const sdbus::Error& e) {
        LoseConnection(e.getMessage());
        continue;
      }
    }
    const int rc = ::poll(fds, 3, timeout_ms);
    if (rc < 0 && errno != EINTR) {
      LogErr(std::string("poll failed: ") + std::strerror(errno));
      return 0;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signal_fd_, &info, sizeof info) == sizeof info) {
        return static_cast<int>(info.ssi_signo);
      }
    }
    if (fds[2].revents & POLLIN) {
      uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
    }
  }
}

}  // namespace svmkey::daemon
