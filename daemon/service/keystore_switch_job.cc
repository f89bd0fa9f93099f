#include "daemon/service/keystore_switch_job.h"

#include <optional>
#include <vector>

#include "daemon/core/log.h"
#include "daemon/service/jobs.h"
#include "daemon/table/job_table.h"
#include "daemon/table/svm_kek_table.h"

namespace svmkey::daemon {
namespace {

// The configuration whose Barbican key wraps `row`, if any configuration of the SVM
// still holds it.
std::optional<Uuid> OwnerOf(const table::SvmKekRow& row,
                            const std::vector<table::BarbicanConfigRow>& configs) {
  for (const auto& c : configs) {
    if (c.key_id == row.key_id) return c.key_store.uuid;
  }
  return std::nullopt;
}

// Rewraps one generation under `config`'s key into `out`. Returns OK with `out` unset
// when a retired generation cannot be moved (it stays under its old key, logged): a
// retired key opens only old snapshots of blobs, so it must not block the switch.
Status RewrapGeneration(table::Rdb& rdb, KeyService& keys, const Uuid& config,
                        const table::SvmKekRow& row, const std::optional<Uuid>& owner,
                        std::optional<table::SvmKekRow>* out) {
  const bool needed = row.state != table::SvmKekState::kRetired;
  const std::string generation = "SVM-KEK generation " + std::to_string(row.generation);
  if (!owner) {
    if (needed) {
      return Status(ErrorCode::kSvmKekUnwrapFailed,
                    "no configuration holds the key that wraps " + generation);
    }
    LogWarning("retired " + generation + " stays under a key no configuration holds");
    return Status::Ok();
  }
  auto kek = keys.OpenSvmKek(rdb, *owner, row);
  if (!kek.ok()) {
    if (needed) return kek.status();
    LogWarning("retired " + generation + " cannot be opened; left as it is: " +
               kek.status().ToString());
    return Status::Ok();
  }
  table::SvmKekRow moved = row;
  auto wrapped = keys.WrapSvmKek(rdb, config, row.svm, row.generation, *kek, &moved.key_id);
  keys.key_table().Release(*kek).IgnoreError();
  if (!wrapped.ok()) return wrapped.status();
  moved.wrapped = *wrapped;
  *out = std::move(moved);
  return Status::Ok();
}

}  // namespace

Result<std::optional<JobRequest>> EnableKeyStore(table::Rdb& rdb, KeyService& keys,
                                                 const Uuid& config) {
  table::KeyStoreTable stores(rdb);
  auto target = stores.GetBarbicanConfig(config);
  if (!target.ok()) return Status(ErrorCode::kKeystoreUnknown, "no key store " + config.ToString());
  const Uuid svm = target->key_store.svm;
  auto running = table::JobTable(rdb).FindUnfinishedForSvm(svm);
  if (!running.ok()) return running.status();
  if (running->has_value()) {
    return Status(ErrorCode::kResourceInUse, "SVM " + svm.ToString() + " has a job running: " +
                                                 (*running)->uuid.ToString());
  }
  // The new Barbican key must be readable before anything changes.
  keys.Forget(config);
  auto source = keys.Client(rdb, config);
  if (!source.ok()) return source.status();
  auto probe = (*source)->FetchExternalKey(keys.key_table());
  if (!probe.ok()) return probe.status();
  keys.key_table().Release(*probe).IgnoreError();
  auto outcome = stores.Enable(config);
  if (!outcome.ok()) return outcome.status();
  if (outcome->kind == table::EnableOutcome::Kind::kEnabled) {
    LogInfo("enabled key store " + config.ToString() + " for SVM " + svm.ToString());
    return std::optional<JobRequest>();
  }
  LogInfo("switching SVM " + svm.ToString() + " to key store " + config.ToString());
  return std::optional<JobRequest>(JobRequest{JobKind::kKeyStoreSwitch, svm, config});
}

JobOutcome RunKeyStoreSwitch(JobContext& ctx, KeyService& keys, const JobRequest& req) {
  table::Rdb& rdb = ctx.rdb();
  table::KeyStoreTable stores(rdb);
  auto target = stores.GetBarbicanConfig(req.config);
  if (!target.ok()) return FinishJob(ctx, target.status());
  table::SvmKekTable keks(rdb);
  auto rows = keks.List(req.svm);
  if (!rows.ok()) return FinishJob(ctx, rows.status());
  auto configs = stores.ListBarbicanConfigs(req.svm);
  if (!configs.ok()) return FinishJob(ctx, configs.status());
  Status s = ctx.SetPhase(table::kPhaseRewrap, "rewrapping " + std::to_string(rows->size()) +
                                                   " SVM-KEK generations under the new key");
  if (!s.ok()) return FinishJob(ctx, s);
  std::vector<table::SvmKekRow> rewrapped;
  uint64_t done = 0;
  for (const table::SvmKekRow& row : *rows) {
    if (row.key_id != target->key_id) {
      std::optional<table::SvmKekRow> moved;
      s = RewrapGeneration(rdb, keys, req.config, row, OwnerOf(row, *configs), &moved);
      if (!s.ok()) return FinishJob(ctx, s);
      if (moved) rewrapped.push_back(std::move(*moved));
    }
    s = ctx.SetProgress(++done, rows->size());
    if (!s.ok()) return FinishJob(ctx, s);
    if (ctx.stop_requested()) return JobOutcome::Interrupted();
  }
  s = ctx.SetPhase(table::kPhaseCommit, "committing the switch");
  if (!s.ok()) return FinishJob(ctx, s);
  // COMMIT POINT: every rewrapped row and the key store's return to active, in one
  // transaction. Before it, the old rows (under a key a configuration still holds) are
  // intact and a rerun starts over; after it, only the job's end is left to record, and
  // a rerun finds nothing to rewrap and commits an empty switch.
  s = keks.CompleteSwitch(req.svm, rewrapped, req.config);
  if (!s.ok()) return FinishJob(ctx, s);
  LogNotice("switched SVM " + req.svm.ToString() + " to key store " + req.config.ToString() +
            " (" + std::to_string(rewrapped.size()) + " SVM-KEK generations rewrapped)");
  return FinishJob(ctx, Status::Ok(),
                   std::to_string(rewrapped.size()) + " SVM-KEK generations rewrapped");
}

}  // namespace svmkey::daemon
