// SecureBuffer: key material's only home outside the key table's own arena.
//
// Memory comes from libsodium's sodium_malloc: guard pages on both sides, mlock'ed
// (never swapped), MADV_DONTDUMP (never in a core dump), and sodium_free zeroes it
// before release. Each allocation costs at least three pages and locked memory, so
// allocate per batch, not per key (the default `ulimit -l` is 8 MiB).
//
// Ownership: move-only; the buffer owns its bytes. Not thread-safe; one owner thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "status.h"

namespace svmkey {

// Initializes libsodium once (thread-safe, idempotent). Every engine entry point that
// needs randomness or secure memory calls it; callers never need to.
Status EngineInit();

class SecureBuffer {
 public:
  SecureBuffer() = default;
  ~SecureBuffer();
  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;

  // Allocates `size` zeroed bytes of guarded, locked, non-dumpable memory.
  // Fails with ResourceLimit when the memory cannot be locked.
  static Result<SecureBuffer> Allocate(size_t size);

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Zeroes the bytes (sodium_memzero: not optimized away).
  void Wipe();
  // Makes the buffer read-only / read-write (sodium_mprotect_*).
  void ProtectReadOnly();
  void ProtectReadWrite();

 private:
  void Release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Constant-time comparison of two equal-length byte ranges.
bool ConstantTimeEqual(const uint8_t* a, const uint8_t* b, size_t len);

}  // namespace svmkey
