// HostKey: the 32-byte key that seals the secrets stored in the table (Barbican
// application credential secrets, proxy passwords), so a copy of rdb.sqlite alone does
// not reveal them.
//
// Where the key comes from (RdbOptions picks one):
//   - a file beside the table (`<state dir>/host.key`), created on first use with
//     O_CREAT|O_EXCL and mode 0600 from libsodium randomness, fsync'ed with its
//     directory; refused on later loads if it is not 32 bytes or is readable by group
//     or others;
//   - a systemd credential (`$CREDENTIALS_DIRECTORY/host-key`, LoadCredential= or
//     SetCredentialEncrypted=), read-only and never created by us.
//
// Sealing: XChaCha20-Poly1305 (libsodium crypto_aead_xchacha20poly1305_ietf) with a
// fresh random 192-bit nonce per seal, so random nonces never need counting. The AAD
// binds the sealed value to its row and column ("svmkey-rdb-secret/1", the config uuid,
// the field name): a sealed secret copied into another row or field fails to open.
// Sealed form: version byte 1 ‖ nonce (24) ‖ ciphertext ‖ tag (16).
//
// Ownership: the key lives only in a SecureBuffer owned by this object. Unsealed
// secrets are returned in SecureBuffers owned by the caller.
// Threads: Seal and Open are const and touch no shared state; safe from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/secure_memory.h"
#include "engine/status.h"
#include "engine/uuid.h"

namespace svmkey::table {

inline constexpr size_t kHostKeyBytes = 32;
inline constexpr uint8_t kSealVersion = 1;
inline constexpr size_t kSealNonceBytes = 24;
inline constexpr size_t kSealTagBytes = 16;
inline constexpr size_t kSealOverhead = 1 + kSealNonceBytes + kSealTagBytes;

class HostKey {
 public:
  // Loads the key file at `path`, creating it (0600, 32 random bytes) when absent.
  static Result<HostKey> LoadOrCreateFile(const std::string& path);
  // Loads a systemd credential (or any existing key file); never creates one.
  static Result<HostKey> LoadCredential(const std::string& path);
  // "$CREDENTIALS_DIRECTORY/host-key" when the variable is set, else empty.
  static std::string CredentialPathFromEnvironment();

  HostKey(HostKey&&) noexcept = default;
  HostKey& operator=(HostKey&&) noexcept = default;

  // Seals `plaintext` for (owner, field). Fails only if libsodium does.
  Result<std::vector<uint8_t>> Seal(const Uuid& owner, std::string_view field,
                                    std::span<const uint8_t> plaintext) const;
  // Opens a sealed value into secure memory. DecryptFailed when the tag does not verify
  // (wrong key, wrong row or field, or tampering); InvalidValue when malformed.
  Result<SecureBuffer> Open(const Uuid& owner, std::string_view field,
                            std::span<const uint8_t> sealed) const;

 private:
  HostKey() = default;
  static Result<HostKey> ReadKeyFile(const std::string& path, bool require_owner_only);
  SecureBuffer key_;
};

}  // namespace svmkey::table
