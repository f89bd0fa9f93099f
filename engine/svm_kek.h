// SVM-KEK under the external (Barbican) key: the top edge of the key hierarchy.
//
//   Barbican secret (key_id) ──AES-256-GCM, AAD = SvmKekAad──▶ SVM-KEK generation g
//
// The AAD binds a wrapped SVM-KEK to its SVM, its generation and the key_id it was
// wrapped under, so a blob stored in the wrong row (another SVM, another generation, or
// relabelled with another Barbican key) fails to open instead of yielding a wrong key.
#pragma once

#include <string_view>

#include "key_table.h"
#include "status.h"
#include "uuid.h"
#include "volume_metadata.h"

namespace svmkey {

// "SVMKKEK1" ‖ SVM uuid ‖ u64 generation ‖ BLAKE2b-128(key_id) ‖ u32 algorithm ‖ u32 version.
Aad SvmKekAad(const Uuid& svm, uint64_t generation, std::string_view key_id);

// Seals `svm_kek` under `external`. Errors: EncryptFailed (65539201).
Result<WrappedKey> WrapSvmKek(KeyTable& table, KeyHandle external, KeyHandle svm_kek,
                              const Uuid& svm, uint64_t generation, std::string_view key_id);

// Opens a wrapped SVM-KEK into the table. Errors: DecryptFailed (65539202) when the tag
// does not verify (wrong Barbican key or a blob that is not this row's);
// SvmKekUnwrapFailed (65537533) when the blob is malformed.
Result<KeyHandle> UnwrapSvmKek(KeyTable& table, KeyHandle external,
                               std::span<const uint8_t> wrapped, const Uuid& svm,
                               uint64_t generation, std::string_view key_id);

}  // namespace svmkey
