#include "daemon/service/jobs.h"

#include <fcntl.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "daemon/core/log.h"
#include "daemon/table/job_table.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/svm_kek_table.h"
#include "daemon/table/svm_table.h"
#include "daemon/table/volume_table.h"
#include "engine/rewrap.h"
#include "engine/svm_kek.h"

namespace svmkey::daemon {
namespace {

using table::KeyStoreState;

const char* KindName(JobKind kind) {
  switch (kind) {
    case JobKind::kRekeyInternal: return "rekey-internal";
    case JobKind::kRestore: return "restore";
    case JobKind::kVerify: return "verify";
  }
  return "?";
}

// Streams the SVM's volumes from the table in pages (bounded memory at any N).
class TableVolumeSource final : public VolumeSource {
 public:
  TableVolumeSource(table::Rdb& rdb, const Uuid& svm, size_t page) : rdb_(rdb), svm_(svm), page_(page) {}

  Result<size_t> Next(std::span<VolumeRef> out) override {
    if (done_) return size_t{0};
    table::VolumeTable volumes(rdb_);
    Status s = volumes.ListPage(svm_, after_, std::min(out.size(), page_), &rows_, false);
    if (!s.ok()) {
      return Status(ErrorCode::kEncryptionStatusUnavailable,
                    "cannot read the volume table: " + s.ToString());
    }
    if (rows_.empty()) {
      done_ = true;
      return size_t{0};
    }
    for (size_t i = 0; i < rows_.size(); ++i) {
      out[i].id = VolumeIdentity{rows_[i].uuid, rows_[i].svm, rows_[i].dsid};
      out[i].path = rows_[i].metadata_path;
    }
    after_ = rows_.back().id;
    return rows_.size();
  }

 private:
  table::Rdb& rdb_;
  Uuid svm_;
  size_t page_;
  int64_t after_ = 0;
  bool done_ = false;
  std::vector<table::VolumeRow> rows_;
};

// How a body ended, before RunJob records it (temporary shape, replaced by rekey_job.h).
struct BodyEnd {
  bool stopped = false;
  Status status;
  bool recorded = false;
};

BodyEnd Stopped() {
  BodyEnd out;
  out.stopped = true;
  return out;
}

BodyEnd Recorded(Status status) {
  BodyEnd out;
  out.status = std::move(status);
  out.recorded = true;
  return out;
}

BodyEnd Finish(Status status) {
  BodyEnd out;
  out.status = std::move(status);
  return out;
}

// After phase 3 a failure goes through RecordRekeyFailure: the pending and active
// SVM-KEKs stay, the key store returns to active (new keys under g are safe: g stays
// held), and a rerun adopts the pending key.
BodyEnd FailAfterPending(JobContext& ctx, const Uuid& config, const Status& status) {
  table::SvmKekTable keks(ctx.rdb());
  Status rec = keks.RecordRekeyFailure(config, KeyStoreState::kActive, ctx.uuid(),
                                       status.numeric_code(), status.ToString());
  if (!rec.ok()) {
    LogErr("job " + ctx.uuid().ToString() + ": cannot record failure: " + rec.ToString());
    return Finish(status);
  }
  return Recorded(status);
}

BodyEnd RunRekey(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                    const JobRequest& req) {
  KeyTable& kt = keys.key_table();
  // Phase 1: prechecks again (a resumed job skipped the bus-side ones).
  Status s = ctx.SetPhase(table::kPhasePrechecks, "checking the key store and volumes");
  if (!s.ok()) return Finish(s);
  Uuid svm;
  s = RekeyPrechecks(ctx.rdb(), req.config, /*resuming=*/true, &svm);
  if (!s.ok()) return Finish(s);
  table::SvmKekTable keks(ctx.rdb());
  auto active = keks.GetActive(svm);
  if (!active.ok()) return Finish(active.status());
  const uint64_t g = active->generation;
  // A resumed job (or a rerun) finds the pending g+1 stored and the key store in
  // svm_kek_rekey already: a failure before the rewrap must then also go through
  // RecordRekeyFailure, or the key store stays in svm_kek_rekey with no job running and
  // every rerun is refused with 8 (found by tests/reliability: a restart while Barbican
  // was unreachable).
  auto pending = keks.GetPending(svm);
  const bool had_pending = pending.ok();
  auto fail_early = [&](const Status& status) {
    return had_pending ? FailAfterPending(ctx, req.config, status) : Finish(status);
  };

  // Phase 2: fetch the external key, unwrap the current SVM-KEK (g).
  s = ctx.SetPhase(table::kPhaseUnwrapCurrent, "unwrapping SVM-KEK generation " + std::to_string(g));
  if (!s.ok()) return fail_early(s);
  auto old_kek = keys.OpenSvmKek(ctx.rdb(), req.config, *active);
  if (!old_kek.ok()) return fail_early(old_kek.status());
  struct Release {
    KeyTable& kt;
    KeyHandle h;
    ~Release() {
      if (h.valid()) kt.Release(h).IgnoreError();
    }
  } release_old{kt, *old_kek};

  // Phase 3: generation g+1, wrapped and stored pending with the key store in
  // svm_kek_rekey, in one transaction, before any blob is written. A rerun after a
  // failure or crash adopts the pending key instead (blobs may already use it).
  KeyHandle new_kek;
  if (pending.ok()) {
    if (pending->generation != g + 1) {
      return fail_early(Status(ErrorCode::kSvmKekUnwrapFailed,
                         "pending SVM-KEK generation " + std::to_string(pending->generation) +
                             " does not follow active generation " + std::to_string(g)));
    }
    auto opened = keys.OpenSvmKek(ctx.rdb(), req.config, *pending);
    if (!opened.ok()) return fail_early(opened.status());
    new_kek = *opened;
    s = keks.AdoptPending(svm, req.config, ctx.uuid());
    if (!s.ok()) {
      kt.Release(new_kek).IgnoreError();
      return fail_early(s);
    }
    LogInfo("job " + ctx.uuid().ToString() + ": adopted pending SVM-KEK generation " +
            std::to_string(g + 1));
  } else if (pending.status().code() == ErrorCode::kEntryNotFound) {
    auto fresh = kt.Generate();
    if (!fresh.ok()) return Finish(Status(ErrorCode::kSvmKeyGenerationFailed, fresh.status().message()));
    new_kek = *fresh;
    table::SvmKekRow row;
    row.svm = svm;
    row.generation = g + 1;
    row.state = table::SvmKekState::kPending;
    auto wrapped = keys.WrapSvmKek(ctx.rdb(), req.config, svm, g + 1, new_kek, &row.key_id);
    if (!wrapped.ok()) {
      kt.Release(new_kek).IgnoreError();
      return Finish(wrapped.status());
    }
    row.wrapped = *wrapped;
    // COMMIT POINT: pending g+1 durable, key store svm_kek_rekey, job phase 3. Before:
    // nothing changed. After: blobs may be sealed under g+1, which the table holds.
    s = keks.BeginRekey(row, req.config, ctx.uuid());
    if (!s.ok()) {
      kt.Release(new_kek).IgnoreError();
      return Finish(s);
    }
  } else {
    return Finish(pending.status());
  }
  struct ReleaseNew {
    KeyTable& kt;
    KeyHandle h;
    bool keep = false;
    ~ReleaseNew() {
      if (!keep && h.valid()) kt.Release(h).IgnoreError();
    }
  } release_new{kt, new_kek};
  const std::string phase3 = "SVM-KEK generation " + std::to_string(g + 1) + " stored pending";
  ctx.PublishPhase(table::kPhaseStorePending, phase3);

  // Phase 4: rewrap every volume blob (resumable; progress in the job row).
  table::VolumeTable volumes(ctx.rdb());
  auto total = volumes.Count(svm);
  if (!total.ok()) return FailAfterPending(ctx, req.config, total.status());
  s = ctx.SetPhase(table::kPhaseRewrap, "rewrapping " + std::to_string(*total) + " volumes");
  if (!s.ok()) return FailAfterPending(ctx, req.config, s);
  std::string note;
  auto io = MakeFileIo(settings.io_mode, &note);
  if (!io.ok()) return FailAfterPending(ctx, req.config, io.status());
  if (!note.empty()) LogWarning(note);

  uint64_t failed = 0;
  Status first_failure;
  std::string first_failed_volume;
  Status table_error;
  std::vector<table::VolumeBlobUpdate> updates;
  updates.reserve(settings.batch_size);
  std::chrono::steady_clock::duration table_time{}, progress_time{};
  const auto rewrap_start = std::chrono::steady_clock::now();
  TableVolumeSource source(ctx.rdb(), svm, settings.batch_size);
  RewrapOptions options;
  options.batch_size = settings.batch_size;
  options.threads = settings.rewrap_threads;
  options.make_io = [mode = settings.io_mode]() { return MakeFileIo(mode); };
  RewrapKeys rk{*old_kek, g, new_kek, g + 1};
  // With several rewrap threads this callback (and the source) still runs one call at a
  // time, under the engine's lock, on whichever thread finished the batch.
  auto counters = RewrapVolumes(**io, kt, rk, source, options, [&](const RewrapBatchReport& r) {
    updates.clear();
    for (size_t i = 0; i < r.volumes.size(); ++i) {
      const RewrapVolumeResult& res = r.results[i];
      if (res.outcome == RewrapOutcome::kFailed) {
        if (failed++ == 0) {
          first_failure = res.status;
          first_failed_volume = r.volumes[i].id.volume.ToString() + " (" + r.volumes[i].path + ")";
        }
        continue;
      }
      updates.push_back({r.volumes[i].id.volume, g + 1, res.blob});
    }
    // The batch's slots are durable (RewrapVolumes syncs before calling us); now the
    // table's copies follow.
    const auto t0 = std::chrono::steady_clock::now();
    Status u = volumes.UpdateBlobs(updates);
    const auto t1 = std::chrono::steady_clock::now();
    if (u.ok()) u = ctx.SetProgress(r.counters.rewrapped + r.counters.already_current, *total);
    table_time += t1 - t0;
    progress_time += std::chrono::steady_clock::now() - t1;
    if (!u.ok()) {
      table_error = u;
      return false;
    }
    if (settings.batch_pause.count() > 0 && !ctx.stop_requested()) {
      std::this_thread::sleep_for(settings.batch_pause);
    }
    return !ctx.stop_requested();
  });
  {
    // Where the rewrap phase spent its time (the table's share is the daemon's overhead
    // over the engine alone).
    auto secs = [](auto d) { return std::to_string(std::chrono::duration<double>(d).count()); };
    LogInfo("job " + ctx.uuid().ToString() + ": rewrap phase took " +
            secs(std::chrono::steady_clock::now() - rewrap_start) + " s; blob copies in the table " +
            secs(table_time) + " s, progress records " + secs(progress_time) + " s");
  }
  if (!counters.ok()) return FailAfterPending(ctx, req.config, counters.status());
  if (!table_error.ok()) return FailAfterPending(ctx, req.config, table_error);
  if (counters->stopped) return Stopped();
  if (failed > 0) {
    return FailAfterPending(
        ctx, req.config,
        Status(first_failure.code(),
               std::to_string(failed) + " of " + std::to_string(counters->total) +
                   " volumes could not be rewrapped; first: volume " + first_failed_volume + ": " +
                   first_failure.message() +
                   ". SVM-KEK generations " + std::to_string(g) + " and " + std::to_string(g + 1) +
                   " are both kept; run rekey-internal again after repairing the volume"));
  }
  LogInfo("job " + ctx.uuid().ToString() + ": rewrapped " + std::to_string(counters->rewrapped) +
          ", already current " + std::to_string(counters->already_current));

  // Phase 5: durability barrier. RewrapVolumes made every batch's slots durable before
  // its progress callback ran, so nothing written is unsynced here; the phase is
  // recorded so a crash log shows the rewrap finished.
  s = ctx.SetPhase(table::kPhaseDurability, "making every rewrapped blob durable");
  if (!s.ok()) return FailAfterPending(ctx, req.config, s);

  // Phase 6: commit — g+1 active, g retired, key store active, job success, in one txn.
  // COMMIT POINT: before it, g is active and g+1 pending (both held: every blob opens);
  // after it, g+1 is active and g retired (still held for old snapshots of blobs).
  s = keks.CommitRekey(svm, g + 1, req.config, ctx.uuid());
  if (!s.ok()) return FailAfterPending(ctx, req.config, s);

  // Phase 7: install g+1 in the key table, drop g (restore-style: a restart opens it
  // again from the table on first use).
  release_new.keep = true;
  keys.Install(svm, g + 1, new_kek);
  ctx.PublishPhase(table::kPhaseInstall, "");
  LogNotice("rekey-internal of SVM " + svm.ToString() + " committed: SVM-KEK generation " +
            std::to_string(g) + " -> " + std::to_string(g + 1) + ", " +
            std::to_string(counters->total) + " volumes");
  return Recorded(Status::Ok());
}

BodyEnd RunRestore(JobContext& ctx, KeyService& keys, const JobRequest& req) {
  Status s = ctx.SetPhase(table::kPhaseUnwrapCurrent, "fetching and unwrapping the active SVM-KEK");
  if (!s.ok()) return Finish(s);
  table::KeyStoreTable stores(ctx.rdb());
  auto enabled = stores.GetEnabledKeyStore(req.svm);
  if (!enabled.ok()) return Finish(enabled.status());
  if (!enabled->has_value() || !((*enabled)->uuid == req.config)) {
    return Finish(Status(ErrorCode::kBarbicanNotConfigured,
                       "configuration " + req.config.ToString() + " is not enabled"));
  }
  table::SvmKekTable keks(ctx.rdb());
  auto active = keks.GetActive(req.svm);
  if (!active.ok()) {
    return Finish(Status(ErrorCode::kSvmKekRestoreFailed, "no active SVM-KEK: " + active.status().message()));
  }
  auto handle = keys.OpenSvmKek(ctx.rdb(), req.config, *active);
  if (!handle.ok()) {
    const ErrorCode c = handle.status().code();
    if (c == ErrorCode::kDecryptFailed || c == ErrorCode::kSvmKekUnwrapFailed) {
      return Finish(Status(ErrorCode::kSvmKekRestoreFailed, handle.status().ToString()));
    }
    return Finish(handle.status());
  }
  keys.Install(req.svm, active->generation, *handle);
  LogInfo("restored SVM-KEK generation " + std::to_string(active->generation) + " of SVM " +
          req.svm.ToString());
  return Finish(Status::Ok());
}

BodyEnd RunVerify(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                     const JobRequest& req) {
  Status s = ctx.SetPhase(table::kPhaseUnwrapCurrent, "opening the SVM-KEKs");
  if (!s.ok()) return Finish(s);
  auto installed = keys.ActiveSvmKek(ctx.rdb(), req.svm);
  if (!installed.ok()) return Finish(installed.status());
  KeyRing ring;
  ring.Add(installed->generation, installed->handle);
  table::VolumeTable volumes(ctx.rdb());
  auto total = volumes.Count(req.svm);
  if (!total.ok()) return Finish(total.status());
  s = ctx.SetPhase(table::kPhaseRewrap, "verifying " + std::to_string(*total) + " volumes");
  if (!s.ok()) return Finish(s);
  std::string note;
  auto io = MakeFileIo(settings.io_mode, &note);
  if (!io.ok()) return Finish(io.status());
  TableVolumeSource source(ctx.rdb(), req.svm, settings.batch_size);
  std::vector<VolumeRef> refs(settings.batch_size);
  std::vector<OpenResult> results(settings.batch_size);
  uint64_t done = 0, failed = 0;
  Status first;
  std::string first_volume;
  for (;;) {
    auto n = source.Next(refs);
    if (!n.ok()) return Finish(n.status());
    if (*n == 0) break;
    std::span<const VolumeRef> page(refs.data(), *n);
    s = VerifyVolumes(**io, keys.key_table(), ring, page, std::span(results.data(), *n));
    if (!s.ok()) return Finish(s);
    for (size_t i = 0; i < *n; ++i) {
      if (results[i].status.ok() && results[i].generation == installed->generation) continue;
      if (failed++ == 0) {
        first = results[i].status.ok()
                    ? Status(ErrorCode::kSvmKekUnwrapFailed, "blob is at generation " +
                                                                 std::to_string(results[i].generation))
                    : results[i].status;
        first_volume = refs[i].id.volume.ToString();
      }
    }
    done += *n;
    s = ctx.SetProgress(done, *total);
    if (!s.ok()) return Finish(s);
    if (ctx.stop_requested()) return Stopped();
  }
  const std::string summary = std::to_string(done) + " volumes verified, " +
                              std::to_string(failed) + " failed";
  if (failed > 0) {
    return Finish(Status(first.code(), summary + "; first: volume " + first_volume + ": " + first.message()));
  }
  table::JobTable jobs(ctx.rdb());
  Status rec = jobs.Finish(ctx.uuid(), 0, summary);
  if (!rec.ok()) return Finish(rec);
  return Recorded(Status::Ok());
}

}  // namespace

std::string EncodeJobRequest(const JobRequest& request) {
  nlohmann::json j;
  j["kind"] = KindName(request.kind);
  j["svm"] = request.svm.ToString();
  j["config"] = request.config.ToString();
  return j.dump();
}

Result<JobRequest> DecodeJobRequest(const std::string& text) {
  auto bad = [&] {
    return Status(ErrorCode::kEncryptionStatusUnavailable, "job parameters are not understood");
  };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("kind") || !j["kind"].is_string() ||
      !j.contains("svm") || !j["svm"].is_string() || !j.contains("config") || !j["config"].is_string()) {
    return bad();
  }
  JobRequest out;
  const std::string kind = j["kind"];
  if (kind == "rekey-internal") out.kind = JobKind::kRekeyInternal;
  else if (kind == "restore") out.kind = JobKind::kRestore;
  else if (kind == "verify") out.kind = JobKind::kVerify;
  else return bad();
  auto svm = Uuid::Parse(j["svm"].get<std::string>());
  auto config = Uuid::Parse(j["config"].get<std::string>());
  if (!svm || !config) return bad();
  out.svm = *svm;
  out.config = *config;
  return out;
}

std::string Describe(const JobRequest& request, const std::string& svm_name) {
  return std::string(KindName(request.kind)) + " of SVM " + svm_name;
}

JobOutcome RunJob(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                  const JobRequest& request) {
  BodyEnd end;
  switch (request.kind) {
    case JobKind::kRekeyInternal: end = RunRekey(ctx, keys, settings, request); break;
    case JobKind::kRestore: end = RunRestore(ctx, keys, request); break;
    case JobKind::kVerify: end = RunVerify(ctx, keys, settings, request); break;
    default: end = Finish(Status(ErrorCode::kUnexpectedException, "unknown job kind"));
  }
  if (end.stopped) return JobOutcome::Interrupted();
  if (!end.recorded) {
    table::JobTable jobs(ctx.rdb());
    const Status& s = end.status;
    Status rec = jobs.Finish(ctx.uuid(), s.numeric_code(), s.ok() ? "" : s.ToString());
    if (!rec.ok()) LogErr("job " + ctx.uuid().ToString() + ": cannot record the end: " + rec.ToString());
  }
  return JobOutcome::Finished(end.status);
}

}  // namespace svmkey::daemon
