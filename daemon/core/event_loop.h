// EventLoop: svmkeyd's one bus thread.
//
// A poll(2) loop over the sd-bus connection's fd, a signalfd (SIGTERM, SIGINT) and an
// eventfd for posted tasks. Everything that touches the bus — handlers, replies to
// pending async calls, job objects, PropertiesChanged, signals — runs on this thread;
// worker threads Post() closures to it. (Replies sent from worker threads in
// sdbus-c++ 1.2 can stall until the loop wakes up; posting avoids that.)
//
// Fairness: one turn of the loop handles at most kBusMessagesPerTurn incoming bus
// messages, and starts none after kBusTimePerTurn, then runs every posted task and due
// timer, so posted replies and the watchdog tick wait for a bounded number of handlers,
// however many requests queue up.
//
// A lost connection (sd-bus reports an error processing it: the bus dropped us or went
// away) does not end the loop: it forgets the connection, calls the lost-connection
// handler, and goes on running posted tasks, timers and signals until SetConnection()
// hands it a new one (svmkeyd.cc reconnects with backoff).
//
// Timers: RunAt() schedules a closure on the loop at a CLOCK_MONOTONIC deadline (used
// for return_timeout deadlines and the watchdog).
//
// Threads: Post/RunAt/Stop are thread-safe; Run must be called from one thread only, with
// SIGTERM and SIGINT blocked in every thread (block them before starting any thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "daemon/core/loop_tasks.h"

namespace svmkey::daemon {

class EventLoop final : public LoopTasks {
 public:
  // Serves no connection until SetConnection().
  EventLoop();
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until a termination signal arrives or Stop() is called. Returns the signal
  // number (0 after Stop()).
  int Run();
  void Stop();
  // After Run returned and every thread that posts was stopped: destroys the tasks and
  // timers that will never run, while the objects they hold (pending replies refer to
  // their bus connection) are still alive.
  void DropPending();

  void Post(std::function<void()> task) override;
  void RunAt(Clock::time_point when, std::function<void()> task) override;
  bool InLoopThread() const;
  // Loop thread (or before Run): the connection to serve from now on; nullptr for none.
  void SetConnection(sdbus::IConnection* connection) { connection_ = connection; }
  // Called on the loop thread, with the reason, when the connection fails; the loop has
  // already forgotten it. The handler must not destroy the connection (sdbus messages
  // of pending replies still refer to it).
  void OnConnectionLost(std::function<void(const std::string& why)> handler) {
    connection_lost_ = std::move(handler);
  }

 private:
  static constexpr size_t kBusMessagesPerTurn = 16;
  static constexpr std::chrono::milliseconds kBusTimePerTurn{10};
  void Wake();
  void RunDueTasks();
  // Handles up to kBusMessagesPerTurn messages; true when more may be waiting.
  bool ProcessBusMessages();
  void LoseConnection(const std::string& why);

  sdbus::IConnection* connection_ = nullptr;
  std::function<void(const std::string&)> connection_lost_;
  int signal_fd_ = -1;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  std::multimap<Clock::time_point, std::function<void()>> timers_;
  bool stop_ = false;
  std::thread::id loop_thread_;
};

}  // namespace svmkey::daemon
