// The rekey-internal job in-process (rekey_job.h): a real table in a temporary
// directory, volumes made by the engine, an in-memory ExternalKeySource that can be
// made to fail, and the engine's fault-injecting FileIo under the rewrap. Each case
// fails or stops one phase, then checks what rekey_job.h promises: who recorded the
// end, which SVM-KEKs the table holds, the key store state, that a rerun completes,
// and that every volume's VDEK opens with a key the table still holds.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/service/jobs.h"
#include "daemon/service/key_service.h"
#include "daemon/table/job_table.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/svm_kek_table.h"
#include "daemon/table/svm_table.h"
#include "daemon/table/volume_table.h"
#include "engine/fault_injecting_file_io.h"
#include "engine/file_io.h"
#include "engine/svm_kek.h"
#include "engine/volume.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace svmkey::daemon {
namespace {

constexpr size_t kVolumes = 40;
constexpr size_t kBatch = 8;
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

// The external key in memory. Fetch n (0-based, counted from construction) fails with
// BarbicanUnreachable once n >= the failure threshold.
class FakeKeySource final : public ExternalKeySource {
 public:
  FakeKeySource() : key_(std::move(SecureBuffer::Allocate(kKeyBytes)).value()) {
    for (size_t i = 0; i < kKeyBytes; ++i) key_.data()[i] = static_cast<uint8_t>(0xA5 ^ i);
  }
  Result<KeyHandle> FetchExternalKey(KeyTable& table) override {
    if (fetches_++ >= fail_from_) {
      return Status(ErrorCode::kBarbicanUnreachable, "fake external key: unreachable");
    }
    return table.Import(key_);
  }
  KeyReachability CheckReachability() override {
    return fetches_ >= fail_from_ ? KeyReachability{false, ErrorCode::kBarbicanUnreachable, "down"}
                                  : KeyReachability{true, ErrorCode::kOk, ""};
  }
  const std::string& key_id() const override { return key_id_; }

  // The next `ok` fetches succeed, every later one fails.
  void FailAfter(uint64_t ok) { fail_from_ = fetches_ + ok; }
  void Recover() { fail_from_ = kNever; }
  // The key itself, for the test's own check (never through the failure switch).
  Result<KeyHandle> ImportForCheck(KeyTable& table) { return table.Import(key_); }

 private:
  SecureBuffer key_;
  const std::string key_id_ = "https://barbican.test/v1/secrets/fake";
  std::atomic<uint64_t> fetches_{0};
  std::atomic<uint64_t> fail_from_{kNever};
};

// A JobContext over the table alone, with hooks to fail or stop a phase.
class TestJobContext final : public JobContext {
 public:
  TestJobContext(table::Rdb& rdb, Uuid uuid) : rdb_(rdb), uuid_(uuid) {}

  const Uuid& uuid() const override { return uuid_; }
  table::Rdb& rdb() override { return rdb_; }
  bool stop_requested() const override { return stop_reason() != StopReason::kNone; }
  StopReason stop_reason() const override {
    return stop_after_progress_ <= progress_calls_ ? stop_for_ : StopReason::kNone;
  }
  StopReason BeginUnstoppable() override {
    ++unstoppable_calls_;
    return stop_at_commit_;
  }
  // As the job manager: the reason a body stops for is the request it found.
  StopReason ConfirmStop() override {
    return unstoppable_calls_ > 0 && stop_at_commit_ != StopReason::kNone ? stop_at_commit_
                                                                            : stop_reason();
  }
  Status SetPhase(int phase, const std::string& message) override {
    if (phase == crash_at_phase_) throw std::runtime_error("simulated crash");
    table::JobTable jobs(rdb_);
    return jobs.SetPhase(uuid_, phase, message);
  }
  Status SetProgress(uint64_t done, uint64_t total) override {
    if (++progress_calls_ == fail_progress_call_) {
      return Status(ErrorCode::kEncryptionStatusUnavailable, "simulated table write failure");
    }
    table::JobTable jobs(rdb_);
    return jobs.SetProgress(uuid_, done, total);
  }
  void PublishPhase(int, const std::string&) override {}
  void PublishProgress(uint64_t, uint64_t) override {}

  uint64_t stop_after_progress_ = kNever;  // stop at the boundary after this many batches
  uint64_t fail_progress_call_ = kNever;   // this SetProgress call (1-based) fails
  int crash_at_phase_ = 0;                 // SetPhase of this phase throws (a crash)
  StopReason stop_for_ = StopReason::kShutdown;       // why stop_after_progress_ stops it
  StopReason stop_at_commit_ = StopReason::kNone;     // a request found by BeginUnstoppable
  int unstoppable_calls_ = 0;

 private:
  table::Rdb& rdb_;
  Uuid uuid_;
  uint64_t progress_calls_ = 0;
};

class RekeyJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    dir_ = tmp_.path();
    table::RdbOptions options;
    options.path = dir_ + "/rdb.sqlite";
    auto rdb = table::Rdb::Open(options);
    ASSERT_TRUE(rdb.ok()) << rdb.status().ToString();
    rdb_ = std::move(rdb).value();
    auto keys = KeyService::Create(
        256, [source = source_](table::Rdb&, const Uuid&) -> Result<std::shared_ptr<ExternalKeySource>> {
          return std::shared_ptr<ExternalKeySource>(source);
        });
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    keys_ = std::move(keys).value();
    settings_.batch_size = kBatch;
    settings_.rewrap_threads = 1;  // the fault injector is not thread-safe
    settings_.make_io = [this]() -> Result<std::unique_ptr<FileIo>> {
      return std::unique_ptr<FileIo>(std::make_unique<FaultInjectingFileIo>(*sync_io_, plan_));
    };
    MakeSvmWithVolumes();
  }
  void TearDown() override {
    keys_.reset();
    rdb_.reset();
  }

  void MakeSvmWithVolumes() {
    ASSERT_OK(table::SvmTable(*rdb_).Create({svm_, "vs1", table::SvmKind::kData}));
    table::NewBarbicanConfig c;
    c.uuid = config_;
    c.name = "vs1-barbican";
    c.svm = svm_;
    c.key_id = source_->key_id();
    c.keystone_url = "https://keystone.test:5000/v3/auth/tokens";
    c.application_cred_id = "cred";
    table::KeyStoreTable stores(*rdb_);
    ASSERT_OK(stores.CreateBarbicanConfig(c, "not-a-real-secret"));
    ASSERT_TRUE(stores.Enable(config_).ok());
    auto kek = keys_->ActiveSvmKek(*rdb_, svm_);  // generation 1, wrapped by the fake
    ASSERT_TRUE(kek.ok()) << kek.status().ToString();
    std::filesystem::create_directories(dir_ + "/volumes");
    std::vector<VolumeRef> refs(kVolumes);
    std::vector<CreateResult> created(kVolumes);
    for (size_t i = 0; i < kVolumes; ++i) {
      refs[i].id = VolumeIdentity{Uuid::Random(), svm_, 1000 + i};
      refs[i].path = dir_ + "/volumes/" + refs[i].id.volume.ToString() + ".meta";
    }
    ASSERT_OK(CreateVolumes(*sync_io_, keys_->key_table(), kek->handle, kek->generation, refs, created));
    std::vector<table::VolumeRow> rows(kVolumes);
    for (size_t i = 0; i < kVolumes; ++i) {
      ASSERT_OK(created[i].status);
      rows[i].uuid = refs[i].id.volume;
      rows[i].svm = svm_;
      rows[i].name = "vol" + std::to_string(i);
      rows[i].dsid = refs[i].id.dsid;
      rows[i].metadata_path = refs[i].path;
      rows[i].generation = kek->generation;
      rows[i].blob = created[i].blob;
    }
    ASSERT_OK(table::VolumeTable(*rdb_).InsertMany(rows));
  }

  // A new rekey-internal job row, started.
  Uuid NewJob() {
    table::NewJob job;
    job.uuid = Uuid::Random();
    job.description = Describe(Request(), "vs1");
    job.svm = svm_;
    job.config = config_;
    job.parameters_json = EncodeJobRequest(Request());
    table::JobTable jobs(*rdb_);
    EXPECT_TRUE(jobs.CreateExclusive(job).ok());
    EXPECT_TRUE(jobs.Start(job.uuid).ok());
    return job.uuid;
  }
  JobRequest Request() const { return JobRequest{JobKind::kRekeyInternal, svm_, config_}; }
  JobOutcome Run(TestJobContext& ctx) { return RunJob(ctx, *keys_, settings_, Request()); }
  // A fresh job, run to its end with no fault.
  void RerunCompletes() {
    TestJobContext ctx(*rdb_, NewJob());
    plan_ = {};
    const JobOutcome out = Run(ctx);
    EXPECT_TRUE(out.status.ok()) << out.status.ToString();
    ExpectRotated(ctx.uuid(), 2);
  }

  table::JobRow Job(const Uuid& job) { return table::JobTable(*rdb_).Get(job).value(); }
  table::KeyStoreState KeyStoreState() {
    return table::KeyStoreTable(*rdb_).GetEnabledKeyStore(svm_).value()->state;
  }
  std::vector<uint64_t> Generations(table::SvmKekState state) {
    std::vector<uint64_t> out;
    const std::vector<table::SvmKekRow> rows = table::SvmKekTable(*rdb_).List(svm_).value();
    for (const auto& row : rows) {
      if (row.state == state) out.push_back(row.generation);
    }
    return out;
  }

  // Every volume's VDEK opens with an SVM-KEK the table holds (any state), unwrapped
  // from the table with the external key. Returns the generation each opened at.
  std::vector<uint64_t> ExpectEveryVolumeOpens() {
    KeyTable& kt = keys_->key_table();
    auto external = source_->ImportForCheck(kt);
    EXPECT_TRUE(external.ok());
    KeyRing ring;
    std::vector<KeyHandle> held;
    const std::vector<table::SvmKekRow> keks = table::SvmKekTable(*rdb_).List(svm_).value();
    for (const auto& row : keks) {
      auto kek = UnwrapSvmKek(kt, *external, row.wrapped, row.svm, row.generation, row.key_id);
      EXPECT_TRUE(kek.ok()) << "generation " << row.generation << ": " << kek.status().ToString();
      if (!kek.ok()) continue;
      ring.Add(row.generation, *kek);
      held.push_back(*kek);
    }
    std::vector<table::VolumeRow> rows;
    EXPECT_TRUE(table::VolumeTable(*rdb_).ListPage(svm_, 0, 10 * kVolumes, &rows, false).ok());
    EXPECT_EQ(rows.size(), kVolumes);
    std::vector<VolumeRef> refs;
    for (const auto& row : rows) refs.push_back({VolumeIdentity{row.uuid, row.svm, row.dsid}, row.metadata_path});
    std::vector<OpenResult> results(refs.size());
    EXPECT_TRUE(VerifyVolumes(*sync_io_, kt, ring, refs, results).ok());
    std::vector<uint64_t> generations;
    for (size_t i = 0; i < results.size(); ++i) {
      EXPECT_TRUE(results[i].status.ok()) << refs[i].path << ": " << results[i].status.ToString();
      generations.push_back(results[i].generation);
    }
    for (KeyHandle h : held) kt.Release(h).IgnoreError();
    kt.Release(*external).IgnoreError();
    return generations;
  }

  // A failure once the pending key was stored: recorded by RecordRekeyFailure, both
  // generations kept, the key store back to active.
  void ExpectFailedWithBothKept(const Uuid& job, const JobOutcome& out, ErrorCode code) {
    EXPECT_EQ(out.kind, JobOutcome::Kind::kFinished);
    EXPECT_EQ(out.status.code(), code) << out.status.ToString();
    const table::JobRow row = Job(job);
    EXPECT_EQ(row.state, table::JobState::kFailure);
    EXPECT_EQ(row.code, static_cast<uint32_t>(code));
    EXPECT_EQ(Generations(table::SvmKekState::kActive), std::vector<uint64_t>{1});
    EXPECT_EQ(Generations(table::SvmKekState::kPending), std::vector<uint64_t>{2});
    EXPECT_EQ(KeyStoreState(), table::KeyStoreState::kActive);
    ExpectEveryVolumeOpens();
  }
  // A failure before any pending key: JobTable::Finish, nothing else changed.
  void ExpectFailedUnchanged(const Uuid& job, const JobOutcome& out, ErrorCode code) {
    EXPECT_EQ(out.status.code(), code) << out.status.ToString();
    EXPECT_EQ(Job(job).state, table::JobState::kFailure);
    EXPECT_EQ(Job(job).code, static_cast<uint32_t>(code));
    EXPECT_EQ(Generations(table::SvmKekState::kActive), std::vector<uint64_t>{1});
    EXPECT_TRUE(Generations(table::SvmKekState::kPending).empty());
    EXPECT_EQ(KeyStoreState(), table::KeyStoreState::kActive);
    for (uint64_t g : ExpectEveryVolumeOpens()) EXPECT_EQ(g, 1u);
  }
  void ExpectRotated(const Uuid& job, uint64_t generation) {
    EXPECT_EQ(Job(job).state, table::JobState::kSuccess);
    EXPECT_EQ(Generations(table::SvmKekState::kActive), std::vector<uint64_t>{generation});
    EXPECT_TRUE(Generations(table::SvmKekState::kPending).empty());
    EXPECT_EQ(KeyStoreState(), table::KeyStoreState::kActive);
    for (uint64_t g : ExpectEveryVolumeOpens()) EXPECT_EQ(g, generation);
    auto installed = keys_->Installed(svm_);
    ASSERT_TRUE(installed.has_value());
    EXPECT_EQ(installed->generation, generation);
  }
  // Interrupted or crashed after the pending key: the row still running, the key store
  // in svm_kek_rekey, both generations held.
  void ExpectResumable(const Uuid& job) {
    EXPECT_EQ(Job(job).state, table::JobState::kRunning);
    EXPECT_EQ(KeyStoreState(), table::KeyStoreState::kSvmKekRekey);
    EXPECT_EQ(Generations(table::SvmKekState::kPending), std::vector<uint64_t>{2});
    ExpectEveryVolumeOpens();
  }

  svmkey::testing::TempDir tmp_{{.prefix = "rekey-job"}};
  std::string dir_;
  std::unique_ptr<table::Rdb> rdb_;
  std::shared_ptr<FakeKeySource> source_ = std::make_shared<FakeKeySource>();
  std::unique_ptr<KeyService> keys_;
  std::unique_ptr<FileIo> sync_io_ = MakeSyncFileIo();
  FaultPlan plan_;
  JobSettings settings_;
  const Uuid svm_ = Uuid::Random();
  const Uuid config_ = Uuid::Random();
};

TEST_F(RekeyJobTest, RotatesEveryVolume) {
  TestJobContext ctx(*rdb_, NewJob());
  const JobOutcome out = Run(ctx);
  EXPECT_EQ(out.kind, JobOutcome::Kind::kFinished);
  EXPECT_TRUE(out.status.ok()) << out.status.ToString();
  ExpectRotated(ctx.uuid(), 2);
  EXPECT_EQ(Generations(table::SvmKekState::kRetired), std::vector<uint64_t>{1});
}

TEST_F(RekeyJobTest, ExternalKeyUnavailableAtUnwrap) {
  source_->FailAfter(0);
  TestJobContext ctx(*rdb_, NewJob());
  ExpectFailedUnchanged(ctx.uuid(), Run(ctx), ErrorCode::kBarbicanUnreachable);
  source_->Recover();
  RerunCompletes();
}

TEST_F(RekeyJobTest, WrapFailureStoresNothing) {
  source_->FailAfter(1);  // the unwrap of generation 1 reads the key; the wrap of 2 fails
  TestJobContext ctx(*rdb_, NewJob());
  ExpectFailedUnchanged(ctx.uuid(), Run(ctx), ErrorCode::kBarbicanUnreachable);
  source_->Recover();
  RerunCompletes();
}

TEST_F(RekeyJobTest, TableWriteFailureInRewrapKeepsBothKeys) {
  TestJobContext ctx(*rdb_, NewJob());
  ctx.fail_progress_call_ = 2;
  ExpectFailedWithBothKept(ctx.uuid(), Run(ctx), ErrorCode::kEncryptionStatusUnavailable);
  RerunCompletes();
}

TEST_F(RekeyJobTest, VolumeFailureKeepsBothKeys) {
  plan_ = FaultPlan{FaultKind::kFail, 0};  // the first I/O op of the rewrap
  TestJobContext ctx(*rdb_, NewJob());
  const JobOutcome out = Run(ctx);
  ASSERT_FALSE(out.status.ok());
  ExpectFailedWithBothKept(ctx.uuid(), out, out.status.code());
  RerunCompletes();
}

TEST_F(RekeyJobTest, ResumeAfterPendingStoredAdoptsIt) {
  const Uuid job = NewJob();
  {
    TestJobContext ctx(*rdb_, job);
    ctx.crash_at_phase_ = table::kPhaseRewrap;  // dies right after the phase 3 commit
    EXPECT_THROW(Run(ctx), std::runtime_error);
  }
  ExpectResumable(job);
  for (uint64_t g : ExpectEveryVolumeOpens()) EXPECT_EQ(g, 1u);
  const auto pending = table::SvmKekTable(*rdb_).GetPending(svm_).value();
  TestJobContext resumed(*rdb_, job);
  const JobOutcome out = Run(resumed);
  EXPECT_TRUE(out.status.ok()) << out.status.ToString();
  ExpectRotated(job, 2);
  // The key stored before the crash is the one now active (adopted, not replaced).
  EXPECT_EQ(table::SvmKekTable(*rdb_).GetActive(svm_).value().wrapped, pending.wrapped);
}

TEST_F(RekeyJobTest, StopAtBatchBoundaryIsResumable) {
  const Uuid job = NewJob();
  {
    TestJobContext ctx(*rdb_, job);
    ctx.stop_after_progress_ = 2;
    const JobOutcome out = Run(ctx);
    EXPECT_EQ(out.kind, JobOutcome::Kind::kInterrupted);
  }
  ExpectResumable(job);
  EXPECT_GT(Job(job).progress_done, 0u);
  EXPECT_LT(Job(job).progress_done, kVolumes);
  TestJobContext resumed(*rdb_, job);
  const JobOutcome out = Run(resumed);
  EXPECT_TRUE(out.status.ok()) << out.status.ToString();
  ExpectRotated(job, 2);
}

TEST_F(RekeyJobTest, ExternalKeyLostMidJob) {
  // The key is read twice (unwrap g, wrap g+1); after that the rewrap needs it no more.
  const Uuid job = NewJob();
  source_->FailAfter(2);
  {
    TestJobContext ctx(*rdb_, job);
    ctx.stop_after_progress_ = 1;
    EXPECT_EQ(Run(ctx).kind, JobOutcome::Kind::kInterrupted);
  }
  ExpectResumable(job);
  // Resumed while the key is still unavailable: the unwrap fails, both keys stay.
  TestJobContext resumed(*rdb_, job);
  ExpectFailedWithBothKept(job, Run(resumed), ErrorCode::kBarbicanUnreachable);
  source_->Recover();
  RerunCompletes();
}

TEST_F(RekeyJobTest, ExternalKeyLostAfterPendingDoesNotStopTheRewrap) {
  source_->FailAfter(2);
  TestJobContext ctx(*rdb_, NewJob());
  const JobOutcome out = Run(ctx);
  EXPECT_TRUE(out.status.ok()) << out.status.ToString();
  ExpectRotated(ctx.uuid(), 2);
}

// Job control (Job1 Pause, Resume, Cancel): the body's side. The job manager records
// paused for a body that stopped for a pause; here the test does.
TEST_F(RekeyJobTest, PauseAtABatchBoundaryThenResumeCompletes) {
  const Uuid job = NewJob();
  uint64_t done_when_paused = 0;
  {
    TestJobContext ctx(*rdb_, job);
    ctx.stop_after_progress_ = 2;
    ctx.stop_for_ = StopReason::kPause;
    const JobOutcome out = Run(ctx);
    EXPECT_EQ(out.kind, JobOutcome::Kind::kInterrupted);
    EXPECT_EQ(out.stopped_for, StopReason::kPause);
    EXPECT_EQ(ctx.unstoppable_calls_, 0);  // never reached the commit
    done_when_paused = Job(job).progress_done;
  }
  ExpectResumable(job);  // both generations, svm_kek_rekey
  EXPECT_EQ(done_when_paused, 2 * kBatch);
  ASSERT_OK(table::JobTable(*rdb_).Pause(job));
  EXPECT_EQ(Job(job).state, table::JobState::kPaused);
  // Paused is not work to resume at start.
  EXPECT_TRUE(table::JobTable(*rdb_).ListUnfinished().value().empty());
  // Resume: running again, the body continues (volumes already at g+1 are skipped).
  ASSERT_OK(table::JobTable(*rdb_).Start(job));
  TestJobContext resumed(*rdb_, job);
  const JobOutcome out = Run(resumed);
  EXPECT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(resumed.unstoppable_calls_, 1);
  ExpectRotated(job, 2);
}

TEST_F(RekeyJobTest, CancelBeforeTheCommitKeepsBothKeysAndARerunAdoptsThePendingKey) {
  const Uuid job = NewJob();
  TestJobContext ctx(*rdb_, job);
  ctx.stop_after_progress_ = 2;
  ctx.stop_for_ = StopReason::kCancel;
  const JobOutcome out = Run(ctx);
  ExpectFailedWithBothKept(job, out, ErrorCode::kJobCanceled);
  EXPECT_NE(Job(job).message.find("both kept"), std::string::npos) << Job(job).message;
  const auto pending = table::SvmKekTable(*rdb_).GetPending(svm_).value();
  RerunCompletes();
  EXPECT_EQ(table::SvmKekTable(*rdb_).GetActive(svm_).value().wrapped, pending.wrapped);
}

TEST_F(RekeyJobTest, CancelOfAPausedJobRecordsItWithoutRewrapping) {
  const Uuid job = NewJob();
  {
    TestJobContext ctx(*rdb_, job);
    ctx.stop_after_progress_ = 1;
    ctx.stop_for_ = StopReason::kPause;
    EXPECT_EQ(Run(ctx).kind, JobOutcome::Kind::kInterrupted);
  }
  ASSERT_OK(table::JobTable(*rdb_).Pause(job));
  const uint64_t done = Job(job).progress_done;
  // Cancel of a paused job: the body runs with the cancel already asked.
  ASSERT_OK(table::JobTable(*rdb_).Start(job));
  TestJobContext canceled(*rdb_, job);
  canceled.stop_after_progress_ = 0;
  canceled.stop_for_ = StopReason::kCancel;
  source_->FailAfter(0);  // the cancel needs no external key
  const JobOutcome out = Run(canceled);
  source_->Recover();
  ExpectFailedWithBothKept(job, out, ErrorCode::kJobCanceled);
  EXPECT_EQ(Job(job).progress_done, done);
  RerunCompletes();
}

TEST_F(RekeyJobTest, CancelBeforeAnyPendingKeyChangesNothing) {
  TestJobContext ctx(*rdb_, NewJob());
  ctx.stop_after_progress_ = 0;  // asked before the job ran
  ctx.stop_for_ = StopReason::kCancel;
  ExpectFailedUnchanged(ctx.uuid(), Run(ctx), ErrorCode::kJobCanceled);
  RerunCompletes();
}

TEST_F(RekeyJobTest, CancelFoundAtTheCommitStopsItAndKeepsBothKeys) {
  TestJobContext ctx(*rdb_, NewJob());
  ctx.stop_at_commit_ = StopReason::kCancel;
  const JobOutcome out = Run(ctx);
  ExpectFailedWithBothKept(ctx.uuid(), out, ErrorCode::kJobCanceled);
  for (uint64_t g : ExpectEveryVolumeOpens()) EXPECT_EQ(g, 2u);  // rewrapped, not committed
  RerunCompletes();
}

TEST_F(RekeyJobTest, PauseFoundAtTheCommitLeavesTheJobResumable) {
  const Uuid job = NewJob();
  {
    TestJobContext ctx(*rdb_, job);
    ctx.stop_at_commit_ = StopReason::kPause;
    const JobOutcome out = Run(ctx);
    EXPECT_EQ(out.kind, JobOutcome::Kind::kInterrupted);
    EXPECT_EQ(out.stopped_for, StopReason::kPause);
  }
  ExpectResumable(job);
  TestJobContext resumed(*rdb_, job);
  EXPECT_TRUE(Run(resumed).status.ok());
  ExpectRotated(job, 2);
}

}  // namespace
}  // namespace svmkey::daemon
