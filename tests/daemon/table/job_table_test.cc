#include "daemon/table/job_table.h"

#include <gtest/gtest.h>

#include "tests/daemon/table/table_test_util.h"

namespace svmkey::table {
namespace {

using testing::NumberedUuid;
using testing::RdbTest;

class JobTableTest : public RdbTest {
 protected:
  JobTable jobs() { return JobTable(*rdb_); }
  NewJob Job(uint64_t n, std::optional<Uuid> svm = NumberedUuid(0x5, 1)) {
    return {NumberedUuid(0x10b, n), "rekey-internal", svm, NumberedUuid(0xc, 1),
            R"({"return_timeout":0})"};
  }
  // Forces a job into `state` with raw SQL, for walking the transition table.
  void Force(const Uuid& job, JobState state) {
    Rdb::Session s = rdb_->Lock();
    ASSERT_OK(s.db().Exec("UPDATE jobs SET state = '" + std::string(ToString(state)) +
                          "' WHERE uuid = '" + job.ToString() + "'"));
  }
};

TEST_F(JobTableTest, CreateGivesAQueuedJobWithItsParameters) {
  ASSERT_OK(jobs().Create(Job(1)));
  JobRow j = jobs().Get(NumberedUuid(0x10b, 1)).value();
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.description, "rekey-internal");
  EXPECT_EQ(j.svm, NumberedUuid(0x5, 1));
  EXPECT_EQ(j.config, NumberedUuid(0xc, 1));
  EXPECT_EQ(j.parameters_json, R"({"return_timeout":0})");
  EXPECT_EQ(j.queued_time_ms, now_ms_.load());
  EXPECT_EQ(j.start_time_ms, 0);
  EXPECT_EQ(j.phase, 0);
  EXPECT_FALSE(j.new_generation.has_value());
  EXPECT_CODE(jobs().Create(Job(1)), kDuplicateEntry);
  EXPECT_CODE(jobs().Get(NumberedUuid(0x10b, 9)).status(), kEntryNotFound);
}

TEST_F(JobTableTest, LifecycleRecordsTimesPhaseAndProgress) {
  const Uuid id = NumberedUuid(0x10b, 1);
  ASSERT_OK(jobs().Create(Job(1)));
  now_ms_ += 10;
  ASSERT_OK(jobs().Start(id));
  const int64_t started = now_ms_.load();
  ASSERT_OK(jobs().SetPhase(id, kPhaseRewrap, "rewrapping"));
  ASSERT_OK(jobs().SetProgress(id, 500, 1000));
  now_ms_ += 10;
  ASSERT_OK(jobs().Pause(id));
  EXPECT_EQ(jobs().Get(id).value().state, JobState::kPaused);
  ASSERT_OK(jobs().Start(id));  // resume keeps the first start time
  now_ms_ += 10;
  ASSERT_OK(jobs().Finish(id, 65537565, "Internal error. Failed to update the VDEK blob."));
  JobRow j = jobs().Get(id).value();
  EXPECT_EQ(j.state, JobState::kFailure);
  EXPECT_EQ(j.code, 65537565u);
  EXPECT_EQ(j.start_time_ms, started);
  EXPECT_EQ(j.end_time_ms, now_ms_.load());
  EXPECT_EQ(j.updated_time_ms, now_ms_.load());
  EXPECT_EQ(j.phase, kPhaseRewrap);
  EXPECT_EQ(j.message, "Internal error. Failed to update the VDEK blob.");
  EXPECT_EQ(j.progress_done, 500u);
  EXPECT_EQ(j.progress_total, 1000u);
  // Terminal: nothing moves it any more.
  EXPECT_CODE(jobs().Start(id), kInvalidValue);
  EXPECT_CODE(jobs().SetPhase(id, kPhaseCommit), kInvalidValue);
  EXPECT_CODE(jobs().SetProgress(id, 1, 1), kInvalidValue);
  EXPECT_CODE(jobs().Finish(id, 0, ""), kInvalidValue);
  EXPECT_CODE(jobs().SetPhase(id, 8), kInvalidValue);
}

TEST_F(JobTableTest, RecordsTheUidThatStartedTheJob) {
  NewJob asked = Job(1);
  asked.started_by_uid = 4294967294u;  // the largest uid that is not (uid_t)-1
  ASSERT_OK(jobs().Create(asked));
  ASSERT_OK(jobs().Create(Job(2)));
  EXPECT_EQ(jobs().Get(NumberedUuid(0x10b, 1)).value().started_by_uid, 4294967294u);
  EXPECT_EQ(jobs().Get(NumberedUuid(0x10b, 2)).value().started_by_uid, 0u);
}

TEST_F(JobTableTest, SuccessGetsOntapsCompletionMessage) {
  const Uuid id = NumberedUuid(0x10b, 1);
  ASSERT_OK(jobs().Create(Job(1)));
  ASSERT_OK(jobs().Start(id));
  ASSERT_OK(jobs().Finish(id, 0, ""));
  JobRow j = jobs().Get(id).value();
  EXPECT_EQ(j.state, JobState::kSuccess);
  EXPECT_EQ(j.code, 0u);
  EXPECT_EQ(j.message, "Complete: Successful");
}

// Every (from, operation) pair against the state machine in states.h.
TEST_F(JobTableTest, EveryStateTransition) {
  struct Op {
    const char* name;
    JobState target;
    std::function<Status(JobTable, const Uuid&)> run;
  };
  const Op ops[] = {
      {"start", JobState::kRunning, [](JobTable t, const Uuid& u) { return t.Start(u); }},
      {"pause", JobState::kPaused, [](JobTable t, const Uuid& u) { return t.Pause(u); }},
      {"succeed", JobState::kSuccess, [](JobTable t, const Uuid& u) { return t.Finish(u, 0, ""); }},
      {"fail", JobState::kFailure, [](JobTable t, const Uuid& u) { return t.Finish(u, 8, "x"); }},
  };
  ASSERT_OK(jobs().Create(Job(1)));
  const Uuid id = NumberedUuid(0x10b, 1);
  for (JobState from : kAllJobStates) {
    for (const Op& op : ops) {
      Force(id, from);
      Status st = op.run(jobs(), id);
      const JobState after = jobs().Get(id).value().state;
      if (IsAllowedTransition(from, op.target)) {
        EXPECT_TRUE(st.ok()) << ToString(from) << " " << op.name << ": " << st.ToString();
        EXPECT_EQ(after, op.target);
      } else {
        EXPECT_CODE(st, kInvalidValue) << ToString(from) << " " << op.name;
        EXPECT_EQ(after, from);
      }
    }
  }
  EXPECT_CODE(jobs().Start(NumberedUuid(0x10b, 9)), kEntryNotFound);
}

TEST_F(JobTableTest, CreateExclusiveAllowsOneUnfinishedJobPerSvm) {
  ASSERT_OK(jobs().CreateExclusive(Job(1)));
  Status second = jobs().CreateExclusive(Job(2));
  EXPECT_CODE(second, kResourceInUse);
  EXPECT_NE(second.message().find(NumberedUuid(0x10b, 1).ToString()), std::string::npos);
  EXPECT_OK(jobs().CreateExclusive(Job(3, NumberedUuid(0x5, 2))));  // another SVM
  EXPECT_CODE(jobs().CreateExclusive(Job(4, std::nullopt)), kInvalidArgument);
  ASSERT_OK(jobs().Start(NumberedUuid(0x10b, 1)));
  Force(NumberedUuid(0x10b, 1), JobState::kPaused);
  EXPECT_CODE(jobs().CreateExclusive(Job(2)), kResourceInUse);  // paused still holds it
  ASSERT_OK(jobs().Finish(NumberedUuid(0x10b, 1), 8, "cancelled"));
  EXPECT_OK(jobs().CreateExclusive(Job(2)));
  EXPECT_EQ(jobs().FindUnfinishedForSvm(NumberedUuid(0x5, 1)).value()->uuid,
            NumberedUuid(0x10b, 2));
  EXPECT_FALSE(jobs().FindUnfinishedForSvm(NumberedUuid(0x5, 9)).value().has_value());
}

TEST_F(JobTableTest, ListFiltersAndUnfinished) {
  for (uint64_t n = 1; n <= 6; ++n) {
    ASSERT_OK(jobs().Create(Job(n, NumberedUuid(0x5, n % 2))));
  }
  ASSERT_OK(jobs().Start(NumberedUuid(0x10b, 2)));
  ASSERT_OK(jobs().Start(NumberedUuid(0x10b, 3)));
  Force(NumberedUuid(0x10b, 3), JobState::kPaused);
  ASSERT_OK(jobs().Finish(NumberedUuid(0x10b, 4), 0, ""));
  ASSERT_OK(jobs().Finish(NumberedUuid(0x10b, 5), 4, "gone"));

  EXPECT_EQ(jobs().List().value().size(), 6u);
  JobFilter queued;
  queued.state = JobState::kQueued;
  std::vector<JobRow> q = jobs().List(queued).value();
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].uuid, NumberedUuid(0x10b, 1));  // oldest first
  EXPECT_EQ(q[1].uuid, NumberedUuid(0x10b, 6));
  JobFilter by_svm;
  by_svm.svm = NumberedUuid(0x5, 0);
  EXPECT_EQ(jobs().List(by_svm).value().size(), 3u);  // 2, 4, 6
  by_svm.state = JobState::kSuccess;
  EXPECT_EQ(jobs().List(by_svm).value().size(), 1u);
  JobFilter limited;
  limited.limit = 4;
  EXPECT_EQ(jobs().List(limited).value().size(), 4u);

  // Recovery at start: queued and running, not paused or terminal.
  std::vector<JobRow> unfinished = jobs().ListUnfinished().value();
  std::vector<Uuid> ids;
  for (const JobRow& j : unfinished) ids.push_back(j.uuid);
  EXPECT_EQ(ids, (std::vector<Uuid>{NumberedUuid(0x10b, 1), NumberedUuid(0x10b, 2),
                                    NumberedUuid(0x10b, 6)}));
  Reopen();  // survives a restart
  EXPECT_EQ(jobs().ListUnfinished().value().size(), 3u);
}

TEST_F(JobTableTest, PruneRemovesOnlyTerminalJobsPastRetention) {
  for (uint64_t n = 1; n <= 4; ++n) ASSERT_OK(jobs().Create(Job(n)));
  ASSERT_OK(jobs().Finish(NumberedUuid(0x10b, 1), 0, ""));   // ends at t0
  now_ms_ += 60 * 60 * 1000;
  ASSERT_OK(jobs().Finish(NumberedUuid(0x10b, 2), 8, "x"));  // ends at t0 + 1 h
  ASSERT_OK(jobs().Start(NumberedUuid(0x10b, 3)));            // running forever
  now_ms_ += 23 * 60 * 60 * 1000 + 1;                          // t0 + 24 h + 1 ms
  EXPECT_EQ(jobs().PruneFinished().value(), 1u);
  EXPECT_CODE(jobs().Get(NumberedUuid(0x10b, 1)).status(), kEntryNotFound);
  EXPECT_TRUE(jobs().Get(NumberedUuid(0x10b, 2)).ok());
  now_ms_ += 365LL * 24 * 60 * 60 * 1000;
  EXPECT_EQ(jobs().PruneFinished().value(), 1u);
  EXPECT_EQ(jobs().List().value().size(), 2u);  // queued and running stay
}

TEST_F(JobTableTest, RetentionIsConfigurable) {
  rdb_.reset();
  RdbOptions o = Options();
  o.job_retention = std::chrono::seconds(300);  // ONTAP's own retention
  rdb_ = std::move(Rdb::Open(o)).value();
  ASSERT_OK(jobs().Create(Job(1)));
  ASSERT_OK(jobs().Finish(NumberedUuid(0x10b, 1), 0, ""));
  now_ms_ += 300 * 1000;
  EXPECT_EQ(jobs().PruneFinished().value(), 0u);
  now_ms_ += 1;
  EXPECT_EQ(jobs().PruneFinished().value(), 1u);
}

TEST_F(JobTableTest, RetentionCountPrunesTheOldestTerminalJobsFirst) {
  rdb_.reset();
  RdbOptions o = Options();
  o.job_retention_count = 3;
  rdb_ = std::move(Rdb::Open(o)).value();
  // Jobs 1..6 end in the order 2, 1, 3, 4, 5 (one second apart); 6 stays running.
  for (uint64_t n = 1; n <= 6; ++n) ASSERT_OK(jobs().Create(Job(n)));
  for (uint64_t n : {2, 1, 3, 4, 5}) {
    ASSERT_OK(jobs().Finish(NumberedUuid(0x10b, n), n % 2 ? 8 : 0, "x"));
    now_ms_ += 1000;
  }
  ASSERT_OK(jobs().Start(NumberedUuid(0x10b, 6)));
  EXPECT_EQ(jobs().PruneFinished().value(), 2u);  // all within the 24 h period
  EXPECT_CODE(jobs().Get(NumberedUuid(0x10b, 2)).status(), kEntryNotFound);
  EXPECT_CODE(jobs().Get(NumberedUuid(0x10b, 1)).status(), kEntryNotFound);
  for (uint64_t n : {3, 4, 5, 6}) EXPECT_TRUE(jobs().Get(NumberedUuid(0x10b, n)).ok()) << n;
  EXPECT_EQ(jobs().PruneFinished().value(), 0u);
  // An unfinished job never counts against the bound, and is never pruned.
  ASSERT_OK(jobs().Finish(NumberedUuid(0x10b, 6), 0, ""));
  EXPECT_EQ(jobs().PruneFinished().value(), 1u);
  EXPECT_CODE(jobs().Get(NumberedUuid(0x10b, 3)).status(), kEntryNotFound);
}

TEST_F(JobTableTest, TableFailuresAreEncryptionStatusUnavailable) {
  ASSERT_OK(jobs().Create(Job(1)));
  {
    // Another process damaged the file: the jobs table is gone.
    Result<Db> other = Db::Open(dir_ / "rdb.sqlite");
    ASSERT_TRUE(other.ok());
    ASSERT_OK(other->Exec("DROP TABLE jobs"));
  }
  Reopen();  // the schema version still says 3, so nothing recreates it
  EXPECT_CODE(jobs().Get(NumberedUuid(0x10b, 1)).status(), kEncryptionStatusUnavailable);
  EXPECT_CODE(jobs().Create(Job(2)), kEncryptionStatusUnavailable);
  EXPECT_CODE(jobs().ListUnfinished().status(), kEncryptionStatusUnavailable);
  EXPECT_CODE(jobs().Finish(NumberedUuid(0x10b, 1), 0, ""), kEncryptionStatusUnavailable);
}

}  // namespace
}  // namespace svmkey::table
