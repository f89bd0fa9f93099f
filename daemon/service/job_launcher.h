// JobLauncher: turns a validated job request into a job row and a running body
// (jobs.h), and resumes at start the jobs a crash or a SIGTERM left unfinished. The
// request builders check what must hold before a job row is created (the prechecks),
// without side effects.
//
// Threads: the loop thread (it owns the JobManager's loop-side state).
#pragma once

#include <cstddef>
#include <vector>

#include "daemon/service/job_manager.h"
#include "daemon/service/jobs.h"
#include "daemon/service/key_service.h"
#include "daemon/table/job_table.h"
#include "daemon/table/rdb.h"
#include "engine/status.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

class JobLauncher {
 public:
  JobLauncher(JobManager& jobs, KeyService& keys, JobSettings settings)
      : jobs_(jobs), keys_(keys), settings_(settings) {}

  // Creates the job row (ResourceInUse when the SVM already has an unfinished job),
  // recording `started_by_uid` as the caller that asked, and starts the job. Returns
  // the job's uuid.
  Result<Uuid> Queue(table::Rdb& rdb, const JobRequest& request, uint32_t started_by_uid = 0);
  // Starts every queued or running job of the table (at start, before READY=1); returns
  // how many unfinished jobs the table had.
  size_t ResumeUnfinished(table::Rdb& rdb);

  // An operator's Pause, Resume or Cancel of job `uuid` (Job1, docs/ARCHITECTURE.md §7),
  // asked by `uid` (logged). Pause and Cancel of a running job take effect at its next
  // batch boundary; Resume runs a paused job's body again; Cancel of a paused job runs
  // its body, which records the cancel at once. Errors: EntryNotFound (4); NotSupported
  // (3) for a restore or a key-store switch; InvalidValue (262185) for a job that ended,
  // Pause of a paused job, Resume of a job that is not paused; ResourceInUse (8) once
  // the job's commit began, or while a paused job's thread is still ending.
  enum class Action { kPause, kResume, kCancel };
  Status Control(table::Rdb& rdb, const Uuid& uuid, Action action, uint32_t uid);

 private:
  // A request's body, and for a rekey the recorder of a failure its body could not write.
  struct Runnable {
    JobBody body;
    JobFailer fail;
  };
  Runnable RunnableFor(const JobRequest& request) const;
  void Run(const Uuid& job, const JobRequest& request);

  JobManager& jobs_;
  KeyService& keys_;
  const JobSettings settings_;
};

// rekey-internal of configuration `config` (RekeyPrechecks, naming the running job when
// the SVM already has one).
Result<JobRequest> RekeyInternalRequest(table::Rdb& rdb, const Uuid& config);
// restore with configuration `config`: EntryNotFound, BarbicanNotConfigured when it is
// not the SVM's enabled one.
Result<JobRequest> RestoreRequest(table::Rdb& rdb, const Uuid& config);
// verify of the SVM's volumes with its enabled key store.
Result<JobRequest> VerifyRequest(table::Rdb& rdb, const Uuid& svm);
// repair of the SVM's volumes: its enabled key store, which must be active
// (RequireActiveKeyStore: 8 during a rekey).
Result<JobRequest> RepairRequest(table::Rdb& rdb, const Uuid& svm, bool dry_run);

// The newest `limit` jobs matching `filter`, newest first.
Result<std::vector<table::JobRow>> ListJobsNewestFirst(table::Rdb& rdb,
                                                       const table::JobFilter& filter,
                                                       size_t limit);

}  // namespace svmkey::daemon
