// The org.svmkey.Job1 objects (ipc/org.svmkey.Job1.xml) at ipc::JobObjectPath(uuid),
// one per job row, and the manager's JobChanged signal: the bus side of the jobs,
// driven by the JobManager through its JobObserver interface. A property change is
// announced with PropertiesChanged; the rate and expected end time are estimated from
// the progress samples (docs/ARCHITECTURE.md §9).
//
// The registry outlives a bus connection: while no connection is attached (the bus was
// lost, svmkeyd.cc reconnects) job updates publish nothing, and attaching a new one
// recreates the objects from the table (JobManager::PublishAll).
//
// Threads: the loop thread only (every JobObserver call arrives there).
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "daemon/service/job_launcher.h"
#include "daemon/service/job_manager.h"

namespace svmkey::daemon {

class JobObject;

class JobObjects final : public JobObserver {
 public:
  // Emits the manager's JobChanged(uuid, state) signal.
  using JobChangedSignal = std::function<void(const std::string& uuid, const std::string& state)>;
  JobObjects();
  ~JobObjects() override;

  // Job1's Cancel, Pause and Resume: authorizes the caller of the message `object` is
  // processing and asks for the action, throwing the bus error when refused.
  using ControlHandler =
      std::function<void(sdbus::IObject& object, const Uuid& job, JobLauncher::Action action)>;
  // Set once, before any job object is published.
  void SetControlHandler(ControlHandler handler) { control_ = std::move(handler); }
  // Publishes the Job1 objects and JobChanged on `connection` from now on (the caller
  // then republishes every job).
  void Attach(sdbus::IConnection& connection, JobChangedSignal job_changed);
  // Drops every Job1 object and the signal, if `connection` is the attached one.
  void Detach(const sdbus::IConnection& connection);

  // The live rate (volumes/s) and expected end (µs since the epoch) of a published job;
  // {0, 0} for one without an object.
  std::pair<double, int64_t> LiveEstimate(const Uuid& job) const;

  void Published(const table::JobRow& row) override;
  void PhaseChanged(const Uuid& job, int phase, const std::string& message) override;
  void ProgressChanged(const Uuid& job, uint64_t done, uint64_t total, double rate) override;
  void StateChanged(const Uuid& job, const std::string& state) override;
  void Removed(const Uuid& job) override;

 private:
  JobObject* Find(const Uuid& job) const;

  sdbus::IConnection* connection_ = nullptr;
  JobChangedSignal job_changed_;
  ControlHandler control_;
  std::map<std::string, std::unique_ptr<JobObject>> objects_;
};

}  // namespace svmkey::daemon
