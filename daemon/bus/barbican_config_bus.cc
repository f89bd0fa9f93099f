// CreateBarbicanConfig, GetBarbicanConfig, ListBarbicanConfigs, UpdateBarbicanCredentials,
// UpdateBarbicanConfig.
#include <optional>

#include "daemon/bus/handlers.h"
#include "daemon/bus/reply_page.h"
#include "daemon/bus/row_maps.h"
#include "daemon/service/config_service.h"
#include "daemon/table/key_store_table.h"

namespace svmkey::daemon::barbican_config_bus {
namespace {

using sdbus::Variant;

// The keys a configuration's TLS and proxy settings are given with, on creation and in
// UpdateBarbicanConfig (the proxy password is read separately, as a secret).
table::BarbicanSettingsPatch ReadSettings(OptionReader& o) {
  table::BarbicanSettingsPatch p;
  p.verify = o.Bool("verify");
  p.verify_host = o.Bool("verify_host");
  if (auto v = o.Unsigned("timeout", 1, 600)) p.timeout_s = static_cast<uint32_t>(*v);
  p.ca_file = o.String("ca_file");
  p.proxy_type = o.String("proxy_type", 8);
  p.proxy_host = o.String("proxy_host", 255);
  if (auto v = o.Unsigned("proxy_port", 0, 65535)) p.proxy_port = static_cast<uint16_t>(*v);
  p.proxy_username = o.String("proxy_username", 255);
  return p;
}

void ApplySettings(const table::BarbicanSettingsPatch& p, table::BarbicanSettings& s) {
  if (p.verify) s.verify = *p.verify;
  if (p.verify_host) s.verify_host = *p.verify_host;
  if (p.timeout_s) s.timeout_s = *p.timeout_s;
  if (p.ca_file) s.ca_file = *p.ca_file;
  if (p.proxy_type) s.proxy_type = *p.proxy_type;
  if (p.proxy_host) s.proxy_host = *p.proxy_host;
  if (p.proxy_port) s.proxy_port = *p.proxy_port;
  if (p.proxy_username) s.proxy_username = *p.proxy_username;
}

// Everything of a new configuration but its secrets.
table::NewBarbicanConfig ReadNewConfig(BusContext& bus, OptionReader& o) {
  const auto svm_text = o.String("svm", 255);
  if (!svm_text) Throw(ErrorCode::kMissingValue, "svm is required");
  table::NewBarbicanConfig c;
  c.uuid = Uuid::Random();
  c.svm = bus.ResolveSvm(*svm_text);
  const auto name = o.String("name", 255);
  if (!name) Throw(ErrorCode::kMissingValue, "name is required");
  c.name = RequireName(*name, "name");
  c.key_id = o.String("key_id").value_or("");
  c.keystone_url = o.String("keystone_url").value_or("");
  c.application_cred_id = o.String("application_cred_id", 255).value_or("");
  return c;
}

}  // namespace

void Create(BusContext& bus, sdbus::Result<std::string>&& result, const VariantMap& config) {
  const Caller caller = bus.Authorize();
  OptionReader o(config);
  table::NewBarbicanConfig c = ReadNewConfig(bus, o);
  auto secret = o.Secret("application_cred_secret", caller.uid);
  ApplySettings(ReadSettings(o), c.settings);
  auto proxy_password = o.Secret("proxy_password", caller.uid);
  o.Finish();
  if (!secret) {
    Throw(ErrorCode::kInvalidCredentialSecret,
          "application_cred_secret_fd or application_cred_secret_file is required");
  }
  auto secrets = std::make_shared<std::pair<SecureBuffer, std::optional<SecureBuffer>>>(
      std::move(*secret), std::move(proxy_password));
  bus.Defer(std::move(result), [c, secrets](table::Rdb& rdb) -> Result<std::string> {
    SVMKEY_RETURN_IF_ERROR(CreateBarbicanConfig(rdb, c, secrets->first, secrets->second));
    return c.uuid.ToString();
  });
}

void Get(BusContext& bus, sdbus::Result<VariantMap>&& result, const std::string& uuid,
         const VariantMap& options) {
  const Uuid config = RequireUuid(uuid, "uuid");
  OptionReader o(options);
  const bool reachability = o.Bool("reachability").value_or(false);
  o.Finish();
  auto row = table::KeyStoreTable(bus.rdb).GetBarbicanConfig(config);
  if (!row.ok()) Throw(ErrorCode::kEntryNotFound, "no Barbican configuration " + config.ToString());
  VariantMap map = BarbicanConfigToMap(*row, SvmName(bus.rdb, row->key_store.svm));
  if (!reachability) return result.returnResults(map);
  bus.Authorize();  // a reachability check talks to Keystone with the stored credential
  bus.Defer(std::move(result), [&keys = bus.keys, config, map](table::Rdb& rdb) mutable {
    const KeyReachability r = CheckReachability(rdb, keys, config);
    map["barbican_reachability_reachable"] = Variant(r.reachable);
    map["barbican_reachability_code"] = Variant(std::to_string(static_cast<uint32_t>(r.code)));
    map["barbican_reachability_message"] = Variant(r.message);
    return Result<VariantMap>(map);
  });
}

std::vector<VariantMap> List(BusContext& bus, const VariantMap& filter) {
  const key_store_bus::KeyStoreFilter f = key_store_bus::ReadFilter(bus, filter);
  const auto rows = Check(table::KeyStoreTable(bus.rdb).ListBarbicanConfigs(f.svm));
  return PageOf(
      rows, f.after, f.limit,
      [](const table::BarbicanConfigRow& row) { return row.key_store.uuid.ToString(); },
      [&](const table::BarbicanConfigRow& row) {
        return BarbicanConfigToMap(row, SvmName(bus.rdb, row.key_store.svm));
      });
}

void UpdateCredentials(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid,
                       const VariantMap& credentials) {
  const Caller caller = bus.Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  OptionReader o(credentials);
  auto id = o.String("application_cred_id", 255);
  auto secret = o.Secret("application_cred_secret", caller.uid);
  o.Finish();
  if (!id || !secret) {
    Throw(ErrorCode::kCredentialIdAndSecretTogether,
          "give application_cred_id and application_cred_secret_fd/_file together");
  }
  if (id->empty()) Throw(ErrorCode::kPatchInvalidCredentialId, "application_cred_id is empty");
  auto shared_secret = std::make_shared<SecureBuffer>(std::move(*secret));
  bus.Defer(std::move(result),
            [&keys = bus.keys, config, cred_id = *id, shared_secret](table::Rdb& rdb) {
              return UpdateBarbicanCredentials(rdb, keys, config, cred_id, *shared_secret);
            });
}

void UpdateSettings(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid,
                    const VariantMap& settings) {
  const Caller caller = bus.Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  for (const char* fixed : {"key_id", "keystone_url", "svm", "name"}) {
    if (settings.count(fixed)) {
      Throw(ErrorCode::kUnexpectedArgument,
            std::string(fixed) + " cannot be changed; a new key is a new configuration");
    }
  }
  OptionReader o(settings);
  const table::BarbicanSettingsPatch p = ReadSettings(o);
  auto pw = std::make_shared<std::optional<SecureBuffer>>(o.Secret("proxy_password", caller.uid));
  o.Finish();
  if (p.empty() && !*pw) Throw(ErrorCode::kNothingToChange, "no setting given");
  bus.Defer(std::move(result), [&keys = bus.keys, config, p, pw](table::Rdb& rdb) {
    return UpdateBarbicanSettings(rdb, keys, config, p, *pw);
  });
}

}  // namespace svmkey::daemon::barbican_config_bus
