#include "secure_memory.h"

#include <sodium.h>

#include <mutex>
#include <utility>

namespace svmkey {

Status EngineInit() {
  static const int rc = sodium_init();  // -1 on failure, 0 done, 1 already done
  if (rc < 0) return Status(ErrorCode::kSvmKeyGenerationFailed, "libsodium initialization failed");
  return Status::Ok();
}

SecureBuffer::~SecureBuffer() { Release(); }

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Result<SecureBuffer> SecureBuffer::Allocate(size_t size) {
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  SecureBuffer out;
  if (size == 0) return out;
  // sodium_malloc mlocks and marks the pages MADV_DONTDUMP; it returns nullptr (with
  // errno) when the lock limit is hit.
  void* p = sodium_malloc(size);
  if (p == nullptr) {
    return Status(ErrorCode::kResourceLimit,
                  "cannot allocate " + std::to_string(size) + " bytes of locked memory");
  }
  // sodium_malloc ignores an mlock failure; a key page that can be swapped out is not
  // acceptable here, so lock again and check.
  if (sodium_mlock(p, size) != 0) {
    sodium_free(p);
    return Status(ErrorCode::kResourceLimit,
                  "cannot lock " + std::to_string(size) + " bytes (RLIMIT_MEMLOCK)");
  }
  sodium_memzero(p, size);
  out.data_ = static_cast<uint8_t*>(p);
  out.size_ = size;
  return out;
}

void SecureBuffer::Wipe() {
  if (data_ != nullptr) sodium_memzero(data_, size_);
}

void SecureBuffer::ProtectReadOnly() {
  if (data_ != nullptr) sodium_mprotect_readonly(data_);
}

void SecureBuffer::ProtectReadWrite() {
  if (data_ != nullptr) sodium_mprotect_readwrite(data_);
}

void SecureBuffer::Release() {
  if (data_ != nullptr) {
    sodium_mprotect_readwrite(data_);
    sodium_free(data_);  // zeroes, unlocks, unmaps
    data_ = nullptr;
    size_ = 0;
  }
}

bool ConstantTimeEqual(const uint8_t* a, const uint8_t* b, size_t len) {
  return sodium_memcmp(a, b, len) == 0;
}

}  // namespace svmkey
