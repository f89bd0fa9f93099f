#include "daemon/service/key_service.h"

#include "daemon/barbican/barbican_client.h"
#include "daemon/core/log.h"
#include "daemon/service/prechecks.h"
#include "daemon/table/key_store_table.h"
#include "engine/svm_kek.h"

namespace svmkey::daemon {

namespace {

// The client settings of Barbican configuration `config`, secrets unsealed; with
// `stored_secret` false the application credential secret is left empty for the caller
// to fill (a credential being replaced need not open: the host key may have been lost).
Result<barbican::BarbicanConfig> ClientConfig(table::Rdb& rdb, const Uuid& config,
                                              bool stored_secret = true) {
  table::KeyStoreTable stores(rdb);
  auto row = stores.GetBarbicanConfig(config);
  if (!row.ok()) return row.status();
  barbican::BarbicanConfig bc;
  bc.keystone_url = row->keystone_url;
  bc.key_id = row->key_id;
  bc.application_cred_id = row->application_cred_id;
  if (stored_secret) {
    auto secret = stores.GetCredentialSecret(config);
    if (!secret.ok()) {
      return Status(ErrorCode::kNoExternalKeyValueStore, secret.status().message());
    }
    bc.application_cred_secret = std::move(secret).value();
  }
  bc.verify = row->settings.verify;
  bc.verify_host = row->settings.verify_host;
  bc.timeout_seconds = static_cast<int>(row->settings.timeout_s);
  bc.ca_file = row->settings.ca_file;
  bc.proxy_type =
      row->settings.proxy_type == "http" ? barbican::ProxyType::kHttp : barbican::ProxyType::kHttps;
  bc.proxy_host = row->settings.proxy_host;
  bc.proxy_port = row->settings.proxy_port;
  bc.proxy_username = row->settings.proxy_username;
  if (row->has_proxy_password) {
    auto pw = stores.GetProxyPassword(config);
    if (!pw.ok()) return pw.status();
    bc.proxy_password = std::move(pw).value();
  }
  return bc;
}

}  // namespace

Result<std::unique_ptr<KeyService>> KeyService::Create(size_t key_table_capacity,
                                                       ExternalKeySourceFactory sources) {
  auto table = KeyTable::Create(key_table_capacity);
  if (!table.ok()) return table.status();
  if (!sources) sources = BarbicanSources();
  return std::unique_ptr<KeyService>(new KeyService(std::move(table).value(), std::move(sources)));
}

ExternalKeySourceFactory KeyService::BarbicanSources() {
  return [](table::Rdb& rdb, const Uuid& config) -> Result<std::shared_ptr<ExternalKeySource>> {
    auto bc = ClientConfig(rdb, config);
    if (!bc.ok()) return bc.status();
    auto client = barbican::BarbicanClient::Create(std::move(bc).value());
    if (!client.ok()) {
      return Status(ErrorCode::kNoExternalKeyValueStore,
                    "Barbican configuration is not usable: " + client.status().ToString());
    }
    return std::shared_ptr<ExternalKeySource>(std::move(client).value());
  };
}

Result<std::shared_ptr<ExternalKeySource>> KeyService::Client(table::Rdb& rdb, const Uuid& config) {
  const std::string key = config.ToString();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(key);
    if (it != clients_.end()) return it->second;
  }
  auto source = sources_(rdb, config);
  if (!source.ok()) return source.status();
  std::lock_guard<std::mutex> lock(mu_);
  clients_[key] = *source;
  return *source;
}

Status KeyService::CheckCredentials(table::Rdb& rdb, const Uuid& config, const std::string& cred_id,
                                    const SecureBuffer& secret) {
  auto bc = ClientConfig(rdb, config, /*stored_secret=*/false);
  if (!bc.ok()) return bc.status();
  bc->application_cred_id = cred_id;
  auto copy = SecureBuffer::Allocate(secret.size());
  if (!copy.ok()) return copy.status();
  std::copy(secret.data(), secret.data() + secret.size(), copy->data());
  bc->application_cred_secret = std::move(copy).value();
  auto client = barbican::BarbicanClient::Create(std::move(bc).value());
  if (!client.ok()) return client.status();
  return (*client)->Authenticate();
}

void KeyService::Forget(const Uuid& config) {
  std::lock_guard<std::mutex> lock(mu_);
  clients_.erase(config.ToString());
}

Result<KeyHandle> KeyService::OpenSvmKek(table::Rdb& rdb, const Uuid& config,
                                         const table::SvmKekRow& row) {
  auto client = Client(rdb, config);
  if (!client.ok()) return client.status();
  auto external = (*client)->FetchExternalKey(*table_);
  if (!external.ok()) return external.status();
  auto kek = UnwrapSvmKek(*table_, *external, row.wrapped, row.svm, row.generation, row.key_id);
  table_->Release(*external).IgnoreError();
  return kek;
}

Result<table::WrappedSvmKek> KeyService::WrapSvmKek(table::Rdb& rdb, const Uuid& config,
                                                    const Uuid& svm, uint64_t generation,
                                                    KeyHandle svm_kek, std::string* key_id) {
  auto client = Client(rdb, config);
  if (!client.ok()) return client.status();
  auto external = (*client)->FetchExternalKey(*table_);
  if (!external.ok()) return external.status();
  *key_id = (*client)->key_id();
  auto wrapped = svmkey::WrapSvmKek(*table_, *external, svm_kek, svm, generation, *key_id);
  table_->Release(*external).IgnoreError();
  if (!wrapped.ok()) return wrapped.status();
  table::WrappedSvmKek out;
  const auto bytes = wrapped->Serialize();
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

Result<InstalledKek> KeyService::ActiveSvmKek(table::Rdb& rdb, const Uuid& svm) {
  if (auto installed = Installed(svm)) return *installed;
  std::lock_guard<std::mutex> create_lock(create_mu_);
  if (auto installed = Installed(svm)) return *installed;
  auto enabled = EnabledKeyStore(rdb, svm);
  if (!enabled.ok()) return enabled.status();
  const Uuid config = enabled->uuid;
  table::SvmKekTable keks(rdb);
  auto active = keks.GetActive(svm);
  if (active.ok()) {
    auto handle = OpenSvmKek(rdb, config, *active);
    if (!handle.ok()) return handle.status();
    Install(svm, active->generation, *handle);
    return InstalledKek{active->generation, *handle};
  }
  if (active.status().code() != ErrorCode::kEntryNotFound) return active.status();
  // First encrypted volume of the SVM: generation 1, stored active directly.
  auto fresh = table_->Generate();
  if (!fresh.ok()) return Status(ErrorCode::kSvmKeyGenerationFailed, fresh.status().message());
  std::string key_id;
  auto wrapped = WrapSvmKek(rdb, config, svm, 1, *fresh, &key_id);
  if (!wrapped.ok()) {
    table_->Release(*fresh).IgnoreError();
    return wrapped.status();
  }
  // COMMIT POINT: the wrapped generation 1 is durable in the table. Before: nothing was
  // stored (a crash loses only a key that wrapped nothing). After: volumes may use it.
  Status s = keks.InsertInitialActive(svm, 1, *wrapped, key_id);
  if (!s.ok()) {
    table_->Release(*fresh).IgnoreError();
    return s;
  }
  LogInfo("created SVM-KEK generation 1 for SVM " + svm.ToString());
  Install(svm, 1, *fresh);
  return InstalledKek{1, *fresh};
}

void KeyService::Install(const Uuid& svm, uint64_t generation, KeyHandle handle) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = installed_[svm.ToString()];
  if (slot.handle.valid() && !(slot.handle == handle)) table_->Release(slot.handle).IgnoreError();
  slot = InstalledKek{generation, handle};
}

std::optional<InstalledKek> KeyService::Installed(const Uuid& svm) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = installed_.find(svm.ToString());
  if (it == installed_.end()) return std::nullopt;
  return it->second;
}

}  // namespace svmkey::daemon
