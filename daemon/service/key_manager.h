// KeyManager: the org.svmkey.KeyManager1 object (ipc/org.svmkey.KeyManager1.xml).
//
// Every handler has the same short shape (systemd-homed's): parse and validate the
// arguments, authorize the caller (bus credentials), then either answer a read from
// the table, hand the work to the control worker (short table or Barbican operations),
// or create a job — and reply later. Handlers run on the loop thread and never wait on
// a job, Barbican or a long transaction.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <sdbus-c++/sdbus-c++.h>

#include "daemon/core/event_loop.h"
#include "daemon/core/options.h"
#include "daemon/service/job_manager.h"
#include "daemon/service/jobs.h"
#include "daemon/service/key_service.h"
#include "daemon/table/rdb.h"
#include "ipc/bus_names.h"
#include "version.h"
#include "keymanager1_adaptor.h"

namespace svmkey::daemon {

using ipc::kBusName;
inline constexpr const char* kObjectPath = ipc::kManagerPath;

struct KeyManagerSettings {
  std::string volume_root;   // new volumes' metadata files: <root>/<svm uuid>/<uuid>.meta
  gid_t operator_gid = static_cast<gid_t>(-1);  // group "svmkey"; -1 = root only
  JobSettings jobs;
};

// Runs short operations one at a time on a thread of its own, with its own table
// connection; results are posted back to the loop.
class ControlWorker {
 public:
  explicit ControlWorker(std::unique_ptr<table::Rdb> rdb);
  ~ControlWorker();
  void Submit(std::function<void(table::Rdb&)> task);

 private:
  std::unique_ptr<table::Rdb> rdb_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(table::Rdb&)>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

class KeyManager final : public sdbus::AdaptorInterfaces<org::svmkey::KeyManager1_adaptor> {
 public:
  KeyManager(sdbus::IConnection& connection, EventLoop& loop, table::Rdb& rdb,
             table::RdbOptions rdb_options, KeyService& keys, KeyManagerSettings settings);
  ~KeyManager();

  JobManager& jobs() { return *jobs_; }
  // Resumes every queued or running job of the table (at start, before READY=1).
  size_t ResumeUnfinishedJobs();
  void StopWorkers();

 private:
  struct Caller {
    uid_t uid = 0;
  };
  Caller Authorize();
  Uuid ResolveSvm(const std::string& svm_text);
  // The optional "svm" key (name or uuid) of a List* filter; other keys are refused.
  std::optional<Uuid> SvmFilter(const VariantMap& filter);
  // Creates the job row (refused with 8 when the SVM already has one) and runs it;
  // replies per the return_timeout contract.
  void StartJob(const JobRequest& request, uint32_t return_timeout,
                std::shared_ptr<sdbus::Result<uint32_t, std::string>> result);
  // Runs `work` on the control worker and posts its reply back to the loop.
  // `work` throws sdbus::Error (ThrowStatus) on failure.
  template <typename... T, typename Work>
  void Defer(std::shared_ptr<sdbus::Result<T...>> result, Work work);

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

  EventLoop& loop_;
  table::Rdb& rdb_;
  table::RdbOptions rdb_options_;
  KeyService& keys_;
  KeyManagerSettings settings_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<ControlWorker> worker_;
};

}  // namespace svmkey::daemon
