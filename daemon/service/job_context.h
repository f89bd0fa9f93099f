// JobContext: what a job body sees of the job it runs as, and JobOutcome: how it ended.
//
// A body (daemon/service/jobs.h) runs on its job's own thread with its own table
// connection, and talks back only through this interface: the phase and progress it
// records in the job row (docs/ARCHITECTURE.md §7) and publishes, and whether the daemon
// asks it to stop. The job manager implements it; a test implements it over a table
// alone (no bus).
//
// Threads: every method is called on the job's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "daemon/table/rdb.h"
#include "engine/status.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

// Why a job is asked to stop at its next batch boundary.
enum class StopReason {
  kNone,
  kShutdown,  // the daemon is stopping: the job stays running and resumes at start
  kPause,     // an operator's Pause: the job becomes paused (kept across restarts)
  kCancel,    // an operator's Cancel: the job ends failure with JobCanceled
};

class JobContext {
 public:
  virtual ~JobContext() = default;

  virtual const Uuid& uuid() const = 0;
  // The job thread's own connection; table writes of the body go through it.
  virtual table::Rdb& rdb() = 0;
  // True once the daemon is stopping: end at the next batch boundary, leaving the job
  // resumable (return JobOutcome::Interrupted()).
  virtual bool stop_requested() const = 0;
  // Why stop_requested() is true (an operator's request wins over a shutdown).
  virtual StopReason stop_reason() const {
    return stop_requested() ? StopReason::kShutdown : StopReason::kNone;
  }
  // Called by a body just before a phase that must not be stopped (the rekey's commit):
  // returns the operator's pause or cancel request made before it (the body then stops
  // instead), else kNone, and from then on the job refuses Pause and Cancel. A shutdown
  // does not stop the commit.
  // Called once by a body that ends because stop_requested() said so: returns the reason
  // it stops for, fixed from now on (a later request is told the job is still stopping).
  virtual StopReason ConfirmStop() { return stop_reason(); }
  virtual StopReason BeginUnstoppable() {
    const StopReason r = stop_reason();
    return r == StopReason::kShutdown ? StopReason::kNone : r;
  }
  // Records the phase in the job row (before the phase starts) and publishes it.
  virtual Status SetPhase(int phase, const std::string& message) = 0;
  // Records progress in the job row and publishes it (rate and ETA are estimated by the
  // implementation).
  virtual Status SetProgress(uint64_t done, uint64_t total) = 0;
  // Publishes a phase the caller recorded in its own transaction.
  virtual void PublishPhase(int phase, const std::string& message) = 0;
  // Publishes progress without a table write (the caller wrote it in its own txn).
  virtual void PublishProgress(uint64_t done, uint64_t total) = 0;
};

// How a job body ended.
//
// The rule (one writer of a job's final state): a body that returns kFinished has
// already written the job's terminal state (success or failure) to the table itself,
// through the one recording function of its kind (rekey_job.h says which for
// rekey-internal). The job manager writes a terminal state only for a body that never
// returned one: the job's table connection could not be opened, the row could not be
// started, or the body threw, or it stopped (kInterrupted) for an operator's Pause (the
// manager records paused) or Cancel (the manager records the JobCanceled failure; a
// rekey records its own, rekey_job.h). kInterrupted for a shutdown leaves the row
// running, to be resumed at the next start.
struct JobOutcome {
  enum class Kind {
    kFinished,     // terminal state recorded by the body; `status` is what it recorded
    kInterrupted,  // stopped at a batch boundary (stop_reason() says why); resumable
  };
  Kind kind = Kind::kFinished;
  Status status;  // kFinished: OK for success, else the failure recorded
  StopReason stopped_for = StopReason::kNone;  // kInterrupted: why (JobContext::ConfirmStop)

  static JobOutcome Finished(Status status) {
    return {Kind::kFinished, std::move(status), StopReason::kNone};
  }
  static JobOutcome Interrupted(StopReason why = StopReason::kShutdown) {
    return {Kind::kInterrupted, Status::Ok(), why};
  }
};

using JobBody = std::function<JobOutcome(JobContext&)>;

}  // namespace svmkey::daemon
