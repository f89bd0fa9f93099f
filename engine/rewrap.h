// Batched VDEK rewrap: the heart of rekey-internal (docs/ARCHITECTURE.md §4).
//
// Input: the volumes of one SVM (streamed from a VolumeSource, so memory does not grow
// with N), the handle of SVM-KEK generation g and of g+1. Per volume: read the metadata
// file, pick the current slot, open it under g, seal the same VDEK under g+1 into the
// OTHER slot with sequence+1, write that one 512-byte sector, never the current one.
// A volume whose current slot is already at g+1 is skipped, so a rerun after any
// interruption finishes the work (idempotent).
//
// I/O goes through a FileIo (io_uring by default) in batches: one Execute for the opens,
// one for the reads, CPU work for the whole batch, one for the writes, one for the
// closes; durability per RewrapOptions::durability. The progress callback runs once per
// batch, AFTER every slot written in that batch is durable, and may stop the run at that
// batch boundary.
//
// Failures (implemented in rewrap.cc, which marks the COMMIT POINT):
//   - per volume, recorded in its result, the run goes on: missing file 65536883,
//     short/oversized/corrupt/foreign file 65536889 (or the decoder's code), current slot
//     under a generation other than g or g+1 65537533, tag does not verify 65539202,
//     write/fdatasync failure 65537565;
//   - a failed syncfs fails every volume WRITTEN in that batch (65537565); the run goes
//     on with the next batch (batches are independent; the caller must not commit g+1
//     while any volume failed, and a rerun finishes them);
//   - the run itself fails (non-OK Result) only for bad arguments, a failing
//     VolumeSource (196608088) or a broken I/O layer (Execute returned non-OK).
// A rewrapped volume keeps its previous slot (under g) until the next rotation
// overwrites it, so a volume always opens under g or g+1.
//
// Threads (RewrapOptions::threads > 1): batches run on several threads at once. The
// source and the progress callback are still called one at a time (under one lock, so
// they may share state such as a database connection), but from any of the threads, and
// batches may be reported out of first_index order. Each report still comes after its
// own batch is durable. After a callback asks to stop, the batches already in flight
// finish, become durable and are reported too (their callback's answer is ignored).
//
// Thread safety: RewrapVolumes may run concurrently for different SVMs, each with its own
// FileIo; the KeyTable is shared (it is thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "file_io.h"
#include "key_table.h"
#include "status.h"
#include "volume.h"

namespace svmkey {

// Supplies volumes in order. Implementations: a vector (tests), a volset manifest file
// (tools), the daemon's table (paged SELECTs).
class VolumeSource {
 public:
  virtual ~VolumeSource() = default;
  // Fills up to out.size() entries (reusing their string capacity) and returns how many;
  // 0 means the end. A failure here fails the run (196608088).
  virtual Result<size_t> Next(std::span<VolumeRef> out) = 0;
};

// A VolumeSource over a caller-owned span.
class SpanVolumeSource final : public VolumeSource {
 public:
  explicit SpanVolumeSource(std::span<const VolumeRef> volumes) : volumes_(volumes) {}
  Result<size_t> Next(std::span<VolumeRef> out) override;

 private:
  std::span<const VolumeRef> volumes_;
  size_t pos_ = 0;
};

// The rewrap defaults, in one place: RewrapOptions starts from them, and svmkeyd and
// svmkey-bench use them as theirs. Two threads, so one thread's syncfs overlaps the
// other's reads, crypto and writes; 2048 volumes per batch, which keeps each thread's
// arena near 9 MiB at about the rate of larger batches (measurements: docs/BENCH.md).
inline constexpr size_t kServiceRewrapBatch = 2048;
inline constexpr size_t kServiceRewrapThreads = 2;

enum class RewrapDurability : uint8_t {
  kSyncFsPerBatch,     // write the batch, then one syncfs(2)
  kFdatasyncPerFile,   // an fdatasync per written file, through the FileIo
};

struct RewrapOptions {
  // Volumes per batch (1..65536). The run allocates ~4.5 KiB of I/O arena per volume of
  // a batch, once per thread. A batch costs one syncfs, so larger batches amortize it.
  size_t batch_size = kServiceRewrapBatch;
  // kSyncFsPerBatch syncs every file system the batch wrote to (normally one: the
  // metadata root); kFdatasyncPerFile pays a disk flush per volume and is several times
  // slower.
  RewrapDurability durability = RewrapDurability::kSyncFsPerBatch;
  // Benchmark baseline only: do the same reads, writes and syncs, but leave the crypto
  // out (the written slot is a copy of the current one, same generation and sequence,
  // so the volume is unchanged in meaning). Such volumes are reported kRewrapped and the
  // generation check is skipped. Never used by the daemon.
  bool io_only = false;
  // Batches in flight at once, each on its own thread with its own FileIo, arena and key
  // schedules (1..16). With more than one, one thread's syncfs overlaps the others'
  // reads, crypto and writes. Threads beyond the first need `make_io`; without it the
  // run uses one. Each thread allocates its own arena (see batch_size).
  size_t threads = kServiceRewrapThreads;
  // Makes the FileIo of each additional thread (the caller's `io` serves the first).
  std::function<Result<std::unique_ptr<FileIo>>()> make_io;
  // When not empty, a volume whose path is not an absolute, normalized path strictly
  // below one of these directories is failed without being opened (VolumeBatch::Open).
  std::vector<std::string> roots;
};

enum class RewrapOutcome : uint8_t {
  kRewrapped,       // the other slot now holds the VDEK under g+1 (durable)
  kAlreadyCurrent,  // the current slot was already at g+1; nothing written
  kFailed,          // status says why (an error-table code); the file was not changed,
                    // or only the non-current slot was (still readable under g)
};

struct RewrapVolumeResult {
  RewrapOutcome outcome = RewrapOutcome::kFailed;
  Status status;
  SlotSector blob{};  // the current slot after the run (for the table's copy)
};

struct RewrapCounters {
  uint64_t total = 0;
  uint64_t rewrapped = 0;
  uint64_t already_current = 0;
  uint64_t failed = 0;
  bool stopped = false;  // the progress callback asked to stop at a batch boundary
};

struct RewrapBatchReport {
  uint64_t first_index = 0;  // position of volumes[0] in the whole run
  std::span<const VolumeRef> volumes;
  std::span<const RewrapVolumeResult> results;  // same length as volumes
  RewrapCounters counters;                      // totals so far, this batch included
};

// Returns false to stop the run after this batch.
using RewrapProgress = std::function<bool(const RewrapBatchReport&)>;

struct RewrapKeys {
  KeyHandle old_kek;
  uint64_t old_generation = 0;
  KeyHandle new_kek;
  uint64_t new_generation = 0;  // must be old_generation + 1
};

// Runs the rewrap over every volume of `source`. Returns the counters; a non-OK status
// only when the run itself could not go on (I/O layer broken, source failed, bad keys).
// Per-volume problems are counted as failed and reported through `progress`.
Result<RewrapCounters> RewrapVolumes(FileIo& io, KeyTable& table, const RewrapKeys& keys,
                                     VolumeSource& source, const RewrapOptions& options,
                                     const RewrapProgress& progress);

}  // namespace svmkey
