#include "daemon/service/prechecks.h"

#include <string>

#include "daemon/table/svm_kek_table.h"
#include "daemon/table/volume_table.h"

namespace svmkey::daemon {

using table::KeyStoreState;

Result<table::KeyStoreRow> EnabledKeyStore(table::Rdb& rdb, const Uuid& svm) {
  table::KeyStoreTable stores(rdb);
  auto enabled = stores.GetEnabledKeyStore(svm);
  if (!enabled.ok()) return enabled.status();
  if (!enabled->has_value()) {
    return Status(ErrorCode::kNoKeyManagerConfigured,
                  "SVM " + svm.ToString() + " has no enabled key store");
  }
  return std::move(**enabled);
}

ErrorCode KeyStoreStateCode(KeyStoreState state) {
  switch (state) {
    case KeyStoreState::kActive: return ErrorCode::kOk;
    case KeyStoreState::kSwitching: return ErrorCode::kKeystoreSwitching;
    case KeyStoreState::kInitializing: return ErrorCode::kKeystoreInitializing;
    case KeyStoreState::kDisabling: return ErrorCode::kKeystoreDisabling;
    case KeyStoreState::kBlocked: return ErrorCode::kKeyManagerBlocked;
    case KeyStoreState::kSvmKekRekey: return ErrorCode::kResourceInUse;
  }
  return ErrorCode::kUnexpectedException;
}

Status RequireActiveKeyStore(const table::KeyStoreRow& ks) {
  const ErrorCode code = KeyStoreStateCode(ks.state);
  if (code == ErrorCode::kOk) return Status::Ok();
  if (ks.state == KeyStoreState::kSvmKekRekey) {
    return Status(code, "SVM " + ks.svm.ToString() + " is in svm_kek_rekey: a rekey is running");
  }
  return Status(code, "key store state is " + std::string(table::ToString(ks.state)));
}

Status RekeyPrechecks(table::Rdb& rdb, const Uuid& config, bool resuming, Uuid* svm) {
  table::KeyStoreTable stores(rdb);
  auto cfg = stores.GetBarbicanConfig(config);
  if (!cfg.ok()) {
    if (cfg.status().code() == ErrorCode::kEntryNotFound) {
      return Status(ErrorCode::kEntryNotFound, "no Barbican configuration " + config.ToString());
    }
    return cfg.status();
  }
  *svm = cfg->key_store.svm;
  auto ks = EnabledKeyStore(rdb, *svm);
  if (!ks.ok()) return ks.status();
  if (!(ks->uuid == config)) {
    return Status(ErrorCode::kBarbicanNotConfigured,
                  "configuration " + config.ToString() + " is not the enabled key store of SVM " +
                      svm->ToString() + " (enabled: " + ks->uuid.ToString() + ")");
  }
  if (!(resuming && ks->state == KeyStoreState::kSvmKekRekey)) {
    SVMKEY_RETURN_IF_ERROR(RequireActiveKeyStore(*ks));
  }
  table::VolumeTable volumes(rdb);
  auto admin = volumes.CountByKeyManager(*svm, table::KeyManager::kAdmin);
  if (!admin.ok()) return admin.status();
  if (*admin > 0) {
    return Status(ErrorCode::kKeysInAdminSvm,
                  std::to_string(*admin) + " volume keys of SVM " + svm->ToString() +
                      " are held by the admin SVM's key manager");
  }
  table::SvmKekTable keks(rdb);
  auto active = keks.GetActive(*svm);
  if (!active.ok()) {
    if (active.status().code() == ErrorCode::kEntryNotFound) {
      return Status(ErrorCode::kNoInternalKeys, "SVM " + svm->ToString() + " has no SVM-KEK yet");
    }
    return active.status();
  }
  return Status::Ok();
}

}  // namespace svmkey::daemon
