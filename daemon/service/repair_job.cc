#include "daemon/service/repair_job.h"

#include <vector>

#include "daemon/core/log.h"
#include "daemon/service/jobs.h"
#include "daemon/service/prechecks.h"
#include "daemon/table/volume_table.h"
#include "engine/volume_repair.h"

namespace svmkey::daemon {

JobOutcome RunRepair(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                     const JobRequest& req) {
  Status s = ctx.SetPhase(table::kPhasePrechecks, "checking the key store");
  if (!s.ok()) return FinishJob(ctx, s);
  // Again here, not only in the handler: a repair resumed at start must not run into a
  // rekey that an older daemon left in svm_kek_rekey.
  auto ks = EnabledKeyStore(ctx.rdb(), req.svm);
  if (!ks.ok()) return FinishJob(ctx, ks.status());
  s = RequireActiveKeyStore(*ks);
  if (!s.ok()) return FinishJob(ctx, s);
  s = ctx.SetPhase(table::kPhaseUnwrapCurrent, "opening the SVM-KEK");
  if (!s.ok()) return FinishJob(ctx, s);
  auto installed = keys.ActiveSvmKek(ctx.rdb(), req.svm);
  if (!installed.ok()) return FinishJob(ctx, installed.status());
  table::VolumeTable volumes(ctx.rdb());
  auto total = volumes.Count(req.svm);
  if (!total.ok()) return FinishJob(ctx, total.status());
  s = ctx.SetPhase(table::kPhaseRewrap, "checking " + std::to_string(*total) + " volumes");
  if (!s.ok()) return FinishJob(ctx, s);
  auto io = MakeJobFileIo(settings);
  if (!io.ok()) return FinishJob(ctx, io.status());

  const std::string job = "job " + ctx.uuid().ToString() + ": ";
  std::vector<table::VolumeRow> rows;
  std::vector<RepairTarget> targets;
  std::vector<RepairVolumeResult> results;
  std::vector<table::VolumeBlobUpdate> updates;
  RepairOptions options;
  options.dry_run = req.dry_run;
  uint64_t done = 0, repaired = 0, failed = 0;
  Status first;
  std::string first_volume;
  for (int64_t after = 0;;) {
    s = volumes.ListPage(req.svm, after, settings.batch_size, &rows, /*with_blobs=*/true);
    if (!s.ok()) return FinishJob(ctx, s);
    if (rows.empty()) break;
    after = rows.back().id;
    targets.resize(rows.size());
    results.resize(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      RepairTarget& t = targets[i];
      t.ref.id = VolumeIdentity{rows[i].uuid, rows[i].svm, rows[i].dsid};
      t.ref.path = rows[i].metadata_path;
      t.flags = rows[i].flags;
      t.has_blob = rows[i].blob.has_value();
      if (t.has_blob) t.blob = *rows[i].blob;
    }
    s = RepairVolumes(**io, keys.key_table(), installed->handle, installed->generation, targets,
                      results, options);
    if (!s.ok()) return FinishJob(ctx, s);
    updates.clear();
    for (size_t i = 0; i < rows.size(); ++i) {
      const RepairVolumeResult& r = results[i];
      const std::string volume = "volume " + rows[i].uuid.ToString() + " (" +
                                 rows[i].metadata_path + ")";
      if (r.outcome == RepairOutcome::kRepaired) {
        ++repaired;
        LogNotice(job + volume + (req.dry_run ? " needs repair: " : " repaired: ") + r.damage);
        if (!req.dry_run) updates.push_back({rows[i].uuid, installed->generation, r.blob});
      } else if (r.outcome == RepairOutcome::kFailed) {
        LogErr(job + volume + " not repaired" + (r.damage.empty() ? "" : " (" + r.damage + ")") +
               ": " + r.status.ToString());
        if (failed++ == 0) {
          first = r.status;
          first_volume = rows[i].uuid.ToString();
        }
      }
    }
    // The table's copy follows the file's new current slot (same VDEK and generation,
    // higher sequence), as after a rewrap batch.
    if (!updates.empty()) {
      s = volumes.UpdateBlobs(updates);
      if (!s.ok()) return FinishJob(ctx, s);
    }
    done += rows.size();
    s = ctx.SetProgress(done, *total);
    if (!s.ok()) return FinishJob(ctx, s);
    if (ctx.stop_requested()) return JobOutcome::Interrupted();
  }
  const std::string summary =
      std::to_string(done) + " volumes checked, " + std::to_string(repaired) +
      (req.dry_run ? " to repair, " : " repaired, ") + std::to_string(failed) + " failed" +
      (req.dry_run ? " (dry run)" : "");
  LogInfo(job + summary);
  if (failed > 0) {
    return FinishJob(ctx, Status(first.code(), summary + "; first: volume " + first_volume + ": " +
                                                   first.message()));
  }
  return FinishJob(ctx, Status::Ok(), summary);
}

}  // namespace svmkey::daemon
