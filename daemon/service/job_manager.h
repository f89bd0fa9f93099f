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
#include "daemon/table/job_table.h"
#include "daemon/table/rdb.h"
#include "engine/status.h"

namespace svmkey::daemon {

class JobManager;

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

// What a job body sees. Table writes go through the job thread's own Rdb connection.
class JobContext {
 public:
  const Uuid& uuid() const { return uuid_; }
  table::Rdb& rdb() { return *rdb_; }
  // True once the daemon is stopping: end at the next batch boundary, leaving the job
  // resumable (return StopRequested()).
  bool stop_requested() const;
  // Records the phase in the table (before the phase starts) and publishes it.
  Status SetPhase(int phase, const std::string& message);
  // Records progress in the table and publishes it (rate and ETA are estimated here).
  Status SetProgress(uint64_t done, uint64_t total);
  // Publishes a phase the caller recorded in its own transaction.
  void PublishPhase(int phase, const std::string& message);
  // Publishes progress without a table write (the caller wrote it in its own txn).
  void PublishProgress(uint64_t done, uint64_t total);

 private:
  friend class JobManager;
  JobContext(JobManager& manager, Uuid uuid, std::unique_ptr<table::Rdb> rdb)
      : manager_(manager), uuid_(uuid), rdb_(std::move(rdb)) {}
  JobManager& manager_;
  Uuid uuid_;
  std::unique_ptr<table::Rdb> rdb_;
  // Rate estimate: an exponential average over progress samples.
  std::chrono::steady_clock::time_point last_sample_{};
  uint64_t last_done_ = 0;
  double rate_ = 0;
};

// The outcome of a job body.
struct JobOutcome {
  enum class Kind {
    kFinished,     // the body recorded success/failure in the table itself, or the
                   // manager records `status` (OK → success, else failure)
    kInterrupted,  // stopped for shutdown; the row stays queued/running (resumable)
  };
  Kind kind = Kind::kFinished;
  Status status;
  bool recorded = false;  // the body already wrote the terminal state to the table
};
JobOutcome Interrupted();

using JobBody = std::function<JobOutcome(JobContext&)>;

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
  // Asks every job to stop at a batch boundary and joins the threads.
  void Shutdown();
  // Removes terminal jobs past the retention period (their rows; the observer hears
  // Removed for each).
  void Prune();
  size_t running() const;

 private:
  friend class JobContext;
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
  std::atomic<bool> stopping_{false};
};

}  // namespace svmkey::daemon
