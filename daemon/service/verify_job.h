// The verify job: opens every volume's VDEK of an SVM with its installed SVM-KEK and
// checks that each is at the active generation. Read-only on the volumes; records its
// end (with a summary on success) through FinishJob. Stops at a page boundary when
// asked (resumable: a rerun verifies from the start).
#pragma once

#include "daemon/service/job_context.h"
#include "daemon/service/job_request.h"
#include "daemon/service/key_service.h"

namespace svmkey::daemon {

// Errors: the first volume's failure (open or read codes, or SvmKekUnwrapFailed for a
// volume at another generation), with the count of failed volumes in the message.
JobOutcome RunVerify(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                     const JobRequest& request);

}  // namespace svmkey::daemon
