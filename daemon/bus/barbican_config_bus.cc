// CreateBarbicanConfig, GetBarbicanConfig, ListBarbicanConfigs, UpdateBarbicanCredentials,
// UpdateBarbicanConfig.
#include <optional>

#include "daemon/bus/handlers.h"
#include "daemon/bus/reply_page.h"
#include "daemon/bus/row_maps.h"
#include "daemon/service/ca_store.h"
#include "daemon/service/config_service.h"
#include "daemon/table/key_store_table.h"

namespace svmkey::daemon::barbican_config_bus {
namespace {

using sdbus::Variant;

// The descriptors of one call, in the order they are read (CallerBytes has the same).
struct CallerFds {
  std::vector<CallerFd> fds;
  // Appends `fd` if given; returns its index in the bytes read, or -1.
  int Add(std::optional<CallerFd> fd) {
    if (!fd) return -1;
    fds.push_back(std::move(*fd));
    return static_cast<int>(fds.size()) - 1;
  }
};

// A CA bundle given as ca_pem (ay) or ca_fd (h); ca_file (a path) is refused. An empty
// bundle means the system store.
struct CaInput {
  std::optional<std::vector<uint8_t>> pem;
  int fd_index = -1;
  bool given() const { return pem || fd_index >= 0; }
};

CaInput ReadCa(OptionReader& o, CallerFds& fds) {
  o.RefusePath("ca_file", "'ca_pem' (ay) or 'ca_fd' (h)");
  CaInput ca;
  ca.pem = o.Bytes("ca_pem", kMaxCaBundleBytes);
  ca.fd_index = fds.Add(o.Fd("ca_fd", kMaxCaBundleBytes));
  if (ca.pem && ca.fd_index >= 0) Throw(ErrorCode::kInvalidValue, "give only one of ca_pem and ca_fd");
  if (ca.pem && !ca.pem->empty() && !LooksLikePem(ca.pem->data(), ca.pem->size())) {
    Throw(ErrorCode::kInvalidValue, "ca_pem: not a PEM bundle (no -----BEGIN block)");
  }
  return ca;
}

// On the control worker: stores the bundle as the daemon's own file and sets the
// patch's ca_file to it ("" for an empty bundle, with the old copy removed).
Status ApplyCa(const CaInput& ca, const CallerBytes& bytes, const std::string& ca_dir,
               const Uuid& config, table::BarbicanSettingsPatch& patch) {
  if (!ca.given()) return Status::Ok();
  const uint8_t* data = ca.pem ? ca.pem->data() : bytes[ca.fd_index].data();
  const size_t len = ca.pem ? ca.pem->size() : bytes[ca.fd_index].size();
  if (len == 0) {
    RemoveCaBundle(ca_dir, config);
    patch.ca_file = "";
    return Status::Ok();
  }
  auto path = StoreCaBundle(ca_dir, config, data, len, ca.pem ? "ca_pem" : "ca_fd");
  if (!path.ok()) return path.status();
  patch.ca_file = *path;
  return Status::Ok();
}

const SecureBuffer* At(const CallerBytes& bytes, int index) {
  return index < 0 ? nullptr : &bytes[index];
}

// The secret at `index` of `bytes`, trimmed (caller_input.h TrimSecret), if given.
Result<std::optional<SecureBuffer>> SecretAt(const CallerBytes& bytes, int index,
                                             const std::string& what) {
  const SecureBuffer* raw = At(bytes, index);
  if (raw == nullptr) return std::optional<SecureBuffer>();
  auto trimmed = TrimSecret(*raw, what);
  if (!trimmed.ok()) return trimmed.status();
  return std::optional<SecureBuffer>(std::move(trimmed).value());
}

// The keys a configuration's TLS and proxy settings are given with, on creation and in
// UpdateBarbicanConfig (the proxy password and the CA bundle are read separately).
table::BarbicanSettingsPatch ReadSettings(OptionReader& o) {
  table::BarbicanSettingsPatch p;
  p.verify = o.Bool("verify");
  p.verify_host = o.Bool("verify_host");
  if (auto v = o.Unsigned("timeout", 1, 600)) p.timeout_s = static_cast<uint32_t>(*v);
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
  bus.Authorize();
  OptionReader o(config);
  table::NewBarbicanConfig c = ReadNewConfig(bus, o);
  CallerFds in;
  const int secret = in.Add(o.SecretFd("application_cred_secret"));
  const table::BarbicanSettingsPatch settings = ReadSettings(o);
  ApplySettings(settings, c.settings);
  const CaInput ca = ReadCa(o, in);
  const int proxy_password = in.Add(o.SecretFd("proxy_password"));
  o.Finish();
  if (secret < 0) {
    Throw(ErrorCode::kInvalidCredentialSecret, "application_cred_secret_fd is required");
  }
  bus.DeferAfterRead(
      std::move(result), std::move(in.fds),
      [c, ca, secret, proxy_password, ca_dir = bus.settings.ca_dir](
          table::Rdb& rdb, const CallerBytes& bytes) mutable -> Result<std::string> {
        auto cred = SecretAt(bytes, secret, "application_cred_secret_fd");
        if (!cred.ok()) return cred.status();
        auto pw = SecretAt(bytes, proxy_password, "proxy_password_fd");
        if (!pw.ok()) return pw.status();
        table::BarbicanSettingsPatch patch;
        SVMKEY_RETURN_IF_ERROR(ApplyCa(ca, bytes, ca_dir, c.uuid, patch));
        if (patch.ca_file) c.settings.ca_file = *patch.ca_file;
        Status created = CreateBarbicanConfig(rdb, c, **cred, *pw);
        if (!created.ok()) {
          if (ca.given()) RemoveCaBundle(ca_dir, c.uuid);  // the daemon's own file only
          return created;
        }
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
  bus.Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  OptionReader o(credentials);
  auto id = o.String("application_cred_id", 255);
  CallerFds in;
  const int secret = in.Add(o.SecretFd("application_cred_secret"));
  o.Finish();
  if (!id || secret < 0) {
    Throw(ErrorCode::kCredentialIdAndSecretTogether,
          "give application_cred_id and application_cred_secret_fd together");
  }
  if (id->empty()) Throw(ErrorCode::kPatchInvalidCredentialId, "application_cred_id is empty");
  bus.DeferAfterRead(std::move(result), std::move(in.fds),
                     [&keys = bus.keys, config, cred_id = *id, secret](
                         table::Rdb& rdb, const CallerBytes& bytes) -> Status {
                       auto cred = SecretAt(bytes, secret, "application_cred_secret_fd");
                       if (!cred.ok()) return cred.status();
                       return UpdateBarbicanCredentials(rdb, keys, config, cred_id, **cred);
                     });
}

void UpdateSettings(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid,
                    const VariantMap& settings) {
  bus.Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  for (const char* fixed : {"key_id", "keystone_url", "svm", "name"}) {
    if (settings.count(fixed)) {
      Throw(ErrorCode::kUnexpectedArgument,
            std::string(fixed) + " cannot be changed; a new key is a new configuration");
    }
  }
  OptionReader o(settings);
  const table::BarbicanSettingsPatch p = ReadSettings(o);
  CallerFds in;
  const CaInput ca = ReadCa(o, in);
  const int proxy_password = in.Add(o.SecretFd("proxy_password"));
  o.Finish();
  if (p.empty() && !ca.given() && proxy_password < 0) {
    Throw(ErrorCode::kNothingToChange, "no setting given");
  }
  bus.DeferAfterRead(std::move(result), std::move(in.fds),
                     [&keys = bus.keys, config, patch = p, ca, proxy_password,
                      ca_dir = bus.settings.ca_dir](table::Rdb& rdb,
                                                    const CallerBytes& bytes) mutable -> Status {
                       auto pw = SecretAt(bytes, proxy_password, "proxy_password_fd");
                       if (!pw.ok()) return pw.status();
                       if (ca.given()) {  // no bundle file for a configuration that is not
                         auto row = table::KeyStoreTable(rdb).GetBarbicanConfig(config);
                         if (!row.ok()) return row.status();
                       }
                       SVMKEY_RETURN_IF_ERROR(ApplyCa(ca, bytes, ca_dir, config, patch));
                       return UpdateBarbicanSettings(rdb, keys, config, patch, *pw);
                     });
}

}  // namespace svmkey::daemon::barbican_config_bus
