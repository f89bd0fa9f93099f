#include "daemon/service/jobs.h"

#include "daemon/core/log.h"
#include "daemon/service/keystore_switch_job.h"
#include "daemon/service/rekey_job.h"
#include "daemon/service/repair_job.h"
#include "daemon/service/restore_job.h"
#include "daemon/service/verify_job.h"
#include "daemon/table/job_table.h"

namespace svmkey::daemon {

JobOutcome FinishJob(JobContext& ctx, const Status& status, const std::string& success_message) {
  table::JobTable jobs(ctx.rdb());
  Status rec = jobs.Finish(ctx.uuid(), status.numeric_code(),
                           status.ok() ? success_message : status.ToString());
  if (!rec.ok()) {
    LogErr("job " + ctx.uuid().ToString() + ": cannot record the end: " + rec.ToString());
  }
  return JobOutcome::Finished(status);
}

JobOutcome RunJob(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                  const JobRequest& request) {
  switch (request.kind) {
    case JobKind::kRekeyInternal: return RunRekey(ctx, keys, settings, request);
    case JobKind::kRestore: return RunRestore(ctx, keys, request);
    case JobKind::kVerify: return RunVerify(ctx, keys, settings, request);
    case JobKind::kKeyStoreSwitch: return RunKeyStoreSwitch(ctx, keys, request);
    case JobKind::kRepair: return RunRepair(ctx, keys, settings, request);
  }
  return FinishJob(ctx, Status(ErrorCode::kUnexpectedException, "unknown job kind"));
}

}  // namespace svmkey::daemon
