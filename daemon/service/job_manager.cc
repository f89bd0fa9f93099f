#include "daemon/service/job_manager.h"

#include <cmath>

#include "daemon/core/bus_error.h"
#include "daemon/core/log.h"
#include "daemon/table/states.h"
#include "ipc/bus_names.h"
#include "job1_adaptor.h"

namespace svmkey::daemon {
namespace {

using ipc::kJobInterface;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// One org.svmkey.Job1 object; lives on the loop thread.
class JobObject final : public sdbus::AdaptorInterfaces<org::svmkey::Job1_adaptor> {
 public:
  JobObject(sdbus::IConnection& connection, std::string path)
      : AdaptorInterfaces(connection, std::move(path)) {
    registerAdaptor();
  }
  ~JobObject() { unregisterAdaptor(); }

  // Copies the row's fields; emits PropertiesChanged for those that changed.
  void Update(const table::JobRow& row) {
    std::vector<std::string> changed;
    auto set = [&changed](auto& field, const auto& value, const char* name) {
      if (!(field == value)) {
        field = value;
        changed.emplace_back(name);
      }
    };
    uuid_ = row.uuid.ToString();
    svm_ = row.svm ? row.svm->ToString() : "";
    set(description_, row.description, "Description");
    set(state_, std::string(table::ToString(row.state)), "State");
    set(code_, row.code, "Code");
    set(message_, row.message, "Message");
    set(start_us_, row.start_time_ms * 1000, "StartTime");
    set(end_us_, row.end_time_ms * 1000, "EndTime");
    set(phase_, std::string(row.phase ? table::PhaseName(row.phase) : "queued"), "Phase");
    UpdateProgress(row.progress_done, row.progress_total, rate_, changed);
    if (table::IsTerminal(row.state)) set(expected_end_us_, int64_t{0}, "ExpectedEndTime");
    Emit(changed);
  }

  void SetProgress(uint64_t done, uint64_t total, double rate) {
    std::vector<std::string> changed;
    UpdateProgress(done, total, rate, changed);
    Emit(changed);
  }

  void SetPhase(const std::string& phase, const std::string& message) {
    std::vector<std::string> changed;
    if (phase_ != phase) {
      phase_ = phase;
      changed.emplace_back("Phase");
    }
    if (!message.empty() && message_ != message) {
      message_ = message;
      changed.emplace_back("Message");
    }
    if (state_ == "queued") {
      state_ = "running";
      changed.emplace_back("State");
    }
    Emit(changed);
  }


  std::string Uuid() override { return uuid_; }
  std::string Description() override { return description_; }
  std::string State() override { return state_; }
  uint32_t Code() override { return code_; }
  std::string Message() override { return message_; }
  std::string Svm() override { return svm_; }
  int64_t StartTime() override { return start_us_; }
  int64_t EndTime() override { return end_us_; }
  double Progress() override { return total_ ? static_cast<double>(done_) / total_ : 0.0; }
  uint64_t VolumesDone() override { return done_; }
  uint64_t VolumesTotal() override { return total_; }
  double Rate() override { return rate_; }
  int64_t ExpectedEndTime() override { return expected_end_us_; }
  std::string Phase() override { return phase_; }

  const std::string& state() const { return state_; }

 private:
  void UpdateProgress(uint64_t done, uint64_t total, double rate,
                      std::vector<std::string>& changed) {
    const bool moved = done != done_ || total != total_;
    if (moved) {
      done_ = done;
      total_ = total;
      changed.emplace_back("VolumesDone");
      changed.emplace_back("VolumesTotal");
      changed.emplace_back("Progress");
    }
    if (rate != rate_) {
      rate_ = rate;
      changed.emplace_back("Rate");
    }
    if (moved && rate > 0 && total >= done && state_ == "running") {
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
      getObject().emitPropertiesChangedSignal(kJobInterface, changed);
    } catch (const sdbus::Error& e) {
      LogWarning("cannot emit PropertiesChanged for job " + uuid_ + ": " + e.getMessage());
    }
  }

  std::string uuid_, description_, state_, message_, svm_, phase_;
  uint32_t code_ = 0;
  int64_t start_us_ = 0, end_us_ = 0, expected_end_us_ = 0;
  uint64_t done_ = 0, total_ = 0;
  double rate_ = 0;
};

// ---- ManagedJobContext (job thread) ----

// The JobContext of a job run by the manager: table writes through the job thread's own
// connection, publication posted to the loop thread.
class ManagedJobContext final : public JobContext {
 public:
  ManagedJobContext(JobManager& manager, Uuid uuid, std::unique_ptr<table::Rdb> rdb)
      : manager_(manager), uuid_(uuid), rdb_(std::move(rdb)) {}

  const Uuid& uuid() const override { return uuid_; }
  table::Rdb& rdb() override { return *rdb_; }
  bool stop_requested() const override { return manager_.stopping_.load(); }
  Status SetPhase(int phase, const std::string& message) override;
  Status SetProgress(uint64_t done, uint64_t total) override;
  void PublishPhase(int phase, const std::string& message) override;
  void PublishProgress(uint64_t done, uint64_t total) override;

 private:
  JobManager& manager_;
  Uuid uuid_;
  std::unique_ptr<table::Rdb> rdb_;
  // Rate estimate: an exponential average over progress samples.
  std::chrono::steady_clock::time_point last_sample_{};
  uint64_t last_done_ = 0;
  double rate_ = 0;
};

Status ManagedJobContext::SetPhase(int phase, const std::string& message) {
  table::JobTable jobs(*rdb_);
  SVMKEY_RETURN_IF_ERROR(jobs.SetPhase(uuid_, phase, message));
  LogInfo("job " + uuid_.ToString() + ": phase " + std::string(table::PhaseName(phase)) +
          (message.empty() ? "" : ": " + message));
  const std::string name(table::PhaseName(phase));
  manager_.PostUpdate(uuid_, [name, message](JobObject& o) { o.SetPhase(name, message); });
  return Status::Ok();
}

void ManagedJobContext::PublishPhase(int phase, const std::string& message) {
  const std::string name(table::PhaseName(phase));
  manager_.PostUpdate(uuid_, [name, message](JobObject& o) { o.SetPhase(name, message); });
}

Status ManagedJobContext::SetProgress(uint64_t done, uint64_t total) {
  table::JobTable jobs(*rdb_);
  SVMKEY_RETURN_IF_ERROR(jobs.SetProgress(uuid_, done, total));
  PublishProgress(done, total);
  return Status::Ok();
}

void ManagedJobContext::PublishProgress(uint64_t done, uint64_t total) {
  const auto now = std::chrono::steady_clock::now();
  if (last_sample_ != std::chrono::steady_clock::time_point{} && done >= last_done_) {
    const double dt = std::chrono::duration<double>(now - last_sample_).count();
    if (dt > 0) {
      const double sample = static_cast<double>(done - last_done_) / dt;
      rate_ = rate_ == 0 ? sample : 0.7 * rate_ + 0.3 * sample;  // recent batches weigh most
    }
  }
  last_sample_ = now;
  last_done_ = done;
  const double rate = rate_;
  manager_.PostUpdate(uuid_, [done, total, rate](JobObject& o) { o.SetProgress(done, total, rate); });
}

// ---- JobManager ----

JobManager::JobManager(sdbus::IConnection& connection, EventLoop& loop,
                       table::RdbOptions rdb_options, table::Rdb& loop_rdb,
                       JobChangedSignal job_changed)
    : connection_(connection), loop_(loop), rdb_options_(std::move(rdb_options)),
      loop_rdb_(loop_rdb), job_changed_(std::move(job_changed)) {}

JobManager::~JobManager() { Shutdown(); }

std::string JobManager::ObjectPath(const Uuid& job) { return ipc::JobObjectPath(job.ToString()); }

void JobManager::Publish(const table::JobRow& row) {
  const std::string key = row.uuid.ToString();
  auto it = objects_.find(key);
  if (it == objects_.end()) {
    it = objects_.emplace(key, std::make_unique<JobObject>(connection_, ObjectPath(row.uuid))).first;
  }
  it->second->Update(row);
}

void JobManager::PublishAll() {
  table::JobTable jobs(loop_rdb_);
  auto rows = jobs.List();
  if (!rows.ok()) {
    LogErr("cannot list jobs: " + rows.status().ToString());
    return;
  }
  for (const auto& row : *rows) Publish(row);
}

void JobManager::PublishFromRow(const Uuid& uuid) {
  table::JobTable jobs(loop_rdb_);
  auto row = jobs.Get(uuid);
  if (row.ok()) Publish(*row);
}

void JobManager::PostUpdate(const Uuid& uuid, std::function<void(JobObject&)> update) {
  loop_.Post([this, key = uuid.ToString(), update = std::move(update)] {
    auto it = objects_.find(key);
    if (it != objects_.end()) update(*it->second);
  });
}

void JobManager::Start(const Uuid& uuid, JobBody body) {
  PublishFromRow(uuid);
  const std::string key = uuid.ToString();
  if (job_changed_) job_changed_(key, "queued");
  std::lock_guard<std::mutex> lock(mu_);
  ReapThreads();
  if (threads_.count(key)) {
    LogErr("job " + key + " is already running; not started twice");
    return;
  }
  auto& running = threads_[key];
  running.done = false;
  running.thread = std::thread([this, uuid, body = std::move(body)] {
    JobOutcome outcome;
    auto rdb = table::Rdb::Open(rdb_options_);
    if (!rdb.ok()) {
      outcome.status = Status(ErrorCode::kEncryptionStatusUnavailable,
                              "cannot open the job table: " + rdb.status().ToString());
      LogErr("job " + uuid.ToString() + ": " + outcome.status.ToString());
    } else {
      ManagedJobContext ctx(*this, uuid, std::move(rdb).value());
      table::JobTable jobs(ctx.rdb());
      // A job resumed after a crash or a SIGTERM is already `running` in the table
      // (running -> running is not a transition): only queued (or paused) jobs start.
      Status started = Status::Ok();
      auto row = jobs.Get(uuid);
      if (!row.ok()) {
        started = row.status();
      } else if (row->state != table::JobState::kRunning) {
        started = jobs.Start(uuid);
      }
      // A body that returns has recorded its own terminal state (job_context.h); the
      // manager records one only for a body that never ran or threw.
      bool recorded = false;
      if (!started.ok()) {
        outcome.status = started;
      } else {
        try {
          outcome = body(ctx);
          recorded = true;
        } catch (const std::exception& e) {
          outcome.status = Status(ErrorCode::kUnexpectedException, e.what());
        }
      }
      if (!recorded) {
        const Status& s = outcome.status;
        Status rec = jobs.Finish(uuid, s.numeric_code(), s.ToString());
        if (!rec.ok()) LogErr("job " + uuid.ToString() + ": cannot record the end: " + rec.ToString());
      }
      if (outcome.kind == JobOutcome::Kind::kInterrupted) {
        LogNotice("job " + uuid.ToString() + " interrupted at a batch boundary; it resumes at the next start");
      } else if (outcome.status.ok()) {
        LogInfo("job " + uuid.ToString() + " succeeded");
      } else {
        LogWarning("job " + uuid.ToString() + " failed: " + outcome.status.ToString());
      }
    }
    loop_.Post([this, uuid] { Finished(uuid); });
    std::lock_guard<std::mutex> done_lock(mu_);
    auto self = threads_.find(uuid.ToString());
    if (self != threads_.end()) self->second.done = true;
  });
}

void JobManager::Finished(const Uuid& uuid) {
  PublishFromRow(uuid);
  const std::string key = uuid.ToString();
  auto it = objects_.find(key);
  const std::string state = it != objects_.end() ? it->second->state() : "unknown";
  if (job_changed_) job_changed_(key, state);
  auto w = waiters_.find(key);
  if (w == waiters_.end()) return;
  // A job that was interrupted (shutdown) is still running as far as callers know.
  table::JobTable jobs(loop_rdb_);
  auto row = jobs.Get(uuid);
  if (!row.ok() || !table::IsTerminal(row->state)) return;
  for (auto& waiter : w->second) {
    if (row->state == table::JobState::kSuccess) {
      waiter.reply(201, key, Status::Ok());
    } else {
      const ErrorCode code = static_cast<ErrorCode>(row->code);
      waiter.reply(0, key, Status(FindError(code) ? code : ErrorCode::kUnexpectedException,
                                  "job " + key + ": " + row->message));
    }
  }
  waiters_.erase(w);
}

void JobManager::Wait(const Uuid& uuid, std::chrono::seconds timeout, Reply reply) {
  const std::string key = uuid.ToString();
  const uint64_t id = next_waiter_++;
  waiters_[key].push_back(Waiter{id, std::move(reply)});
  loop_.RunAt(EventLoop::Clock::now() + timeout, [this, key, id] {
    auto w = waiters_.find(key);
    if (w == waiters_.end()) return;
    auto& list = w->second;
    for (auto it = list.begin(); it != list.end(); ++it) {
      if (it->id == id) {
        auto deferred = std::move(it->reply);
        list.erase(it);
        if (list.empty()) waiters_.erase(w);
        deferred(202, key, Status::Ok());
        return;
      }
    }
  });
}

std::pair<double, int64_t> JobManager::LiveEstimate(const Uuid& uuid) {
  auto it = objects_.find(uuid.ToString());
  if (it == objects_.end()) return {0.0, 0};
  return {it->second->Rate(), it->second->ExpectedEndTime()};
}

size_t JobManager::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [k, r] : threads_) n += r.done ? 0 : 1;
  return n;
}

void JobManager::ReapThreads() {
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (it->second.done && it->second.thread.joinable()) {
      it->second.thread.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
}

void JobManager::Shutdown() {
  stopping_ = true;
  std::map<std::string, Running> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (auto& [key, running] : threads) {
    if (running.thread.joinable()) running.thread.join();
  }
}

void JobManager::Prune() {
  table::JobTable jobs(loop_rdb_);
  auto pruned = jobs.PruneFinished();
  if (!pruned.ok()) {
    LogWarning("job pruning failed: " + pruned.status().ToString());
    return;
  }
  if (*pruned == 0) return;
  LogInfo("pruned " + std::to_string(*pruned) + " finished jobs past the retention period");
  for (auto it = objects_.begin(); it != objects_.end();) {
    auto uuid = Uuid::Parse(it->first);
    if (uuid && jobs.Get(*uuid).status().code() == ErrorCode::kEntryNotFound) {
      it = objects_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace svmkey::daemon
