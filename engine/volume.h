// Encrypted volumes: creating their metadata files and opening their VDEKs.
//
// A VDEK is generated straight into secure memory, sealed under the SVM-KEK of
// generation g with the volume's AAD (VdekAad), and written into slot A of a new
// metadata file. The plaintext VDEK never leaves secure memory and is wiped when the
// batch ends. All I/O goes through a FileIo; work is done in batches so the hot path
// allocates nothing per volume.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "aead.h"
#include "file_io.h"
#include "key_table.h"
#include "status.h"
#include "volume_metadata.h"

namespace svmkey {

// SVM-KEKs by generation: which key opens a slot labelled with generation g.
class KeyRing {
 public:
  void Add(uint64_t generation, KeyHandle key) { keys_.emplace_back(generation, key); }
  std::optional<KeyHandle> Find(uint64_t generation) const {
    for (const auto& [g, k] : keys_) {
      if (g == generation) return k;
    }
    return std::nullopt;
  }
  const std::vector<std::pair<uint64_t, KeyHandle>>& keys() const { return keys_; }

 private:
  std::vector<std::pair<uint64_t, KeyHandle>> keys_;
};

struct VolumeRef {
  VolumeIdentity id;
  std::string path;  // the metadata file
};

using SlotSector = std::array<uint8_t, kSectorSize>;
// A keyed BLAKE2b-128 of a VDEK: equal VDEKs give equal fingerprints under one key.
// Lets tests and `verify` prove a VDEK is unchanged without ever exporting it.
using VdekFingerprint = std::array<uint8_t, 16>;

struct CreateResult {
  Status status;
  SlotSector blob{};  // the encoded slot A (the table keeps a copy, like ONTAP's RDB)
};

// Creates one metadata file per volume (O_EXCL: an existing file is an error), each
// with a fresh VDEK wrapped under `kek` (generation `generation`) in slot A, sequence 1.
// Every file is durable (one syncfs at the end) when this returns OK. `results` must
// have volumes.size() entries. `clone_of`, when non-empty, gives for each volume the
// index of an earlier volume in the same call whose VDEK it shares (or -1).
Status CreateVolumes(FileIo& io, KeyTable& table, KeyHandle kek, uint64_t generation,
                     std::span<const VolumeRef> volumes, std::span<CreateResult> results,
                     std::span<const int> clone_of = {});

struct OpenResult {
  Status status;
  uint64_t generation = 0;  // generation of the slot that opened
  uint64_t sequence = 0;
  int slot = -1;             // the slot that opened
  // The current slot (the valid one with the highest sequence) and its generation, once
  // the file decoded (-1 before): whether or not it opened, and even when an older slot
  // did.
  int current_slot = -1;
  uint64_t current_generation = 0;
  VdekFingerprint fingerprint{};
};

// Opens VDEKs under the keys of a ring, with one AEAD context per generation set up
// once (not per volume). Not thread-safe.
class VdekOpener {
 public:
  static Result<VdekOpener> Create(KeyTable& table, const KeyRing& ring);

  // Opens the current VDEK of a decoded file into `vdek` (kKeyBytes of secure memory):
  // the valid slot with the highest sequence whose tag verifies under the ring's key for
  // its generation. If the newest slot does not open, the older one is tried.
  // Errors: 65539202 when a slot's tag does not verify (and none opened), 65537533 when
  // the ring has no key for any slot's generation. `fingerprint_key` (32 bytes) keys
  // the fingerprint; nullptr skips it.
  OpenResult Open(const DecodedMetadata& meta, uint8_t* vdek, const uint8_t* fingerprint_key);

  // The context for a generation, or nullptr.
  AeadContext* ContextFor(uint64_t generation);

 private:
  VdekOpener() = default;
  std::vector<std::pair<uint64_t, AeadContext>> contexts_;
};

void Fingerprint(const uint8_t* vdek, const uint8_t* fingerprint_key, VdekFingerprint* out);

// Reads and opens every volume (batched I/O, at most min(1024, volumes.size()) files
// open at once); one result per volume. `roots`: as RewrapOptions::roots.
Status VerifyVolumes(FileIo& io, KeyTable& table, const KeyRing& ring,
                     std::span<const VolumeRef> volumes, std::span<OpenResult> results,
                     const uint8_t* fingerprint_key = nullptr,
                     std::span<const std::string> roots = {});

// Maps an errno from the volume's metadata file to the ONTAP code
// (docs/ARCHITECTURE.md §4):
//   - EMFILE, ENFILE, ENOMEM, ENOSPC, EDQUOT → 7 ResourceLimit, with the errno text and
//     the process's RLIMIT_NOFILE: the host ran short, the volume is not damaged;
//   - ENOENT → 65536883;
//   - otherwise 65537565 for writes and 65536889 for reads, saying "not a regular file"
//     (kErrNotRegularFile, ENXIO, EISDIR, EAGAIN), "symbolic link" (ELOOP) or the errno.
Status IoError(int neg_errno, bool write, const std::string& path);

}  // namespace svmkey
