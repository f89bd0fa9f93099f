// ManagerObject: the org.svmkey.KeyManager1 object (ipc/org.svmkey.KeyManager1.xml) at
// ipc::kManagerPath. It owns the control worker, the job manager and the Job1 objects,
// and dispatches every method to its handler (handlers.h); it holds no logic itself.
//
// Threads: constructed, called and destroyed on the loop thread.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/bus/handlers.h"
#include "daemon/bus/job_object.h"
#include "daemon/core/event_loop.h"
#include "daemon/service/control_worker.h"
#include "daemon/service/job_launcher.h"
#include "daemon/service/job_manager.h"
#include "daemon/service/key_service.h"
#include "daemon/table/rdb.h"
#include "engine/status.h"
#include "keymanager1_adaptor.h"
#include "version.h"

namespace svmkey::daemon {

class ManagerObject final : public sdbus::AdaptorInterfaces<org::svmkey::KeyManager1_adaptor> {
 public:
  // Opens the control worker's table connection, then registers the object. `rdb`
  // (the loop thread's connection) and `keys` must outlive it.
  static Result<std::unique_ptr<ManagerObject>> Create(sdbus::IConnection& connection,
                                                       EventLoop& loop, table::Rdb& rdb,
                                                       const table::RdbOptions& rdb_options,
                                                       KeyService& keys,
                                                       KeyManagerSettings settings);
  ManagerObject(sdbus::IConnection& connection, EventLoop& loop, table::Rdb& rdb,
                const table::RdbOptions& rdb_options, KeyService& keys, KeyManagerSettings settings,
                std::unique_ptr<ControlWorker> worker);
  ~ManagerObject();

  JobManager& jobs() { return *jobs_; }
  // Resumes every queued or running job of the table (at start, before READY=1).
  size_t ResumeUnfinishedJobs() { return launcher_->ResumeUnfinished(rdb_); }
  // Stops the jobs at a batch boundary and the control worker after its queued tasks.
  void StopWorkers();

 private:
  // org.svmkey.KeyManager1
  void RekeyInternal(sdbus::Result<uint32_t, std::string>&& result, std::string uuid,
                     uint32_t return_timeout, bool return_records) override;
  void Restore(sdbus::Result<uint32_t, std::string>&& result, std::string uuid,
               uint32_t return_timeout) override;
  void CreateBarbicanConfig(sdbus::Result<std::string>&& result, VariantMap config) override;
  void GetBarbicanConfig(sdbus::Result<VariantMap>&& result, std::string uuid,
                         VariantMap options) override;
  std::vector<VariantMap> ListBarbicanConfigs(const VariantMap& filter) override;
  void UpdateBarbicanCredentials(sdbus::Result<>&& result, std::string uuid,
                                 VariantMap credentials) override;
  void UpdateBarbicanConfig(sdbus::Result<>&& result, std::string uuid,
                            VariantMap settings) override;
  void EnableKeyStore(sdbus::Result<>&& result, std::string uuid) override;
  void DeleteKeyStore(sdbus::Result<>&& result, std::string uuid) override;
  std::vector<VariantMap> ListKeyStores(const VariantMap& filter) override;
  void CreateSvm(sdbus::Result<std::string>&& result, std::string name,
                 VariantMap options) override;
  std::vector<VariantMap> ListSvms(const VariantMap& filter) override;
  void CreateVolume(sdbus::Result<std::string>&& result, std::string svm, std::string name,
                    VariantMap options) override;
  void RegisterVolumeSet(sdbus::Result<uint64_t>&& result, std::string svm, std::string directory,
                         VariantMap options) override;
  std::vector<VariantMap> ListVolumes(const std::string& svm, const VariantMap& options) override;
  void VerifyVolumes(sdbus::Result<uint32_t, std::string>&& result, std::string svm,
                     uint32_t return_timeout) override;
  VariantMap GetJob(const std::string& uuid) override;
  std::vector<VariantMap> ListJobs(const VariantMap& filter) override;
  std::string Version() override { return kVersion; }

  table::Rdb& rdb_;
  const KeyManagerSettings settings_;
  std::unique_ptr<ControlWorker> worker_;
  CallerInputReader readers_;
  JobObjects job_objects_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<JobLauncher> launcher_;
  BusContext bus_;
};

}  // namespace svmkey::daemon
