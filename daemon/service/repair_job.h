// The repair job: rewrites each damaged metadata file of an SVM from the table's copy
// of its blob at the active generation (engine/volume_repair.h; docs/ARCHITECTURE.md §7).
// A file is damaged when it is missing, not a regular file, not 4096 bytes, has a bad
// or foreign header, or its current slot does not open under the active SVM-KEK. Runs
// only while the SVM's key store is active (8 during a rekey); the job row owns the SVM
// meanwhile, so no rekey starts under it. Each repaired volume is logged (uuid, path,
// what was wrong) and its table copy updated to the slot now current. Stops at a page
// boundary when asked; a rerun checks again from the start and finds the repaired
// volumes healthy.
#pragma once

#include "daemon/service/job_context.h"
#include "daemon/service/job_request.h"
#include "daemon/service/key_service.h"

namespace svmkey::daemon {

// Success message: "<n> volumes checked, <r> repaired, <f> failed" (dry run:
// "<n> volumes checked, <r> to repair, <f> failed (dry run)"). Errors: the key store
// state code, the first failed volume's code (engine/volume_repair.h) with the summary
// in the message, table errors.
JobOutcome RunRepair(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                     const JobRequest& request);

}  // namespace svmkey::daemon
