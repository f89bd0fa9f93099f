#include "daemon/bus/manager_object.h"

#include "ipc/bus_names.h"

namespace svmkey::daemon {

Result<std::unique_ptr<ManagerCore>> ManagerCore::Create(EventLoop& loop, table::Rdb& rdb,
                                                         const table::RdbOptions& rdb_options,
                                                         KeyService& keys,
                                                         KeyManagerSettings settings) {
  auto worker = ControlWorker::Open(rdb_options);
  if (!worker.ok()) return worker.status();
  return std::make_unique<ManagerCore>(loop, rdb, rdb_options, keys, std::move(settings),
                                       std::move(worker).value());
}

ManagerCore::ManagerCore(EventLoop& loop, table::Rdb& rdb, const table::RdbOptions& rdb_options,
                         KeyService& keys, KeyManagerSettings settings,
                         std::unique_ptr<ControlWorker> worker)
    : loop_(loop),
      rdb_(rdb),
      keys_(keys),
      settings_(std::move(settings)),
      worker_(std::move(worker)),
      jobs_(std::make_unique<JobManager>(loop, rdb_options, rdb, job_objects_,
                                         settings_.jobs.max_running_jobs)),
      launcher_(std::make_unique<JobLauncher>(*jobs_, keys, settings_.jobs)) {
  // Job1's Cancel, Pause and Resume, authorized like the manager's mutating methods.
  job_objects_.SetControlHandler(
      [this](sdbus::IObject& object, const Uuid& job, JobLauncher::Action action) {
        const Caller caller = Authorize(object, settings_.operator_gid);
        Check(launcher_->Control(rdb_, job, action, caller.uid));
      });
}

ManagerCore::~ManagerCore() { StopWorkers(); }

void ManagerCore::StopWorkers() {
  readers_.Shutdown();  // before the worker: a reader hands its bytes to the worker
  if (jobs_) jobs_->Shutdown();
  worker_.reset();
}

ManagerObject::ManagerObject(sdbus::IConnection& connection, ManagerCore& core)
    : AdaptorInterfaces(connection, ipc::kManagerPath),
      connection_(connection),
      core_(core),
      bus_{getObject(),     core.loop_,  core.rdb_,         *core.worker_, core.keys_,
           *core.launcher_, *core.jobs_, core.job_objects_, core.settings_,
           core.readers_} {
  registerAdaptor();
  core_.job_objects_.Attach(connection, [this](const std::string& uuid, const std::string& state) {
    try {
      emitJobChanged(uuid, state);
    } catch (const sdbus::Error&) {
    }
  });
  core_.jobs_->PublishAll();
}

ManagerObject::~ManagerObject() {
  core_.job_objects_.Detach(connection_);
  unregisterAdaptor();
}

void ManagerObject::RekeyInternal(sdbus::Result<uint32_t, std::string>&& result, std::string uuid,
                                  uint32_t return_timeout, bool /*return_records*/) {
  rekey_bus::RekeyInternal(bus_, std::move(result), uuid, return_timeout);
}

void ManagerObject::Restore(sdbus::Result<uint32_t, std::string>&& result, std::string uuid,
                            uint32_t return_timeout) {
  rekey_bus::Restore(bus_, std::move(result), uuid, return_timeout);
}

void ManagerObject::CreateBarbicanConfig(sdbus::Result<std::string>&& result, VariantMap config) {
  barbican_config_bus::Create(bus_, std::move(result), config);
}

void ManagerObject::GetBarbicanConfig(sdbus::Result<VariantMap>&& result, std::string uuid,
                                      VariantMap options) {
  barbican_config_bus::Get(bus_, std::move(result), uuid, options);
}

std::vector<VariantMap> ManagerObject::ListBarbicanConfigs(const VariantMap& filter) {
  return barbican_config_bus::List(bus_, filter);
}

void ManagerObject::UpdateBarbicanCredentials(sdbus::Result<>&& result, std::string uuid,
                                              VariantMap credentials) {
  barbican_config_bus::UpdateCredentials(bus_, std::move(result), uuid, credentials);
}

void ManagerObject::UpdateBarbicanConfig(sdbus::Result<>&& result, std::string uuid,
                                         VariantMap settings) {
  barbican_config_bus::UpdateSettings(bus_, std::move(result), uuid, settings);
}

void ManagerObject::EnableKeyStore(sdbus::Result<>&& result, std::string uuid) {
  key_store_bus::Enable(bus_, std::move(result), uuid);
}

void ManagerObject::DeleteKeyStore(sdbus::Result<>&& result, std::string uuid) {
  key_store_bus::Delete(bus_, std::move(result), uuid);
}

std::vector<VariantMap> ManagerObject::ListKeyStores(const VariantMap& filter) {
  return key_store_bus::List(bus_, filter);
}

void ManagerObject::CreateSvm(sdbus::Result<std::string>&& result, std::string name,
                              VariantMap options) {
  svm_bus::Create(bus_, std::move(result), name, options);
}

std::vector<VariantMap> ManagerObject::ListSvms(const VariantMap& filter) {
  return svm_bus::List(bus_, filter);
}

void ManagerObject::CreateVolume(sdbus::Result<std::string>&& result, std::string svm,
                                 std::string name, VariantMap options) {
  volume_bus::Create(bus_, std::move(result), svm, name, options);
}

void ManagerObject::RegisterVolumeSet(sdbus::Result<uint64_t>&& result, std::string svm,
                                      std::string directory, VariantMap options) {
  volume_bus::RegisterSet(bus_, std::move(result), svm, directory, options);
}

std::vector<VariantMap> ManagerObject::ListVolumes(const std::string& svm,
                                                   const VariantMap& options) {
  return volume_bus::List(bus_, svm, options);
}

void ManagerObject::VerifyVolumes(sdbus::Result<uint32_t, std::string>&& result, std::string svm,
                                  uint32_t return_timeout) {
  rekey_bus::VerifyVolumes(bus_, std::move(result), svm, return_timeout);
}

void ManagerObject::RepairVolumes(sdbus::Result<uint32_t, std::string>&& result, std::string svm,
                                  VariantMap options) {
  rekey_bus::RepairVolumes(bus_, std::move(result), svm, options);
}

VariantMap ManagerObject::GetJob(const std::string& uuid) { return job_bus::Get(bus_, uuid); }

std::vector<VariantMap> ManagerObject::ListJobs(const VariantMap& filter) {
  return job_bus::List(bus_, filter);
}

}  // namespace svmkey::daemon
