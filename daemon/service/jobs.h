// The bodies of svmkeyd's jobs and the one entry point that runs them:
// rekey-internal (rekey_job.h, docs/ARCHITECTURE.md §7), restore (restore_job.h),
// verify (verify_job.h), repair (repair_job.h).
//
// Each body runs on its job thread with its own table connection (JobContext) and is
// idempotent, so a job found queued or running at start is resumed by running its body
// again: rekey-internal adopts the pending SVM-KEK it stored before the crash and skips
// the volumes already rewrapped. Each body records its job's terminal state itself
// (job_context.h).
#pragma once

#include "daemon/service/job_context.h"
#include "daemon/service/job_request.h"
#include "daemon/service/key_service.h"
#include "daemon/service/prechecks.h"

namespace svmkey::daemon {

JobOutcome RunJob(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                  const JobRequest& request);

// Records the job's terminal state in its row (code 0 and `success_message` when
// `status` is OK, else its code and text) and returns the matching outcome. The writer
// of every job end except a rekey's after its pending key is stored (rekey_job.h).
JobOutcome FinishJob(JobContext& ctx, const Status& status,
                     const std::string& success_message = "");

}  // namespace svmkey::daemon
