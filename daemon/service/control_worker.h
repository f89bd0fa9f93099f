// ControlWorker: runs the short control operations (table writes, a Barbican call or
// two) one at a time on a thread of its own, with its own table connection, so the loop
// thread never waits on them. The task posts its own reply back to the loop.
//
// Threads: Submit from any thread; tasks run on the worker thread in submission order.
// The destructor runs the tasks already queued, then joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "daemon/table/rdb.h"
#include "engine/status.h"

namespace svmkey::daemon {

class ControlWorker {
 public:
  // Opens the worker's own table connection; fails as Rdb::Open does.
  static Result<std::unique_ptr<ControlWorker>> Open(const table::RdbOptions& options);
  explicit ControlWorker(std::unique_ptr<table::Rdb> rdb);
  ~ControlWorker();
  void Submit(std::function<void(table::Rdb&)> task);

 private:
  std::unique_ptr<table::Rdb> rdb_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(table::Rdb&)>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace svmkey::daemon
