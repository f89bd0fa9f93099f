// JobManager: svmkeyd's jobs — persistent rows (table::JobTable), bus objects
// (org.svmkey.Job1 at /org/svmkey/KeyManager1/job/<uuid with _>), worker threads, and
// the callers waiting on them with a return_timeout.
//
// Shape (like systemd-homed's operations): a bus handler validates and authorizes,
// creates the job row, and calls Start() with the job's body; the body runs on its own
// thread and talks back through its JobContext (phase, progress, stop requests). Every
// bus-facing change — properties, PropertiesChanged, JobChanged, deferred replies —
// is posted to the EventLoop thread; the bus thread never waits on a job.
//
// Threads: Start/Wait*/Shutdown are called on the loop thread; JobContext methods on the
// job's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "daemon/core/event_loop.h"
#include "daemon/service/job_context.h"
#include "daemon/table/job_table.h"
#include "daemon/table/rdb.h"
#include "engine/status.h"

namespace svmkey::daemon {

class JobObject;
class ManagedJobContext;

class JobManager {
 public:
  using JobChangedSignal = std::function<void(const std::string& uuid, const std::string& state)>;
  JobManager(sdbus::IConnection& connection, EventLoop& loop, table::RdbOptions rdb_options,
             table::Rdb& loop_rdb, JobChangedSignal job_changed);
  ~JobManager();

  static std::string ObjectPath(const Uuid& job);

  // Publishes every job row of the table (at start, after recovery).
  void PublishAll();
  // Runs `body` for the job row `uuid` (already created in the table) on a new thread.
  void Start(const Uuid& uuid, JobBody body);
  // Replies to `reply(status_code, job uuid)` when the job ends, or with 202 when
  // `timeout` passes first; an error reply when it fails in time.
  using Reply = std::function<void(uint32_t http_status, const std::string& job,
                                   const Status& failure)>;
  void Wait(const Uuid& uuid, std::chrono::seconds timeout, Reply reply);
  // Live rate (volumes/s) and expected end (µs since the epoch) of a published job.
  std::pair<double, int64_t> LiveEstimate(const Uuid& uuid);
  // Asks every job to stop at a batch boundary and joins the threads.
  void Shutdown();
  // Removes terminal jobs past the retention period (table rows and objects).
  void Prune();
  size_t running() const;

 private:
  friend class ManagedJobContext;
  struct Waiter {
    uint64_t id;
    Reply reply;
  };
  struct Running {
    std::thread thread;
    bool done = false;
  };
  void Publish(const table::JobRow& row);  // loop thread
  void PublishFromRow(const Uuid& uuid);    // loop thread: re-read and publish
  void PostUpdate(const Uuid& uuid, std::function<void(JobObject&)> update);
  void Finished(const Uuid& uuid);          // loop thread
  void ReapThreads();

  sdbus::IConnection& connection_;
  EventLoop& loop_;
  table::RdbOptions rdb_options_;
  table::Rdb& loop_rdb_;
  std::map<std::string, std::unique_ptr<JobObject>> objects_;   // loop thread only
  std::map<std::string, std::vector<Waiter>> waiters_;           // loop thread only
  uint64_t next_waiter_ = 1;
  mutable std::mutex mu_;
  std::map<std::string, Running> threads_;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  JobChangedSignal job_changed_;
};

}  // namespace svmkey::daemon
