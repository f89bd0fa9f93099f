// The rekey-internal job (docs/ARCHITECTURE.md §7): rotates an SVM's SVM-KEK from
// generation g to g+1 and rewraps every volume's VDEK blob under it, without touching a
// VDEK. One function per phase of the job protocol (rekey_job.cc):
//
//   1 prechecks        RekeyPrechecks again (a resumed job skipped the bus-side ones);
//                      read active g and any pending g+1 a previous run stored
//   2 unwrap current   fetch the external key, unwrap g
//   3 store pending    COMMIT POINT: g+1 wrapped and stored pending, key store
//                      svm_kek_rekey, before any blob is written; a rerun adopts the
//                      pending key instead (blobs may already be sealed under it)
//   4 rewrap           every volume blob, in batches made durable before the table's
//                      copies follow; stops at a batch boundary when asked
//   5 durability       recorded only: every batch was synced before its progress
//   6 commit           COMMIT POINT: g+1 active, g retired, key store active, job success,
//                      one transaction
//   7 install          g+1 installed in the key table (restore-style)
//
// The outcome rule (one writer of the job's final state, RecordOutcome in rekey_job.cc):
//   - success: written by the commit phase's transaction (SvmKekTable::CommitRekey);
//   - a failure before the run knows of a stored pending key: JobTable::Finish (nothing
//     else changed);
//   - a failure once a pending key is stored (by this run or a previous one):
//     SvmKekTable::RecordRekeyFailure: both SVM-KEKs stay, the key store returns to
//     active (new keys under g are safe: g stays held), and a rerun adopts the pending
//     key and completes the rotation;
//   - a stop for shutdown: nothing is written; the row stays running and the job resumes;
//   - a stop for an operator's Pause: nothing is written here; the job manager records
//     paused, and Resume runs the body again (as a resume after a crash);
//   - an operator's Cancel (at a phase or batch boundary before the commit): recorded
//     as a failure with JobCanceled (458762), by the same rule as any failure, so a
//     rerun adopts the pending key. Once the commit begins (BeginUnstoppable) the job
//     refuses Pause and Cancel.
//   - a failure the run could not record (the table refused the write, or the body
//     threw): nothing else is written (never the job's end without the key store's);
//     the job manager retries RecordUnrecordedRekeyFailure until it is written,
//     so the job ends failed and the key store leaves svm_kek_rekey without a restart.
// Every volume opens under a key the table holds at every point: before phase 3 only g
// seals blobs; from phase 3 to 6 both g and g+1 are held; after 6, g is retired but kept.
#pragma once

#include "daemon/service/job_context.h"
#include "daemon/service/job_request.h"
#include "daemon/service/key_service.h"

namespace svmkey::daemon {

JobOutcome RunRekey(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                    const JobRequest& request);

// Records `failure` for a rekey-internal job whose body did not record its end (the
// JobFailer of a rekey, job_manager.h): with the key store in svm_kek_rekey (a pending
// key is stored) as SvmKekTable::RecordRekeyFailure does, so a rerun adopts the pending
// key; otherwise as JobTable::Finish.
Status RecordUnrecordedRekeyFailure(JobContext& ctx, const JobRequest& request,
                                    const Status& failure);

}  // namespace svmkey::daemon
