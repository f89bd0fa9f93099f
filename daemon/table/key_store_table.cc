#include "daemon/table/key_store_table.h"

#include <span>

#include "daemon/table/table_internal.h"

namespace svmkey::table {
namespace {

constexpr std::string_view kCredSecretField = "application_cred_secret";
constexpr std::string_view kProxyPasswordField = "proxy_password";

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

bool IsHttpsUrl(std::string_view s) { return s.size() > 8 && s.substr(0, 8) == "https://"; }

// Column lists shared by the readers below (the column order is what ReadKeyStore and
// ReadConfig expect).
#define KS_COLUMNS "ks.uuid, ks.name, ks.svm_uuid, ks.type, ks.enabled, ks.state"
#define BC_COLUMNS                                                                        \
  KS_COLUMNS                                                                              \
  ", bc.key_id, bc.keystone_url, bc.application_cred_id, bc.verify, bc.verify_host, "     \
  "bc.timeout, bc.proxy_type, bc.proxy_host, bc.proxy_port, bc.proxy_username, bc.ca_file, " \
  "bc.proxy_password IS NOT NULL, bc.created_time"

Result<KeyStoreRow> ReadKeyStore(const Statement& st) {
  KeyStoreRow row;
  Result<Uuid> uuid = ParseStoredUuid(st.ColumnText(0), "key store");
  if (!uuid.ok()) return uuid.status();
  Result<Uuid> svm = ParseStoredUuid(st.ColumnText(2), "svm");
  if (!svm.ok()) return svm.status();
  std::optional<KeyStoreState> state = KeyStoreStateFromString(st.ColumnText(5));
  if (!state) return Status(ErrorCode::kUnexpectedException, "malformed key store state");
  row.uuid = uuid.value();
  row.name = st.ColumnText(1);
  row.svm = svm.value();
  row.type = st.ColumnText(3);
  row.enabled = st.ColumnInt(4) != 0;
  row.state = *state;
  return row;
}

Result<BarbicanConfigRow> ReadConfig(const Statement& st) {
  Result<KeyStoreRow> ks = ReadKeyStore(st);
  if (!ks.ok()) return ks.status();
  BarbicanConfigRow row;
  row.key_store = std::move(ks).value();
  row.key_id = st.ColumnText(6);
  row.keystone_url = st.ColumnText(7);
  row.application_cred_id = st.ColumnText(8);
  row.settings.verify = st.ColumnInt(9) != 0;
  row.settings.verify_host = st.ColumnInt(10) != 0;
  row.settings.timeout_s = static_cast<uint32_t>(st.ColumnInt(11));
  row.settings.proxy_type = st.ColumnText(12);
  row.settings.proxy_host = st.ColumnText(13);
  row.settings.proxy_port = static_cast<uint16_t>(st.ColumnInt(14));
  row.settings.proxy_username = st.ColumnText(15);
  row.settings.ca_file = st.ColumnText(16);
  row.has_proxy_password = st.ColumnInt(17) != 0;
  row.created_time_ms = st.ColumnInt(18);
  return row;
}

template <typename Row, typename Reader>
Result<std::vector<Row>> ReadAll(Statement& st, Reader read) {
  std::vector<Row> out;
  for (;;) {
    Result<bool> more = st.Step();
    if (!more.ok()) return more.status();
    if (!more.value()) break;
    Result<Row> row = read(st);
    if (!row.ok()) return row.status();
    out.push_back(std::move(row).value());
  }
  return out;
}

}  // namespace

Result<KeyStoreRow> LoadKeyStoreLocked(Db& db, const Uuid& uuid) {
  Result<Statement> st = db.Cached("SELECT " KS_COLUMNS " FROM key_stores ks WHERE ks.uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, uuid.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return Status(ErrorCode::kKeystoreUnknown, "key store " + uuid.ToString());
  return ReadKeyStore(st.value());
}

namespace {

Status WriteState(Db& db, const Uuid& uuid, KeyStoreState state, bool enabled) {
  Result<Statement> st =
      db.Cached("UPDATE key_stores SET state = ?2, enabled = ?3 WHERE uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, uuid.ToString()).Bind(2, ToString(state)).Bind(3, enabled);
  return st->Run();
}

// A proxy is a host and a port; a port, user name or password without a host (or a
// host without a port) is a configuration the HTTPS client refuses at the next enable
// or rekey, so it is refused when stored (barbican_config.cc ValidateConfig agrees).
Status ValidateProxy(std::string_view host, int64_t port, bool has_username, bool has_password) {
  if (host.empty() && (port != 0 || has_username || has_password)) {
    return Status(ErrorCode::kInvalidValue,
                  "proxy_host: proxy_port, proxy_username or proxy_password set without it");
  }
  if (!host.empty() && (port < 1 || port > 65535)) {
    return Status(ErrorCode::kInvalidValue, "proxy_port must be 1..65535 when proxy_host is set");
  }
  return Status::Ok();
}

Status ValidateSettings(const BarbicanSettings& s, bool has_proxy_password) {
  if (s.proxy_type != "http" && s.proxy_type != "https") {
    return Status(ErrorCode::kInvalidValue, "proxy_type must be http or https");
  }
  return ValidateProxy(s.proxy_host, s.proxy_port, !s.proxy_username.empty(), has_proxy_password);
}

// The proxy settings of a config as stored (inside the updating transaction, so an
// update that would leave a broken combination is rolled back).
Status ValidateStoredProxy(Db& db, const Uuid& uuid) {
  Result<Statement> st = db.Cached(
      "SELECT proxy_host, proxy_port, proxy_username, proxy_password IS NOT NULL "
      "FROM barbican_configs WHERE uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, uuid.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return Status(ErrorCode::kConfigNotFound, "Barbican config " + uuid.ToString());
  return ValidateProxy(st->ColumnText(0), st->ColumnInt(1), !st->ColumnText(2).empty(),
                       st->ColumnInt(3) != 0);
}

// Reads one sealed column of a config and opens it.
Result<SecureBuffer> OpenSealed(Rdb& rdb, const Uuid& uuid, const char* sql,
                                std::string_view field) {
  Rdb::Session s = rdb.Lock();
  Result<Statement> st = s.db().Cached(sql);
  if (!st.ok()) return st.status();
  st->Bind(1, uuid.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) {
    return Status(ErrorCode::kEntryNotFound, "Barbican config " + uuid.ToString());
  }
  if (st->ColumnIsNull(0)) {
    return Status(ErrorCode::kEntryNotFound,
                  "Barbican config " + uuid.ToString() + " has no " + std::string(field));
  }
  Result<SecureBuffer> opened = s.host_key().Open(uuid, field, st->ColumnBlob(0));
  if (opened.status().code() == ErrorCode::kDecryptFailed) {
    // The one way out is to store the secret again: it is then sealed under the host
    // key the daemon has now.
    const bool credential = field == kCredSecretField;
    return Status(ErrorCode::kDecryptFailed,
                  std::string(credential ? "stored credential" : "stored proxy password") +
                      " cannot be unsealed: the host key changed or was lost; re-enter it with " +
                      (credential ? "UpdateBarbicanCredentials" : "UpdateBarbicanConfig"));
  }
  return opened;
}

// Runs a prepared one-row UPDATE of barbican_configs and commits it; a config that is
// not there (the update changed nothing) is 65539832, and the transaction rolls back;
// so does an update whose result fails ValidateStoredProxy when `check_proxy`.
Status RunConfigUpdate(Db& db, Transaction& txn, Statement& st, const Uuid& uuid,
                       bool check_proxy = false) {
  SVMKEY_RETURN_IF_ERROR(st.Run());
  if (db.changes() == 0) {
    return Status(ErrorCode::kConfigNotFound, "Barbican config " + uuid.ToString());
  }
  if (check_proxy) SVMKEY_RETURN_IF_ERROR(ValidateStoredProxy(db, uuid));
  return txn.Commit();
}

}  // namespace

Status KeyStoreTable::CreateBarbicanConfig(const NewBarbicanConfig& c,
                                           std::string_view application_cred_secret,
                                           std::optional<std::string_view> proxy_password) {
  // Argument checks first: they need no table access and say which field is wrong.
  if (c.name.empty()) return Status(ErrorCode::kMissingValue, "configuration.name");
  if (!IsHttpsUrl(c.key_id)) return Status(ErrorCode::kInvalidKeyId, "key_id");
  if (!IsHttpsUrl(c.keystone_url)) return Status(ErrorCode::kInvalidKeystoneUrl, "keystone_url");
  if (c.application_cred_id.empty()) {
    return Status(ErrorCode::kEmptyCredentialId, "application_cred_id");
  }
  if (application_cred_secret.empty()) {
    return Status(ErrorCode::kInvalidCredentialSecret, "application_cred_secret");
  }
  SVMKEY_RETURN_IF_ERROR(
      ValidateSettings(c.settings, proxy_password.has_value() && !proxy_password->empty()));

  Rdb::Session s = rdb_.Lock();
  Result<std::vector<uint8_t>> sealed_secret =
      s.host_key().Seal(c.uuid, kCredSecretField, Bytes(application_cred_secret));
  if (!sealed_secret.ok()) return sealed_secret.status();
  std::optional<std::vector<uint8_t>> sealed_proxy;
  if (proxy_password && !proxy_password->empty()) {
    Result<std::vector<uint8_t>> p = s.host_key().Seal(c.uuid, kProxyPasswordField,
                                                       Bytes(*proxy_password));
    if (!p.ok()) return p.status();
    sealed_proxy = std::move(p).value();
  }

  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return txn.status();
  {
    Result<Statement> svm = db.Cached("SELECT kind FROM svms WHERE uuid = ?1");
    if (!svm.ok()) return svm.status();
    svm->Bind(1, c.svm.ToString());
    Result<bool> row = svm->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) return Status(ErrorCode::kSvmNotFound, "svm " + c.svm.ToString());
    if (svm->ColumnText(0) != "data") {
      return Status(ErrorCode::kAdminSvmNotSupported, "svm " + c.svm.ToString());
    }
  }
  {
    Result<Statement> dup =
        db.Cached("SELECT 1 FROM key_stores WHERE svm_uuid = ?1 AND name = ?2");
    if (!dup.ok()) return dup.status();
    dup->Bind(1, c.svm.ToString()).Bind(2, c.name);
    Result<bool> row = dup->Step();
    if (!row.ok()) return row.status();
    if (row.value()) return Status(ErrorCode::kDuplicateConfigName, "configuration " + c.name);
  }
  {
    Result<Statement> ks = db.Cached(
        "INSERT INTO key_stores (uuid, name, svm_uuid, type, enabled, state) "
        "VALUES (?1, ?2, ?3, 'barbican', 0, 'active')");
    if (!ks.ok()) return ks.status();
    ks->Bind(1, c.uuid.ToString()).Bind(2, c.name).Bind(3, c.svm.ToString());
    Status st = ks->Run();
    if (!st.ok()) {
      if (st.code() == ErrorCode::kDuplicateEntry) {
        return Status(ErrorCode::kDuplicateEntry, "key store " + c.uuid.ToString());
      }
      return st;
    }
  }
  {
    Result<Statement> bc = db.Cached(
        "INSERT INTO barbican_configs (uuid, key_id, keystone_url, application_cred_id, "
        "application_cred_secret, verify, verify_host, timeout, proxy_type, proxy_host, "
        "proxy_port, proxy_username, proxy_password, ca_file, created_time) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");
    if (!bc.ok()) return bc.status();
    const BarbicanSettings& set = c.settings;
    bc->Bind(1, c.uuid.ToString())
        .Bind(2, c.key_id)
        .Bind(3, c.keystone_url)
        .Bind(4, c.application_cred_id)
        .Bind(5, std::span<const uint8_t>(sealed_secret.value()))
        .Bind(6, set.verify)
        .Bind(7, set.verify_host)
        .Bind(8, set.timeout_s)
        .Bind(9, set.proxy_type)
        .Bind(10, set.proxy_host)
        .Bind(11, int64_t{set.proxy_port})
        .Bind(12, set.proxy_username)
        .Bind(14, set.ca_file)
        .Bind(15, s.now_ms());
    if (sealed_proxy) {
      bc->Bind(13, std::span<const uint8_t>(*sealed_proxy));
    } else {
      bc->BindNull(13);
    }
    SVMKEY_RETURN_IF_ERROR(bc->Run());
  }
  // COMMIT POINT: the configuration exists, not enabled. Before: nothing was written.
  return txn->Commit();
}

Result<BarbicanConfigRow> KeyStoreTable::GetBarbicanConfig(const Uuid& uuid) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT " BC_COLUMNS
      " FROM barbican_configs bc JOIN key_stores ks ON ks.uuid = bc.uuid WHERE bc.uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, uuid.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) {
    return Status(ErrorCode::kEntryNotFound, "Barbican config " + uuid.ToString());
  }
  return ReadConfig(st.value());
}

Result<BarbicanConfigRow> KeyStoreTable::GetBarbicanConfigByName(const Uuid& svm,
                                                                 const std::string& name) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT " BC_COLUMNS
      " FROM barbican_configs bc JOIN key_stores ks ON ks.uuid = bc.uuid "
      "WHERE ks.svm_uuid = ?1 AND ks.name = ?2");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString()).Bind(2, name);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return Status(ErrorCode::kEntryNotFound, "Barbican config " + name);
  return ReadConfig(st.value());
}

Result<std::vector<BarbicanConfigRow>> KeyStoreTable::ListBarbicanConfigs(
    std::optional<Uuid> svm) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT " BC_COLUMNS
      " FROM barbican_configs bc JOIN key_stores ks ON ks.uuid = bc.uuid "
      "WHERE ?1 IS NULL OR ks.svm_uuid = ?1 ORDER BY ks.svm_uuid, ks.name");
  if (!st.ok()) return st.status();
  if (svm) {
    st->Bind(1, svm->ToString());
  } else {
    st->BindNull(1);
  }
  return ReadAll<BarbicanConfigRow>(st.value(), ReadConfig);
}

Status KeyStoreTable::UpdateCredentials(const Uuid& uuid, std::string_view application_cred_id,
                                        std::string_view application_cred_secret) {
  if (application_cred_id.empty()) {
    return Status(ErrorCode::kPatchInvalidCredentialId, "application_cred_id");
  }
  if (application_cred_secret.empty()) {
    return Status(ErrorCode::kPatchInvalidCredentialSecret, "application_cred_secret");
  }
  Rdb::Session s = rdb_.Lock();
  Result<std::vector<uint8_t>> sealed =
      s.host_key().Seal(uuid, kCredSecretField, Bytes(application_cred_secret));
  if (!sealed.ok()) return sealed.status();
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return txn.status();
  Result<Statement> st = s.db().Cached(
      "UPDATE barbican_configs SET application_cred_id = ?2, application_cred_secret = ?3 "
      "WHERE uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, uuid.ToString())
      .Bind(2, application_cred_id)
      .Bind(3, std::span<const uint8_t>(sealed.value()));
  return RunConfigUpdate(s.db(), *txn, *st, uuid);
}

Status KeyStoreTable::UpdateSettings(const Uuid& uuid, const BarbicanSettingsPatch& patch,
                                     std::optional<std::string_view> proxy_password) {
  if (patch.empty() && !proxy_password) {
    return Status(ErrorCode::kNothingToChange, "Barbican config " + uuid.ToString());
  }
  if (patch.proxy_type && *patch.proxy_type != "http" && *patch.proxy_type != "https") {
    return Status(ErrorCode::kInvalidValue, "proxy_type must be http or https");
  }
  Rdb::Session s = rdb_.Lock();
  std::optional<std::vector<uint8_t>> sealed_proxy;
  if (proxy_password && !proxy_password->empty()) {
    Result<std::vector<uint8_t>> p =
        s.host_key().Seal(uuid, kProxyPasswordField, Bytes(*proxy_password));
    if (!p.ok()) return p.status();
    sealed_proxy = std::move(p).value();
  }
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return txn.status();
  // COALESCE keeps the stored value where the patch has none. ?10 says whether the
  // proxy password is part of the patch (then ?11, possibly NULL, replaces it).
  Result<Statement> st = s.db().Cached(
      "UPDATE barbican_configs SET verify = COALESCE(?2, verify), "
      "verify_host = COALESCE(?3, verify_host), timeout = COALESCE(?4, timeout), "
      "proxy_type = COALESCE(?5, proxy_type), proxy_host = COALESCE(?6, proxy_host), "
      "proxy_port = COALESCE(?7, proxy_port), proxy_username = COALESCE(?8, proxy_username), "
      "ca_file = COALESCE(?9, ca_file), "
      "proxy_password = CASE WHEN ?10 THEN ?11 ELSE proxy_password END WHERE uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, uuid.ToString())
      .Bind(2, patch.verify)
      .Bind(3, patch.verify_host)
      .Bind(4, patch.timeout_s)
      .Bind(5, patch.proxy_type)
      .Bind(6, patch.proxy_host)
      .Bind(8, patch.proxy_username)
      .Bind(9, patch.ca_file)
      .Bind(10, proxy_password.has_value());
  if (patch.proxy_port) {
    st->Bind(7, int64_t{*patch.proxy_port});
  } else {
    st->BindNull(7);
  }
  if (sealed_proxy) {
    st->Bind(11, std::span<const uint8_t>(*sealed_proxy));
  } else {
    st->BindNull(11);
  }
  // The merged result, not the patch, must be a usable proxy setting.
  return RunConfigUpdate(s.db(), *txn, *st, uuid, /*check_proxy=*/true);
}

Result<SecureBuffer> KeyStoreTable::GetCredentialSecret(const Uuid& uuid) {
  return OpenSealed(rdb_, uuid,
                    "SELECT application_cred_secret FROM barbican_configs WHERE uuid = ?1",
                    kCredSecretField);
}

Result<SecureBuffer> KeyStoreTable::GetProxyPassword(const Uuid& uuid) {
  return OpenSealed(rdb_, uuid, "SELECT proxy_password FROM barbican_configs WHERE uuid = ?1",
                    kProxyPasswordField);
}

Result<KeyStoreRow> KeyStoreTable::GetKeyStore(const Uuid& uuid) {
  Rdb::Session s = rdb_.Lock();
  return LoadKeyStoreLocked(s.db(), uuid);
}

Result<std::optional<KeyStoreRow>> KeyStoreTable::GetEnabledKeyStore(const Uuid& svm) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT " KS_COLUMNS " FROM key_stores ks WHERE ks.svm_uuid = ?1 AND ks.enabled = 1");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return std::optional<KeyStoreRow>();
  Result<KeyStoreRow> ks = ReadKeyStore(st.value());
  if (!ks.ok()) return ks.status();
  return std::optional<KeyStoreRow>(std::move(ks).value());
}

Result<std::vector<KeyStoreRow>> KeyStoreTable::ListKeyStores(std::optional<Uuid> svm) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT " KS_COLUMNS
      " FROM key_stores ks WHERE ?1 IS NULL OR ks.svm_uuid = ?1 ORDER BY ks.svm_uuid, ks.name");
  if (!st.ok()) return st.status();
  if (svm) {
    st->Bind(1, svm->ToString());
  } else {
    st->BindNull(1);
  }
  return ReadAll<KeyStoreRow>(st.value(), ReadKeyStore);
}

Result<EnableOutcome> KeyStoreTable::Enable(const Uuid& uuid) {
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return txn.status();
  Result<KeyStoreRow> target = LoadKeyStoreLocked(db, uuid);
  if (!target.ok()) return target.status();
  EnableOutcome out;
  if (target->enabled) {
    if (target->state == KeyStoreState::kSwitching) {
      // ONTAP: re-issuing the enable on a stuck switch resumes it. Nothing changes in
      // the table; the caller re-runs the switch.
      out.kind = EnableOutcome::Kind::kSwitchResumed;
      out.state = KeyStoreState::kSwitching;
      return out;
    }
    return Status(ErrorCode::kKeystoreAlreadyEnabled, "key store " + uuid.ToString());
  }
  Result<Statement> cur = db.Cached(
      "SELECT " KS_COLUMNS " FROM key_stores ks WHERE ks.svm_uuid = ?1 AND ks.enabled = 1");
  if (!cur.ok()) return cur.status();
  cur->Bind(1, target->svm.ToString());
  Result<bool> has = cur->Step();
  if (!has.ok()) return has.status();
  if (!has.value()) {
    SVMKEY_RETURN_IF_ERROR(WriteState(db, uuid, KeyStoreState::kActive, true));
    out.kind = EnableOutcome::Kind::kEnabled;
    out.state = KeyStoreState::kActive;
  } else {
    Result<KeyStoreRow> previous = ReadKeyStore(cur.value());
    if (!previous.ok()) return previous.status();
    cur = Statement();  // release the read cursor before writing
    if (previous->state != KeyStoreState::kActive &&
        previous->state != KeyStoreState::kSwitching) {
      return Status(ErrorCode::kSwitchRefused, "enabled key store " +
                                                   previous->uuid.ToString() + " is " +
                                                   std::string(ToString(previous->state)));
    }
    // The old configuration stops being the enabled one before the new one is enabled:
    // the partial unique index allows one enabled key store per SVM at any moment.
    SVMKEY_RETURN_IF_ERROR(WriteState(db, previous->uuid, KeyStoreState::kActive, false));
    SVMKEY_RETURN_IF_ERROR(WriteState(db, uuid, KeyStoreState::kSwitching, true));
    out.kind = EnableOutcome::Kind::kSwitchStarted;
    out.previous = previous->uuid;
    out.state = KeyStoreState::kSwitching;
  }
  // COMMIT POINT: the new configuration is the enabled one. Before: the old one still
  // is. The SVM-KEK rows record which key_id wraps them, so both sides stay readable.
  SVMKEY_RETURN_IF_ERROR(txn->Commit());
  return out;
}

Status SetKeyStoreStateLocked(Db& db, const Uuid& uuid, KeyStoreState to) {
  Result<KeyStoreRow> ks = LoadKeyStoreLocked(db, uuid);
  if (!ks.ok()) return ks.status();
  if (!IsAllowedTransition(ks->state, to)) {
    return Status(ErrorCode::kInvalidValue, "key store " + uuid.ToString() + ": " +
                                                std::string(ToString(ks->state)) + " -> " +
                                                std::string(ToString(to)) + " not allowed");
  }
  return WriteState(db, uuid, to, ks->enabled);
}

Status KeyStoreTable::SetState(const Uuid& uuid, KeyStoreState to) {
  Rdb::Session s = rdb_.Lock();
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return txn.status();
  SVMKEY_RETURN_IF_ERROR(SetKeyStoreStateLocked(s.db(), uuid, to));
  return txn->Commit();
}

Status KeyStoreTable::Delete(const Uuid& uuid) {
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return txn.status();
  Result<KeyStoreRow> ks = LoadKeyStoreLocked(db, uuid);
  if (!ks.ok()) return ks.status();
  if (ks->enabled) return Status(ErrorCode::kKeystoreStillEnabled, "key store " + uuid.ToString());
  if (ks->state == KeyStoreState::kSwitching) {
    return Status(ErrorCode::kKeystoreDeleteWhileSwitching, "key store " + uuid.ToString());
  }
  {
    // Deleting the only configuration that can reach the Barbican key wrapping a live
    // SVM-KEK would make that key (and every blob under it) unopenable.
    Result<Statement> used = db.Cached(
        "SELECT k.generation FROM svm_keks k JOIN barbican_configs bc ON bc.key_id = k.key_id "
        "WHERE bc.uuid = ?1 AND k.svm_uuid = ?2 AND k.state IN ('active', 'pending') "
        "AND NOT EXISTS (SELECT 1 FROM barbican_configs o JOIN key_stores oks "
        "ON oks.uuid = o.uuid WHERE o.key_id = k.key_id AND oks.svm_uuid = ?2 "
        "AND o.uuid <> ?1)");
    if (!used.ok()) return used.status();
    used->Bind(1, uuid.ToString()).Bind(2, ks->svm.ToString());
    Result<bool> row = used->Step();
    if (!row.ok()) return row.status();
    if (row.value()) {
      return Status(ErrorCode::kResourceInUse,
                    "key store " + uuid.ToString() + " holds the key wrapping SVM-KEK generation " +
                        std::to_string(used->ColumnInt(0)));
    }
  }
  Result<Statement> del = db.Cached("DELETE FROM key_stores WHERE uuid = ?1");
  if (!del.ok()) return del.status();
  del->Bind(1, uuid.ToString());
  SVMKEY_RETURN_IF_ERROR(del->Run());  // barbican_configs row goes by ON DELETE CASCADE
  return txn->Commit();
}

}  // namespace svmkey::table
