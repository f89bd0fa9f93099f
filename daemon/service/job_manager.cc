#include "daemon/service/job_manager.h"

#include <algorithm>

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
  std::unique_ptr<table::Rdb> release_rdb() { return std::move(rdb_); }
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
                       JobObserver& observer, size_t max_running)
    : loop_(loop),
      rdb_options_(std::move(rdb_options)),
      loop_rdb_(loop_rdb),
      observer_(observer),
      max_running_(max_running == 0 ? 1 : max_running) {}

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

void JobManager::Start(const Uuid& uuid, JobBody body, JobFailer fail) {
  PublishFromRow(uuid).status().IgnoreError();
  const std::string key = uuid.ToString();
  observer_.StateChanged(uuid, "queued");
  {
    std::lock_guard<std::mutex> lock(mu_);
    ReapThreads();
    if (threads_.count(key)) {
      LogErr("job " + key + " is already running; not started twice");
      return;
    }
  }
  for (const Queued& q : queue_) {
    if (q.uuid == uuid) {
      LogErr("job " + key + " is already queued; not queued twice");
      return;
    }
  }
  queue_.push_back(Queued{uuid, std::move(body), std::move(fail)});
  if (launched_ >= max_running_) {
    LogInfo("job " + key + " waits: " + std::to_string(launched_) + " jobs running, " +
            std::to_string(queue_.size()) + " queued (--max-running-jobs " +
            std::to_string(max_running_) + ")");
  }
  StartQueued();
}

void JobManager::StartQueued() {
  while (!stopping_ && launched_ < max_running_ && !queue_.empty()) {
    Queued next = std::move(queue_.front());
    queue_.pop_front();
    Launch(std::move(next));
  }
}

void JobManager::Launch(Queued job) {
  const std::string key = job.uuid.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  if (threads_.count(key)) return;  // Start refused it; a queue entry never duplicates
  ++launched_;
  auto& running = threads_[key];
  running.done = false;
  running.thread = std::thread([this, job = std::move(job)] {
    RunBody(job.uuid, job.body, job.fail);
    {
      // Done before Finished publishes the end: whoever sees a job paused may resume it.
      std::lock_guard<std::mutex> done_lock(mu_);
      auto self = threads_.find(job.uuid.ToString());
      if (self != threads_.end()) self->second.done = true;
    }
    loop_.Post([this, uuid = job.uuid] { Finished(uuid); });
  });
}

void JobManager::RunBody(const Uuid& uuid, const JobBody& body, const JobFailer& fail) {
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
  auto rdb = table::Rdb::Open(rdb_options_);
  if (!rdb.ok()) {
    RecordUnrecordedEnd(uuid, nullptr, fail,
                        Status(ErrorCode::kEncryptionStatusUnavailable,
                               "cannot open the job table: " + rdb.status().ToString()));
    return;
  }
  auto ctx = std::make_unique<ManagedJobContext>(*this, uuid, std::move(rdb).value());
  table::JobTable jobs(ctx->rdb());
  // A job resumed after a crash or a SIGTERM is already `running` in the table
  // (running -> running is not a transition): only queued (or paused) jobs start.
  Status started = Status::Ok();
  auto row = jobs.Get(uuid);
  if (!row.ok()) {
    started = row.status();
  } else if (row->state != table::JobState::kRunning) {
    started = jobs.Start(uuid);
    if (started.ok()) {
      auto now_running = jobs.Get(uuid);
      if (now_running.ok()) {
        PostToObserver([r = *now_running](JobObserver& o) {
          o.Published(r);
          o.StateChanged(r.uuid, std::string(table::ToString(r.state)));
        });
      }
    }
  }
  // A body that returns has recorded its own terminal state (job_context.h); when it
  // could not (a table write failed), or it never ran or threw, the end is recorded below.
  JobOutcome outcome;
  if (!started.ok()) {
    outcome.status = started;
  } else {
    try {
      outcome = body(*ctx);
    } catch (const std::exception& e) {
      outcome.status = Status(ErrorCode::kUnexpectedException, e.what());
    }
  }
  if (outcome.kind == JobOutcome::Kind::kInterrupted) SettleStopped(uuid, jobs, outcome);
  if (outcome.kind == JobOutcome::Kind::kInterrupted) {
    if (outcome.stopped_for != StopReason::kPause) {
      LogNotice("job " + uuid.ToString() +
                " interrupted at a batch boundary; it resumes at the next start");
    }
  } else if (outcome.status.ok()) {
    LogInfo("job " + uuid.ToString() + " succeeded");
  } else {
    LogWarning("job " + uuid.ToString() + " failed: " + outcome.status.ToString());
  }
  Status failure = outcome.status;
  if (failure.ok()) {
    // The body reported success (or an interruption) but the row is still unfinished:
    // its end was not written, so what it did cannot be shown; a rerun is safe.
    failure = Status(ErrorCode::kEncryptionStatusUnavailable,
                     "the job ended but its end could not be recorded; run it again");
  }
  RecordUnrecordedEnd(uuid, ctx->release_rdb(), fail, failure);
}

bool JobManager::SleepUnlessStopping(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !stop_cv_.wait_for(lock, d, [this] { return stopping_.load(); });
}

void JobManager::RecordUnrecordedEnd(const Uuid& uuid, std::unique_ptr<table::Rdb> rdb,
                                     const JobFailer& fail, const Status& failure) {
  const std::string key = uuid.ToString();
  // A failure the table refused is retried: the row must not stay unfinished with no
  // thread behind it (it would hold the SVM, and callers would get 8, until a restart).
  // While the daemon stops, an unfinished row is what resumes the job at the next start.
  std::chrono::milliseconds backoff{200};
  for (;;) {
    if (stopping_) return;
    Status written = Status::Ok();
    if (!rdb) {
      auto opened = table::Rdb::Open(rdb_options_);
      if (opened.ok()) {
        rdb = std::move(opened).value();
      } else {
        written = opened.status();
      }
    }
    if (rdb) {
      table::JobTable jobs(*rdb);
      auto row = jobs.Get(uuid);
      if (row.ok() && row->state != table::JobState::kQueued &&
          row->state != table::JobState::kRunning) {
        return;  // terminal (or paused): the body's record stands
      }
      if (!row.ok() && row.status().code() == ErrorCode::kEntryNotFound) return;
      if (row.ok()) {
        ManagedJobContext ctx(*this, uuid, std::move(rdb));
        written = fail ? fail(ctx, failure)
                       : jobs.Finish(uuid, failure.numeric_code(), failure.ToString());
        rdb = ctx.release_rdb();
        if (written.ok()) {
          LogWarning("job " + key + " ended without recording its end; recorded failure: " +
                     failure.ToString());
          return;
        }
      } else {
        written = row.status();
      }
    }
    LogErr("job " + key + ": cannot record the end (" + written.ToString() + "); retrying in " +
           std::to_string(backoff.count()) + " ms");
    if (!SleepUnlessStopping(backoff)) return;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
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

void JobManager::StartStopped(const Uuid& uuid, JobBody body, StopReason reason,
                              JobFailer fail) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Control fresh;
    fresh.reason = reason;
    control_[uuid.ToString()] = fresh;
  }
  Start(uuid, std::move(body), std::move(fail));
}

void JobManager::Unqueue(const Uuid& uuid) {
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [&uuid](const Queued& q) { return q.uuid == uuid; }),
               queue_.end());
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
  if (launched_ > 0) --launched_;
  StartQueued();
  const auto row = PublishFromRow(uuid);
  const std::string key = uuid.ToString();
  observer_.StateChanged(uuid, row.ok() ? std::string(table::ToString(row->state)) : "unknown");
  // Retention by count is kept as jobs end, not only by the periodic prune (the job that
  // just ended is the newest, so it stays readable).
  if (row.ok() && table::IsTerminal(row->state)) {
    RemovePruned(table::JobTable(loop_rdb_).PruneBeyondCount());
  }
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
  std::map<std::string, Running> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  stop_cv_.notify_all();
  for (auto& [key, running] : threads) {
    if (running.thread.joinable()) running.thread.join();
  }
}

void JobManager::Prune() { RemovePruned(table::JobTable(loop_rdb_).PruneFinished()); }

void JobManager::RemovePruned(const Result<uint64_t>& pruned) {
  table::JobTable jobs(loop_rdb_);
  if (!pruned.ok()) {
    LogWarning("job pruning failed: " + pruned.status().ToString());
    return;
  }
  if (*pruned == 0) return;
  LogInfo("pruned " + std::to_string(*pruned) + " finished jobs (retention period or count)");
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
