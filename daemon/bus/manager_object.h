// ManagerObject: the org.svmkey.KeyManager1 object (ipc/org.svmkey.KeyManager1.xml) at
// ipc::kManagerPath, on one bus connection. It dispatches every method to its handler
// (handlers.h) and holds no logic itself. ManagerCore owns what outlives a connection:
// the control worker, the job manager, the job launcher and the Job1 objects'
// registry, so a lost bus connection costs no running job (svmkeyd.cc makes a new
// ManagerObject on the new connection; docs/ARCHITECTURE.md §9).
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
#include "daemon/service/caller_input.h"
#include "daemon/service/control_worker.h"
#include "daemon/service/job_launcher.h"
#include "daemon/service/job_manager.h"
#include "daemon/service/key_service.h"
#include "daemon/table/rdb.h"
#include "engine/status.h"
#include "keymanager1_adaptor.h"
#include "version.h"

namespace svmkey::daemon {

class ManagerCore {
 public:
  // Opens the control worker's table connection. `loop`, `rdb` (the loop thread's
  // connection) and `keys` must outlive it.
  static Result<std::unique_ptr<ManagerCore>> Create(EventLoop& loop, table::Rdb& rdb,
                                                     const table::RdbOptions& rdb_options,
                                                     KeyService& keys, KeyManagerSettings settings);
  ManagerCore(EventLoop& loop, table::Rdb& rdb, const table::RdbOptions& rdb_options,
              KeyService& keys, KeyManagerSettings settings, std::unique_ptr<ControlWorker> worker);
  ~ManagerCore();
  ManagerCore(const ManagerCore&) = delete;
  ManagerCore& operator=(const ManagerCore&) = delete;

  JobManager& jobs() { return *jobs_; }
  // Resumes every queued or running job of the table (at start, before READY=1).
  size_t ResumeUnfinishedJobs() { return launcher_->ResumeUnfinished(rdb_); }
  // Stops the jobs at a batch boundary and the control worker after its queued tasks.
  void StopWorkers();

 private:
  friend class ManagerObject;
  EventLoop& loop_;
  table::Rdb& rdb_;
  KeyService& keys_;
  const KeyManagerSettings settings_;
  std::unique_ptr<ControlWorker> worker_;
  CallerInputReader readers_;
  JobObjects job_objects_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<JobLauncher> launcher_;
};

class ManagerObject final : public sdbus::AdaptorInterfaces<org::svmkey::KeyManager1_adaptor> {
 public:
  // Registers the object on `connection` and publishes every job's Job1 object there.
  // `core` must outlive it.
  ManagerObject(sdbus::IConnection& connection, ManagerCore& core);
  // Unregisters the object and withdraws the Job1 objects from its connection.
  ~ManagerObject();
  // The connection was lost: withdraws the Job1 objects from it now (job updates then
  // publish nothing until a new ManagerObject attaches them to a new connection).
  void Retire() { core_.job_objects_.Detach(connection_); }

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
  void RepairVolumes(sdbus::Result<uint32_t, std::string>&& result, std::string svm,
                     VariantMap options) override;
  VariantMap GetJob(const std::string& uuid) override;
  std::vector<VariantMap> ListJobs(const VariantMap& filter) override;
  std::string Version() override { return kVersion; }

  sdbus::IConnection& connection_;
  ManagerCore& core_;
  BusContext bus_;
};

}  // namespace svmkey::daemon
