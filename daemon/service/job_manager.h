// JobManager: svmkeyd's jobs — persistent rows (table::JobTable), worker threads, the
// job lifecycle, and the callers waiting on them with a return_timeout. What the bus
// shows of them (the org.svmkey.Job1 objects, PropertiesChanged, JobChanged) is a
// JobObserver's business (daemon/bus/job_object.h); see docs/ARCHITECTURE.md §7.
//
// Shape (like systemd-homed's operations): a bus handler validates and authorizes, the
// service creates the job row and calls Start() with the job's body; the body runs on
// its own thread and talks back through its JobContext (phase, progress, stop
// requests). Every observer call and every waiter's reply is posted to the loop thread
// (LoopTasks); the loop thread never waits on a job.
//
// Threads: Start/Wait/PublishAll/Prune are called on the loop thread, Shutdown on the
// loop thread or after the loop stopped; JobContext methods on the job's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/core/loop_tasks.h"
#include "daemon/service/job_context.h"
#include "daemon/table/job_table.h"
#include "daemon/table/rdb.h"
#include "engine/status.h"

namespace svmkey::daemon {

// What the bus publishes of the jobs. Every call is made on the loop thread.
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  // The job's row as the table has it now (a new job, a finished one, or at start).
  virtual void Published(const table::JobRow& row) = 0;
  // A phase the job entered (table::PhaseName(phase)), with its message.
  virtual void PhaseChanged(const Uuid& job, int phase, const std::string& message) = 0;
  // Progress of the job, with a rate estimate in volumes/s (0: none yet).
  virtual void ProgressChanged(const Uuid& job, uint64_t done, uint64_t total, double rate) = 0;
  // The job was queued (state "queued") or ended its run (the table's state then, or
  // "unknown" when its row cannot be read).
  virtual void StateChanged(const Uuid& job, const std::string& state) = 0;
  // The job's row was pruned.
  virtual void Removed(const Uuid& job) = 0;
};

class ManagedJobContext;

class JobManager {
 public:
  // `observer` must outlive the manager.
  JobManager(LoopTasks& loop, table::RdbOptions rdb_options, table::Rdb& loop_rdb,
             JobObserver& observer);
  ~JobManager();

  // Publishes every job row of the table (at start, after recovery).
  void PublishAll();
  // Runs `body` for the job row `uuid` (already created in the table) on a new thread.
  void Start(const Uuid& uuid, JobBody body);
  // Replies to `reply(status_code, job uuid)` when the job ends, or with 202 when
  // `timeout` passes first; an error reply when it fails in time.
  using Reply =
      std::function<void(uint32_t http_status, const std::string& job, const Status& failure)>;
  void Wait(const Uuid& uuid, std::chrono::seconds timeout, Reply reply);
  // Operator control (Job1 Pause/Cancel, docs/ARCHITECTURE.md §7).
  enum class StopRequest {
    kAccepted,     // the job's thread stops at its next batch boundary
    kNotRunning,   // no thread of this manager runs the job; nothing recorded
    kUnstoppable,  // the job has begun its commit (JobContext::BeginUnstoppable)
    kStopping,     // the job's body already stops for an earlier request or a shutdown
  };
  // Asks the job's thread to stop for `reason` (kPause or kCancel; a cancel replaces a
  // pause, a pause never replaces a cancel).
  StopRequest RequestStop(const Uuid& uuid, StopReason reason);
  // Start() with `reason` already requested (kNone: none), forgetting any request made
  // of an earlier run: the body stops before its first step. A cancel of a paused job
  // runs its body so that it records the cancel its own way; Resume passes kNone.
  void StartStopped(const Uuid& uuid, JobBody body, StopReason reason);
  // Whether a thread of this manager still runs the job (a paused job's thread may
  // still be ending).
  bool Alive(const Uuid& uuid) const;
  // Re-reads the job's row and publishes it and its state (after a change made on the
  // loop thread, such as pausing a job no thread runs).
  void Republish(const Uuid& uuid);
  // Asks every job to stop at a batch boundary and joins the threads.
  void Shutdown();
  // Removes terminal jobs past the retention period (their rows; the observer hears
  // Removed for each).
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
  void Publish(const table::JobRow& row);                  // loop thread
  Result<table::JobRow> PublishFromRow(const Uuid& uuid);  // loop thread: re-read and publish
  void PostToObserver(std::function<void(JobObserver&)> call);
  void RunBody(const Uuid& uuid, const JobBody& body);  // job thread
  // A body that stopped (kInterrupted) for an operator: paused, or the cancel recorded.
  void SettleStopped(const Uuid& uuid, table::JobTable& jobs, JobOutcome& outcome);
  StopReason ReasonFor(const Uuid& uuid) const;  // any thread
  StopReason BeginUnstoppable(const Uuid& uuid);  // job thread
  StopReason ConfirmStop(const Uuid& uuid);       // job thread
  void Finished(const Uuid& uuid);                      // loop thread
  void ReapThreads();

  LoopTasks& loop_;
  table::RdbOptions rdb_options_;
  table::Rdb& loop_rdb_;
  JobObserver& observer_;
  std::set<std::string> published_;                     // loop thread only
  std::map<std::string, std::vector<Waiter>> waiters_;  // loop thread only
  uint64_t next_waiter_ = 1;
  mutable std::mutex mu_;
  std::map<std::string, Running> threads_;  // guarded by mu_
  struct Control {
    StopReason reason = StopReason::kNone;
    bool unstoppable = false;
    bool confirmed = false;  // the body stops for `reason`; later requests are refused
  };
  std::map<std::string, Control> control_;  // guarded by mu_; from a request to Finished
  std::atomic<bool> stopping_{false};
};

}  // namespace svmkey::daemon
