#include "key_table.h"

#include <sodium.h>

#include <algorithm>

#include "aead.h"

namespace svmkey {

std::array<uint8_t, WrappedKey::kSerializedSize> WrappedKey::Serialize() const {
  std::array<uint8_t, kSerializedSize> out{};
  auto it = std::copy(nonce.begin(), nonce.end(), out.begin());
  it = std::copy(ciphertext.begin(), ciphertext.end(), it);
  std::copy(tag.begin(), tag.end(), it);
  return out;
}

Result<WrappedKey> WrappedKey::Deserialize(std::span<const uint8_t> bytes) {
  if (bytes.size() != kSerializedSize) {
    return Status(ErrorCode::kInvalidEncryptionBlob,
                  "wrapped key is " + std::to_string(bytes.size()) + " bytes, expected 60");
  }
  WrappedKey out;
  std::copy_n(bytes.begin(), kNonceBytes, out.nonce.begin());
  std::copy_n(bytes.begin() + kNonceBytes, kKeyBytes, out.ciphertext.begin());
  std::copy_n(bytes.begin() + kNonceBytes + kKeyBytes, kTagBytes, out.tag.begin());
  return out;
}

Result<std::unique_ptr<KeyTable>> KeyTable::Create(size_t capacity) {
  if (capacity == 0) return Status(ErrorCode::kInvalidArgument, "key table capacity is 0");
  auto arena = SecureBuffer::Allocate(capacity * kKeyBytes);
  if (!arena.ok()) return arena.status();
  return std::unique_ptr<KeyTable>(new KeyTable(std::move(arena).value(), capacity));
}

KeyTable::KeyTable(SecureBuffer arena, size_t capacity)
    : arena_(std::move(arena)), slots_(capacity) {}

KeyTable::~KeyTable() { arena_.Wipe(); }

size_t KeyTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(
      std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.used; }));
}

Result<uint32_t> KeyTable::AllocateSlotLocked() {
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].used) {
      slots_[i].used = true;
      slots_[i].serial = next_serial_++;
      return i;
    }
  }
  return Status(ErrorCode::kSvmKeyGenerationFailed,
                "key table full (" + std::to_string(slots_.size()) + " keys)");
}

Status KeyTable::CheckLocked(KeyHandle handle) const {
  if (!handle.valid() || handle.slot >= slots_.size() || !slots_[handle.slot].used ||
      slots_[handle.slot].serial != handle.serial) {
    return Status(ErrorCode::kInvalidArgument, "stale or unknown key handle");
  }
  return Status::Ok();
}

Result<KeyHandle> KeyTable::Generate() {
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  std::lock_guard<std::mutex> lock(mu_);
  auto slot = AllocateSlotLocked();
  if (!slot.ok()) return slot.status();
  randombytes_buf(KeyBytesLocked(*slot), kKeyBytes);
  return KeyHandle{*slot, slots_[*slot].serial};
}

Result<KeyHandle> KeyTable::Import(const SecureBuffer& source, size_t offset) {
  if (offset > source.size() || source.size() - offset < kKeyBytes) {
    return Status(ErrorCode::kVolumeKeyInvalid, "imported key is shorter than 32 bytes");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto slot = AllocateSlotLocked();
  if (!slot.ok()) return Status(ErrorCode::kSvmKekImportFailed, slot.status().message());
  std::copy_n(source.data() + offset, kKeyBytes, KeyBytesLocked(*slot));
  return KeyHandle{*slot, slots_[*slot].serial};
}

Result<WrappedKey> KeyTable::Wrap(KeyHandle wrapping, KeyHandle key,
                                  std::span<const uint8_t> aad) {
  auto ctx = AeadContext::Create(*this, wrapping);
  if (!ctx.ok()) return Status(ErrorCode::kEncryptFailed, ctx.status().message());
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  WrappedKey out;
  randombytes_buf(out.nonce.data(), out.nonce.size());
  std::lock_guard<std::mutex> lock(mu_);
  SVMKEY_RETURN_IF_ERROR(CheckLocked(key));
  Status s = ctx->Seal(out.nonce.data(), aad, KeyBytesLocked(key.slot), kKeyBytes,
                       out.ciphertext.data(), out.tag.data());
  if (!s.ok()) return s;
  return out;
}

Result<KeyHandle> KeyTable::Unwrap(KeyHandle wrapping, const WrappedKey& wrapped,
                                   std::span<const uint8_t> aad) {
  auto ctx = AeadContext::Create(*this, wrapping);
  if (!ctx.ok()) return Status(ErrorCode::kDecryptFailed, ctx.status().message());
  std::lock_guard<std::mutex> lock(mu_);
  auto slot = AllocateSlotLocked();
  if (!slot.ok()) return slot.status();
  Status s = ctx->Open(wrapped.nonce.data(), aad, wrapped.ciphertext.data(), kKeyBytes,
                       wrapped.tag.data(), KeyBytesLocked(*slot));
  if (!s.ok()) {
    sodium_memzero(KeyBytesLocked(*slot), kKeyBytes);
    slots_[*slot].used = false;
    return s;
  }
  return KeyHandle{*slot, slots_[*slot].serial};
}

Status KeyTable::Release(KeyHandle handle) {
  std::lock_guard<std::mutex> lock(mu_);
  SVMKEY_RETURN_IF_ERROR(CheckLocked(handle));
  sodium_memzero(KeyBytesLocked(handle.slot), kKeyBytes);
  slots_[handle.slot].used = false;
  return Status::Ok();
}

}  // namespace svmkey
