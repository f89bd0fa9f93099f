#include "volume_metadata.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "secure_memory.h"

namespace svmkey {
namespace {

constexpr char kHeaderMagic[8] = {'S', 'V', 'M', 'K', 'V', 'O', 'L', '1'};
constexpr char kSlotMagic[8] = {'S', 'V', 'M', 'K', 'S', 'L', 'T', '1'};
constexpr char kAadMagic[8] = {'S', 'V', 'M', 'K', 'V', 'D', 'K', '1'};
constexpr size_t kChecksumOffset = 480;
constexpr size_t kChecksumBytes = 32;

void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

bool AllZero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc == 0;
}

// BLAKE2b-256 of bytes 0..479; the slot checksum is keyed by the slot index so a
// sector written at the wrong offset does not pass as the other slot.
void Checksum(const uint8_t* sector, int slot_index, uint8_t* out) {
  uint8_t key[16] = {'s', 'v', 'm', 'k', 'e', 'y', '-', 's', 'e', 'c', 't', 'o', 'r', '-', 0, 0};
  key[15] = static_cast<uint8_t>(slot_index + 1);  // 0 = header, 1 = A, 2 = B
  crypto_generichash(out, kChecksumBytes, sector, kChecksumOffset, key, sizeof key);
}

bool ChecksumOk(const uint8_t* sector, int slot_index) {
  uint8_t sum[kChecksumBytes];
  Checksum(sector, slot_index, sum);
  return ConstantTimeEqual(sum, sector + kChecksumOffset, kChecksumBytes);
}

Status Corrupt(const char* what) { return Status(ErrorCode::kInvalidEncryptionBlob, what); }

}  // namespace

int DecodedMetadata::Candidates(int out[2]) const {
  int n = 0;
  if (slot[0] && slot[1]) {
    const bool b_newer = slot[1]->sequence > slot[0]->sequence;
    out[n++] = b_newer ? 1 : 0;
    out[n++] = b_newer ? 0 : 1;
  } else if (slot[0]) {
    out[n++] = 0;
  } else if (slot[1]) {
    out[n++] = 1;
  }
  return n;
}

Aad VdekAad(const VolumeIdentity& id, uint64_t generation) {
  Aad aad{};
  uint8_t* p = aad.data();
  std::memcpy(p, kAadMagic, 8);
  std::memcpy(p + 8, id.volume.bytes.data(), 16);
  std::memcpy(p + 24, id.svm.bytes.data(), 16);
  Put64(p + 40, id.dsid);
  Put64(p + 48, generation);
  Put32(p + 56, kAlgorithmAes256Gcm);
  Put32(p + 60, kFormatVersion);
  return aad;
}

void EncodeHeader(const VolumeIdentity& id, uint32_t flags, uint8_t* sector) {
  std::memset(sector, 0, kSectorSize);
  std::memcpy(sector, kHeaderMagic, 8);
  Put32(sector + 8, kFormatVersion);
  Put32(sector + 12, kSectorSize);
  std::memcpy(sector + 16, id.volume.bytes.data(), 16);
  std::memcpy(sector + 32, id.svm.bytes.data(), 16);
  Put64(sector + 48, id.dsid);
  Put32(sector + 56, flags);
  Checksum(sector, -1, sector + kChecksumOffset);
}

void EncodeSlot(const VdekSlot& slot, int index, uint8_t* sector) {
  std::memset(sector, 0, kSectorSize);
  std::memcpy(sector, kSlotMagic, 8);
  Put64(sector + 8, slot.sequence);
  Put64(sector + 16, slot.generation);
  Put32(sector + 24, slot.algorithm);
  Put32(sector + 28, slot.key_length);
  std::memcpy(sector + 32, slot.nonce.data(), kNonceBytes);
  std::memcpy(sector + 48, slot.wrapped.data(), kKeyBytes);
  std::memcpy(sector + 80, slot.tag.data(), kTagBytes);
  Checksum(sector, index, sector + kChecksumOffset);
}

Status DecodeHeader(std::span<const uint8_t> sector, VolumeIdentity* id, uint32_t* flags) {
  if (sector.size() < kSectorSize) return Corrupt("header sector truncated");
  const uint8_t* p = sector.data();
  if (std::memcmp(p, kHeaderMagic, 8) != 0) return Corrupt("header magic is not SVMKVOL1");
  if (!ChecksumOk(p, -1)) return Corrupt("header checksum mismatch");
  if (Get32(p + 8) != kFormatVersion) return Corrupt("unsupported format version");
  if (Get32(p + 12) != kSectorSize) return Corrupt("unexpected header size");
  if (!AllZero(p + 60, kChecksumOffset - 60)) return Corrupt("reserved header bytes not zero");
  std::memcpy(id->volume.bytes.data(), p + 16, 16);
  std::memcpy(id->svm.bytes.data(), p + 32, 16);
  id->dsid = Get64(p + 48);
  *flags = Get32(p + 56);
  if (id->volume.IsNil()) return Status(ErrorCode::kVolumeUuidMissing, "volume uuid is nil");
  if (id->dsid == 0) return Status(ErrorCode::kVolumeDsidMissing, "volume DSID is 0");
  return Status::Ok();
}

Status DecodeSlot(std::span<const uint8_t> sector, int index, VdekSlot* slot) {
  if (sector.size() < kSectorSize) return Corrupt("slot sector truncated");
  const uint8_t* p = sector.data();
  if (AllZero(p, kSectorSize)) return Status(ErrorCode::kVolumeKeyMissing, "slot is empty");
  if (std::memcmp(p, kSlotMagic, 8) != 0) return Corrupt("slot magic is not SVMKSLT1");
  if (!ChecksumOk(p, index)) return Corrupt("slot checksum mismatch");
  if (!AllZero(p + 44, 4) || !AllZero(p + 96, kChecksumOffset - 96)) {
    return Corrupt("reserved slot bytes not zero");
  }
  slot->sequence = Get64(p + 8);
  slot->generation = Get64(p + 16);
  slot->algorithm = Get32(p + 24);
  slot->key_length = Get32(p + 28);
  std::memcpy(slot->nonce.data(), p + 32, kNonceBytes);
  std::memcpy(slot->wrapped.data(), p + 48, kKeyBytes);
  std::memcpy(slot->tag.data(), p + 80, kTagBytes);
  if (slot->algorithm != kAlgorithmAes256Gcm) return Corrupt("unknown slot algorithm");
  if (slot->generation == 0) return Corrupt("slot key generation is 0");
  if (slot->key_length != kKeyBytes) {
    return Status(ErrorCode::kVolumeKeyInvalid,
                  "wrapped key length " + std::to_string(slot->key_length) + ", expected 32");
  }
  return Status::Ok();
}

Result<DecodedMetadata> DecodeMetadataFile(std::span<const uint8_t> file,
                                           const VolumeIdentity* expected) {
  if (file.size() != kMetadataFileSize) {
    return Corrupt(file.empty() ? "metadata file is empty" : "metadata file is not 4096 bytes");
  }
  DecodedMetadata out;
  SVMKEY_RETURN_IF_ERROR(DecodeHeader(file.first(kSectorSize), &out.id, &out.flags));
  if (expected != nullptr && !(out.id == *expected)) {
    return Corrupt("metadata file belongs to another volume (identity mismatch)");
  }
  for (int i = 0; i < 2; ++i) {
    VdekSlot slot;
    Status s = DecodeSlot(file.subspan(kSlotOffset[i], kSectorSize), i, &slot);
    out.slot_state[i] = s.code();
    if (s.ok()) out.slot[i] = slot;
  }
  if (!out.slot[0] && !out.slot[1]) {
    const ErrorCode a = out.slot_state[0], b = out.slot_state[1];
    if (a == ErrorCode::kVolumeKeyMissing && b == ErrorCode::kVolumeKeyMissing) {
      return Status(ErrorCode::kVolumeKeyMissing, "no slot holds a key");
    }
    if (a == ErrorCode::kVolumeKeyInvalid || b == ErrorCode::kVolumeKeyInvalid) {
      return Status(ErrorCode::kVolumeKeyInvalid, "no valid slot: wrapped key has a bad length");
    }
    return Corrupt("no valid slot: both slots are empty or corrupt");
  }
  return out;
}

}  // namespace svmkey
