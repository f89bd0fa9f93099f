// Repairing damaged metadata files from the table's copy of their blob
// (docs/ARCHITECTURE.md §4.4 and §7).
//
// Per volume: check the file the way an open does (DecodeMetadataFile, then the slot
// order of DecodedMetadata::Candidates and the tag check of VdekOpener::Open, under the
// active SVM-KEK only); a file that opens at its current slot is healthy and is not
// touched. Otherwise the table's copy (a slot sector at the active generation) is
// checked first: it must decode, be at the active generation and open under the active
// SVM-KEK with the volume's AAD (which binds the VDEK to this volume's identity). A copy
// that fails any check leaves the file alone and fails the volume. Then:
//
//   - damaged in place (header valid and this volume's, at least one slot valid): the
//     copy is written into ONE slot sector with a sequence above every valid slot, so it
//     becomes current. The slot written is never one that still opens (see PickTarget in
//     volume_repair.cc), so a torn or lost write leaves the file as it was: damaged,
//     still opening wherever it opened before, and repairable again.
//   - missing, not a regular file, not 4096 bytes, bad header, another volume's header,
//     or no valid slot: a fresh file (header + the copy in slot A) is written to
//     "<path>.repair", fdatasync'd, renamed over the path, and the directory is
//     fsync'd. Until the rename the damaged file is untouched; after the directory sync
//     the new file is durable. An empty directory in the file's place is removed first
//     (rmdir removes nothing else); anything else that rename cannot replace fails the
//     volume.
//
// No key byte leaves secure memory; messages name the volume's path and the damage.
// I/O goes through the FileIo seam, except lstat, rename and rmdir (no seam ops).
// Thread safety: none; one call per thread with that thread's FileIo.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "file_io.h"
#include "key_table.h"
#include "status.h"
#include "volume.h"

namespace svmkey {

struct RepairTarget {
  VolumeRef ref;
  uint32_t flags = 0;     // header flags of a rewritten file (kFlagClone)
  bool has_blob = false;  // the table holds a copy
  SlotSector blob{};      // the table's copy of the current slot sector
};

enum class RepairOutcome : uint8_t {
  kHealthy,   // the current slot opens under the active SVM-KEK; nothing written
  kRepaired,  // damaged, now rewritten and durable (or, dry run: would be rewritten)
  kFailed,    // status says why; the file was not changed
};

struct RepairVolumeResult {
  RepairOutcome outcome = RepairOutcome::kFailed;
  Status status;
  // What was wrong, for the log (empty when healthy), e.g. "missing",
  // "not a regular file (fifo)", "current slot B does not open: ...".
  std::string damage;
  SlotSector blob{};  // kRepaired: the slot sector now current in the file
};

struct RepairOptions {
  bool dry_run = false;  // diagnose and check the table's copy, write nothing
};

// Checks and repairs `volumes` (one result each) against the active SVM-KEK `kek` of
// `generation`. Fails as a whole only for bad arguments or a broken I/O layer.
// Per-volume codes: missing copy 196608352, copy not decodable 65536889, copy at
// another generation 65537533, copy does not open 65539202, sequence exhausted
// 65536889, write/sync/rename failure 65537565 (IoError).
Status RepairVolumes(FileIo& io, KeyTable& table, KeyHandle kek, uint64_t generation,
                     std::span<const RepairTarget> volumes, std::span<RepairVolumeResult> results,
                     const RepairOptions& options = {});

}  // namespace svmkey
