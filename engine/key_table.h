// KeyTable: the engine's table of keys, addressed from outside only by opaque handles.
//
//   Barbican secret (external key, fetched per operation) ──wraps──▶ SVM-KEK (gen g)
//   SVM-KEK ──wraps──▶ VDEK (one per volume, in the volume metadata file)
//
// Every key in the table is 256 bits and lives in one sodium_malloc'd arena (locked,
// guarded, non-dumpable), allocated once per table; releasing a handle zeroes its
// slot. Key bytes leave the table only wrapped (AES-256-GCM, see aead.h) — there is no
// accessor that returns them. Handles are generation-checked: a released handle, or a
// handle of another table, is refused with InvalidArgument.
//
// Thread safety: every method may be called from any thread (one internal mutex).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "secure_memory.h"
#include "status.h"

namespace svmkey {

inline constexpr size_t kKeyBytes = 32;    // AES-256
inline constexpr size_t kNonceBytes = 12;  // GCM 96-bit nonce
inline constexpr size_t kTagBytes = 16;

// Opaque reference to a key in a KeyTable. Holds no key material.
struct KeyHandle {
  uint32_t slot = UINT32_MAX;
  uint32_t serial = 0;
  bool valid() const { return slot != UINT32_MAX; }
  friend bool operator==(const KeyHandle&, const KeyHandle&) = default;
};

// A 256-bit key sealed under another key: nonce ‖ ciphertext ‖ tag (60 bytes).
// Safe to store and log (but never log it anyway: it is still key material's envelope).
struct WrappedKey {
  std::array<uint8_t, kNonceBytes> nonce{};
  std::array<uint8_t, kKeyBytes> ciphertext{};
  std::array<uint8_t, kTagBytes> tag{};

  static constexpr size_t kSerializedSize = kNonceBytes + kKeyBytes + kTagBytes;
  std::array<uint8_t, kSerializedSize> Serialize() const;
  // Fails with InvalidEncryptionBlob when the size is not 60.
  static Result<WrappedKey> Deserialize(std::span<const uint8_t> bytes);
};

class AeadContext;
class KeyTableTestPeer;

class KeyTable {
 public:
  // A table holding at most `capacity` keys at once.
  static Result<std::unique_ptr<KeyTable>> Create(size_t capacity);
  ~KeyTable();
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;

  // A fresh random 256-bit key (libsodium randombytes / getrandom).
  // Fails with SvmKeyGenerationFailed (65536205) when the table is full.
  Result<KeyHandle> Generate();

  // Copies kKeyBytes from secure memory (e.g. the Barbican payload as received) into
  // the table. The caller wipes its buffer afterwards.
  Result<KeyHandle> Import(const SecureBuffer& source, size_t offset = 0);

  // Seals `key` under `wrapping` with a fresh random nonce and the given AAD.
  // Fails with EncryptFailed (65539201).
  Result<WrappedKey> Wrap(KeyHandle wrapping, KeyHandle key, std::span<const uint8_t> aad);

  // Opens `wrapped` under `wrapping` into a new table entry. Fails with DecryptFailed
  // (65539202) when the tag does not verify (wrong key, wrong AAD, or tampering).
  Result<KeyHandle> Unwrap(KeyHandle wrapping, const WrappedKey& wrapped,
                           std::span<const uint8_t> aad);

  // Zeroes and frees the slot; the handle (and any copy of it) becomes invalid.
  Status Release(KeyHandle handle);

  size_t capacity() const { return slots_.size(); }
  size_t size() const;

 private:
  friend class AeadContext;
  friend class KeyTableTestPeer;

  struct Slot {
    bool used = false;
    uint32_t serial = 0;
  };

  KeyTable(SecureBuffer arena, size_t capacity);
  // Caller holds mu_.
  Result<uint32_t> AllocateSlotLocked();
  Status CheckLocked(KeyHandle handle) const;
  uint8_t* KeyBytesLocked(uint32_t slot) { return arena_.data() + slot * kKeyBytes; }

  mutable std::mutex mu_;
  SecureBuffer arena_;
  std::vector<Slot> slots_;
  uint32_t next_serial_ = 1;
};

}  // namespace svmkey
