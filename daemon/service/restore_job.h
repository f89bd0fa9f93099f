// The restore job: opens the SVM's active SVM-KEK with the external key of its enabled
// configuration and installs it in the key table (ONTAP's `security key-manager
// external restore`). Writes nothing but the job row; records its end with FinishJob.
#pragma once

#include "daemon/service/job_context.h"
#include "daemon/service/job_request.h"
#include "daemon/service/key_service.h"

namespace svmkey::daemon {

// Errors: BarbicanNotConfigured (`request.config` is not the enabled key store),
// SvmKekRestoreFailed (no active SVM-KEK, or it does not unwrap), external key codes.
JobOutcome RunRestore(JobContext& ctx, KeyService& keys, const JobRequest& request);

}  // namespace svmkey::daemon
