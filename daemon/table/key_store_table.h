// KeyStoreTable: the key-store configurations of each SVM (ONTAP's barbican-kms semantics) and
// the Barbican settings behind each one (§B.1). A Barbican configuration and its key
// store share one uuid and are created and deleted together.
//
// Secrets (application credential secret, proxy password) go in as views and are
// stored sealed under the host key; no read of a row returns them. The Barbican
// client gets them, unsealed into secure memory, only through GetCredentialSecret and
// GetProxyPassword.
//
// A view over an Rdb (see rdb.h for threads and ownership).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/table/rdb.h"
#include "daemon/table/states.h"
#include "engine/secure_memory.h"
#include "engine/uuid.h"

namespace svmkey::table {

// The non-secret Barbican connection settings a PATCH may change.
struct BarbicanSettings {
  bool verify = true;
  bool verify_host = true;
  uint32_t timeout_s = 10;
  std::string proxy_type = "https";  // "http" | "https"
  std::string proxy_host;
  uint16_t proxy_port = 0;
  std::string proxy_username;
  std::string ca_file;  // PEM bundle for Keystone and Barbican; empty: system store
  friend bool operator==(const BarbicanSettings&, const BarbicanSettings&) = default;
};

struct NewBarbicanConfig {
  Uuid uuid;  // the configuration and key-store uuid, chosen by the caller
  std::string name;  // unique per SVM
  Uuid svm;
  std::string key_id;  // https URL of the Barbican secret
  std::string keystone_url;  // https URL
  std::string application_cred_id;
  BarbicanSettings settings;
};

struct KeyStoreRow {
  Uuid uuid;
  std::string name;
  Uuid svm;
  std::string type;  // "barbican"
  bool enabled = false;
  // Meaningful while enabled; a configuration that is not enabled reads "active".
  KeyStoreState state = KeyStoreState::kActive;
  friend bool operator==(const KeyStoreRow&, const KeyStoreRow&) = default;
};

// What reads return: everything except the secrets.
struct BarbicanConfigRow {
  KeyStoreRow key_store;
  std::string key_id;
  std::string keystone_url;
  std::string application_cred_id;
  BarbicanSettings settings;
  bool has_proxy_password = false;
  int64_t created_time_ms = 0;
};

struct BarbicanSettingsPatch {
  std::optional<bool> verify;
  std::optional<bool> verify_host;
  std::optional<uint32_t> timeout_s;
  std::optional<std::string> proxy_type;
  std::optional<std::string> proxy_host;
  std::optional<uint16_t> proxy_port;
  std::optional<std::string> proxy_username;
  std::optional<std::string> ca_file;
  bool empty() const {
    return !verify && !verify_host && !timeout_s && !proxy_type && !proxy_host && !proxy_port &&
           !proxy_username && !ca_file;
  }
};

struct EnableOutcome {
  enum class Kind {
    kEnabled,        // the SVM had no enabled key store; this one is now enabled, active
    kSwitchStarted,  // `previous` was enabled; this one is now enabled, `switching`
    kSwitchResumed,  // this one was already enabled and `switching`: re-run the switch
  };
  Kind kind = Kind::kEnabled;
  std::optional<Uuid> previous;
  KeyStoreState state = KeyStoreState::kActive;
};

class KeyStoreTable {
 public:
  explicit KeyStoreTable(Rdb& rdb) : rdb_(rdb) {}

  // Creates the key store (not enabled) and its Barbican config in one transaction.
  // Errors: SvmNotFound, AdminSvmNotSupported (65539807), DuplicateConfigName
  // (65539808), DuplicateEntry (uuid taken), InvalidKeyId (65539810),
  // InvalidKeystoneUrl (65539811), EmptyCredentialId (65539835),
  // InvalidCredentialSecret (65539805), MissingValue (empty name), InvalidValue
  // (proxy_type not http/https).
  Status CreateBarbicanConfig(const NewBarbicanConfig& config,
                              std::string_view application_cred_secret,
                              std::optional<std::string_view> proxy_password = std::nullopt);

  // Errors: EntryNotFound (4).
  Result<BarbicanConfigRow> GetBarbicanConfig(const Uuid& uuid);
  // By configuration name within an SVM. Errors: EntryNotFound.
  Result<BarbicanConfigRow> GetBarbicanConfigByName(const Uuid& svm, const std::string& name);
  // Every configuration, or those of one SVM; by SVM, then name.
  Result<std::vector<BarbicanConfigRow>> ListBarbicanConfigs(std::optional<Uuid> svm = {});

  // PATCH of the credentials: id and secret always together (65539841 is the daemon's
  // to raise when only one is given). Errors: ConfigNotFound (65539832),
  // PatchInvalidCredentialId (65539815), PatchInvalidCredentialSecret (65539814).
  Status UpdateCredentials(const Uuid& uuid, std::string_view application_cred_id,
                           std::string_view application_cred_secret);
  // PATCH of the settings; `proxy_password`, when given, replaces the stored one (an
  // empty view removes it). Errors: ConfigNotFound, NothingToChange, InvalidValue.
  Status UpdateSettings(const Uuid& uuid, const BarbicanSettingsPatch& patch,
                        std::optional<std::string_view> proxy_password = std::nullopt);

  // The unsealed secrets, for the Barbican client only. Errors: EntryNotFound (no such
  // config, or no proxy password set), DecryptFailed (wrong host key or tampering).
  Result<SecureBuffer> GetCredentialSecret(const Uuid& uuid);
  Result<SecureBuffer> GetProxyPassword(const Uuid& uuid);

  // Errors: KeystoreUnknown (65538908).
  Result<KeyStoreRow> GetKeyStore(const Uuid& uuid);
  // The SVM's enabled key store, or nullopt when none is enabled.
  Result<std::optional<KeyStoreRow>> GetEnabledKeyStore(const Uuid& svm);
  Result<std::vector<KeyStoreRow>> ListKeyStores(std::optional<Uuid> svm = {});

  // PATCH /security/key-stores/{uuid} {"enabled": true}, in one transaction.
  // Errors: KeystoreUnknown, KeystoreAlreadyEnabled (65539218; enabled and not
  // switching), SwitchRefused (65539212; the enabled one is neither active nor
  // switching).
  Result<EnableOutcome> Enable(const Uuid& uuid);

  // Moves a key store to `to` if IsAllowedTransition(current, to). Errors:
  // KeystoreUnknown, InvalidValue (transition not allowed; the message names both).
  Status SetState(const Uuid& uuid, KeyStoreState to);

  // Deletes an inactive configuration and its Barbican config. Errors: KeystoreUnknown,
  // KeystoreStillEnabled (65538905), KeystoreDeleteWhileSwitching (65539593),
  // ResourceInUse (8; an active or pending SVM-KEK is wrapped under its key_id and no
  // other configuration of the SVM has that key_id).
  Status Delete(const Uuid& uuid);

 private:
  Rdb& rdb_;
};

}  // namespace svmkey::table
