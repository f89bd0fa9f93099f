#include "aead.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <climits>
#include <utility>

namespace svmkey {
namespace {

bool InitCtx(EVP_CIPHER_CTX* ctx, bool encrypt, const uint8_t* key) {
  const EVP_CIPHER* cipher = EVP_aes_256_gcm();
  if (EVP_CipherInit_ex(ctx, cipher, nullptr, nullptr, nullptr, encrypt ? 1 : 0) != 1) return false;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1) return false;
  // Key schedule once; later calls pass only the IV and keep it.
  return EVP_CipherInit_ex(ctx, nullptr, nullptr, key, nullptr, encrypt ? 1 : 0) == 1;
}

}  // namespace

Result<AeadContext> AeadContext::Create(KeyTable& table, KeyHandle key) {
  AeadContext out;
  out.enc_ = EVP_CIPHER_CTX_new();
  out.dec_ = EVP_CIPHER_CTX_new();
  if (out.enc_ == nullptr || out.dec_ == nullptr) {
    return Status(ErrorCode::kEncryptFailed, "cannot allocate cipher context");
  }
  std::lock_guard<std::mutex> lock(table.mu_);
  SVMKEY_RETURN_IF_ERROR(table.CheckLocked(key));
  const uint8_t* bytes = table.KeyBytesLocked(key.slot);
  if (!InitCtx(out.enc_, true, bytes) || !InitCtx(out.dec_, false, bytes)) {
    return Status(ErrorCode::kEncryptFailed, "AES-256-GCM key setup failed");
  }
  return out;
}

AeadContext::AeadContext(AeadContext&& other) noexcept
    : enc_(std::exchange(other.enc_, nullptr)), dec_(std::exchange(other.dec_, nullptr)) {}

AeadContext& AeadContext::operator=(AeadContext&& other) noexcept {
  if (this != &other) {
    Free();
    enc_ = std::exchange(other.enc_, nullptr);
    dec_ = std::exchange(other.dec_, nullptr);
  }
  return *this;
}

AeadContext::~AeadContext() { Free(); }

void AeadContext::Free() {
  EVP_CIPHER_CTX_free(enc_);  // cleanses the key schedule
  EVP_CIPHER_CTX_free(dec_);
  enc_ = dec_ = nullptr;
}

Status AeadContext::Seal(const uint8_t* nonce, std::span<const uint8_t> aad,
                         const uint8_t* plaintext, size_t len, uint8_t* ciphertext,
                         uint8_t* tag) {
  int outl = 0;
  if (len > INT_MAX || aad.size() > INT_MAX ||
      EVP_EncryptInit_ex(enc_, nullptr, nullptr, nullptr, nonce) != 1 ||
      EVP_EncryptUpdate(enc_, nullptr, &outl, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(enc_, ciphertext, &outl, plaintext, static_cast<int>(len)) != 1 ||
      EVP_EncryptFinal_ex(enc_, ciphertext + outl, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) != 1) {
    sodium_memzero(ciphertext, len);
    return Status(ErrorCode::kEncryptFailed, "AES-256-GCM seal failed");
  }
  return Status::Ok();
}

Status AeadContext::Open(const uint8_t* nonce, std::span<const uint8_t> aad,
                         const uint8_t* ciphertext, size_t len, const uint8_t* tag,
                         uint8_t* plaintext) {
  int outl = 0;
  uint8_t tag_copy[kTagBytes];
  std::copy(tag, tag + kTagBytes, tag_copy);
  if (len > INT_MAX || aad.size() > INT_MAX ||
      EVP_DecryptInit_ex(dec_, nullptr, nullptr, nullptr, nonce) != 1 ||
      EVP_DecryptUpdate(dec_, nullptr, &outl, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(dec_, plaintext, &outl, ciphertext, static_cast<int>(len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag_copy) != 1 ||
      EVP_DecryptFinal_ex(dec_, plaintext + outl, &outl) != 1) {
    sodium_memzero(plaintext, len);
    return Status(ErrorCode::kDecryptFailed, "authentication tag does not verify");
  }
  return Status::Ok();
}

NoncePool::NoncePool(size_t nonces_per_refill)
    : pool_(kNonceBytes * (nonces_per_refill == 0 ? 1 : nonces_per_refill)), pos_(pool_.size()) {}

const uint8_t* NoncePool::Next() {
  if (pos_ + kNonceBytes > pool_.size()) {
    (void)EngineInit();
    randombytes_buf(pool_.data(), pool_.size());
    pos_ = 0;
  }
  const uint8_t* out = pool_.data() + pos_;
  pos_ += kNonceBytes;
  return out;
}

}  // namespace svmkey
