#include "svm_kek.h"

#include <sodium.h>

#include <cstring>

namespace svmkey {

Aad SvmKekAad(const Uuid& svm, uint64_t generation, std::string_view key_id) {
  Aad aad{};
  uint8_t* p = aad.data();
  std::memcpy(p, "SVMKKEK1", 8);
  std::memcpy(p + 8, svm.bytes.data(), 16);
  for (int i = 0; i < 8; ++i) p[24 + i] = static_cast<uint8_t>(generation >> (8 * i));
  crypto_generichash(p + 32, 16, reinterpret_cast<const uint8_t*>(key_id.data()), key_id.size(),
                     nullptr, 0);
  p[48] = static_cast<uint8_t>(kAlgorithmAes256Gcm);
  p[52] = static_cast<uint8_t>(kFormatVersion);
  return aad;
}

Result<WrappedKey> WrapSvmKek(KeyTable& table, KeyHandle external, KeyHandle svm_kek,
                              const Uuid& svm, uint64_t generation, std::string_view key_id) {
  const Aad aad = SvmKekAad(svm, generation, key_id);
  auto wrapped = table.Wrap(external, svm_kek, aad);
  if (!wrapped.ok()) return Status(ErrorCode::kEncryptFailed, wrapped.status().message());
  return wrapped;
}

Result<KeyHandle> UnwrapSvmKek(KeyTable& table, KeyHandle external,
                               std::span<const uint8_t> wrapped, const Uuid& svm,
                               uint64_t generation, std::string_view key_id) {
  auto blob = WrappedKey::Deserialize(wrapped);
  if (!blob.ok()) {
    return Status(ErrorCode::kSvmKekUnwrapFailed,
                  "wrapped SVM-KEK of generation " + std::to_string(generation) + " is malformed");
  }
  const Aad aad = SvmKekAad(svm, generation, key_id);
  auto key = table.Unwrap(external, *blob, aad);
  if (!key.ok() && key.status().code() == ErrorCode::kDecryptFailed) {
    return Status(ErrorCode::kDecryptFailed,
                  "SVM-KEK generation " + std::to_string(generation) +
                      " does not open under the Barbican key (wrong key or foreign blob)");
  }
  return key;
}

}  // namespace svmkey
