// LoopTasks: the loop thread as the code below the bus sees it — a queue of closures
// run one at a time on that thread, now or at a deadline. EventLoop (event_loop.h)
// implements it; the service layer depends on this interface only, not on the bus.
//
// Threads: Post and RunAt are thread-safe.
#pragma once

#include <chrono>
#include <functional>

namespace svmkey::daemon {

class LoopTasks {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~LoopTasks() = default;
  virtual void Post(std::function<void()> task) = 0;
  virtual void RunAt(Clock::time_point when, std::function<void()> task) = 0;
};

}  // namespace svmkey::daemon
