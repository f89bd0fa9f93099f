#include "daemon/service/key_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <tuple>

#include "daemon/core/bus_error.h"
#include "daemon/core/log.h"
#include "daemon/table/job_table.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/svm_kek_table.h"
#include "daemon/table/svm_table.h"
#include "daemon/table/volume_table.h"
#include "engine/svm_kek.h"
#include "engine/volume.h"
#include "engine/volset/kek_file.h"
#include "engine/volset/volume_set_manifest.h"

namespace svmkey::daemon {
namespace {

using sdbus::Variant;

[[noreturn]] void Throw(ErrorCode code, std::string message) {
  ThrowStatus(Status(code, std::move(message)));
}

template <typename T>
T Check(Result<T> r) {
  if (!r.ok()) ThrowStatus(r.status());
  return std::move(r).value();
}

void Check(const Status& s) {
  if (!s.ok()) ThrowStatus(s);
}

std::chrono::seconds ReturnTimeout(uint32_t value) {
  if (value > 120) {
    Throw(ErrorCode::kInvalidValue,
          "return_timeout " + std::to_string(value) + " is out of range 0..120 seconds");
  }
  return std::chrono::seconds(value);
}

VariantMap ConfigToMap(const table::BarbicanConfigRow& row, const std::string& svm_name) {
  VariantMap m;
  m["uuid"] = Variant(row.key_store.uuid.ToString());
  m["name"] = Variant(row.key_store.name);
  m["svm"] = Variant(svm_name);
  m["svm_uuid"] = Variant(row.key_store.svm.ToString());
  m["key_id"] = Variant(row.key_id);
  m["keystone_url"] = Variant(row.keystone_url);
  m["application_cred_id"] = Variant(row.application_cred_id);
  m["verify"] = Variant(row.settings.verify);
  m["verify_host"] = Variant(row.settings.verify_host);
  m["timeout"] = Variant(row.settings.timeout_s);
  m["ca_file"] = Variant(row.settings.ca_file);
  m["proxy_type"] = Variant(row.settings.proxy_type);
  m["proxy_host"] = Variant(row.settings.proxy_host);
  m["proxy_port"] = Variant(static_cast<uint32_t>(row.settings.proxy_port));
  m["proxy_username"] = Variant(row.settings.proxy_username);
  m["enabled"] = Variant(row.key_store.enabled);
  m["scope"] = Variant(std::string("svm"));
  m["state"] = Variant(std::string(table::ToString(row.key_store.state)));
  return m;
}

VariantMap KeyStoreToMap(const table::KeyStoreRow& row, const std::string& svm_name) {
  VariantMap m;
  m["uuid"] = Variant(row.uuid.ToString());
  m["name"] = Variant(row.name);
  m["svm"] = Variant(svm_name);
  m["svm_uuid"] = Variant(row.svm.ToString());
  m["type"] = Variant(row.type);
  m["enabled"] = Variant(row.enabled);
  m["state"] = Variant(std::string(table::ToString(row.state)));
  return m;
}

std::string SvmName(table::Rdb& rdb, const Uuid& svm) {
  table::SvmTable svms(rdb);
  auto row = svms.Get(svm);
  return row.ok() ? row->name : svm.ToString();
}

std::string_view View(const SecureBuffer& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

// ---- ControlWorker ----

ControlWorker::ControlWorker(std::unique_ptr<table::Rdb> rdb) : rdb_(std::move(rdb)) {
  thread_ = std::thread([this] {
    for (;;) {
      std::function<void(table::Rdb&)> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task(*rdb_);
    }
  });
}

ControlWorker::~ControlWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ControlWorker::Submit(std::function<void(table::Rdb&)> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

// ---- KeyManager ----

KeyManager::KeyManager(sdbus::IConnection& connection, EventLoop& loop, table::Rdb& rdb,
                       table::RdbOptions rdb_options, KeyService& keys,
                       KeyManagerSettings settings)
    : AdaptorInterfaces(connection, kObjectPath),
      loop_(loop),
      rdb_(rdb),
      rdb_options_(rdb_options),
      keys_(keys),
      settings_(std::move(settings)) {
  auto worker_rdb = table::Rdb::Open(rdb_options_);
  if (!worker_rdb.ok()) throw std::runtime_error("cannot open the table: " + worker_rdb.status().ToString());
  worker_ = std::make_unique<ControlWorker>(std::move(worker_rdb).value());
  jobs_ = std::make_unique<JobManager>(connection, loop, rdb_options_, rdb_,
                                       [this](const std::string& uuid, const std::string& state) {
                                         try {
                                           emitJobChanged(uuid, state);
                                         } catch (const sdbus::Error&) {
                                         }
                                       });
  registerAdaptor();
}

KeyManager::~KeyManager() {
  StopWorkers();
  unregisterAdaptor();
}

void KeyManager::StopWorkers() {
  if (jobs_) jobs_->Shutdown();
  worker_.reset();
}

KeyManager::Caller KeyManager::Authorize() {
  const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
  Caller caller;
  // Ask the bus (GetConnectionCredentials), not /proc: the euid and groups of the
  // connection as the bus saw them when it connected.
  caller.uid = msg->getCredsEuid();
  if (caller.uid == 0) return caller;
  if (settings_.operator_gid != static_cast<gid_t>(-1)) {
    for (gid_t g : msg->getCredsSupplementaryGids()) {
      if (g == settings_.operator_gid) return caller;
    }
  }
  LogNotice("refused a call from uid " + std::to_string(caller.uid) +
            ": not root and not in group svmkey");
  Throw(ErrorCode::kPermissionDenied, "caller uid " + std::to_string(caller.uid) +
                                          " is neither root nor in group svmkey");
}

Uuid KeyManager::ResolveSvm(const std::string& svm_text) {
  table::SvmTable svms(rdb_);
  if (auto uuid = Uuid::Parse(svm_text)) {
    return Check(svms.Get(*uuid)).uuid;
  }
  if (svm_text.empty() || svm_text.size() > 255) {
    Throw(ErrorCode::kInvalidSvmName, "svm must be an SVM name or uuid");
  }
  auto row = svms.GetByName(svm_text);
  if (!row.ok()) Throw(ErrorCode::kSvmNotFound, "no SVM named '" + Printable(svm_text) + "'");
  return row->uuid;
}

template <typename... T, typename Work>
void KeyManager::Defer(std::shared_ptr<sdbus::Result<T...>> result, Work work) {
  worker_->Submit([this, result, work = std::move(work)](table::Rdb& rdb) mutable {
    try {
      auto values = work(rdb);
      loop_.Post([result, values = std::move(values)]() mutable {
        std::apply([&](auto&&... v) { result->returnResults(v...); }, values);
      });
    } catch (const sdbus::Error& e) {
      loop_.Post([result, e] { result->returnError(e); });
    } catch (const std::exception& e) {
      const sdbus::Error err = ToBusError(Status(ErrorCode::kUnexpectedException, e.what()));
      loop_.Post([result, err] { result->returnError(err); });
    }
  });
}

void KeyManager::StartJob(const JobRequest& request, uint32_t return_timeout,
                          std::shared_ptr<sdbus::Result<uint32_t, std::string>> result) {
  const auto timeout = ReturnTimeout(return_timeout);
  table::NewJob job;
  job.uuid = Uuid::Random();
  job.description = Describe(request, SvmName(rdb_, request.svm));
  job.svm = request.svm;
  job.config = request.config;
  job.parameters_json = EncodeJobRequest(request);
  table::JobTable jobs(rdb_);
  Check(jobs.CreateExclusive(job));
  LogInfo("job " + job.uuid.ToString() + " queued: " + job.description);
  KeyService& keys = keys_;
  const JobSettings settings = settings_.jobs;
  jobs_->Start(job.uuid, [&keys, settings, request](JobContext& ctx) {
    return RunJob(ctx, keys, settings, request);
  });
  if (return_timeout == 0) {
    result->returnResults(202u, job.uuid.ToString());
    return;
  }
  jobs_->Wait(job.uuid, timeout, [result](uint32_t status, const std::string& uuid,
                                          const Status& failure) {
    if (!failure.ok()) {
      result->returnError(ToBusError(failure));
    } else {
      result->returnResults(status, uuid);
    }
  });
}

size_t KeyManager::ResumeUnfinishedJobs() {
  jobs_->PublishAll();
  table::JobTable jobs(rdb_);
  auto unfinished = jobs.ListUnfinished();
  if (!unfinished.ok()) {
    LogErr("cannot list unfinished jobs: " + unfinished.status().ToString());
    return 0;
  }
  for (const auto& row : *unfinished) {
    auto request = DecodeJobRequest(row.parameters_json);
    if (!request.ok()) {
      Status s = jobs.Finish(row.uuid, request.status().numeric_code(), request.status().ToString());
      LogErr("job " + row.uuid.ToString() + " cannot be resumed: " + request.status().ToString() +
             (s.ok() ? "" : " (" + s.ToString() + ")"));
      continue;
    }
    LogNotice("resuming job " + row.uuid.ToString() + " (" + row.description + ") at phase " +
              std::string(table::PhaseName(row.phase)));
    KeyService& keys = keys_;
    const JobSettings settings = settings_.jobs;
    const JobRequest req = *request;
    jobs_->Start(row.uuid, [&keys, settings, req](JobContext& ctx) {
      return RunJob(ctx, keys, settings, req);
    });
  }
  return unfinished->size();
}

void KeyManager::RekeyInternal(sdbus::Result<uint32_t, std::string>&& result, std::string uuid,
                               uint32_t return_timeout, bool /*return_records*/) {
  Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  ReturnTimeout(return_timeout);
  Uuid svm;
  Status pre = RekeyPrechecks(rdb_, config, /*resuming=*/false, &svm);
  if (pre.code() == ErrorCode::kResourceInUse) {
    table::JobTable jobs(rdb_);
    auto running = jobs.FindUnfinishedForSvm(svm);
    if (running.ok() && running->has_value()) {
      pre = Status(ErrorCode::kResourceInUse,
                   "a rekey of SVM " + svm.ToString() + " is already running: job " +
                       (*running)->uuid.ToString());
    }
  }
  Check(pre);
  JobRequest request{JobKind::kRekeyInternal, svm, config};
  StartJob(request, return_timeout,
           std::make_shared<sdbus::Result<uint32_t, std::string>>(std::move(result)));
}

void KeyManager::Restore(sdbus::Result<uint32_t, std::string>&& result, std::string uuid,
                         uint32_t return_timeout) {
  Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  ReturnTimeout(return_timeout);
  table::KeyStoreTable stores(rdb_);
  auto row = stores.GetBarbicanConfig(config);
  if (!row.ok()) Throw(ErrorCode::kEntryNotFound, "no Barbican configuration " + config.ToString());
  if (!row->key_store.enabled) {
    Throw(ErrorCode::kBarbicanNotConfigured,
          "configuration " + config.ToString() + " is not enabled for its SVM");
  }
  JobRequest request{JobKind::kRestore, row->key_store.svm, config};
  StartJob(request, return_timeout,
           std::make_shared<sdbus::Result<uint32_t, std::string>>(std::move(result)));
}

void KeyManager::CreateBarbicanConfig(sdbus::Result<std::string>&& result, VariantMap config) {
  const Caller caller = Authorize();
  OptionReader o(config);
  const auto svm_text = o.String("svm", 255);
  if (!svm_text) Throw(ErrorCode::kMissingValue, "svm is required");
  table::NewBarbicanConfig c;
  c.uuid = Uuid::Random();
  c.svm = ResolveSvm(*svm_text);
  const auto name = o.String("name", 255);
  if (!name) Throw(ErrorCode::kMissingValue, "name is required");
  c.name = RequireName(*name, "name");
  c.key_id = o.String("key_id").value_or("");
  c.keystone_url = o.String("keystone_url").value_or("");
  c.application_cred_id = o.String("application_cred_id", 255).value_or("");
  auto secret = o.Secret("application_cred_secret", caller.uid);
  if (auto v = o.Bool("verify")) c.settings.verify = *v;
  if (auto v = o.Bool("verify_host")) c.settings.verify_host = *v;
  if (auto v = o.Unsigned("timeout", 1, 600)) c.settings.timeout_s = static_cast<uint32_t>(*v);
  if (auto v = o.String("ca_file")) c.settings.ca_file = *v;
  if (auto v = o.String("proxy_type", 8)) c.settings.proxy_type = *v;
  if (auto v = o.String("proxy_host", 255)) c.settings.proxy_host = *v;
  if (auto v = o.Unsigned("proxy_port", 0, 65535)) c.settings.proxy_port = static_cast<uint16_t>(*v);
  if (auto v = o.String("proxy_username", 255)) c.settings.proxy_username = *v;
  auto proxy_password = o.Secret("proxy_password", caller.uid);
  o.Finish();
  if (!secret) {
    Throw(ErrorCode::kInvalidCredentialSecret,
          "application_cred_secret_fd or application_cred_secret_file is required");
  }
  auto shared_secret = std::make_shared<SecureBuffer>(std::move(*secret));
  auto shared_proxy = std::make_shared<std::optional<SecureBuffer>>(std::move(proxy_password));
  Defer<std::string>(std::make_shared<sdbus::Result<std::string>>(std::move(result)),
                     [c, shared_secret, shared_proxy](table::Rdb& rdb) {
                       table::KeyStoreTable stores(rdb);
                       std::optional<std::string_view> pw;
                       if (*shared_proxy) pw = View(**shared_proxy);
                       Check(stores.CreateBarbicanConfig(c, View(*shared_secret), pw));
                       LogInfo("created Barbican configuration " + c.name + " (" +
                               c.uuid.ToString() + ") for SVM " + c.svm.ToString());
                       return std::make_tuple(c.uuid.ToString());
                     });
}

void KeyManager::GetBarbicanConfig(sdbus::Result<VariantMap>&& result, std::string uuid,
                                   VariantMap options) {
  const Uuid config = RequireUuid(uuid, "uuid");
  OptionReader o(options);
  const bool reachability = o.Bool("reachability").value_or(false);
  o.Finish();
  table::KeyStoreTable stores(rdb_);
  auto row = stores.GetBarbicanConfig(config);
  if (!row.ok()) Throw(ErrorCode::kEntryNotFound, "no Barbican configuration " + config.ToString());
  VariantMap map = ConfigToMap(*row, SvmName(rdb_, row->key_store.svm));
  auto shared = std::make_shared<sdbus::Result<VariantMap>>(std::move(result));
  if (!reachability) {
    shared->returnResults(map);
    return;
  }
  Authorize();  // a reachability check talks to Keystone with the stored credential
  Defer<VariantMap>(shared, [this, config, map](table::Rdb& rdb) mutable {
    auto client = keys_.Client(rdb, config);
    KeyReachability r;
    if (!client.ok()) {
      r.code = client.status().code();
      r.message = client.status().ToString();
    } else {
      r = (*client)->CheckReachability();
    }
    map["barbican_reachability_reachable"] = Variant(r.reachable);
    map["barbican_reachability_code"] = Variant(std::to_string(static_cast<uint32_t>(r.code)));
    map["barbican_reachability_message"] = Variant(r.message);
    return std::make_tuple(map);
  });
}

std::optional<Uuid> KeyManager::SvmFilter(const VariantMap& filter) {
  OptionReader o(filter);
  std::optional<Uuid> svm;
  if (auto s = o.String("svm", 255)) svm = ResolveSvm(*s);
  o.Finish();
  return svm;
}

std::vector<VariantMap> KeyManager::ListBarbicanConfigs(const VariantMap& filter) {
  const std::optional<Uuid> svm = SvmFilter(filter);
  table::KeyStoreTable stores(rdb_);
  std::vector<VariantMap> out;
  for (const auto& row : Check(stores.ListBarbicanConfigs(svm))) {
    out.push_back(ConfigToMap(row, SvmName(rdb_, row.key_store.svm)));
  }
  return out;
}

void KeyManager::UpdateBarbicanCredentials(sdbus::Result<>&& result, std::string uuid,
                                           VariantMap credentials) {
  const Caller caller = Authorize();
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
  const std::string cred_id = *id;
  Defer<>(std::make_shared<sdbus::Result<>>(std::move(result)),
          [this, config, cred_id, shared_secret](table::Rdb& rdb) {
            table::KeyStoreTable stores(rdb);
            Check(stores.GetBarbicanConfig(config).status().code() == ErrorCode::kEntryNotFound
                      ? Status(ErrorCode::kConfigNotFound, config.ToString())
                      : Status::Ok());
            // Health check with the new credential before it replaces the old one.
            Status health = keys_.CheckCredentials(rdb, config, cred_id, *shared_secret);
            if (!health.ok()) {
              Throw(ErrorCode::kHealthCheckFailed,
                    "the new application credential does not authenticate: " + health.ToString());
            }
            Check(stores.UpdateCredentials(config, cred_id, View(*shared_secret)));
            keys_.Forget(config);
            LogInfo("updated the application credential of configuration " + config.ToString());
            return std::make_tuple();
          });
}

void KeyManager::UpdateBarbicanConfig(sdbus::Result<>&& result, std::string uuid,
                                      VariantMap settings) {
  const Caller caller = Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  for (const char* fixed : {"key_id", "keystone_url", "svm", "name"}) {
    if (settings.count(fixed)) {
      Throw(ErrorCode::kUnexpectedArgument,
            std::string(fixed) + " cannot be changed; a new key is a new configuration");
    }
  }
  OptionReader o(settings);
  table::BarbicanSettingsPatch p;
  p.verify = o.Bool("verify");
  p.verify_host = o.Bool("verify_host");
  if (auto v = o.Unsigned("timeout", 1, 600)) p.timeout_s = static_cast<uint32_t>(*v);
  p.ca_file = o.String("ca_file");
  p.proxy_type = o.String("proxy_type", 8);
  p.proxy_host = o.String("proxy_host", 255);
  if (auto v = o.Unsigned("proxy_port", 0, 65535)) p.proxy_port = static_cast<uint16_t>(*v);
  p.proxy_username = o.String("proxy_username", 255);
  auto pw = o.Secret("proxy_password", caller.uid);
  o.Finish();
  if (p.empty() && !pw) Throw(ErrorCode::kNothingToChange, "no setting given");
  auto shared_pw = std::make_shared<std::optional<SecureBuffer>>(std::move(pw));
  Defer<>(std::make_shared<sdbus::Result<>>(std::move(result)),
          [this, config, p, shared_pw](table::Rdb& rdb) {
            table::KeyStoreTable stores(rdb);
            std::optional<std::string_view> pw_view;
            if (*shared_pw) pw_view = View(**shared_pw);
            Check(stores.UpdateSettings(config, p, pw_view));
            keys_.Forget(config);
            LogInfo("updated the settings of configuration " + config.ToString());
            return std::make_tuple();
          });
}

void KeyManager::EnableKeyStore(sdbus::Result<>&& result, std::string uuid) {
  Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  Defer<>(std::make_shared<sdbus::Result<>>(std::move(result)), [this, config](table::Rdb& rdb) {
    Check(keys_.EnableKeyStore(rdb, config));
    return std::make_tuple();
  });
}

void KeyManager::DeleteKeyStore(sdbus::Result<>&& result, std::string uuid) {
  Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  Defer<>(std::make_shared<sdbus::Result<>>(std::move(result)), [this, config](table::Rdb& rdb) {
    table::KeyStoreTable stores(rdb);
    Check(stores.Delete(config));
    keys_.Forget(config);
    LogInfo("deleted key store " + config.ToString());
    return std::make_tuple();
  });
}

std::vector<VariantMap> KeyManager::ListKeyStores(const VariantMap& filter) {
  const std::optional<Uuid> svm = SvmFilter(filter);
  table::KeyStoreTable stores(rdb_);
  std::vector<VariantMap> out;
  for (const auto& row : Check(stores.ListKeyStores(svm))) {
    out.push_back(KeyStoreToMap(row, SvmName(rdb_, row.svm)));
  }
  return out;
}

void KeyManager::CreateSvm(sdbus::Result<std::string>&& result, std::string name,
                           VariantMap options) {
  Authorize();
  if (name.empty() || name.size() > 255) Throw(ErrorCode::kInvalidSvmName, "name must be 1-255 characters");
  RequireName(name, "name");
  OptionReader o(options);
  table::SvmRow row;
  row.name = name;
  row.uuid = Uuid::Random();
  if (auto kind = o.String("kind", 16)) {
    auto k = table::SvmKindFromString(*kind);
    if (!k) Throw(ErrorCode::kInvalidValue, "kind must be 'data' or 'admin'");
    row.kind = *k;
  }
  if (auto u = o.String("uuid", 64)) row.uuid = RequireUuid(*u, "uuid");
  o.Finish();
  Defer<std::string>(std::make_shared<sdbus::Result<std::string>>(std::move(result)),
                     [row](table::Rdb& rdb) {
                       table::SvmTable svms(rdb);
                       Check(svms.Create(row));
                       LogInfo("created SVM " + row.name + " (" + row.uuid.ToString() + ")");
                       return std::make_tuple(row.uuid.ToString());
                     });
}

std::vector<VariantMap> KeyManager::ListSvms(const VariantMap& filter) {
  OptionReader o(filter);
  o.Finish();
  table::SvmTable svms(rdb_);
  table::SvmKekTable keks(rdb_);
  std::vector<VariantMap> out;
  for (const auto& row : Check(svms.List())) {
    VariantMap m;
    m["uuid"] = Variant(row.uuid.ToString());
    m["name"] = Variant(row.name);
    m["kind"] = Variant(std::string(table::ToString(row.kind)));
    auto active = keks.GetActive(row.uuid);
    m["key_generation"] = Variant(static_cast<uint64_t>(active.ok() ? active->generation : 0));
    out.push_back(std::move(m));
  }
  return out;
}

void KeyManager::CreateVolume(sdbus::Result<std::string>&& result, std::string svm_text,
                              std::string name, VariantMap options) {
  Authorize();
  const Uuid svm = ResolveSvm(svm_text);
  RequireName(name, "name");
  OptionReader o(options);
  uint64_t dsid = 0;
  if (auto d = o.Unsigned("dsid", 1, UINT64_MAX)) dsid = *d;
  table::KeyManager key_manager = table::KeyManager::kData;
  if (auto km = o.String("key_manager", 16)) {
    auto k = table::KeyManagerFromString(*km);
    if (!k) Throw(ErrorCode::kInvalidValue, "key_manager must be 'data' or 'admin'");
    key_manager = *k;
  }
  o.Finish();
  Defer<std::string>(
      std::make_shared<sdbus::Result<std::string>>(std::move(result)),
      [this, svm, name, dsid, key_manager](table::Rdb& rdb) {
        // New keys are refused while the SVM's key store is not active (svm_kek_rekey);
        // VolumeTable::Insert checks again inside its transaction.
        table::KeyStoreTable stores(rdb);
        auto enabled = Check(stores.GetEnabledKeyStore(svm));
        if (!enabled) Throw(ErrorCode::kNoKeyManagerConfigured, "SVM has no enabled key store");
        if (enabled->state != table::KeyStoreState::kActive) {
          Throw(ErrorCode::kResourceInUse,
                "key store is " + std::string(table::ToString(enabled->state)) +
                    ": new volume keys cannot be created now");
        }
        const InstalledKek kek = Check(keys_.ActiveSvmKek(rdb, svm));
        VolumeRef ref;
        ref.id.volume = Uuid::Random();
        ref.id.svm = svm;
        ref.id.dsid = dsid;
        if (ref.id.dsid == 0) {  // a random 56-bit DSID, never 0
          for (int i = 0; i < 7; ++i) ref.id.dsid = ref.id.dsid << 8 | ref.id.volume.bytes[i + 9];
          ref.id.dsid |= 1;
        }
        const std::string dir = settings_.volume_root + "/" + svm.ToString();
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec) Throw(ErrorCode::kVdekBlobUpdateFailed, "cannot create " + dir + ": " + ec.message());
        ref.path = dir + "/" + ref.id.volume.ToString() + ".meta";
        auto io = MakeSyncFileIo();
        CreateResult created;
        Check(CreateVolumes(*io, keys_.key_table(), kek.handle, kek.generation, {&ref, 1},
                            {&created, 1}));
        Check(created.status);
        table::VolumeRow row;
        row.uuid = ref.id.volume;
        row.svm = svm;
        row.name = name;
        row.dsid = ref.id.dsid;
        row.metadata_path = ref.path;
        row.generation = kek.generation;
        row.key_manager = key_manager;
        row.blob = created.blob;
        table::VolumeTable volumes(rdb);
        // COMMIT POINT: the row makes the volume exist. Before it, a crash leaves an
        // orphan metadata file no one refers to (harmless); after it, the volume is
        // rekeyed with its SVM.
        Status s = volumes.Insert(row);
        if (!s.ok()) {
          ::unlink(ref.path.c_str());
          ThrowStatus(s);
        }
        LogInfo("created encrypted volume " + name + " (" + row.uuid.ToString() + ") of SVM " +
                svm.ToString() + " at generation " + std::to_string(kek.generation));
        return std::make_tuple(row.uuid.ToString());
      });
}

void KeyManager::RegisterVolumeSet(sdbus::Result<uint64_t>&& result, std::string svm_text,
                                   std::string directory, VariantMap options) {
  Authorize();
  const Uuid svm = ResolveSvm(svm_text);
  if (directory.empty() || directory[0] != '/' || directory.size() > kMaxStringBytes) {
    Throw(ErrorCode::kInvalidValue, "directory must be an absolute path");
  }
  OptionReader o(options);
  auto kek_file = o.String("kek_file");
  const bool keep = o.Bool("keep_kek_file").value_or(false);
  o.Finish();
  if (!kek_file) Throw(ErrorCode::kMissingValue, "kek_file is required");
  const std::string kek_path = *kek_file;
  Defer<uint64_t>(
      std::make_shared<sdbus::Result<uint64_t>>(std::move(result)),
      [this, svm, directory, kek_path, keep](table::Rdb& rdb) {
        auto source = Check(volset::ManifestVolumeSource::Open(directory));
        if (!(source->header().svm == svm)) {
          Throw(ErrorCode::kInvalidValue, "the volume set in " + directory + " belongs to SVM " +
                                              source->header().svm.ToString());
        }
        const uint64_t generation = source->header().generation;
        table::KeyStoreTable stores(rdb);
        auto enabled = Check(stores.GetEnabledKeyStore(svm));
        if (!enabled) Throw(ErrorCode::kNoKeyManagerConfigured, "SVM has no enabled key store");
        table::SvmKekTable keks(rdb);
        if (keks.GetActive(svm).ok()) {
          Throw(ErrorCode::kDuplicateEntry, "SVM already has an SVM-KEK; a volume set can be "
                                            "registered only on an SVM without encrypted volumes");
        }
        KeyTable& kt = keys_.key_table();
        const KeyHandle kek = Check(volset::ImportKekFile(kt, kek_path));
        std::string key_id;
        auto wrapped = keys_.WrapSvmKek(rdb, enabled->uuid, svm, generation, kek, &key_id);
        if (!wrapped.ok()) {
          kt.Release(kek).IgnoreError();
          ThrowStatus(wrapped.status());
        }
        Status s = keks.InsertInitialActive(svm, generation, *wrapped, key_id);
        if (!s.ok()) {
          kt.Release(kek).IgnoreError();
          ThrowStatus(s);
        }
        keys_.Install(svm, generation, kek);
        table::VolumeTable volumes(rdb);
        std::vector<VolumeRef> refs(50000);
        std::vector<table::VolumeRow> rows;
        rows.reserve(refs.size());
        uint64_t count = 0;
        for (;;) {
          const size_t n = Check(source->Next(refs));
          if (n == 0) break;
          rows.clear();
          for (size_t i = 0; i < n; ++i) {
            table::VolumeRow row;
            row.uuid = refs[i].id.volume;
            row.svm = svm;
            row.name = refs[i].id.volume.ToString();
            row.dsid = refs[i].id.dsid;
            row.metadata_path = refs[i].path;
            row.generation = generation;
            rows.push_back(std::move(row));
          }
          Check(volumes.InsertMany(rows));
          count += n;
        }
        if (!keep && ::unlink(kek_path.c_str()) != 0) {
          LogWarning("could not remove the KEK file " + kek_path);
        }
        LogInfo("registered " + std::to_string(count) + " volumes of " + directory + " for SVM " +
                svm.ToString() + " at generation " + std::to_string(generation));
        return std::make_tuple(count);
      });
}

std::vector<VariantMap> KeyManager::ListVolumes(const std::string& svm_text,
                                                const VariantMap& options) {
  const Uuid svm = ResolveSvm(svm_text);
  OptionReader o(options);
  int64_t after_id = 0;
  table::VolumeTable volumes(rdb_);
  if (auto after = o.String("after", 64)) {
    const Uuid a = RequireUuid(*after, "after");
    after_id = Check(volumes.Get(a)).id;
  }
  const size_t limit = o.Unsigned("limit", 1, 10000).value_or(1000);
  o.Finish();
  std::vector<table::VolumeRow> rows;
  Check(volumes.ListPage(svm, after_id, limit, &rows, false));
  std::vector<VariantMap> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    VariantMap m;
    m["uuid"] = Variant(row.uuid.ToString());
    m["name"] = Variant(row.name);
    m["dsid"] = Variant(row.dsid);
    m["path"] = Variant(row.metadata_path);
    m["key_generation"] = Variant(row.generation);
    m["key_manager"] = Variant(std::string(table::ToString(row.key_manager)));
    out.push_back(std::move(m));
  }
  return out;
}

void KeyManager::VerifyVolumes(sdbus::Result<uint32_t, std::string>&& result, std::string svm_text,
                               uint32_t return_timeout) {
  Authorize();
  const Uuid svm = ResolveSvm(svm_text);
  ReturnTimeout(return_timeout);
  table::KeyStoreTable stores(rdb_);
  auto enabled = Check(stores.GetEnabledKeyStore(svm));
  if (!enabled) Throw(ErrorCode::kNoKeyManagerConfigured, "SVM has no enabled key store");
  JobRequest request{JobKind::kVerify, svm, enabled->uuid};
  StartJob(request, return_timeout,
           std::make_shared<sdbus::Result<uint32_t, std::string>>(std::move(result)));
}

VariantMap KeyManager::GetJob(const std::string& uuid) {
  const Uuid job = RequireUuid(uuid, "uuid");
  table::JobTable jobs(rdb_);
  auto row = jobs.Get(job);
  if (!row.ok()) Throw(ErrorCode::kEntryNotFound, "no job " + job.ToString());
  VariantMap m;
  m["uuid"] = Variant(row->uuid.ToString());
  m["description"] = Variant(row->description);
  m["state"] = Variant(std::string(table::ToString(row->state)));
  m["code"] = Variant(row->code);
  m["message"] = Variant(row->message);
  m["svm"] = Variant(row->svm ? row->svm->ToString() : std::string());
  m["start_time"] = Variant(row->start_time_ms * 1000);
  m["end_time"] = Variant(row->end_time_ms * 1000);
  m["volumes_done"] = Variant(row->progress_done);
  m["volumes_total"] = Variant(row->progress_total);
  m["progress"] = Variant(row->progress_total
                              ? static_cast<double>(row->progress_done) / row->progress_total
                              : 0.0);
  const auto [rate, eta] = jobs_->LiveEstimate(job);
  m["rate"] = Variant(rate);
  m["expected_end_time"] = Variant(table::IsTerminal(row->state) ? int64_t{0} : eta);
  m["phase"] = Variant(std::string(row->phase ? table::PhaseName(row->phase) : "queued"));
  m["object_path"] = Variant(sdbus::ObjectPath(JobManager::ObjectPath(job)));
  return m;
}

std::vector<VariantMap> KeyManager::ListJobs(const VariantMap& filter) {
  OptionReader o(filter);
  table::JobFilter f;
  if (auto s = o.String("state", 16)) {
    f.state = table::JobStateFromString(*s);
    if (!f.state) Throw(ErrorCode::kInvalidValue, "state must be queued, running, paused, success or failure");
  }
  if (auto s = o.String("svm", 255)) f.svm = ResolveSvm(*s);
  const size_t limit = o.Unsigned("limit", 1, 10000).value_or(100);
  o.Finish();
  // The table lists oldest first; jobs are few (pruned after the retention period), so
  // take them all and answer the newest `limit`.
  table::JobTable jobs(rdb_);
  auto rows = Check(jobs.List(f));
  std::vector<VariantMap> out;
  for (auto it = rows.rbegin(); it != rows.rend() && out.size() < limit; ++it) {
    out.push_back(GetJob(it->uuid.ToString()));
  }
  return out;
}

}  // namespace svmkey::daemon
