// The rekey commit points (docs/ARCHITECTURE.md §7 phases 3 and 6) and failure recording.
#include "daemon/table/svm_kek_table.h"

#include <gtest/gtest.h>

#include <memory>
#include <utility>

#include "tests/daemon/table/table_test_util.h"

namespace svmkey::table {
namespace {

using testing::FakeBlob;
using testing::FakeWrapped;
using testing::kKeyId;
using testing::NumberedUuid;
using testing::RdbTest;

class SvmKekTableTest : public RdbTest {
 protected:
  void SetUp() override {
    RdbTest::SetUp();
    setup_ = MakeDataSvm("vs1", 0x51);
    for (uint64_t i = 1; i <= kVolumes; ++i) volumes_.push_back(MakeVolume(setup_.svm, i));
    ASSERT_OK(VolumeTable(*rdb_).InsertMany(volumes_));
    ASSERT_OK(JobTable(*rdb_).CreateExclusive({job_, "rekey-internal", setup_.svm,
                                               setup_.key_store, "{}"}));
    ASSERT_OK(JobTable(*rdb_).Start(job_));
  }
  SvmKekTable keks() { return SvmKekTable(*rdb_); }
  SvmKekRow Pending(uint64_t generation) {
    SvmKekRow r;
    r.svm = setup_.svm;
    r.generation = generation;
    r.wrapped = FakeWrapped(static_cast<uint8_t>(generation));
    r.key_id = kKeyId;
    return r;
  }
  std::vector<VolumeBlobUpdate> Rewrapped(uint64_t from, uint64_t to, uint64_t generation) {
    std::vector<VolumeBlobUpdate> out;
    for (uint64_t i = from; i <= to; ++i) {
      out.push_back({volumes_[i - 1].uuid, generation, FakeBlob(generation, i)});
    }
    return out;
  }
  KeyStoreState KeyStoreStateNow() {
    return KeyStoreTable(*rdb_).GetKeyStore(setup_.key_store).value().state;
  }

  static constexpr uint64_t kVolumes = 10;
  Setup setup_;
  std::vector<VolumeRow> volumes_;
  const Uuid job_ = NumberedUuid(0x10b, 1);
};

TEST_F(SvmKekTableTest, InitialActiveKey) {
  SvmKekRow active = keks().GetActive(setup_.svm).value();
  EXPECT_EQ(active.generation, 1u);
  EXPECT_EQ(active.state, SvmKekState::kActive);
  EXPECT_EQ(active.key_id, kKeyId);
  EXPECT_EQ(active.wrapped, FakeWrapped(1));
  EXPECT_CODE(keks().GetPending(setup_.svm).status(), kEntryNotFound);
  EXPECT_CODE(keks().InsertInitialActive(setup_.svm, 2, FakeWrapped(2), kKeyId),
              kDuplicateEntry);
  EXPECT_CODE(keks().InsertInitialActive(NumberedUuid(9, 9), 1, FakeWrapped(2), kKeyId),
              kSvmNotFound);
}

TEST_F(SvmKekTableTest, BeginRekeyStoresPendingAndBlocksNewKeysInOneStep) {
  ASSERT_OK(keks().BeginRekey(Pending(2), setup_.key_store, job_));
  SvmKekRow pending = keks().GetPending(setup_.svm).value();
  EXPECT_EQ(pending.generation, 2u);
  EXPECT_EQ(pending.state, SvmKekState::kPending);
  EXPECT_EQ(keks().GetActive(setup_.svm).value().generation, 1u);
  EXPECT_EQ(KeyStoreStateNow(), KeyStoreState::kSvmKekRekey);
  JobRow job = JobTable(*rdb_).Get(job_).value();
  EXPECT_EQ(job.phase, kPhaseStorePending);
  EXPECT_EQ(job.new_generation, 2u);
  // docs/ARCHITECTURE.md §7: while in svm_kek_rekey no new keys (volumes) for the SVM.
  EXPECT_CODE(VolumeTable(*rdb_).Insert(MakeVolume(setup_.svm, 99)), kResourceInUse);
}

TEST_F(SvmKekTableTest, BeginRekeyRefusals) {
  EXPECT_CODE(keks().BeginRekey(Pending(3), setup_.key_store, job_), kInvalidValue);  // gap
  EXPECT_CODE(keks().BeginRekey(Pending(2), NumberedUuid(7, 7), job_), kKeystoreUnknown);
  EXPECT_CODE(keks().BeginRekey(Pending(2), setup_.key_store, NumberedUuid(7, 7)), kEntryNotFound);
  ASSERT_OK(KeyStoreTable(*rdb_).SetState(setup_.key_store, KeyStoreState::kBlocked));
  EXPECT_CODE(keks().BeginRekey(Pending(2), setup_.key_store, job_), kInvalidValue);
  ASSERT_OK(KeyStoreTable(*rdb_).SetState(setup_.key_store, KeyStoreState::kActive));
  // Every refusal left the table as it was.
  EXPECT_CODE(keks().GetPending(setup_.svm).status(), kEntryNotFound);
  EXPECT_EQ(KeyStoreStateNow(), KeyStoreState::kActive);
  EXPECT_EQ(JobTable(*rdb_).Get(job_).value().phase, 0);

  ASSERT_OK(keks().BeginRekey(Pending(2), setup_.key_store, job_));
  EXPECT_CODE(keks().BeginRekey(Pending(2), setup_.key_store, job_), kDuplicateEntry);
}

TEST_F(SvmKekTableTest, BeginRekeyNeedsTheEnabledKeyStore) {
  NewBarbicanConfig c;
  c.uuid = NumberedUuid(0x51, 3);
  c.name = "spare";
  c.svm = setup_.svm;
  c.key_id = kKeyId;
  c.keystone_url = testing::kKeystone;
  c.application_cred_id = "id";
  ASSERT_OK(KeyStoreTable(*rdb_).CreateBarbicanConfig(c, "x"));
  EXPECT_CODE(keks().BeginRekey(Pending(2), c.uuid, job_), kBarbicanNotConfigured);
}

TEST_F(SvmKekTableTest, CommitMakesTheNewKeyActiveAndFinishesTheJob) {
  ASSERT_OK(keks().BeginRekey(Pending(2), setup_.key_store, job_));
  ASSERT_OK(VolumeTable(*rdb_).UpdateBlobs(Rewrapped(1, 10, 2)));
  now_ms_ += 5000;
  ASSERT_OK(keks().CommitRekey(setup_.svm, 2, setup_.key_store, job_));

  EXPECT_EQ(keks().GetActive(setup_.svm).value().generation, 2u);
  EXPECT_EQ(keks().Get(setup_.svm, 1).value().state, SvmKekState::kRetired);
  EXPECT_CODE(keks().GetPending(setup_.svm).status(), kEntryNotFound);
  EXPECT_EQ(KeyStoreStateNow(), KeyStoreState::kActive);
  JobRow job = JobTable(*rdb_).Get(job_).value();
  EXPECT_EQ(job.state, JobState::kSuccess);
  EXPECT_EQ(job.code, 0u);
  EXPECT_EQ(job.message, kJobSuccessMessage);
  EXPECT_EQ(job.phase, kPhaseCommit);
  EXPECT_EQ(job.end_time_ms, now_ms_.load());
  EXPECT_EQ(VolumeTable(*rdb_).CountNotAtGeneration(setup_.svm, 2).value(), 0u);
  EXPECT_EQ(VolumeTable(*rdb_).GetBlob(volumes_[9].uuid).value(), FakeBlob(2, 10));
  std::vector<SvmKekRow> all = keks().List(setup_.svm).value();
  ASSERT_EQ(all.size(), 2u);
  // New keys are allowed again, at the new generation only.
  EXPECT_OK(VolumeTable(*rdb_).Insert(MakeVolume(setup_.svm, 50, 2)));
  EXPECT_CODE(VolumeTable(*rdb_).Insert(MakeVolume(setup_.svm, 51, 1)), kInvalidValue);
}

TEST_F(SvmKekTableTest, CommitIsRefusedWhileVolumesLagAndChangesNothing) {
  ASSERT_OK(keks().BeginRekey(Pending(2), setup_.key_store, job_));
  ASSERT_OK(VolumeTable(*rdb_).UpdateBlobs(Rewrapped(1, 8, 2)));
  Status st = keks().CommitRekey(setup_.svm, 2, setup_.key_store, job_);
  EXPECT_CODE(st, kVdekBlobUpdateFailed);
  EXPECT_NE(st.message().find("2 volumes"), std::string::npos) << st.message();
  EXPECT_EQ(VolumeTable(*rdb_).CountNotAtGeneration(setup_.svm, 2).value(), 2u);
  EXPECT_EQ(keks().GetActive(setup_.svm).value().generation, 1u);
  EXPECT_EQ(keks().GetPending(setup_.svm).value().generation, 2u);
  EXPECT_EQ(JobTable(*rdb_).Get(job_).value().state, JobState::kRunning);
  EXPECT_EQ(KeyStoreStateNow(), KeyStoreState::kSvmKekRekey);

  EXPECT_CODE(keks().CommitRekey(setup_.svm, 3, setup_.key_store, job_), kEntryNotFound);
  EXPECT_EQ(VolumeTable(*rdb_).CountNotAtGeneration(setup_.svm, 2).value(), 2u);
}

TEST_F(SvmKekTableTest, FailureKeepsBothKeysAndARerunCompletes) {
  ASSERT_OK(keks().BeginRekey(Pending(2), setup_.key_store, job_));
  ASSERT_OK(VolumeTable(*rdb_).UpdateBlobs(Rewrapped(1, 4, 2)));
  ASSERT_OK(keks().RecordRekeyFailure(setup_.key_store, KeyStoreState::kSvmKekRekey, job_,
                                      65537565, "write of vol5 failed"));
  JobRow failed = JobTable(*rdb_).Get(job_).value();
  EXPECT_EQ(failed.state, JobState::kFailure);
  EXPECT_EQ(failed.code, 65537565u);
  EXPECT_EQ(failed.message, "write of vol5 failed");
  // Volumes 1..4 are under g2 and 5..10 under g1: both keys must still be in the table.
  EXPECT_EQ(keks().GetActive(setup_.svm).value().generation, 1u);
  EXPECT_EQ(keks().GetPending(setup_.svm).value().generation, 2u);
  EXPECT_EQ(KeyStoreStateNow(), KeyStoreState::kSvmKekRekey);

  // The rerun: a new job adopts the pending key (no new key: blobs already use it).
  const Uuid rerun = NumberedUuid(0x10b, 2);
  ASSERT_OK(JobTable(*rdb_).CreateExclusive({rerun, "rekey-internal", setup_.svm,
                                             setup_.key_store, "{}"}));
  ASSERT_OK(JobTable(*rdb_).Start(rerun));
  EXPECT_CODE(keks().BeginRekey(Pending(2), setup_.key_store, rerun), kDuplicateEntry);
  ASSERT_OK(keks().AdoptPending(setup_.svm, setup_.key_store, rerun));
  EXPECT_EQ(JobTable(*rdb_).Get(rerun).value().new_generation, 2u);
  ASSERT_OK(VolumeTable(*rdb_).UpdateBlobs(Rewrapped(5, 10, 2)));
  ASSERT_OK(keks().CommitRekey(setup_.svm, 2, setup_.key_store, rerun));
  EXPECT_EQ(keks().GetActive(setup_.svm).value().generation, 2u);
  EXPECT_EQ(JobTable(*rdb_).Get(rerun).value().state, JobState::kSuccess);
}

TEST_F(SvmKekTableTest, FailureMayReopenTheKeyStoreForNewKeys) {
  ASSERT_OK(keks().BeginRekey(Pending(2), setup_.key_store, job_));
  ASSERT_OK(keks().RecordRekeyFailure(setup_.key_store, KeyStoreState::kActive, job_, 65539202,
                                      "decrypt failed"));
  EXPECT_EQ(KeyStoreStateNow(), KeyStoreState::kActive);
  EXPECT_EQ(keks().GetPending(setup_.svm).value().generation, 2u);
  EXPECT_OK(VolumeTable(*rdb_).Insert(MakeVolume(setup_.svm, 70, 1)));
  // A finished job cannot fail again, and code 0 is not a failure.
  EXPECT_CODE(keks().RecordRekeyFailure(setup_.key_store, KeyStoreState::kActive, job_, 8, "x"),
              kInvalidValue);
  EXPECT_CODE(keks().RecordRekeyFailure(setup_.key_store, KeyStoreState::kActive, job_, 0, "x"),
              kInvalidArgument);
  EXPECT_CODE(keks().AdoptPending(setup_.svm, setup_.key_store, job_), kInvalidValue);
}

TEST_F(SvmKekTableTest, TheFileRefusesTwoActiveOrTwoPendingKeys) {
  Rdb::Session s = rdb_->Lock();
  const std::string svm = setup_.svm.ToString();
  EXPECT_CODE(s.db().Exec("INSERT INTO svm_keks VALUES ('" + svm +
                          "', 5, zeroblob(60), 'k', 'active', 0)"),
              kDuplicateEntry);
  ASSERT_OK(s.db().Exec("INSERT INTO svm_keks VALUES ('" + svm +
                        "', 5, zeroblob(60), 'k', 'pending', 0)"));
  EXPECT_CODE(s.db().Exec("INSERT INTO svm_keks VALUES ('" + svm +
                          "', 6, zeroblob(60), 'k', 'pending', 0)"),
              kDuplicateEntry);
  EXPECT_CODE(s.db().Exec("INSERT INTO svm_keks VALUES ('" + svm +
                          "', 7, zeroblob(59), 'k', 'retired', 0)"),
              kInvalidValue);
}

}  // namespace
}  // namespace svmkey::table

namespace svmkey::table {
namespace {

TEST_F(SvmKekTableTest, CompleteSwitchRewrapsEveryGenerationAndActivatesTheKeyStore) {
  // Switch to a second configuration with another Barbican key.
  NewBarbicanConfig c;
  c.uuid = NumberedUuid(0x51, 4);
  c.name = "second";
  c.svm = setup_.svm;
  c.key_id = "https://barbican.test:9311/v1/secrets/second";
  c.keystone_url = testing::kKeystone;
  c.application_cred_id = "id2";
  ASSERT_OK(KeyStoreTable(*rdb_).CreateBarbicanConfig(c, "x"));
  ASSERT_EQ(KeyStoreTable(*rdb_).Enable(c.uuid).value().kind,
            EnableOutcome::Kind::kSwitchStarted);
  // The old (now disabled) key store cannot finish the switch.
  SvmKekRow g1 = keks().GetActive(setup_.svm).value();
  g1.wrapped = FakeWrapped(0x77);
  g1.key_id = c.key_id;
  EXPECT_CODE(keks().CompleteSwitch(setup_.svm, std::span(&g1, 1), setup_.key_store),
              kInvalidValue);
  SvmKekRow missing = g1;
  missing.generation = 9;
  const std::vector<SvmKekRow> with_missing = {g1, missing};
  EXPECT_CODE(keks().CompleteSwitch(setup_.svm, with_missing, c.uuid), kEntryNotFound);
  EXPECT_EQ(keks().GetActive(setup_.svm).value().key_id, kKeyId);  // rolled back

  ASSERT_OK(keks().CompleteSwitch(setup_.svm, std::span(&g1, 1), c.uuid));
  SvmKekRow now = keks().GetActive(setup_.svm).value();
  EXPECT_EQ(now.key_id, c.key_id);
  EXPECT_EQ(now.wrapped, FakeWrapped(0x77));
  EXPECT_EQ(KeyStoreTable(*rdb_).GetKeyStore(c.uuid).value().state, KeyStoreState::kActive);
  // The first configuration no longer wraps a live key and may be deleted.
  EXPECT_OK(KeyStoreTable(*rdb_).Delete(setup_.key_store));
}

// A volume-set registration is one transaction: an error of the row source or of the
// table after some batches leaves neither the SVM-KEK nor any row; the same registration
// then succeeds.
TEST_F(SvmKekTableTest, InitialKeyWithVolumesIsAllOrNothing) {
  const Uuid svm = NumberedUuid(0x52, 1);
  const Uuid key_store = NumberedUuid(0x52, 2);
  ASSERT_OK(SvmTable(*rdb_).Create({svm, "vs2", SvmKind::kData}));
  NewBarbicanConfig c;
  c.uuid = key_store;
  c.name = "vs2-barbican";
  c.svm = svm;
  c.key_id = kKeyId;
  c.keystone_url = testing::kKeystone;
  c.application_cred_id = "cred-vs2";
  ASSERT_OK(KeyStoreTable(*rdb_).CreateBarbicanConfig(c, "not-a-real-secret"));
  ASSERT_TRUE(KeyStoreTable(*rdb_).Enable(key_store).ok());

  constexpr uint64_t kBatches = 3, kPerBatch = 4;
  auto batches = [&](uint64_t fail_at, uint64_t duplicate_at) {
    auto next_batch = std::make_shared<uint64_t>(0);
    return [=](std::vector<VolumeRow>* rows) -> Status {
      const uint64_t b = (*next_batch)++;
      if (b == kBatches) return Status::Ok();
      if (b == fail_at) return Status(ErrorCode::kInvalidValue, "manifest line 9: bad DSID");
      for (uint64_t i = 0; i < kPerBatch; ++i) {
        rows->push_back(MakeVolume(svm, 100 + (b == duplicate_at ? 0 : b * kPerBatch + i)));
      }
      return Status::Ok();
    };
  };
  const uint64_t kNever = 99;
  for (auto [fail_at, duplicate_at] :
       {std::pair{uint64_t{2}, kNever}, std::pair{kNever, uint64_t{1}}}) {
    Status s = keks().InsertInitialActiveWithVolumes(svm, 1, FakeWrapped(1), kKeyId,
                                                     batches(fail_at, duplicate_at)).status();
    EXPECT_FALSE(s.ok());
    EXPECT_CODE(keks().GetActive(svm).status(), kEntryNotFound);
    EXPECT_EQ(VolumeTable(*rdb_).Count(svm).value(), 0u);
  }
  Result<uint64_t> n =
      keks().InsertInitialActiveWithVolumes(svm, 1, FakeWrapped(1), kKeyId, batches(kNever, kNever));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, kBatches * kPerBatch);
  EXPECT_EQ(keks().GetActive(svm).value().generation, 1u);
  EXPECT_EQ(VolumeTable(*rdb_).Count(svm).value(), kBatches * kPerBatch);
  // A second registration is refused and adds nothing.
  EXPECT_CODE(keks().InsertInitialActiveWithVolumes(svm, 1, FakeWrapped(1), kKeyId,
                                                    batches(kNever, kNever)).status(),
              kDuplicateEntry);
  EXPECT_EQ(VolumeTable(*rdb_).Count(svm).value(), kBatches * kPerBatch);
}

}  // namespace
}  // namespace svmkey::table
