#include "daemon/service/config_service.h"

#include <string_view>

#include "daemon/core/log.h"

namespace svmkey::daemon {
namespace {

std::string_view View(const SecureBuffer& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::optional<std::string_view> View(const std::optional<SecureBuffer>& b) {
  if (!b) return std::nullopt;
  return View(*b);
}

}  // namespace

Status CreateBarbicanConfig(table::Rdb& rdb, const table::NewBarbicanConfig& config,
                            const SecureBuffer& secret,
                            const std::optional<SecureBuffer>& proxy_password) {
  table::KeyStoreTable stores(rdb);
  SVMKEY_RETURN_IF_ERROR(stores.CreateBarbicanConfig(config, View(secret), View(proxy_password)));
  LogInfo("created Barbican configuration " + config.name + " (" + config.uuid.ToString() +
          ") for SVM " + config.svm.ToString());
  return Status::Ok();
}

Status UpdateBarbicanCredentials(table::Rdb& rdb, KeyService& keys, const Uuid& config,
                                 const std::string& cred_id, const SecureBuffer& secret) {
  table::KeyStoreTable stores(rdb);
  if (stores.GetBarbicanConfig(config).status().code() == ErrorCode::kEntryNotFound) {
    return Status(ErrorCode::kConfigNotFound, config.ToString());
  }
  Status health = keys.CheckCredentials(rdb, config, cred_id, secret);
  if (!health.ok()) {
    return Status(ErrorCode::kHealthCheckFailed,
                  "the new application credential does not authenticate: " + health.ToString());
  }
  SVMKEY_RETURN_IF_ERROR(stores.UpdateCredentials(config, cred_id, View(secret)));
  keys.Forget(config);
  LogInfo("updated the application credential of configuration " + config.ToString());
  return Status::Ok();
}

Status UpdateBarbicanSettings(table::Rdb& rdb, KeyService& keys, const Uuid& config,
                              const table::BarbicanSettingsPatch& patch,
                              const std::optional<SecureBuffer>& proxy_password) {
  table::KeyStoreTable stores(rdb);
  SVMKEY_RETURN_IF_ERROR(stores.UpdateSettings(config, patch, View(proxy_password)));
  keys.Forget(config);
  LogInfo("updated the settings of configuration " + config.ToString());
  return Status::Ok();
}

Status DeleteKeyStore(table::Rdb& rdb, KeyService& keys, const Uuid& config) {
  table::KeyStoreTable stores(rdb);
  SVMKEY_RETURN_IF_ERROR(stores.Delete(config));
  keys.Forget(config);
  LogInfo("deleted key store " + config.ToString());
  return Status::Ok();
}

KeyReachability CheckReachability(table::Rdb& rdb, KeyService& keys, const Uuid& config) {
  auto client = keys.Client(rdb, config);
  if (client.ok()) return (*client)->CheckReachability();
  KeyReachability r;
  r.code = client.status().code();
  r.message = client.status().ToString();
  return r;
}

}  // namespace svmkey::daemon
