#include "daemon/bus/job_object.h"

#include <chrono>
#include <vector>

#include "daemon/bus/bus_error.h"
#include "daemon/bus/row_maps.h"
#include "daemon/core/log.h"
#include "daemon/table/states.h"
#include "ipc/bus_names.h"
#include "job1_adaptor.h"

namespace svmkey::daemon {
namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// One org.svmkey.Job1 object.
class JobObject final : public sdbus::AdaptorInterfaces<org::svmkey::Job1_adaptor> {
 public:
  JobObject(sdbus::IConnection& connection, std::string path,
            const JobObjects::ControlHandler& control)
      : AdaptorInterfaces(connection, std::move(path)), control_(control) {
    registerAdaptor();
  }
  ~JobObject() { unregisterAdaptor(); }

  // Copies the row's fields; emits PropertiesChanged for those that changed.
  void Update(const table::JobRow& row) {
    const JobFields f = JobFieldsFromRow(row);
    std::vector<std::string> changed;
    auto set = [&changed](auto& field, const auto& value, const char* name) {
      if (!(field == value)) {
        field = value;
        changed.emplace_back(name);
      }
    };
    f_.uuid = f.uuid;
    f_.svm = f.svm;
    f_.terminal = f.terminal;
    f_.started_by_uid = f.started_by_uid;
    set(f_.cancelable, f.cancelable, "Cancelable");
    set(f_.description, f.description, "Description");
    set(f_.state, f.state, "State");
    set(f_.code, f.code, "Code");
    set(f_.message, f.message, "Message");
    set(f_.start_us, f.start_us, "StartTime");
    set(f_.end_us, f.end_us, "EndTime");
    set(f_.phase, f.phase, "Phase");
    UpdateProgress(f.done, f.total, rate_, changed);
    if (f.terminal) set(expected_end_us_, int64_t{0}, "ExpectedEndTime");
    Emit(changed);
  }

  void SetProgress(uint64_t done, uint64_t total, double rate) {
    std::vector<std::string> changed;
    UpdateProgress(done, total, rate, changed);
    Emit(changed);
  }

  void SetPhase(const std::string& phase, const std::string& message) {
    std::vector<std::string> changed;
    if (f_.phase != phase) {
      f_.phase = phase;
      changed.emplace_back("Phase");
    }
    if (!message.empty() && f_.message != message) {
      f_.message = message;
      changed.emplace_back("Message");
    }
    // A phase is published only by a running body (a resumed job was paused).
    if (f_.state == "queued" || f_.state == "paused") {
      f_.state = "running";
      changed.emplace_back("State");
    }
    // The commit cannot be stopped (JobContext::BeginUnstoppable).
    if (f_.cancelable && (phase == table::PhaseName(table::kPhaseCommit) ||
                          phase == table::PhaseName(table::kPhaseInstall))) {
      f_.cancelable = false;
      changed.emplace_back("Cancelable");
    }
    Emit(changed);
  }

  std::string Uuid() override { return f_.uuid; }
  std::string Description() override { return f_.description; }
  std::string State() override { return f_.state; }
  uint32_t Code() override { return f_.code; }
  std::string Message() override { return f_.message; }
  std::string Svm() override { return f_.svm; }
  int64_t StartTime() override { return f_.start_us; }
  int64_t EndTime() override { return f_.end_us; }
  double Progress() override { return ProgressFraction(f_.done, f_.total); }
  uint64_t VolumesDone() override { return f_.done; }
  uint64_t VolumesTotal() override { return f_.total; }
  double Rate() override { return rate_; }
  int64_t ExpectedEndTime() override { return expected_end_us_; }
  std::string Phase() override { return f_.phase; }
  bool Cancelable() override { return f_.cancelable; }
  uint32_t StartedByUID() override { return f_.started_by_uid; }
  void Cancel() override { Control(JobLauncher::Action::kCancel); }
  void Pause() override { Control(JobLauncher::Action::kPause); }
  void Resume() override { Control(JobLauncher::Action::kResume); }

 private:
  void UpdateProgress(uint64_t done, uint64_t total, double rate,
                      std::vector<std::string>& changed) {
    const bool moved = done != f_.done || total != f_.total;
    if (moved) {
      f_.done = done;
      f_.total = total;
      changed.emplace_back("VolumesDone");
      changed.emplace_back("VolumesTotal");
      changed.emplace_back("Progress");
    }
    if (rate != rate_) {
      rate_ = rate;
      changed.emplace_back("Rate");
    }
    if (moved && rate > 0 && total >= done && f_.state == "running") {
      const int64_t eta = NowUs() + static_cast<int64_t>((total - done) / rate * 1e6);
      if (eta != expected_end_us_) {
        expected_end_us_ = eta;
        changed.emplace_back("ExpectedEndTime");
      }
    }
  }
  void Emit(const std::vector<std::string>& changed) {
    if (changed.empty()) return;
    try {
      getObject().emitPropertiesChangedSignal(ipc::kJobInterface, changed);
    } catch (const sdbus::Error& e) {
      LogWarning("cannot emit PropertiesChanged for job " + f_.uuid + ": " + e.getMessage());
    }
  }

  void Control(JobLauncher::Action action) {
    auto job = svmkey::Uuid::Parse(f_.uuid);
    if (!control_ || !job) Throw(ErrorCode::kNotSupported, "job control is not available");
    control_(getObject(), *job, action);
  }

  const JobObjects::ControlHandler& control_;
  JobFields f_;
  int64_t expected_end_us_ = 0;
  double rate_ = 0;
};

JobObjects::JobObjects() = default;

void JobObjects::Attach(sdbus::IConnection& connection, JobChangedSignal job_changed) {
  objects_.clear();
  connection_ = &connection;
  job_changed_ = std::move(job_changed);
}

void JobObjects::Detach(const sdbus::IConnection& connection) {
  if (connection_ != &connection) return;
  objects_.clear();
  connection_ = nullptr;
  job_changed_ = nullptr;
}

JobObjects::~JobObjects() = default;

JobObject* JobObjects::Find(const Uuid& job) const {
  auto it = objects_.find(job.ToString());
  return it == objects_.end() ? nullptr : it->second.get();
}

std::pair<double, int64_t> JobObjects::LiveEstimate(const Uuid& job) const {
  JobObject* o = Find(job);
  if (o == nullptr) return {0.0, 0};
  return {o->Rate(), o->ExpectedEndTime()};
}

void JobObjects::Published(const table::JobRow& row) {
  if (connection_ == nullptr) return;
  const std::string key = row.uuid.ToString();
  auto it = objects_.find(key);
  if (it == objects_.end()) {
    it = objects_.emplace(key, std::make_unique<JobObject>(*connection_, ipc::JobObjectPath(key), control_))
             .first;
  }
  it->second->Update(row);
}

void JobObjects::PhaseChanged(const Uuid& job, int phase, const std::string& message) {
  if (JobObject* o = Find(job)) o->SetPhase(std::string(table::PhaseName(phase)), message);
}

void JobObjects::ProgressChanged(const Uuid& job, uint64_t done, uint64_t total, double rate) {
  if (JobObject* o = Find(job)) o->SetProgress(done, total, rate);
}

void JobObjects::StateChanged(const Uuid& job, const std::string& state) {
  if (job_changed_) job_changed_(job.ToString(), state);
}

void JobObjects::Removed(const Uuid& job) { objects_.erase(job.ToString()); }

}  // namespace svmkey::daemon
