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
// Scheduling (docs/ARCHITECTURE.md §7): at most `max_running` job threads at once; a job
// started beyond that waits in a FIFO queue, its row `queued` in the table (so a restart
// finds it queued and starts it in order), and starts when a running job ends.
//
// A job thread never ends with its row unfinished (queued or running) unless the daemon
// is stopping: when the body threw, or could not write its end (a table write error),
// the thread records the failure itself through the job's JobFailer, retrying while the
// table stays unwritable, before it ends.
//
// Threads: Start/Wait/PublishAll/Prune/queued are called on the loop thread, Shutdown on
// the loop thread or after the loop stopped; JobContext methods on the job's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
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
#include "daemon/service/job_request.h"
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

// Records the failure of a job whose body ended without recording its end (it threw, or
// a table write failed), through the job thread's connection. Empty: JobTable::Finish.
using JobFailer = std::function<Status(JobContext& ctx, const Status& failure)>;

class JobManager {
 public:
  // `observer` must outlive the manager.
  JobManager(LoopTasks& loop, table::RdbOptions rdb_options, table::Rdb& loop_rdb,
             JobObserver& observer, size_t max_running = kDefaultMaxRunningJobs);
  ~JobManager();

  // Publishes every job row of the table (at start, after recovery).
  void PublishAll();
  // Runs `body` for the job row `uuid` (already created in the table) on a new thread,
  // or queues it when max_running jobs run already. `fail` records the job's failure
  // when the body could not.
  void Start(const Uuid& uuid, JobBody body, JobFailer fail = {});
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
  void StartStopped(const Uuid& uuid, JobBody body, StopReason reason, JobFailer fail = {});
  // Drops the job from the queue of jobs waiting for a slot, if it is there (loop thread).
  void Unqueue(const Uuid& uuid);
  // Whether a thread of this manager still runs the job (a paused job's thread may
  // still be ending).
  bool Alive(const Uuid& uuid) const;
  // Re-reads the job's row and publishes it and its state (after a change made on the
  // loop thread, such as pausing a job no thread runs).
  void Republish(const Uuid& uuid);
  // Asks every job to stop at a batch boundary and joins the threads.
  void Shutdown();
  // Removes terminal jobs past the retention period or beyond the retention count (their
  // rows; the observer hears Removed for each). The count alone is also applied whenever
  // a job ends.
  void Prune();
  size_t running() const;
  size_t queued() const { return queue_.size(); }  // loop thread

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
  struct Queued {
    Uuid uuid;
    JobBody body;
    JobFailer fail;
  };
  void Publish(const table::JobRow& row);                  // loop thread
  Result<table::JobRow> PublishFromRow(const Uuid& uuid);  // loop thread: re-read and publish
  void PostToObserver(std::function<void(JobObserver&)> call);
  void Launch(Queued job);  // loop thread
  void StartQueued();       // loop thread: FIFO, while below max_running_
  void RunBody(const Uuid& uuid, const JobBody& body, const JobFailer& fail);  // job thread
  // A body that stopped (kInterrupted) for an operator: paused, or the cancel recorded.
  void SettleStopped(const Uuid& uuid, table::JobTable& jobs, JobOutcome& outcome);
  // Job thread: records `failure` for a row the body left queued or running.
  void RecordUnrecordedEnd(const Uuid& uuid, std::unique_ptr<table::Rdb> rdb,
                           const JobFailer& fail, const Status& failure);
  bool SleepUnlessStopping(std::chrono::milliseconds d);  // job thread; false: stopping
  StopReason ReasonFor(const Uuid& uuid) const;           // any thread
  StopReason BeginUnstoppable(const Uuid& uuid);          // job thread
  StopReason ConfirmStop(const Uuid& uuid);               // job thread
  void Finished(const Uuid& uuid);                        // loop thread
  void ReapThreads();
  void RemovePruned(const Result<uint64_t>& pruned);  // loop thread

  LoopTasks& loop_;
  table::RdbOptions rdb_options_;
  table::Rdb& loop_rdb_;
  JobObserver& observer_;
  std::set<std::string> published_;                     // loop thread only
  std::map<std::string, std::vector<Waiter>> waiters_;  // loop thread only
  uint64_t next_waiter_ = 1;
  const size_t max_running_;
  size_t launched_ = 0;        // loop thread only: threads whose Finished has not run yet
  std::deque<Queued> queue_;  // loop thread only
  mutable std::mutex mu_;
  std::map<std::string, Running> threads_;  // guarded by mu_
  struct Control {
    StopReason reason = StopReason::kNone;
    bool unstoppable = false;
    bool confirmed = false;  // the body stops for `reason`; later requests are refused
  };
  std::map<std::string, Control> control_;  // guarded by mu_; from a request to Finished
  std::atomic<bool> stopping_{false};
  std::condition_variable stop_cv_;  // with mu_: wakes a job thread's retry at Shutdown
};

}  // namespace svmkey::daemon
