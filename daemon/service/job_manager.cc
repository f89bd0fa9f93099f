#include "daemon/service/job_manager.h"

#include "daemon/core/log.h"
#include "daemon/service/job_request.h"
#include "daemon/table/states.h"

namespace svmkey::daemon {

// ---- ManagedJobContext (job thread) ----

// The JobContext of a job run by the manager: table writes through the job thread's own
// connection, publication posted to the loop thread.
class ManagedJobContext final : public JobContext {
 public:
  ManagedJobContext(JobManager& manager, Uuid uuid, std::unique_ptr<table::Rdb> rdb)
      : manager_(manager), uuid_(uuid), rdb_(std::move(rdb)) {}

  const Uuid& uuid() const override { return uuid_; }
  table::Rdb& rdb() override { return *rdb_; }
  bool stop_requested() const override { return stop_reason() != StopReason::kNone; }
  StopReason stop_reason() const override { return manager_.ReasonFor(uuid_); }
  StopReason BeginUnstoppable() override { return manager_.BeginUnstoppable(uuid_); }
  StopReason ConfirmStop() override { return manager_.ConfirmStop(uuid_); }
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
  PublishPhase(phase, message);
  return Status::Ok();
}

void ManagedJobContext::PublishPhase(int phase, const std::string& message) {
  manager_.PostToObserver(
      [uuid = uuid_, phase, message](JobObserver& o) { o.PhaseChanged(uuid, phase, message); });
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
  manager_.PostToObserver([uuid = uuid_, done, total, rate](JobObserver& o) {
    o.ProgressChanged(uuid, done, total, rate);
  });
}

// ---- JobManager ----

JobManager::JobManager(LoopTasks& loop, table::RdbOptions rdb_options, table::Rdb& loop_rdb,
                       JobObserver& observer)
    : loop_(loop), rdb_options_(std::move(rdb_options)), loop_rdb_(loop_rdb), observer_(observer) {}

JobManager::~JobManager() { Shutdown(); }

void JobManager::Publish(const table::JobRow& row) {
  published_.insert(row.uuid.ToString());
  observer_.Published(row);
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

Result<table::JobRow> JobManager::PublishFromRow(const Uuid& uuid) {
  table::JobTable jobs(loop_rdb_);
  auto row = jobs.Get(uuid);
  if (row.ok()) Publish(*row);
  return row;
}

void JobManager::PostToObserver(std::function<void(JobObserver&)> call) {
  loop_.Post([this, call = std::move(call)] { call(observer_); });
}

void JobManager::Start(const Uuid& uuid, JobBody body) {
  PublishFromRow(uuid).status().IgnoreError();
  const std::string key = uuid.ToString();
  observer_.StateChanged(uuid, "queued");
  std::lock_guard<std::mutex> lock(mu_);
  ReapThreads();
  if (threads_.count(key)) {
    LogErr("job " + key + " is already running; not started twice");
    return;
  }
  auto& running = threads_[key];
  running.done = false;
  running.thread = std::thread([this, uuid, body = std::move(body)] {
    RunBody(uuid, body);
    {
      // Done before Finished publishes the end: whoever sees a job paused may resume it.
      std::lock_guard<std::mutex> done_lock(mu_);
      auto self = threads_.find(uuid.ToString());
      if (self != threads_.end()) self->second.done = true;
    }
    loop_.Post([this, uuid] { Finished(uuid); });
  });
}

void JobManager::RunBody(const Uuid& uuid, const JobBody& body) {
  // An operator's request concerns this run only: once the body returned, a later one
  // is told the job is still stopping (until its thread is done).
  struct EndControl {
    JobManager& m;
    std::string key;
    ~EndControl() {
      std::lock_guard<std::mutex> lock(m.mu_);
      m.control_[key].confirmed = true;
    }
  } end_control{*this, uuid.ToString()};
  JobOutcome outcome;
  auto rdb = table::Rdb::Open(rdb_options_);
  if (!rdb.ok()) {
    outcome.status = Status(ErrorCode::kEncryptionStatusUnavailable,
                            "cannot open the job table: " + rdb.status().ToString());
    LogErr("job " + uuid.ToString() + ": " + outcome.status.ToString());
    return;
  }
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
  if (recorded && outcome.kind == JobOutcome::Kind::kInterrupted) {
    SettleStopped(uuid, jobs, outcome);
  }
  if (outcome.kind == JobOutcome::Kind::kInterrupted) {
    if (outcome.stopped_for == StopReason::kPause) return;
    LogNotice("job " + uuid.ToString() +
              " interrupted at a batch boundary; it resumes at the next start");
  } else if (outcome.status.ok()) {
    LogInfo("job " + uuid.ToString() + " succeeded");
  } else {
    LogWarning("job " + uuid.ToString() + " failed: " + outcome.status.ToString());
  }
}

void JobManager::SettleStopped(const Uuid& uuid, table::JobTable& jobs, JobOutcome& outcome) {
  const std::string key = uuid.ToString();
  if (outcome.stopped_for == StopReason::kPause) {
    // Both SVM-KEK generations and the key store state stay as the body left them.
    Status s = jobs.Pause(uuid);
    if (s.ok()) {
      LogNotice("job " + key + " paused at a batch boundary; it waits for Resume or Cancel");
    } else {
      LogErr("job " + key + ": cannot record the pause: " + s.ToString());
    }
  } else if (outcome.stopped_for == StopReason::kCancel) {
    const Status canceled = CanceledStatus("canceled at a batch boundary");
    Status s = jobs.Finish(uuid, canceled.numeric_code(), canceled.ToString());
    if (!s.ok()) LogErr("job " + key + ": cannot record the cancel: " + s.ToString());
    outcome = JobOutcome::Finished(canceled);
  }
}

StopReason JobManager::ConfirmStop(const Uuid& uuid) {
  std::lock_guard<std::mutex> lock(mu_);
  Control& c = control_[uuid.ToString()];
  c.confirmed = true;
  if (c.reason != StopReason::kNone) return c.reason;
  return stopping_.load() ? StopReason::kShutdown : StopReason::kNone;
}

StopReason JobManager::ReasonFor(const Uuid& uuid) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = control_.find(uuid.ToString());
    if (it != control_.end() && it->second.reason != StopReason::kNone) return it->second.reason;
  }
  return stopping_.load() ? StopReason::kShutdown : StopReason::kNone;
}

StopReason JobManager::BeginUnstoppable(const Uuid& uuid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Control& c = control_[uuid.ToString()];
    if (c.reason == StopReason::kPause || c.reason == StopReason::kCancel) return c.reason;
    c.unstoppable = true;
  }
  // Job1.Cancelable turns false with the phase (job_object.cc).
  PostToObserver([uuid](JobObserver& o) { o.PhaseChanged(uuid, table::kPhaseCommit, ""); });
  return StopReason::kNone;
}

JobManager::StopRequest JobManager::RequestStop(const Uuid& uuid, StopReason reason) {
  const std::string key = uuid.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  auto t = threads_.find(key);
  if (t == threads_.end() || t->second.done) return StopRequest::kNotRunning;
  Control& c = control_[key];
  if (c.unstoppable) return StopRequest::kUnstoppable;
  if (c.confirmed) return StopRequest::kStopping;
  if (c.reason != StopReason::kCancel) c.reason = reason;
  return StopRequest::kAccepted;
}

void JobManager::StartStopped(const Uuid& uuid, JobBody body, StopReason reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Control fresh;
    fresh.reason = reason;
    control_[uuid.ToString()] = fresh;
  }
  Start(uuid, std::move(body));
}

bool JobManager::Alive(const Uuid& uuid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = threads_.find(uuid.ToString());
  return t != threads_.end() && !t->second.done;
}

void JobManager::Republish(const Uuid& uuid) {
  const auto row = PublishFromRow(uuid);
  if (row.ok()) observer_.StateChanged(uuid, std::string(table::ToString(row->state)));
}

void JobManager::Finished(const Uuid& uuid) {
  {
    // The ended run's control; a run started since has a fresh, unconfirmed one.
    std::lock_guard<std::mutex> lock(mu_);
    auto c = control_.find(uuid.ToString());
    if (c != control_.end() && c->second.confirmed) control_.erase(c);
  }
  const auto row = PublishFromRow(uuid);
  const std::string key = uuid.ToString();
  observer_.StateChanged(uuid, row.ok() ? std::string(table::ToString(row->state)) : "unknown");
  auto w = waiters_.find(key);
  if (w == waiters_.end()) return;
  // A job that was interrupted (shutdown) is still running as far as callers know.
  if (!row.ok() || !table::IsTerminal(row->state)) return;
  for (auto& waiter : w->second) {
    if (row->state == table::JobState::kSuccess) {
      waiter.reply(201, key, Status::Ok());
    } else {
      const ErrorCode code = static_cast<ErrorCode>(row->code);
      waiter.reply(0, key,
                   Status(FindError(code) ? code : ErrorCode::kUnexpectedException,
                          "job " + key + ": " + row->message));
    }
  }
  waiters_.erase(w);
}

void JobManager::Wait(const Uuid& uuid, std::chrono::seconds timeout, Reply reply) {
  const std::string key = uuid.ToString();
  const uint64_t id = next_waiter_++;
  waiters_[key].push_back(Waiter{id, std::move(reply)});
  loop_.RunAt(LoopTasks::Clock::now() + timeout, [this, key, id] {
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
  for (auto it = published_.begin(); it != published_.end();) {
    auto uuid = Uuid::Parse(*it);
    if (uuid && jobs.Get(*uuid).status().code() == ErrorCode::kEntryNotFound) {
      observer_.Removed(*uuid);
      it = published_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace svmkey::daemon
