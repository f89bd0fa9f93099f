// The key-store switch (ONTAP's barbican-kms semantics) as a job: every SVM-KEK generation
// of the SVM that is wrapped under another configuration's Barbican key is opened with
// that key and wrapped again under the key of the newly enabled configuration.
//
// Shape (docs/ARCHITECTURE.md §7):
//   EnableKeyStore   (control worker) probes the new Barbican key, then enables the
//                    configuration: on an SVM with no key store it is simply active and
//                    no job runs; otherwise it is `switching` and a switch job follows.
//   RunKeyStoreSwitch (job thread) rewraps one generation at a time, with progress in
//                    generations, and commits every rewrapped row and the key store's
//                    return to `active` in one transaction (SvmKekTable::CompleteSwitch).
// The job is idempotent: rows already under the new key_id are skipped, so a switch
// interrupted by a crash or a stop is resumed by running the job again.
#pragma once

#include <optional>

#include "daemon/service/job_context.h"
#include "daemon/service/job_request.h"
#include "daemon/service/key_service.h"
#include "daemon/table/key_store_table.h"

namespace svmkey::daemon {

// Enables key store `config` (control worker). The new Barbican key must be readable
// first, and the SVM must have no unfinished job (ResourceInUse, naming it); otherwise
// nothing changes. Returns nullopt when the SVM had no enabled key store (now enabled and
// active: done), or the request of the switch job to queue (the key store is now
// `switching`; a switch interrupted earlier is resumed the same way). Errors:
// KeystoreUnknown, ResourceInUse, the Barbican codes, the table's Enable errors.
Result<std::optional<JobRequest>> EnableKeyStore(table::Rdb& rdb, KeyService& keys,
                                                 const Uuid& config);

// The switch job's body; request.svm and request.config name the SVM and the newly
// enabled configuration. Records the job's end itself (jobs.h FinishJob).
JobOutcome RunKeyStoreSwitch(JobContext& ctx, KeyService& keys, const JobRequest& request);

}  // namespace svmkey::daemon
