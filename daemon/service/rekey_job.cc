#include "daemon/service/rekey_job.h"

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/core/log.h"
#include "daemon/service/jobs.h"
#include "daemon/service/prechecks.h"
#include "daemon/service/table_volume_source.h"
#include "daemon/table/job_table.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/svm_kek_table.h"
#include "daemon/table/volume_table.h"
#include "engine/rewrap.h"

namespace svmkey::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// A key-table handle owned by one scope: released when the guard goes, unless handed on
// with Take().
class KeyGuard {
 public:
  explicit KeyGuard(KeyTable& kt) : kt_(kt) {}
  KeyGuard(const KeyGuard&) = delete;
  KeyGuard& operator=(const KeyGuard&) = delete;
  ~KeyGuard() { Reset(KeyHandle{}); }

  void Reset(KeyHandle handle) {
    if (handle_.valid()) kt_.Release(handle_).IgnoreError();
    handle_ = handle;
  }
  KeyHandle get() const { return handle_; }
  KeyHandle Take() {
    const KeyHandle out = handle_;
    handle_ = KeyHandle{};
    return out;
  }

 private:
  KeyTable& kt_;
  KeyHandle handle_;
};

// One run of the job: what the phases learn and hold, passed from one to the next.
struct RekeyRun {
  RekeyRun(JobContext& c, KeyService& k, const JobSettings& s, const Uuid& cfg)
      : ctx(c), keys(k), settings(s), config(cfg), old_kek(k.key_table()), new_kek(k.key_table()) {}

  JobContext& ctx;
  KeyService& keys;
  const JobSettings& settings;
  const Uuid config;
  Uuid svm;
  uint64_t g = 0;                           // the active generation at the start
  std::optional<table::SvmKekRow> active;
  std::optional<table::SvmKekRow> pending;  // g+1 stored by a previous run
  bool pending_stored = false;              // decides who records a failure
  bool interrupted = false;                 // stopped at a batch boundary
  uint64_t volumes = 0;
  KeyGuard old_kek;
  KeyGuard new_kek;
};

std::string Gen(uint64_t g) { return std::to_string(g); }

// Phase 1.
Status CheckPhase(RekeyRun& run) {
  SVMKEY_RETURN_IF_ERROR(
      run.ctx.SetPhase(table::kPhasePrechecks, "checking the key store and volumes"));
  SVMKEY_RETURN_IF_ERROR(RekeyPrechecks(run.ctx.rdb(), run.config, /*resuming=*/true, &run.svm));
  table::SvmKekTable keks(run.ctx.rdb());
  auto active = keks.GetActive(run.svm);
  if (!active.ok()) return active.status();
  run.active = *active;
  run.g = active->generation;
  auto pending = keks.GetPending(run.svm);
  if (pending.ok()) {
    run.pending = *pending;
    run.pending_stored = true;
  } else if (pending.status().code() != ErrorCode::kEntryNotFound) {
    return pending.status();
  }
  return Status::Ok();
}

// Phase 2.
Status UnwrapCurrentPhase(RekeyRun& run) {
  SVMKEY_RETURN_IF_ERROR(
      run.ctx.SetPhase(table::kPhaseUnwrapCurrent, "unwrapping SVM-KEK generation " + Gen(run.g)));
  auto kek = run.keys.OpenSvmKek(run.ctx.rdb(), run.config, *run.active);
  if (!kek.ok()) return kek.status();
  run.old_kek.Reset(*kek);
  return Status::Ok();
}

// Phase 3, rerun: the pending g+1 a previous run stored is the new key (blobs may
// already be sealed under it).
Status AdoptPendingKek(RekeyRun& run) {
  if (run.pending->generation != run.g + 1) {
    return Status(ErrorCode::kSvmKekUnwrapFailed,
                  "pending SVM-KEK generation " + Gen(run.pending->generation) +
                      " does not follow active generation " + Gen(run.g));
  }
  auto opened = run.keys.OpenSvmKek(run.ctx.rdb(), run.config, *run.pending);
  if (!opened.ok()) return opened.status();
  run.new_kek.Reset(*opened);
  table::SvmKekTable keks(run.ctx.rdb());
  SVMKEY_RETURN_IF_ERROR(keks.AdoptPending(run.svm, run.config, run.ctx.uuid()));
  LogInfo("job " + run.ctx.uuid().ToString() + ": adopted pending SVM-KEK generation " +
          Gen(run.g + 1));
  return Status::Ok();
}

// Phase 3, first run: a fresh g+1, wrapped and stored pending.
Status StoreNewPendingKek(RekeyRun& run) {
  auto fresh = run.keys.key_table().Generate();
  if (!fresh.ok()) return Status(ErrorCode::kSvmKeyGenerationFailed, fresh.status().message());
  run.new_kek.Reset(*fresh);
  table::SvmKekRow row;
  row.svm = run.svm;
  row.generation = run.g + 1;
  row.state = table::SvmKekState::kPending;
  auto wrapped = run.keys.WrapSvmKek(run.ctx.rdb(), run.config, run.svm, run.g + 1,
                                     run.new_kek.get(), &row.key_id);
  if (!wrapped.ok()) return wrapped.status();
  row.wrapped = *wrapped;
  // COMMIT POINT: pending g+1 durable, key store svm_kek_rekey, job phase 3, in one
  // transaction. Before: nothing changed. After: blobs may be sealed under g+1, which
  // the table holds.
  table::SvmKekTable keks(run.ctx.rdb());
  SVMKEY_RETURN_IF_ERROR(keks.BeginRekey(row, run.config, run.ctx.uuid()));
  run.pending_stored = true;
  return Status::Ok();
}

// Phase 3.
Status StorePendingPhase(RekeyRun& run) {
  SVMKEY_RETURN_IF_ERROR(run.pending ? AdoptPendingKek(run) : StoreNewPendingKek(run));
  run.ctx.PublishPhase(table::kPhaseStorePending,
                       "SVM-KEK generation " + Gen(run.g + 1) + " stored pending");
  return Status::Ok();
}

// The rewrap phase's running account, fed one batch at a time by the engine.
struct RewrapTally {
  uint64_t total = 0;  // volumes of the SVM in the table
  uint64_t failed = 0;
  Status first_failure;
  std::string first_failed_volume;
  Status table_error;
  std::vector<table::VolumeBlobUpdate> updates;
  Clock::duration table_time{};
  Clock::duration progress_time{};
};

// Records one batch the engine made durable: the table's blob copies follow the files,
// then the progress. False ends the run: a table error, or a stop request at this batch
// boundary.
bool RecordBatch(RekeyRun& run, table::VolumeTable& volumes, RewrapTally& t,
                 const RewrapBatchReport& r) {
  t.updates.clear();
  for (size_t i = 0; i < r.volumes.size(); ++i) {
    const RewrapVolumeResult& res = r.results[i];
    if (res.outcome == RewrapOutcome::kFailed) {
      // A resource failure (7) names the job's error even when a damaged volume came
      // first: the operator must fix the host before a rerun can tell anything else.
      if (t.failed++ == 0 || (res.status.code() == ErrorCode::kResourceLimit &&
                              t.first_failure.code() != ErrorCode::kResourceLimit)) {
        t.first_failure = res.status;
        t.first_failed_volume = r.volumes[i].id.volume.ToString() + " (" + r.volumes[i].path + ")";
      }
      continue;
    }
    t.updates.push_back({r.volumes[i].id.volume, run.g + 1, res.blob});
  }
  const auto t0 = Clock::now();
  Status s = volumes.UpdateBlobs(t.updates);
  const auto t1 = Clock::now();
  if (s.ok()) s = run.ctx.SetProgress(r.counters.rewrapped + r.counters.already_current, t.total);
  t.table_time += t1 - t0;
  t.progress_time += Clock::now() - t1;
  if (!s.ok()) {
    t.table_error = s;
    return false;
  }
  if (run.settings.batch_pause.count() > 0 && !run.ctx.stop_requested()) {
    std::this_thread::sleep_for(run.settings.batch_pause);
  }
  return !run.ctx.stop_requested();
}

// Where the rewrap phase spent its time (the table's share is the daemon's overhead over
// the engine alone).
void LogRewrapTimes(const RekeyRun& run, const RewrapTally& t, Clock::duration whole) {
  auto secs = [](auto d) { return std::to_string(std::chrono::duration<double>(d).count()); };
  LogInfo("job " + run.ctx.uuid().ToString() + ": rewrap phase took " + secs(whole) +
          " s; blob copies in the table " + secs(t.table_time) + " s, progress records " +
          secs(t.progress_time) + " s");
}

Status VolumeFailures(const RekeyRun& run, const RewrapTally& t, uint64_t total) {
  return Status(t.first_failure.code(),
                std::to_string(t.failed) + " of " + std::to_string(total) +
                    " volumes could not be rewrapped; first: volume " + t.first_failed_volume +
                    ": " + t.first_failure.message() + ". SVM-KEK generations " + Gen(run.g) +
                    " and " + Gen(run.g + 1) +
                    " are both kept; run rekey-internal again after " +
                    (t.first_failure.code() == ErrorCode::kResourceLimit
                         ? "freeing the resource"
                         : "repairing the volume"));
}

// Phase 4.
Status RewrapPhase(RekeyRun& run) {
  table::VolumeTable volumes(run.ctx.rdb());
  RewrapTally tally;
  auto total = volumes.Count(run.svm);
  if (!total.ok()) return total.status();
  tally.total = *total;
  SVMKEY_RETURN_IF_ERROR(
      run.ctx.SetPhase(table::kPhaseRewrap, "rewrapping " + std::to_string(*total) + " volumes"));
  std::string note;
  auto io = MakeJobFileIo(run.settings, &note);
  if (!io.ok()) return io.status();
  if (!note.empty()) LogWarning(note);
  tally.updates.reserve(run.settings.batch_size);
  TableVolumeSource source(run.ctx.rdb(), run.svm, run.settings.batch_size);
  RewrapOptions options;
  options.batch_size = run.settings.batch_size;
  options.threads = run.settings.rewrap_threads;
  options.make_io = [&settings = run.settings] { return MakeJobFileIo(settings); };
  options.roots = run.settings.volume_roots;
  const RewrapKeys rk{run.old_kek.get(), run.g, run.new_kek.get(), run.g + 1};
  const auto start = Clock::now();
  // With several rewrap threads the callback (and the source) still runs one call at a
  // time, under the engine's lock, on whichever thread finished the batch.
  auto counters = RewrapVolumes(**io, run.keys.key_table(), rk, source, options,
                                [&](const RewrapBatchReport& r) {
                                  return RecordBatch(run, volumes, tally, r);
                                });
  LogRewrapTimes(run, tally, Clock::now() - start);
  if (!counters.ok()) return counters.status();
  if (!tally.table_error.ok()) return tally.table_error;
  run.interrupted = counters->stopped;
  if (run.interrupted) return Status::Ok();
  if (tally.failed > 0) return VolumeFailures(run, tally, counters->total);
  run.volumes = counters->total;
  LogInfo("job " + run.ctx.uuid().ToString() + ": rewrapped " +
          std::to_string(counters->rewrapped) + ", already current " +
          std::to_string(counters->already_current));
  return Status::Ok();
}

// Phase 5: RewrapVolumes made every batch's slots durable before its progress callback
// ran, so nothing written is unsynced here; the phase is recorded so a crash log shows
// the rewrap finished.
Status DurabilityPhase(RekeyRun& run) {
  return run.ctx.SetPhase(table::kPhaseDurability, "making every rewrapped blob durable");
}

// Phase 6. This transaction also records the job's success: the commit phase is the
// writer of a successful rekey's final state.
Status CommitPhase(RekeyRun& run) {
  // COMMIT POINT: g+1 active, g retired, key store active, job success, in one
  // transaction. Before it, g is active and g+1 pending (both held: every blob opens);
  // after it, g+1 is active and g retired (still held for old snapshots of blobs).
  table::SvmKekTable keks(run.ctx.rdb());
  return keks.CommitRekey(run.svm, run.g + 1, run.config, run.ctx.uuid());
}

// Phase 7: g+1 installed in the key table in place of g (restore-style: a restart opens
// it again from the table on first use). Cannot fail.
void InstallPhase(RekeyRun& run) {
  run.keys.Install(run.svm, run.g + 1, run.new_kek.Take());
  run.ctx.PublishPhase(table::kPhaseInstall, "");
  LogNotice("rekey-internal of SVM " + run.svm.ToString() + " committed: SVM-KEK generation " +
            Gen(run.g) + " -> " + Gen(run.g + 1) + ", " + std::to_string(run.volumes) +
            " volumes");
}

// True when the run is asked to stop before its next phase (a pause or cancel of a
// paused job runs the body with the request already made; it stops after the prechecks,
// which tell whether a pending key is stored and so who records a cancel).
bool StopsHere(RekeyRun& run) {
  run.interrupted = run.interrupted || run.ctx.stop_requested();
  return run.interrupted;
}

// The phases in order; the first failure ends the run. OK with run.interrupted set when
// the run stopped at a phase or batch boundary.
Status RunPhases(RekeyRun& run) {
  SVMKEY_RETURN_IF_ERROR(CheckPhase(run));
  if (StopsHere(run)) return Status::Ok();
  SVMKEY_RETURN_IF_ERROR(UnwrapCurrentPhase(run));
  if (StopsHere(run)) return Status::Ok();
  SVMKEY_RETURN_IF_ERROR(StorePendingPhase(run));
  if (StopsHere(run)) return Status::Ok();
  SVMKEY_RETURN_IF_ERROR(RewrapPhase(run));
  if (run.interrupted) return Status::Ok();
  SVMKEY_RETURN_IF_ERROR(DurabilityPhase(run));
  // From here on the job refuses Pause and Cancel; one asked before still stops it.
  if (run.ctx.BeginUnstoppable() != StopReason::kNone) {
    run.interrupted = true;
    return Status::Ok();
  }
  SVMKEY_RETURN_IF_ERROR(CommitPhase(run));
  InstallPhase(run);
  return Status::Ok();
}

// The failure a cancel records: what it leaves depends on whether a pending key exists.
Status Canceled(const RekeyRun& run) {
  if (!run.pending_stored) return CanceledStatus("canceled before a new SVM-KEK was stored");
  return CanceledStatus("canceled before the commit; SVM-KEK generations " + Gen(run.g) +
                        " and " + Gen(run.g + 1) +
                        " are both kept; run rekey-internal again to complete the rotation");
}

// The one writer of a failed rekey's final state (rekey_job.h states the rule); a cancel
// is recorded as a failure.
JobOutcome RecordOutcome(RekeyRun& run, const Status& result) {
  const StopReason why = run.interrupted ? run.ctx.ConfirmStop() : StopReason::kNone;
  const bool canceled = why == StopReason::kCancel;
  if (run.interrupted && !canceled) return JobOutcome::Interrupted(why);
  const Status status = canceled ? Canceled(run) : result;
  if (status.ok()) return JobOutcome::Finished(status);  // written by CommitPhase
  if (run.pending_stored) {
    table::SvmKekTable keks(run.ctx.rdb());
    Status rec = keks.RecordRekeyFailure(run.config, table::KeyStoreState::kActive,
                                         run.ctx.uuid(), status.numeric_code(), status.ToString());
    if (rec.ok()) return JobOutcome::Finished(status);
    // Recording the job's end alone would leave the key store in svm_kek_rekey with no
    // job behind it (new keys and reruns refused with 8). The row stays running, and the
    // job manager records the whole failure once the table takes writes
    // (RecordUnrecordedRekeyFailure).
    LogErr("job " + run.ctx.uuid().ToString() + ": cannot record the rekey failure (" +
           rec.ToString() + ")");
    return JobOutcome::Finished(status);
  }
  return FinishJob(run.ctx, status);
}

}  // namespace

Status RecordUnrecordedRekeyFailure(JobContext& ctx, const JobRequest& request,
                                    const Status& failure) {
  auto config = table::KeyStoreTable(ctx.rdb()).GetBarbicanConfig(request.config);
  if (!config.ok() && config.status().code() != ErrorCode::kEntryNotFound) {
    return config.status();
  }
  if (config.ok() && config->key_store.state == table::KeyStoreState::kSvmKekRekey) {
    // One job per SVM: the key store is in svm_kek_rekey for this job's pending key.
    return table::SvmKekTable(ctx.rdb()).RecordRekeyFailure(
        request.config, table::KeyStoreState::kActive, ctx.uuid(), failure.numeric_code(),
        failure.ToString());
  }
  return table::JobTable(ctx.rdb()).Finish(ctx.uuid(), failure.numeric_code(), failure.ToString());
}

JobOutcome RunRekey(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                    const JobRequest& request) {
  RekeyRun run(ctx, keys, settings, request.config);
  const Status status = RunPhases(run);
  return RecordOutcome(run, status);
}

}  // namespace svmkey::daemon
