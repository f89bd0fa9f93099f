// The JobManager in-process (job_manager.h): a real table in a temporary directory and a
// loop of closures run on the test thread (the LoopTasks contract, without a bus). It
// checks the concurrency bound (jobs beyond it wait `queued` in the table and start in
// FIFO order), that a job whose body threw or could not write its end (the table locked
// by another connection past the busy timeout) ends `failure` without a restart, and
// that the retention count is applied when a job ends.
#include "daemon/service/job_manager.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "daemon/service/jobs.h"
#include "daemon/table/job_table.h"
#include "daemon/table/states.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace svmkey::daemon {
namespace {

using namespace std::chrono_literals;

// The loop thread is the test thread: Post/RunAt queue closures, RunUntil runs them.
class TestLoop final : public LoopTasks {
 public:
  void Post(std::function<void()> task) override {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
    cv_.notify_all();
  }
  void RunAt(Clock::time_point, std::function<void()>) override {}  // no deadlines needed
  // Runs posted closures until `done()` holds (checked between closures) or `limit`.
  bool RunUntil(const std::function<bool()>& done, std::chrono::seconds limit = 30s) {
    const auto end = Clock::now() + limit;
    while (!done()) {
      std::function<void()> task;
      {
        // done() may turn true on a job thread without a task: look again every 10 ms.
        std::unique_lock<std::mutex> lock(mu_);
        if (Clock::now() > end) return done();
        if (!cv_.wait_for(lock, 10ms, [this] { return !tasks_.empty(); })) continue;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
};

class RecordingObserver final : public JobObserver {
 public:
  void Published(const table::JobRow&) override {}
  void PhaseChanged(const Uuid&, int, const std::string&) override {}
  void ProgressChanged(const Uuid&, uint64_t, uint64_t, double) override {}
  void StateChanged(const Uuid& job, const std::string& state) override {
    states.push_back(job.ToString() + " " + state);
  }
  void Removed(const Uuid& job) override { removed.push_back(job.ToString()); }
  std::vector<std::string> states;
  std::vector<std::string> removed;
};

// A gate the test opens for one job body at a time.
class Gates {
 public:
  void Open(const Uuid& job) {
    std::lock_guard<std::mutex> lock(mu_);
    open_.push_back(job.ToString());
    cv_.notify_all();
  }
  void Wait(const Uuid& job) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] {
      for (const auto& o : open_) {
        if (o == job.ToString()) return true;
      }
      return false;
    });
  }
  void Entered(const Uuid& job) {
    std::lock_guard<std::mutex> lock(mu_);
    entered_.push_back(job.ToString());
  }
  std::vector<std::string> entered() {
    std::lock_guard<std::mutex> lock(mu_);
    return entered_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> open_;
  std::vector<std::string> entered_;
};

Uuid JobUuid(int n) {
  char text[40];
  std::snprintf(text, sizeof text, "00000000-0000-4000-8000-%012d", n);
  return *Uuid::Parse(text);
}

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    options_.path = dir_ / "rdb.sqlite";
    options_.busy_timeout = 200ms;
  }
  void Open(size_t max_running) {
    rdb_ = std::move(table::Rdb::Open(options_)).value();
    manager_ = std::make_unique<JobManager>(loop_, options_, *rdb_, observer_, max_running);
  }
  void TearDown() override {
    if (manager_) manager_->Shutdown();
  }
  void Create(int n) {
    table::NewJob job;
    job.uuid = JobUuid(n);
    job.description = "job " + std::to_string(n);
    ASSERT_OK(table::JobTable(*rdb_).Create(job));
  }
  table::JobState State(int n) { return table::JobTable(*rdb_).Get(JobUuid(n)).value().state; }
  table::JobRow Row(int n) { return table::JobTable(*rdb_).Get(JobUuid(n)).value(); }
  bool Terminal(int n) { return table::IsTerminal(State(n)); }
  // Waits (running the loop) until job `n` is terminal and its thread was reaped by the loop.
  bool RunUntilEnded(int n) {
    return loop_.RunUntil([&] { return Terminal(n) && ended(n); });
  }
  bool ended(int n) {
    const std::string want = JobUuid(n).ToString() + " " +
                             std::string(table::ToString(State(n)));
    for (const auto& s : observer_.states) {
      if (s == want) return true;
    }
    return false;
  }

  testing::TempDir dir_;
  table::RdbOptions options_;
  std::unique_ptr<table::Rdb> rdb_;
  TestLoop loop_;
  RecordingObserver observer_;
  std::unique_ptr<JobManager> manager_;
};

TEST_F(JobManagerTest, JobsBeyondTheBoundWaitQueuedAndStartInOrder) {
  Open(2);
  Gates gates;
  for (int n = 1; n <= 5; ++n) {
    Create(n);
    manager_->Start(JobUuid(n), [&gates](JobContext& ctx) {
      gates.Entered(ctx.uuid());
      gates.Wait(ctx.uuid());
      return FinishJob(ctx, Status::Ok());
    });
  }
  ASSERT_TRUE(loop_.RunUntil([&] { return gates.entered().size() == 2; }));
  EXPECT_EQ(manager_->running(), 2u);
  EXPECT_EQ(manager_->queued(), 3u);
  EXPECT_EQ(State(1), table::JobState::kRunning);
  EXPECT_EQ(State(2), table::JobState::kRunning);
  for (int n = 3; n <= 5; ++n) EXPECT_EQ(State(n), table::JobState::kQueued) << n;
  // Ending job 2 starts job 3 (the oldest queued), not 4 or 5.
  gates.Open(JobUuid(2));
  ASSERT_TRUE(RunUntilEnded(2));
  ASSERT_TRUE(loop_.RunUntil([&] { return gates.entered().size() == 3; }));
  EXPECT_EQ(gates.entered()[2], JobUuid(3).ToString());
  EXPECT_EQ(State(4), table::JobState::kQueued);
  EXPECT_EQ(manager_->queued(), 2u);
  // Each time one slot frees, the oldest queued job is the one that starts.
  gates.Open(JobUuid(1));
  ASSERT_TRUE(RunUntilEnded(1));
  ASSERT_TRUE(loop_.RunUntil([&] { return gates.entered().size() == 4; }));
  EXPECT_EQ(gates.entered()[3], JobUuid(4).ToString());
  EXPECT_EQ(State(5), table::JobState::kQueued);
  gates.Open(JobUuid(3));
  ASSERT_TRUE(RunUntilEnded(3));
  ASSERT_TRUE(loop_.RunUntil([&] { return gates.entered().size() == 5; }));
  EXPECT_EQ(gates.entered()[4], JobUuid(5).ToString());
  for (int n : {4, 5}) {
    gates.Open(JobUuid(n));
    ASSERT_TRUE(RunUntilEnded(n)) << n;
  }
  for (int n = 1; n <= 5; ++n) EXPECT_EQ(State(n), table::JobState::kSuccess) << n;
  EXPECT_EQ(manager_->queued(), 0u);
}

TEST_F(JobManagerTest, QueuedJobsStayQueuedInTheTableAcrossAShutdown) {
  Open(1);
  Gates gates;
  for (int n = 1; n <= 3; ++n) {
    Create(n);
    manager_->Start(JobUuid(n), [&gates](JobContext& ctx) {
      gates.Entered(ctx.uuid());
      gates.Wait(ctx.uuid());
      return ctx.stop_requested() ? JobOutcome::Interrupted() : FinishJob(ctx, Status::Ok());
    });
  }
  ASSERT_TRUE(loop_.RunUntil([&] { return gates.entered().size() == 1; }));
  std::thread opener([&] {
    std::this_thread::sleep_for(100ms);
    gates.Open(JobUuid(1));
  });
  manager_->Shutdown();  // job 1 is interrupted; 2 and 3 never start
  opener.join();
  EXPECT_EQ(State(1), table::JobState::kRunning);  // resumable, as after a SIGTERM
  EXPECT_EQ(State(2), table::JobState::kQueued);
  EXPECT_EQ(State(3), table::JobState::kQueued);
  auto unfinished = table::JobTable(*rdb_).ListUnfinished().value();
  ASSERT_EQ(unfinished.size(), 3u);
  EXPECT_EQ(unfinished[1].uuid, JobUuid(2));  // started in this order at the next start
  EXPECT_EQ(unfinished[2].uuid, JobUuid(3));
}

TEST_F(JobManagerTest, ABodyThatThrowsEndsFailedAtOnce) {
  Open(1);
  Create(1);
  manager_->Start(JobUuid(1), [](JobContext&) -> JobOutcome {
    throw std::runtime_error("body broke");
  });
  ASSERT_TRUE(RunUntilEnded(1));
  const table::JobRow row = Row(1);
  EXPECT_EQ(row.state, table::JobState::kFailure);
  EXPECT_EQ(row.code, static_cast<uint32_t>(ErrorCode::kUnexpectedException));
  EXPECT_NE(row.message.find("body broke"), std::string::npos) << row.message;
  // The SVM's slot is free again: the next job of the queue runs.
  Create(2);
  manager_->Start(JobUuid(2), [](JobContext& ctx) { return FinishJob(ctx, Status::Ok()); });
  ASSERT_TRUE(RunUntilEnded(2));
  EXPECT_EQ(State(2), table::JobState::kSuccess);
}

// Another connection holds the table's write lock (BEGIN EXCLUSIVE) past the busy
// timeout while the body records its end, so that write really fails; the lock is
// released a second later and the manager's record goes through.
TEST_F(JobManagerTest, AnEndTheTableRefusedIsRecordedOnceTheTableIsWritable) {
  Open(1);
  Create(1);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "rdb.sqlite").c_str(), &other), SQLITE_OK);
  sqlite3_busy_timeout(other, 5000);  // BEGIN EXCLUSIVE waits for a write in progress
  Gates gates;
  Status body_write;
  manager_->Start(
      JobUuid(1),
      [&](JobContext& ctx) {
        gates.Entered(ctx.uuid());
        gates.Wait(ctx.uuid());
        const Status failure(ErrorCode::kSvmKekUnwrapFailed, "a volume failed");
        body_write = table::JobTable(ctx.rdb()).Finish(ctx.uuid(), failure.numeric_code(),
                                                       failure.ToString());
        return JobOutcome::Finished(failure);
      },
      [](JobContext& ctx, const Status& failure) {
        return table::JobTable(ctx.rdb()).Finish(ctx.uuid(), failure.numeric_code(),
                                                 "recorded by the failer: " + failure.ToString());
      });
  ASSERT_TRUE(loop_.RunUntil([&] { return gates.entered().size() == 1; }));
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  gates.Open(JobUuid(1));
  std::this_thread::sleep_for(1500ms);  // > busy_timeout: the body's write failed
  EXPECT_EQ(State(1), table::JobState::kRunning);  // WAL: readers are not blocked
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  ASSERT_TRUE(RunUntilEnded(1));
  EXPECT_CODE(body_write, kResourceInUse);  // "database is locked": the lock made it fail
  const table::JobRow row = Row(1);
  EXPECT_EQ(row.state, table::JobState::kFailure);
  EXPECT_EQ(row.code, static_cast<uint32_t>(ErrorCode::kSvmKekUnwrapFailed));
  EXPECT_EQ(row.message.rfind("recorded by the failer: ", 0), 0u) << row.message;
  // No thread is left behind the job (it marks itself done just after posting its end).
  EXPECT_TRUE(loop_.RunUntil([&] { return manager_->running() == 0; }, 5s));
}

TEST_F(JobManagerTest, TheRetentionCountIsAppliedWhenAJobEnds) {
  options_.job_retention_count = 2;
  Open(1);
  for (int n = 1; n <= 4; ++n) {
    Create(n);
    manager_->Start(JobUuid(n), [](JobContext& ctx) { return FinishJob(ctx, Status::Ok()); });
    ASSERT_TRUE(RunUntilEnded(n)) << n;
  }
  auto rows = table::JobTable(*rdb_).List().value();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].uuid, JobUuid(3));
  EXPECT_EQ(rows[1].uuid, JobUuid(4));
  EXPECT_EQ(observer_.removed,
            (std::vector<std::string>{JobUuid(1).ToString(), JobUuid(2).ToString()}));
}

}  // namespace
}  // namespace svmkey::daemon
