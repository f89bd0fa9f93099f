// AES-256-GCM through OpenSSL EVP, with the key schedule set up once per context.
//
// An AeadContext is made from a key handle and then seals/opens many small messages
// (a batch of VDEKs) without touching the key table again: the expensive part (key
// expansion) happens once. Nonces are 96-bit and random; draw them from a NoncePool,
// which fills a buffer with getrandom output in bulk (one syscall per 4096 nonces
// instead of one per wrap).
//
// Note: OpenSSL keeps the expanded key schedule in its own heap for the life of the
// context; EVP_CIPHER_CTX_free cleanses it. The daemon is non-dumpable, so it never
// reaches a core file; keep contexts per batch, not longer.
//
// Not thread-safe: one context per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "key_table.h"
#include "status.h"

struct evp_cipher_ctx_st;

namespace svmkey {

class AeadContext {
 public:
  static Result<AeadContext> Create(KeyTable& table, KeyHandle key);
  AeadContext(AeadContext&&) noexcept;
  AeadContext& operator=(AeadContext&&) noexcept;
  ~AeadContext();

  // ciphertext = plaintext ⊕ keystream (same length); tag over AAD and ciphertext.
  Status Seal(const uint8_t* nonce, std::span<const uint8_t> aad, const uint8_t* plaintext,
              size_t len, uint8_t* ciphertext, uint8_t* tag);
  // Fails with DecryptFailed when the tag does not verify; `plaintext` is then zeroed.
  Status Open(const uint8_t* nonce, std::span<const uint8_t> aad, const uint8_t* ciphertext,
              size_t len, const uint8_t* tag, uint8_t* plaintext);

 private:
  AeadContext() = default;
  void Free();
  evp_cipher_ctx_st* enc_ = nullptr;
  evp_cipher_ctx_st* dec_ = nullptr;
};

// Bulk random nonces. Not thread-safe.
class NoncePool {
 public:
  explicit NoncePool(size_t nonces_per_refill = 4096);
  // The next fresh 12-byte nonce; valid until the next call.
  const uint8_t* Next();

 private:
  std::vector<uint8_t> pool_;
  size_t pos_;
};

}  // namespace svmkey
