// The org.svmkey.KeyManager1 method handlers, one file per resource (like
// systemd-homed's homed-*-bus.c): barbican_config_bus.cc, key_store_bus.cc, svm_bus.cc,
// volume_bus.cc, rekey_bus.cc (the methods that start a job), job_bus.cc.
//
// Every handler has the same short shape: parse and validate the arguments (options.h),
// authorize the caller (authorize.h), then answer a read from the table, hand the work
// to the control worker (reply.h), or queue a job, and reply. Handlers run on the loop
// thread and never wait on a job, Barbican or a long transaction; the work itself is in
// daemon/service/ (docs/ARCHITECTURE.md §2, §9).
#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/bus/authorize.h"
#include "daemon/bus/bus_error.h"
#include "daemon/bus/job_object.h"
#include "daemon/bus/options.h"
#include "daemon/bus/reply.h"
#include "daemon/core/event_loop.h"
#include "daemon/service/control_worker.h"
#include "daemon/service/job_launcher.h"
#include "daemon/service/job_manager.h"
#include "daemon/service/jobs.h"
#include "daemon/service/key_service.h"
#include "daemon/service/svm_service.h"
#include "daemon/table/rdb.h"

namespace svmkey::daemon {

struct KeyManagerSettings {
  std::string volume_root;  // new volumes' metadata files: <root>/<svm uuid>/<uuid>.meta
  // Besides volume_root, where RegisterVolumeSet may find volume sets (--volume-set-root).
  std::vector<std::string> volume_set_roots;
  gid_t operator_gid = static_cast<gid_t>(-1);  // group "svmkey"; -1 = root only
  JobSettings jobs;
  std::string ca_dir;  // the CA bundles callers hand over, one per configuration
};

// What every handler works with; owned by the ManagerObject (manager_object.h).
struct BusContext {
  sdbus::IObject& object;
  EventLoop& loop;
  table::Rdb& rdb;  // the loop thread's table connection
  ControlWorker& worker;
  KeyService& keys;
  JobLauncher& launcher;
  JobManager& jobs;
  JobObjects& job_objects;
  const KeyManagerSettings& settings;
  CallerInputReader& readers;

  Caller Authorize() { return daemon::Authorize(object, settings.operator_gid); }
  Uuid ResolveSvm(const std::string& svm_text) { return Check(daemon::ResolveSvm(rdb, svm_text)); }
  template <typename... T, typename Work>
  void Defer(sdbus::Result<T...>&& result, Work work) {
    daemon::Defer(worker, loop, std::make_shared<sdbus::Result<T...>>(std::move(result)),
                  std::move(work));
  }
  // Defer after reading the caller's descriptors (reply.h DeferAfterRead).
  template <typename... T, typename Work>
  void DeferAfterRead(sdbus::Result<T...>&& result, std::vector<CallerFd> fds, Work work) {
    daemon::DeferAfterRead(readers, worker, loop,
                           std::make_shared<sdbus::Result<T...>>(std::move(result)),
                           std::move(fds), std::move(work));
  }
};

namespace barbican_config_bus {
void Create(BusContext& bus, sdbus::Result<std::string>&& result, const VariantMap& config);
void Get(BusContext& bus, sdbus::Result<VariantMap>&& result, const std::string& uuid,
         const VariantMap& options);
std::vector<VariantMap> List(BusContext& bus, const VariantMap& filter);
void UpdateCredentials(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid,
                       const VariantMap& credentials);
void UpdateSettings(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid,
                    const VariantMap& settings);
}  // namespace barbican_config_bus

namespace key_store_bus {
void Enable(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid);
void Delete(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid);
std::vector<VariantMap> List(BusContext& bus, const VariantMap& filter);
// The filter of ListKeyStores and ListBarbicanConfigs: "svm" (name or uuid), "after"
// (a uuid: keyset paging, reply_page.h) and "limit" (1..10000); other keys are refused.
struct KeyStoreFilter {
  std::optional<Uuid> svm;
  std::optional<std::string> after;
  size_t limit = 10000;
};
KeyStoreFilter ReadFilter(BusContext& bus, const VariantMap& filter);
}  // namespace key_store_bus

namespace svm_bus {
void Create(BusContext& bus, sdbus::Result<std::string>&& result, const std::string& name,
            const VariantMap& options);
std::vector<VariantMap> List(BusContext& bus, const VariantMap& filter);
}  // namespace svm_bus

namespace volume_bus {
void Create(BusContext& bus, sdbus::Result<std::string>&& result, const std::string& svm,
            const std::string& name, const VariantMap& options);
void RegisterSet(BusContext& bus, sdbus::Result<uint64_t>&& result, const std::string& svm,
                 const std::string& directory, const VariantMap& options);
std::vector<VariantMap> List(BusContext& bus, const std::string& svm, const VariantMap& options);
}  // namespace volume_bus

namespace rekey_bus {
using JobReply = sdbus::Result<uint32_t, std::string>;
void RekeyInternal(BusContext& bus, JobReply&& result, const std::string& uuid,
                   uint32_t return_timeout);
void Restore(BusContext& bus, JobReply&& result, const std::string& uuid, uint32_t return_timeout);
void VerifyVolumes(BusContext& bus, JobReply&& result, const std::string& svm,
                   uint32_t return_timeout);
void RepairVolumes(BusContext& bus, JobReply&& result, const std::string& svm,
                   const VariantMap& options);
}  // namespace rekey_bus

namespace job_bus {
VariantMap Get(BusContext& bus, const std::string& uuid);
std::vector<VariantMap> List(BusContext& bus, const VariantMap& filter);
}  // namespace job_bus

}  // namespace svmkey::daemon
