// Volume sets for performance work: N encrypted volumes of one SVM, made with the same
// engine calls the daemon uses (CreateVolumes, VerifyVolumes, RewrapVolumes), listed in a
// manifest (volume_set_manifest.h).
//
// Layout of a set directory D:
//   D/volset.manifest        the volume list (streamed; see volume_set_manifest.h)
//   D/kek.bin                the SVM-KEK, 32 raw bytes, 0600 (only when generated)
//   D/vol/<2 hex>/<uuid>.meta one 4 KiB metadata file per volume
//
// Memory is bounded by the batch size, not by N. Thread safety: one call per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/file_io.h"
#include "engine/key_table.h"
#include "engine/rewrap.h"
#include "engine/status.h"
#include "engine/uuid.h"
#include "engine/volset/volume_set_manifest.h"

namespace svmkey::volset {

// "auto" (io_uring, falling back to sync when the ring cannot be set up), "uring" or
// "sync": the engine's MakeFileIo. `note`, when given, receives the fallback notice.
// Fails with InvalidValue for another name.
Result<std::unique_ptr<FileIo>> MakeFileIoByName(std::string_view name,
                                                 std::string* note = nullptr);

struct CreateVolumeSetOptions {
  std::string dir;
  Uuid svm;
  uint64_t count = 0;
  uint64_t generation = 1;  // SVM-KEK generation the VDEKs are wrapped under
  // 0: no clones. K > 0: every K-th volume (index K-1, 2K-1, ...) is a clone sharing the
  // VDEK of the volume before it (header flag bit 0), as ONTAP FlexClones do.
  uint64_t clone_every = 0;
  uint64_t first_dsid = 1;   // DSIDs are first_dsid, first_dsid+1, ...
  size_t batch_size = 8192;  // volumes per CreateVolumes call (one syncfs each)
  std::function<void(uint64_t created)> progress;  // after each batch, may be empty
};

struct CreateVolumeSetReport {
  uint64_t created = 0;
  uint64_t clones = 0;
};

// Makes the directories, the files (O_EXCL) and, last, the manifest. Fails with
// DuplicateEntry when D already holds a manifest, and with the first failing volume's
// status (plus how many failed) when any file could not be made; then no manifest is
// written.
Result<CreateVolumeSetReport> CreateVolumeSet(FileIo& io, KeyTable& table, KeyHandle kek,
                                              const CreateVolumeSetOptions& options);

struct VerifyVolumeSetReport {
  uint64_t total = 0;
  uint64_t opened = 0;  // current slot at the expected generation and opens under it
  uint64_t failed = 0;
  std::map<uint32_t, uint64_t> failures_by_code;  // numeric error code → volumes
  std::vector<std::string> failure_samples;       // the first few "path: status"
};

// Streams the manifest in batches, runs the engine's VerifyVolumes on each, and checks
// every volume's CURRENT slot (the valid one with the highest sequence) is at
// `generation` and opens with `kek` (a volume whose current slot is at another generation
// fails, even if an older slot would open). Non-OK only when the run itself broke (the
// manifest is malformed, the I/O layer failed); per-volume failures are in the report.
Result<VerifyVolumeSetReport> VerifyVolumeSet(FileIo& io, KeyTable& table, KeyHandle kek,
                                              uint64_t generation, ManifestVolumeSource& source,
                                              size_t batch_size = 4096);

// Rewraps every volume of the set from keys.old_generation to keys.new_generation
// (RewrapVolumes over the manifest) and, when every volume is at g+1, rewrites the
// manifest's generation. Fails with InvalidArgument when the manifest's generation is not
// keys.old_generation. Per-volume failures are in the counters (and `progress`).
Result<RewrapCounters> RekeyVolumeSet(FileIo& io, KeyTable& table, const RewrapKeys& keys,
                                      ManifestVolumeSource& source, const RewrapOptions& options,
                                      const RewrapProgress& progress);

}  // namespace svmkey::volset
