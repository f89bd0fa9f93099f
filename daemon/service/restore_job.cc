#include "daemon/service/restore_job.h"

#include "daemon/core/log.h"
#include "daemon/service/jobs.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/svm_kek_table.h"

namespace svmkey::daemon {

JobOutcome RunRestore(JobContext& ctx, KeyService& keys, const JobRequest& req) {
  Status s = ctx.SetPhase(table::kPhaseUnwrapCurrent, "fetching and unwrapping the active SVM-KEK");
  if (!s.ok()) return FinishJob(ctx, s);
  table::KeyStoreTable stores(ctx.rdb());
  auto enabled = stores.GetEnabledKeyStore(req.svm);
  if (!enabled.ok()) return FinishJob(ctx, enabled.status());
  if (!enabled->has_value() || !((*enabled)->uuid == req.config)) {
    return FinishJob(ctx, Status(ErrorCode::kBarbicanNotConfigured,
                                 "configuration " + req.config.ToString() + " is not enabled"));
  }
  table::SvmKekTable keks(ctx.rdb());
  auto active = keks.GetActive(req.svm);
  if (!active.ok()) {
    return FinishJob(ctx, Status(ErrorCode::kSvmKekRestoreFailed,
                                 "no active SVM-KEK: " + active.status().message()));
  }
  auto handle = keys.OpenSvmKek(ctx.rdb(), req.config, *active);
  if (!handle.ok()) {
    const ErrorCode c = handle.status().code();
    if (c == ErrorCode::kDecryptFailed || c == ErrorCode::kSvmKekUnwrapFailed) {
      return FinishJob(ctx, Status(ErrorCode::kSvmKekRestoreFailed, handle.status().ToString()));
    }
    return FinishJob(ctx, handle.status());
  }
  keys.Install(req.svm, active->generation, *handle);
  LogInfo("restored SVM-KEK generation " + std::to_string(active->generation) + " of SVM " +
          req.svm.ToString());
  return FinishJob(ctx, Status::Ok());
}

}  // namespace svmkey::daemon
