// Scenario 2: svmkeyd dies in the middle of a rekey (kill -9), or is stopped (SIGTERM),
// and the next start resumes the job from its phase to success with nothing lost: every
// VDEK opens, unchanged, at the new generation (docs/ARCHITECTURE.md §7 invariants).
#include <sodium.h>

#include <thread>

#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

constexpr uint64_t kVolumes = 20000;

class CrashTest : public DaemonTest {
 protected:
  // Small batches so the kill lands between many batch boundaries.
  // A short pause after each of the ~156 batches keeps the rewrap phase at least ~0.5 s
  // long on any machine, so "midway" can be observed.
  DaemonOptions Options() override { return DaemonOptions::ThrottledRewrap(128, 3); }

  struct Prepared {
    SvmSetup svm;
    VolumeFingerprints before;
    std::array<uint8_t, 32> fp_key{};
  };

  Prepared Prepare() {
    Prepared p;
    p.svm = SetUpSvm("vs1");
    const std::string set = MakeVolumeSet(p.svm.svm_uuid, kVolumes);
    EXPECT_EQ(RegisterVolumeSet("vs1", set), kVolumes);
    randombytes_buf(p.fp_key.data(), p.fp_key.size());
    std::string error;
    p.before = FingerprintVolumes(daemon().table_path(), p.svm.svm_uuid, 1, 1, p.svm.key.key_file,
                                  p.fp_key, &error);
    EXPECT_TRUE(error.empty()) << error;
    EXPECT_EQ(p.before.opened, kVolumes);
    return p;
  }

  // Starts a rekey and returns once the job has rewrapped some but not all volumes.
  std::string StartRekeyAndWaitMidway(const SvmSetup& s, uint64_t* done_at_stop) {
    auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
    EXPECT_EQ(status, 202u);
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline) {
      const VariantMap j = km().GetJob(job);
      const uint64_t done = j.at("volumes_done").get<uint64_t>();
      // Well into the run (a tenth of the volumes), far from its end.
      if (done >= kVolumes / 10) {
        *done_at_stop = done;
        EXPECT_EQ(State(j), "running");
        EXPECT_LT(done, kVolumes) << "the rekey finished before it could be interrupted";
        return job;
      }
      EXPECT_NE(State(j), "success") << "the rekey finished before it could be interrupted";
      if (State(j) == "success") return job;
      std::this_thread::sleep_for(2ms);
    }
    ADD_FAILURE() << "the job never reported progress";
    return job;
  }

  void ExpectAllAtGeneration(const Prepared& p, uint64_t generation) {
    std::string error;
    const VolumeFingerprints after =
        FingerprintVolumes(daemon().table_path(), p.svm.svm_uuid, generation, generation,
                           p.svm.key.key_file, p.fp_key, &error);
    ASSERT_TRUE(error.empty()) << error;
    ASSERT_EQ(after.uuids.size(), kVolumes);
    EXPECT_EQ(after.opened, kVolumes) << "volumes lost";
    size_t changed = 0, wrong_gen = 0;
    for (size_t i = 0; i < after.uuids.size(); ++i) {
      changed += after.fingerprints[i] != p.before.fingerprints[i];
      wrong_gen += after.generations[i] != generation;
    }
    EXPECT_EQ(changed, 0u) << "VDEKs changed";
    EXPECT_EQ(wrong_gen, 0u) << "volumes not at generation " << generation;
    auto [vs, vj] = km().VerifyVolumesWithin("vs1", 120, 180s);
    EXPECT_EQ(vs, 201u);
    EXPECT_EQ(Message(km().GetJob(vj)), std::to_string(kVolumes) + " volumes verified, 0 failed");
  }
};

TEST_F(CrashTest, KillNineMidRekeyThenRestartResumesToSuccess) {
  const Prepared p = Prepare();
  ASSERT_FALSE(HasFailure());
  uint64_t done_at_kill = 0;
  const std::string job = StartRekeyAndWaitMidway(p.svm, &done_at_kill);
  daemon().Kill9();
  ASSERT_FALSE(daemon().running());

  // What the dead daemon left: the job running, the key store in svm_kek_rekey, the
  // pending generation 2 stored, some volumes already at generation 2.
  {
    TableFile t(daemon().table_path());
    EXPECT_EQ(t.QueryText("SELECT state FROM jobs WHERE uuid=?1", {job}), "running");
    EXPECT_EQ(t.QueryText("SELECT state FROM key_stores WHERE uuid=?1", {p.svm.config_uuid}),
              "svm_kek_rekey");
    EXPECT_EQ(t.QueryText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=2",
                          {p.svm.svm_uuid}),
              "pending");
    const auto moved = t.QueryInt("SELECT count(*) FROM volumes WHERE svm_uuid=?1 AND generation=2",
                                  {p.svm.svm_uuid});
    EXPECT_GT(moved.value_or(0), 0);
    EXPECT_LT(moved.value_or(kVolumes), static_cast<int64_t>(kVolumes));
    std::printf("[crash] killed at %llu of %llu volumes (table: %lld at generation 2)\n",
                static_cast<unsigned long long>(done_at_kill),
                static_cast<unsigned long long>(kVolumes),
                static_cast<long long>(moved.value_or(-1)));
  }

  StartDaemonAgain();
  // READY=1 comes after the job was resumed: it is known to the restarted daemon.
  EXPECT_NE(daemon().LogTail().find("resuming job " + job), std::string::npos) << DaemonLog();
  const VariantMap end = WaitJob(job, 300s);
  ASSERT_EQ(State(end), "success") << Message(end) << DaemonLog();
  EXPECT_EQ(end.at("volumes_done").get<uint64_t>(), kVolumes);
  {
    TableFile t(daemon().table_path());
    EXPECT_EQ(t.QueryText("SELECT state FROM key_stores WHERE uuid=?1", {p.svm.config_uuid}),
              "active");
    EXPECT_EQ(t.QueryText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=2",
                          {p.svm.svm_uuid}),
              "active");
    EXPECT_EQ(t.QueryInt("SELECT count(*) FROM svm_keks WHERE svm_uuid=?1", {p.svm.svm_uuid}), 2);
  }
  ExpectAllAtGeneration(p, 2);
}

TEST_F(CrashTest, SigtermMidRekeyExitsCleanlyAndTheJobResumesAtNextStart) {
  const Prepared p = Prepare();
  ASSERT_FALSE(HasFailure());
  uint64_t done_at_stop = 0;
  const std::string job = StartRekeyAndWaitMidway(p.svm, &done_at_stop);
  const int rc = daemon().Stop(SIGTERM);
  EXPECT_EQ(rc, 0) << "svmkeyd did not exit 0 on SIGTERM" << DaemonLog();
  EXPECT_TRUE(daemon().notify().WaitFor("STOPPING=1", 1s)) << "no STOPPING=1";
  {
    TableFile t(daemon().table_path());
    EXPECT_EQ(t.QueryText("SELECT state FROM jobs WHERE uuid=?1", {job}), "running");
    const auto progress = t.QueryInt("SELECT progress_done FROM jobs WHERE uuid=?1", {job});
    EXPECT_LT(progress.value_or(kVolumes), static_cast<int64_t>(kVolumes))
        << "SIGTERM did not stop the job at a batch boundary";
    // Stopped at a batch boundary: the table's copies agree with the progress row.
    const auto moved = t.QueryInt("SELECT count(*) FROM volumes WHERE svm_uuid=?1 AND generation=2",
                                  {p.svm.svm_uuid});
    EXPECT_EQ(moved, progress);
    EXPECT_EQ(t.QueryText("SELECT state FROM key_stores WHERE uuid=?1", {p.svm.config_uuid}),
              "svm_kek_rekey");
  }
  StartDaemonAgain();
  const VariantMap end = WaitJob(job, 300s);
  ASSERT_EQ(State(end), "success") << Message(end) << DaemonLog();
  ExpectAllAtGeneration(p, 2);
}

}  // namespace
}  // namespace svmkey::integration
