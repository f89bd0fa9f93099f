// The JobManager's side of job control (job_manager.h, docs/ARCHITECTURE.md §7): a
// real table in a temporary directory, bodies that wait on the test, and a loop whose
// posted tasks the test runs. Pause and cancel requests reach the body through its
// JobContext; the manager records paused or the cancel for a body that stopped; a
// request once the commit began, or once the body fixed why it stops, is refused.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "daemon/service/job_manager.h"
#include "daemon/service/jobs.h"
#include "daemon/table/job_table.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace svmkey::daemon {
namespace {

using namespace std::chrono_literals;
using Stop = JobManager::StopRequest;

// The loop thread is the test's: posted tasks wait until Drain().
class TestLoop final : public LoopTasks {
 public:
  void Post(std::function<void()> task) override {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  void RunAt(Clock::time_point, std::function<void()>) override {}
  void Drain() {
    for (;;) {
      std::function<void()> task;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

 private:
  std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
};

class NullObserver final : public JobObserver {
 public:
  void Published(const table::JobRow&) override {}
  void PhaseChanged(const Uuid&, int phase, const std::string&) override { last_phase = phase; }
  void ProgressChanged(const Uuid&, uint64_t, uint64_t, double) override {}
  void StateChanged(const Uuid&, const std::string&) override {}
  void Removed(const Uuid&) override {}
  int last_phase = 0;
};

// A one-shot signal between a body and the test.
class Latch {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool Wait(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

class JobManagerControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    options_.path = tmp_.path() + "/rdb.sqlite";
    auto rdb = table::Rdb::Open(options_);
    ASSERT_TRUE(rdb.ok()) << rdb.status().ToString();
    rdb_ = std::move(rdb).value();
    manager_ = std::make_unique<JobManager>(loop_, options_, *rdb_, observer_);
    table::NewJob job;
    job.uuid = uuid_;
    job.description = "test job";
    ASSERT_OK(table::JobTable(*rdb_).Create(job));
  }
  void TearDown() override {
    manager_->Shutdown();
    loop_.Drain();
    manager_.reset();
  }

  table::JobRow Row() { return table::JobTable(*rdb_).Get(uuid_).value(); }
  // Waits until no thread runs the job.
  bool Ended() {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (manager_->Alive(uuid_)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
    loop_.Drain();
    return true;
  }
  // A body that runs batches until asked to stop, then stops for the reason it was given.
  static JobOutcome StopWhenAsked(JobContext& ctx) {
    while (!ctx.stop_requested()) std::this_thread::sleep_for(1ms);
    return JobOutcome::Interrupted(ctx.ConfirmStop());
  }

  svmkey::testing::TempDir tmp_{{.prefix = "job-manager"}};
  table::RdbOptions options_;
  std::unique_ptr<table::Rdb> rdb_;
  TestLoop loop_;
  NullObserver observer_;
  std::unique_ptr<JobManager> manager_;
  const Uuid uuid_ = Uuid::Random();
};

TEST_F(JobManagerControlTest, PauseRecordsPausedAndResumeRunsTheBodyAgain) {
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kPause), Stop::kNotRunning);
  manager_->Start(uuid_, StopWhenAsked);
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kPause), Stop::kAccepted);
  ASSERT_TRUE(Ended());
  EXPECT_EQ(Row().state, table::JobState::kPaused);
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kCancel), Stop::kNotRunning);
  // Resume: the old request is forgotten, the body runs to its end.
  manager_->StartStopped(
      uuid_,
      [](JobContext& ctx) {
        EXPECT_FALSE(ctx.stop_requested());
        return FinishJob(ctx, Status::Ok());
      },
      StopReason::kNone);
  ASSERT_TRUE(Ended());
  EXPECT_EQ(Row().state, table::JobState::kSuccess);
}

TEST_F(JobManagerControlTest, CancelOfABodyThatStoppedIsRecordedAsJobCanceled) {
  manager_->Start(uuid_, StopWhenAsked);
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kPause), Stop::kAccepted);
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kCancel), Stop::kAccepted);  // replaces it
  ASSERT_TRUE(Ended());
  const table::JobRow row = Row();
  EXPECT_EQ(row.state, table::JobState::kFailure);
  EXPECT_EQ(row.code, static_cast<uint32_t>(ErrorCode::kJobCanceled));
  EXPECT_NE(row.message.find("Job canceled by the operator."), std::string::npos) << row.message;
}

TEST_F(JobManagerControlTest, CancelAskedBeforeTheBodyRunsStopsItFirst) {
  std::atomic<bool> saw_cancel{false};
  manager_->StartStopped(
      uuid_,
      [&](JobContext& ctx) {
        saw_cancel = ctx.stop_reason() == StopReason::kCancel;
        return JobOutcome::Interrupted(ctx.ConfirmStop());
      },
      StopReason::kCancel);
  ASSERT_TRUE(Ended());
  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(Row().code, static_cast<uint32_t>(ErrorCode::kJobCanceled));
}

TEST_F(JobManagerControlTest, RequestsAreRefusedOnceTheCommitBegan) {
  Latch committing, release;
  manager_->Start(uuid_, [&](JobContext& ctx) {
    EXPECT_EQ(ctx.BeginUnstoppable(), StopReason::kNone);
    committing.Open();
    release.Wait();
    EXPECT_FALSE(ctx.stop_requested());
    return FinishJob(ctx, Status::Ok());
  });
  ASSERT_TRUE(committing.Wait());
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kCancel), Stop::kUnstoppable);
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kPause), Stop::kUnstoppable);
  release.Open();
  ASSERT_TRUE(Ended());
  EXPECT_EQ(Row().state, table::JobState::kSuccess);
  EXPECT_EQ(observer_.last_phase, table::kPhaseCommit);  // Cancelable turns false with it
}

TEST_F(JobManagerControlTest, ARequestBeforeTheCommitStopsItThere) {
  std::atomic<bool> asked{false};
  Latch ready;
  manager_->Start(uuid_, [&](JobContext& ctx) {
    ready.Open();
    while (!asked) std::this_thread::sleep_for(1ms);
    const StopReason why = ctx.BeginUnstoppable();
    EXPECT_EQ(why, StopReason::kPause);
    return JobOutcome::Interrupted(ctx.ConfirmStop());
  });
  ASSERT_TRUE(ready.Wait());
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kPause), Stop::kAccepted);
  asked = true;
  ASSERT_TRUE(Ended());
  EXPECT_EQ(Row().state, table::JobState::kPaused);
}

TEST_F(JobManagerControlTest, ARequestAfterTheBodyFixedItsReasonIsStillStopping) {
  Latch confirmed, release;
  manager_->Start(uuid_, [&](JobContext& ctx) {
    while (!ctx.stop_requested()) std::this_thread::sleep_for(1ms);
    const StopReason why = ctx.ConfirmStop();
    confirmed.Open();
    release.Wait();
    return JobOutcome::Interrupted(why);
  });
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kPause), Stop::kAccepted);
  ASSERT_TRUE(confirmed.Wait());
  // Too late to turn the pause into a cancel: the caller is told to ask again.
  EXPECT_EQ(manager_->RequestStop(uuid_, StopReason::kCancel), Stop::kStopping);
  release.Open();
  ASSERT_TRUE(Ended());
  EXPECT_EQ(Row().state, table::JobState::kPaused);
}

}  // namespace
}  // namespace svmkey::daemon
