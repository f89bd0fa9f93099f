#include "daemon/service/verify_job.h"

#include <vector>

#include "daemon/service/jobs.h"
#include "daemon/service/table_volume_source.h"
#include "daemon/table/volume_table.h"
#include "engine/volume.h"

namespace svmkey::daemon {

JobOutcome RunVerify(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                     const JobRequest& req) {
  // A cancel or pause asked before the job ran (of a paused job) stops it before any work.
  if (ctx.stop_requested()) return JobOutcome::Interrupted(ctx.ConfirmStop());
  Status s = ctx.SetPhase(table::kPhaseUnwrapCurrent, "opening the SVM-KEKs");
  if (!s.ok()) return FinishJob(ctx, s);
  auto installed = keys.ActiveSvmKek(ctx.rdb(), req.svm);
  if (!installed.ok()) return FinishJob(ctx, installed.status());
  KeyRing ring;
  ring.Add(installed->generation, installed->handle);
  table::VolumeTable volumes(ctx.rdb());
  auto total = volumes.Count(req.svm);
  if (!total.ok()) return FinishJob(ctx, total.status());
  s = ctx.SetPhase(table::kPhaseRewrap, "verifying " + std::to_string(*total) + " volumes");
  if (!s.ok()) return FinishJob(ctx, s);
  auto io = MakeJobFileIo(settings);
  if (!io.ok()) return FinishJob(ctx, io.status());
  TableVolumeSource source(ctx.rdb(), req.svm, settings.batch_size);
  std::vector<VolumeRef> refs(settings.batch_size);
  std::vector<OpenResult> results(settings.batch_size);
  uint64_t done = 0, failed = 0;
  Status first;
  std::string first_volume;
  for (;;) {
    auto n = source.Next(refs);
    if (!n.ok()) return FinishJob(ctx, n.status());
    if (*n == 0) break;
    std::span<const VolumeRef> page(refs.data(), *n);
    s = VerifyVolumes(**io, keys.key_table(), ring, page, std::span(results.data(), *n), nullptr,
                      settings.volume_roots);
    if (!s.ok()) return FinishJob(ctx, s);
    for (size_t i = 0; i < *n; ++i) {
      if (results[i].status.ok() && results[i].generation == installed->generation) continue;
      // A resource failure (7) names the job's error even after a damaged volume.
      const bool resource = results[i].status.code() == ErrorCode::kResourceLimit &&
                            first.code() != ErrorCode::kResourceLimit;
      if (failed++ == 0 || resource) {
        first = results[i].status.ok()
                    ? Status(ErrorCode::kSvmKekUnwrapFailed, "blob is at generation " +
                                                                 std::to_string(results[i].generation))
                    : results[i].status;
        first_volume = refs[i].id.volume.ToString();
      }
    }
    done += *n;
    s = ctx.SetProgress(done, *total);
    if (!s.ok()) return FinishJob(ctx, s);
    if (ctx.stop_requested()) return JobOutcome::Interrupted(ctx.ConfirmStop());
  }
  const std::string summary = std::to_string(done) + " volumes verified, " +
                              std::to_string(failed) + " failed";
  if (failed > 0) {
    return FinishJob(ctx, Status(first.code(), summary + "; first: volume " + first_volume + ": " +
                                                   first.message()));
  }
  return FinishJob(ctx, Status::Ok(), summary);
}

}  // namespace svmkey::daemon
