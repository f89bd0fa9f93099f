// The volume metadata file, format v1 (docs/ARCHITECTURE.md §4): one file per volume, exactly
// 4096 bytes, little-endian, every field fixed-width.
//
//   offset  size  region
//   0       512   header sector
//   512     512   slot A sector
//   1024    512   slot B sector
//   1536    2560  zero
//
// Header sector (offsets within the sector):
//   0    8   magic "SVMKVOL1"
//   8    4   u32 format version (1)
//   12   4   u32 header size (512)
//   16   16  volume uuid (nil = missing → 65536882)
//   32   16  SVM uuid
//   48   8   u64 DSID (0 = missing → 65536973)
//   56   4   u32 flags (bit 0: clone, shares its parent's VDEK)
//   60   420 zero
//   480  32  BLAKE2b-256 of bytes 0..479 of the sector
//
// Slot sector (A or B; an all-zero sector is an empty slot):
//   0    8   magic "SVMKSLT1"
//   8    8   u64 sequence number (monotonic per volume; the higher valid one is current)
//   16   8   u64 SVM-KEK generation the VDEK is wrapped under
//   24   4   u32 algorithm (1 = AES-256-GCM)
//   28   4   u32 key length (32)
//   32   12  nonce
//   44   4   zero
//   48   32  wrapped VDEK (ciphertext)
//   80   16  GCM tag
//   96   384 zero
//   480  32  BLAKE2b-256 of bytes 0..479 of the sector, keyed by the slot index
//
// The AAD of a VDEK wrap (64 bytes) binds it to its place: "SVMKVDK1", volume uuid, SVM
// uuid, DSID, generation, algorithm and format version (VdekAad). A slot copied into
// another volume's file, or relabelled with another generation, fails to open.
//
// A rewrap writes only the slot that is not current (one 512-byte sector), so a torn
// write can destroy only the slot being written; the current one stays valid.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "key_table.h"
#include "status.h"
#include "uuid.h"

namespace svmkey {

inline constexpr size_t kMetadataFileSize = 4096;
inline constexpr size_t kSectorSize = 512;
inline constexpr uint64_t kSlotOffset[2] = {512, 1024};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kAlgorithmAes256Gcm = 1;
inline constexpr size_t kAadBytes = 64;
inline constexpr uint32_t kFlagClone = 1u << 0;

struct VolumeIdentity {
  Uuid volume;
  Uuid svm;
  uint64_t dsid = 0;
  friend bool operator==(const VolumeIdentity&, const VolumeIdentity&) = default;
};

struct VdekSlot {
  uint64_t sequence = 0;
  uint64_t generation = 0;
  uint32_t algorithm = kAlgorithmAes256Gcm;
  uint32_t key_length = kKeyBytes;
  std::array<uint8_t, kNonceBytes> nonce{};
  std::array<uint8_t, kKeyBytes> wrapped{};
  std::array<uint8_t, kTagBytes> tag{};
};

struct DecodedMetadata {
  VolumeIdentity id;
  uint32_t flags = 0;
  std::optional<VdekSlot> slot[2];
  // Why a slot is absent: kOk for a valid slot, kVolumeKeyMissing for an all-zero
  // (empty) slot, kInvalidEncryptionBlob for a corrupt one.
  ErrorCode slot_state[2] = {ErrorCode::kVolumeKeyMissing, ErrorCode::kVolumeKeyMissing};

  // The slot-selection rule of format v1 (docs/ARCHITECTURE.md §4.4), written only here:
  // the indices of the valid slots (checksum, magic and fields checked by DecodeSlot),
  // newest (highest sequence) first, slot A first on a tie; returns how many (0..2).
  // out[0] is the current slot. Open, verify (VdekOpener::Open: the tag check, falling
  // back to out[1]), rewrap (the current slot only) and repair all choose through it.
  int Candidates(int out[2]) const;
};

using Aad = std::array<uint8_t, kAadBytes>;
Aad VdekAad(const VolumeIdentity& id, uint64_t generation);

void EncodeHeader(const VolumeIdentity& id, uint32_t flags, uint8_t* sector);
void EncodeSlot(const VdekSlot& slot, int index, uint8_t* sector);

// Decodes the header sector. Codes: 65536889 bad magic/version/size/checksum,
// 65536882 nil volume uuid, 65536973 zero DSID.
Status DecodeHeader(std::span<const uint8_t> sector, VolumeIdentity* id, uint32_t* flags);
// Decodes one slot sector (index 0 = A, 1 = B). Codes: 65536883 empty slot,
// 65536889 bad magic/checksum/algorithm, 65536884 key length not 32.
Status DecodeSlot(std::span<const uint8_t> sector, int index, VdekSlot* slot);

// Decodes a whole file. `expected`, when given, must match the header (a foreign file is
// 65536889). Fails when the header is bad or when no slot holds a key: 65536883 if both
// are empty, otherwise the code of the newer defective slot.
Result<DecodedMetadata> DecodeMetadataFile(std::span<const uint8_t> file,
                                           const VolumeIdentity* expected = nullptr);

}  // namespace svmkey
