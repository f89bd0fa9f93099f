// Batched VDEK rewrap (see rewrap.h for the contract).
//
//   per batch of B volumes (one Execute per phase through VolumeBatch, so io_uring keeps
//   many in flight):
//     open  ──▶ read 4096 (+slack) ──▶ CPU: decode, open under g, seal under g+1
//       ──▶ write ONE 512-byte sector (the non-current slot) ──▶ durability
//       ──▶ close ──▶ progress callback (may stop here)
//
// Everything sized by the batch is allocated once per run: the I/O arena (read buffers
// and write sectors, registered with the ring once), the IoOp array, the AEAD contexts
// of g and g+1 (key schedule once), the VDEK scratch (one 32-byte SecureBuffer) and the
// nonce pool. The hot path allocates nothing per volume; only a failing volume
// allocates, for its error message.
//
// Choices, measured with tests/engine/rw_rewrap_bench and svmkey-bench (numbers in
// docs/BENCH.md):
//   - durability: one syncfs per batch (kSyncFsPerBatch) is the default; a per-file
//     fdatasync pays a disk flush per volume.
//   - batch size and threads: rewrap.h (kServiceRewrapBatch, kServiceRewrapThreads).
//   - queue depth: uring_file_io.h.
//   With a warm cache io_uring and sync I/O run alike (the ops complete inline);
//   io_uring wins where requests block: per-file fdatasync and cold-cache reads.
//   Per-volume CPU is mostly the four BLAKE2b sector checksums of decode + encode, not
//   the AES-GCM work.
//
// Failure grading (LUKS2 style), per volume:
//   - before the write: nothing changed; the volume still opens under g.
//   - write failed or torn: only the non-current slot is affected; the current slot
//     (under g) is intact and is still the current one (a torn slot fails its checksum).
//   - written but the batch's durability step failed: reported failed (65537565). The
//     slot may or may not reach the disk; either way the volume opens under g or g+1,
//     and a rerun makes it current under g+1 (or finds it already there).
// A failed syncfs does NOT stop the run: later batches are independent, every outcome is
// reported per volume, and the caller (the daemon) refuses to commit g+1 while any
// volume failed. A rerun resumes: volumes already at g+1 are skipped.
#include "rewrap.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "aead.h"
#include "secure_memory.h"
#include "volume_batch.h"
#include "volume_metadata.h"

namespace svmkey {
namespace {

// Read 512 bytes past the 4096 so an oversized file shows up in the same request.
constexpr size_t kReadStride = kMetadataFileSize + kSectorSize;
// Caps the arena at 65536 × 4.5 KiB ≈ 288 MiB.
constexpr size_t kMaxBatch = 65536;
constexpr size_t kMaxThreads = 16;

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};

std::string_view DirOf(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view(".") : path.substr(0, slash + 1);
}

// What the threads of one run share: the source, the progress callback, the counters
// and the stop decision, all behind one lock.
class Coordinator {
 public:
  Coordinator(VolumeSource& source, const RewrapProgress& progress)
      : source_(source), progress_(progress) {}

  // Fills `refs` with the next batch; 0 at the end, after a stop or after a failure.
  size_t Next(std::span<VolumeRef> refs, uint64_t* first_index) {
    std::lock_guard lock(mu_);
    if (stop_) return 0;
    auto got = source_.Next(refs);
    if (!got.ok() || *got > refs.size()) {
      FailLocked(Status(ErrorCode::kEncryptionStatusUnavailable,
                        got.ok() ? std::string("volume source overfilled")
                                 : "volume source failed: " + got.status().ToString()));
      return 0;
    }
    *first_index = next_index_;
    next_index_ += *got;
    return *got;
  }

  // Counts a finished (durable) batch and reports it. Returns false once the run stops.
  bool Report(std::span<const VolumeRef> volumes, std::span<const RewrapVolumeResult> results,
              uint64_t first_index) {
    std::lock_guard lock(mu_);
    for (const RewrapVolumeResult& r : results) {
      switch (r.outcome) {
        case RewrapOutcome::kRewrapped: ++counters_.rewrapped; break;
        case RewrapOutcome::kAlreadyCurrent: ++counters_.already_current; break;
        case RewrapOutcome::kFailed: ++counters_.failed; break;
      }
    }
    counters_.total += results.size();
    if (progress_) {
      RewrapBatchReport report;
      report.first_index = first_index;
      report.volumes = volumes;
      report.results = results;
      report.counters = counters_;
      if (!progress_(report) && !stop_) {
        counters_.stopped = true;
        stop_ = true;
      }
    }
    return !stop_;
  }

  // The I/O layer broke on one thread: every thread stops at its next batch boundary.
  void Fail(Status status) {
    std::lock_guard lock(mu_);
    FailLocked(std::move(status));
  }

  Result<RewrapCounters> Finish() {
    std::lock_guard lock(mu_);
    if (!error_.ok()) return error_;
    return counters_;
  }

 private:
  void FailLocked(Status status) {
    if (error_.ok()) error_ = std::move(status);
    stop_ = true;
  }

  std::mutex mu_;
  VolumeSource& source_;
  const RewrapProgress& progress_;
  RewrapCounters counters_;
  uint64_t next_index_ = 0;
  bool stop_ = false;
  Status error_;
};

class RewrapRun {
 public:
  RewrapRun(FileIo& io, const RewrapKeys& keys, const RewrapOptions& options)
      : io_(io), keys_(keys), options_(options) {}

  ~RewrapRun() {
    if (buffers_registered_) io_.UnregisterBuffers();
  }

  Status Init(KeyTable& table) {
    if (options_.batch_size == 0 || options_.batch_size > kMaxBatch) {
      return Status(ErrorCode::kInvalidArgument,
                    "batch_size must be 1.." + std::to_string(kMaxBatch));
    }
    if (keys_.old_generation == 0 || keys_.new_generation != keys_.old_generation + 1) {
      return Status(ErrorCode::kInvalidArgument,
                    "new SVM-KEK generation must be old generation + 1");
    }
    if (keys_.old_kek == keys_.new_kek) {
      return Status(ErrorCode::kInvalidArgument, "old and new SVM-KEK are the same handle");
    }
    SVMKEY_RETURN_IF_ERROR(EngineInit());
    // Key schedules once per run, not per volume: a schedule costs about as much as
    // the AEAD operation it serves.
    auto old_ctx = AeadContext::Create(table, keys_.old_kek);
    if (!old_ctx.ok()) return old_ctx.status();
    auto new_ctx = AeadContext::Create(table, keys_.new_kek);
    if (!new_ctx.ok()) return new_ctx.status();
    old_ctx_ = std::make_unique<AeadContext>(std::move(old_ctx).value());
    new_ctx_ = std::make_unique<AeadContext>(std::move(new_ctx).value());
    auto vdek = SecureBuffer::Allocate(kKeyBytes);
    if (!vdek.ok()) return vdek.status();
    vdek_ = std::move(vdek).value();

    const size_t b = options_.batch_size;
    const size_t arena_bytes = b * kReadStride + b * kSectorSize;
    arena_.reset(static_cast<uint8_t*>(std::aligned_alloc(4096, (arena_bytes + 4095) & ~size_t{4095})));
    if (!arena_) return Status(ErrorCode::kResourceLimit, "cannot allocate the rewrap arena");
    std::memset(arena_.get(), 0, arena_bytes);
    read_base_ = arena_.get();
    write_base_ = arena_.get() + b * kReadStride;
    // One registration for the whole run; failure only costs per-request pinning.
    iovec iov{arena_.get(), arena_bytes};
    buffers_registered_ = true;
    io_.RegisterBuffers({&iov, 1}).IgnoreError();

    refs_.resize(b);
    results_.resize(b);
    target_slot_.resize(b);
    batch_ = VolumeBatch(b);
    batch_.set_roots(options_.roots);
    sync_fds_.reserve(16);
    return Status::Ok();
  }

  // Runs batches until the coordinator has no more (end, stop or failure).
  void Run(Coordinator& c) {
    for (;;) {
      uint64_t first = 0;
      const size_t n = c.Next({refs_.data(), refs_.size()}, &first);
      if (n == 0) return;
      Status s = RunBatch(n);
      if (!s.ok()) {
        c.Fail(std::move(s));
        return;
      }
      if (!c.Report({refs_.data(), n}, {results_.data(), n}, first)) return;
    }
  }

 private:
  uint8_t* ReadBuf(size_t i) { return read_base_ + i * kReadStride; }
  uint8_t* WriteBuf(size_t i) { return write_base_ + i * kSectorSize; }

  // Volume i failed: recorded in its result, and out of the batch's later phases.
  void Fail(size_t i, Status status) {
    results_[i].outcome = RewrapOutcome::kFailed;
    results_[i].status = std::move(status);
    target_slot_[i] = -1;
    batch_.Drop(i);
  }

  // The phases of one batch, one Execute each (VolumeBatch closes what the batch opened
  // when the I/O layer breaks mid-batch). A volume stays in the batch while it has a
  // sector to write and, after the write, while that sector may count as durable.
  Status RunBatch(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      results_[i].outcome = RewrapOutcome::kFailed;
      results_[i].status = Status::Ok();
      results_[i].blob.fill(0);
      target_slot_[i] = -1;
    }
    batch_.Begin(n);
    const std::span<const VolumeRef> refs(refs_.data(), n);

    // Phase 1: open every file of the batch.
    SVMKEY_RETURN_IF_ERROR(batch_.Open(io_, refs, O_RDWR, 0, [&](size_t i, int32_t err) {
      // A file that exists but may not be opened for writing (immutable, read-only file
      // system, no write permission) is a blob that cannot be updated, not a damaged one.
      const bool not_writable = err == -EPERM || err == -EACCES || err == -EROFS || err == -ETXTBSY;
      Fail(i, IoError(err, not_writable, refs_[i].path));
    }));

    // Phase 2: read each whole file (plus slack to catch an oversized one); then the CPU
    // work for the whole batch, between the I/O phases (Prepare decides what to write).
    SVMKEY_RETURN_IF_ERROR(batch_.Each(
        io_, [&](size_t i) { return IoOp::ReadToEof(batch_.fd(i), ReadBuf(i), kReadStride, 0); },
        [&](size_t i, int32_t got) {
          if (got < 0) {
            Fail(i, IoError(got, false, refs_[i].path));
            return false;
          }
          Prepare(i, static_cast<size_t>(got));
          return target_slot_[i] >= 0;
        }));

    // Phase 3: write only the non-current slot's sector.
    SVMKEY_RETURN_IF_ERROR(batch_.Each(
        io_,
        [&](size_t i) {
          return IoOp::Write(batch_.fd(i), WriteBuf(i), kSectorSize,
                             kSlotOffset[target_slot_[i]]);
        },
        [&](size_t i, int32_t got) {
          if (got == static_cast<int32_t>(kSectorSize)) return true;
          Fail(i, IoError(got < 0 ? got : -EIO, true, refs_[i].path));
          return false;
        }));

    // Phase 4: durability of every written slot, before anyone hears of it.
    if (batch_.remaining() > 0) {
      SVMKEY_RETURN_IF_ERROR(options_.durability == RewrapDurability::kFdatasyncPerFile
                                 ? SyncEachFile()
                                 : SyncFileSystems(n));
    }
    // COMMIT POINT: every slot marked kRewrapped below is durable. A crash before this
    // point leaves each volume with its current slot under g intact (the written slot
    // may be lost or torn, which only invalidates that slot); after it, the volume's
    // current slot is under g+1 and its old slot under g still holds the same VDEK.
    for (size_t i = 0; i < n; ++i) {
      if (batch_.in(i)) {
        results_[i].outcome = RewrapOutcome::kRewrapped;
        std::memcpy(results_[i].blob.data(), WriteBuf(i), kSectorSize);
      }
    }

    // Phase 5: close (see VolumeBatch::Close for why a close error is not per volume).
    return batch_.Close(io_);
  }

  // Decodes the file read into ReadBuf(i) and prepares the sector to write (or decides
  // that nothing is to be written).
  void Prepare(size_t i, size_t file_bytes) {
    auto meta = DecodeMetadataFile({ReadBuf(i), file_bytes}, &refs_[i].id);
    if (!meta.ok()) {
      Fail(i, meta.status());
      return;
    }
    int order[2];
    (void)meta->Candidates(order);  // ≥ 1: the decoder fails when no slot is valid
    const int current = order[0];
    const VdekSlot& cur = *meta->slot[current];
    // Until something durable replaces it, the current slot is the volume's blob.
    std::memcpy(results_[i].blob.data(), ReadBuf(i) + kSlotOffset[current], kSectorSize);
    const int other = 1 - current;

    if (options_.io_only) {
      // Benchmark baseline: the same I/O, no crypto. The copy keeps the sequence, so
      // the current slot stays current and the volume still opens under its generation.
      EncodeSlot(cur, other, WriteBuf(i));
      target_slot_[i] = other;
      return;
    }

    uint8_t* vdek = vdek_.data();
    if (cur.generation == keys_.new_generation) {
      // Already rewrapped (an earlier, interrupted run): confirm it opens under g+1.
      const Aad aad = VdekAad(refs_[i].id, cur.generation);
      Status s = new_ctx_->Open(cur.nonce.data(), aad, cur.wrapped.data(), kKeyBytes,
                                cur.tag.data(), vdek);
      vdek_.Wipe();
      if (!s.ok()) {
        Fail(i, Status(ErrorCode::kDecryptFailed,
                       refs_[i].path + ": current slot is at generation " +
                           std::to_string(cur.generation) + " but does not open under it"));
        return;
      }
      results_[i].outcome = RewrapOutcome::kAlreadyCurrent;
      return;
    }
    if (cur.generation != keys_.old_generation) {
      Fail(i, Status(ErrorCode::kSvmKekUnwrapFailed,
                     refs_[i].path + ": current slot generation " +
                         std::to_string(cur.generation) + " is neither " +
                         std::to_string(keys_.old_generation) + " nor " +
                         std::to_string(keys_.new_generation)));
      return;
    }
    if (cur.sequence == UINT64_MAX) {
      Fail(i, Status(ErrorCode::kInvalidEncryptionBlob, refs_[i].path + ": sequence exhausted"));
      return;
    }
    const Aad old_aad = VdekAad(refs_[i].id, keys_.old_generation);
    Status s = old_ctx_->Open(cur.nonce.data(), old_aad, cur.wrapped.data(), kKeyBytes,
                              cur.tag.data(), vdek);
    if (!s.ok()) {
      vdek_.Wipe();
      Fail(i, Status(ErrorCode::kDecryptFailed,
                     refs_[i].path + ": current slot does not open under SVM-KEK generation " +
                         std::to_string(keys_.old_generation)));
      return;
    }
    VdekSlot next;
    next.sequence = cur.sequence + 1;
    next.generation = keys_.new_generation;
    std::memcpy(next.nonce.data(), nonces_.Next(), kNonceBytes);
    const Aad new_aad = VdekAad(refs_[i].id, keys_.new_generation);
    s = new_ctx_->Seal(next.nonce.data(), new_aad, vdek, kKeyBytes, next.wrapped.data(),
                       next.tag.data());
    vdek_.Wipe();
    if (!s.ok()) {
      Fail(i, std::move(s));
      return;
    }
    EncodeSlot(next, other, WriteBuf(i));
    target_slot_[i] = other;
  }

  // One fdatasync per written file, all in flight at once.
  Status SyncEachFile() {
    return batch_.Each(
        io_, [&](size_t i) { return IoOp::Fdatasync(batch_.fd(i)); },
        [&](size_t i, int32_t rc) {
          if (rc >= 0) return true;
          Fail(i, IoError(rc, true, refs_[i].path));
          return false;
        });
  }

  // One syncfs per file system touched by the batch (normally exactly one: the volume
  // metadata root). Files in the same directory share a file system, so a stat is
  // needed only when the directory changes from one written volume to the next.
  //
  // The stat is by path (the one the volume was opened by, relative to the same
  // AT_FDCWD), not fstat on the descriptor: under io_uring the descriptor was opened and
  // will be closed by the ring, and a libc call on it is the one use of a ring-owned fd
  // outside the ring. ThreadSanitizer sees that fstat but not the ring's close, and so
  // reports the fd number's later reuse by another thread's sync I/O as a race. Same
  // device either way: the path names the file just written, in a volume root only root
  // can rename in.
  Status SyncFileSystems(size_t n) {
    sync_fds_.clear();
    std::string_view last_dir;
    bool have_last = false;
    for (size_t i = 0; i < n; ++i) {
      if (!batch_.in(i)) continue;
      const std::string_view dir = DirOf(refs_[i].path);
      if (have_last && dir == last_dir) continue;
      last_dir = dir;
      have_last = true;
      struct stat st;
      if (::stat(refs_[i].path.c_str(), &st) != 0) {
        // Renamed away mid-batch: its file system is unknown, so it gets its own syncfs
        // (a second syncfs of one file system costs little; a missing one loses data).
        sync_fds_.emplace_back(static_cast<dev_t>(-1), batch_.fd(i));
        continue;
      }
      const bool seen = std::any_of(sync_fds_.begin(), sync_fds_.end(),
                                    [&](const auto& p) { return p.first == st.st_dev; });
      if (!seen) sync_fds_.emplace_back(st.st_dev, batch_.fd(i));
    }
    int failed = 0;
    for (const auto& [dev, fd] : sync_fds_) {
      const int rc = io_.SyncFs(fd);
      if (rc < 0 && failed == 0) failed = rc;
    }
    if (failed < 0) {
      // We cannot tell which writes reached the disk: none of the batch counts as done.
      for (size_t i = 0; i < n; ++i) {
        if (batch_.in(i)) Fail(i, IoError(failed, true, refs_[i].path));
      }
    }
    return Status::Ok();
  }

  FileIo& io_;
  const RewrapKeys& keys_;
  const RewrapOptions& options_;
  std::unique_ptr<AeadContext> old_ctx_;
  std::unique_ptr<AeadContext> new_ctx_;
  SecureBuffer vdek_;
  NoncePool nonces_;
  std::unique_ptr<uint8_t, FreeDeleter> arena_;
  uint8_t* read_base_ = nullptr;
  uint8_t* write_base_ = nullptr;
  bool buffers_registered_ = false;
  std::vector<VolumeRef> refs_;
  std::vector<RewrapVolumeResult> results_;
  std::vector<int> target_slot_;  // slot index to write, -1 = nothing to write
  VolumeBatch batch_;
  std::vector<std::pair<dev_t, int>> sync_fds_;
};

}  // namespace

Result<size_t> SpanVolumeSource::Next(std::span<VolumeRef> out) {
  const size_t n = std::min(out.size(), volumes_.size() - pos_);
  for (size_t i = 0; i < n; ++i) {
    out[i].id = volumes_[pos_ + i].id;
    out[i].path.assign(volumes_[pos_ + i].path);  // reuses the string's capacity
  }
  pos_ += n;
  return n;
}

Result<RewrapCounters> RewrapVolumes(FileIo& io, KeyTable& table, const RewrapKeys& keys,
                                     VolumeSource& source, const RewrapOptions& options,
                                     const RewrapProgress& progress) {
  if (options.threads == 0 || options.threads > kMaxThreads) {
    return Status(ErrorCode::kInvalidArgument,
                  "threads must be 1.." + std::to_string(kMaxThreads));
  }
  const size_t threads = options.make_io ? options.threads : 1;
  // Every thread's FileIo and arena are set up before any batch runs, so a failure here
  // changes nothing on disk.
  std::vector<std::unique_ptr<FileIo>> extra_io;
  std::vector<std::unique_ptr<RewrapRun>> runs;
  runs.push_back(std::make_unique<RewrapRun>(io, keys, options));
  for (size_t t = 1; t < threads; ++t) {
    auto made = options.make_io();
    if (!made.ok()) return made.status();
    extra_io.push_back(std::move(made).value());
    runs.push_back(std::make_unique<RewrapRun>(*extra_io.back(), keys, options));
  }
  for (auto& run : runs) SVMKEY_RETURN_IF_ERROR(run->Init(table));

  Coordinator coordinator(source, progress);
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  for (size_t t = 1; t < threads; ++t) {
    try {
      workers.emplace_back([&coordinator, run = runs[t].get()] { run->Run(coordinator); });
    } catch (const std::system_error&) {
      break;  // no thread to be had: the threads already running do all the batches
    }
  }
  runs[0]->Run(coordinator);
  for (std::thread& w : workers) w.join();
  return coordinator.Finish();
}

}  // namespace svmkey
