// Job control under crashes (issue 14, docs/ARCHITECTURE.md §7): one rekey-internal of
// 10^5 volumes is paused, resumed and canceled at random points of its rewrap, with
// kill -9 of svmkeyd in between (while running and while paused), and rerun after each
// cancel until a run ends in success. Then the invariant of kill_loop_test holds: every
// VDEK opens, unchanged, under the one active SVM-KEK; every file's current slot and
// every volume row is at that generation; the key store is active.
//
// SVMKEY_JOBCTL_VOLUMES (default 100000) and SVMKEY_JOBCTL_ACTIONS (default 6) size the
// run; SVMKEY_JOBCTL_SEED replays one (the seed is printed).
#include <sodium.h>

#include <algorithm>
#include <random>
#include <thread>

#include "tests/reliability/reliability_util.h"

namespace svmkey::reliability {
namespace {

using namespace std::chrono_literals;
using integration::DaemonOptions;
using integration::DaemonTest;
using integration::JobProxy;
using integration::SvmSetup;
using integration::VariantMap;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::stoull(v) : fallback;
}

std::string PathOf(const std::string& job) {
  std::string p = job;
  for (char& c : p) c = c == '-' ? '_' : c;
  return "/org/svmkey/KeyManager1/job/" + p;
}

class JobControlLoopTest : public DaemonTest {
 protected:
  DaemonOptions Options() override {
    DaemonOptions o;
    o.batch_size = 1024;
    return o;
  }

  // Job1.<action> as root; "" when accepted, else the error name.
  std::string Control(const std::string& job, const std::string& action) {
    try {
      JobProxy proxy(connection(), PathOf(job));
      if (action == "pause") proxy.Pause();
      if (action == "resume") proxy.Resume();
      if (action == "cancel") proxy.Cancel();
      return "";
    } catch (const sdbus::Error& e) {
      return e.getName() + ": " + e.getMessage();
    }
  }

  // Polls until the job rewrapped `volumes`, or is no longer running; returns its map.
  VariantMap WaitProgress(const std::string& job, uint64_t volumes) {
    const auto deadline = std::chrono::steady_clock::now() + 300s;
    for (;;) {
      VariantMap j = km().GetJob(job);
      const bool unfinished = State(j) == "running" || State(j) == "queued";
      if (!unfinished || j.at("volumes_done").get<uint64_t>() >= volumes ||
          std::chrono::steady_clock::now() > deadline) {
        return j;
      }
      std::this_thread::sleep_for(1ms);
    }
  }

  VariantMap WaitNotRunning(const std::string& job) {
    const auto deadline = std::chrono::steady_clock::now() + 300s;
    VariantMap j = km().GetJob(job);
    while ((State(j) == "running" || State(j) == "queued") &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(2ms);
      j = km().GetJob(job);
    }
    return j;
  }

  // Both generations held and the key store as a stop or a cancel leaves it.
  void ExpectBothGenerations(const SvmSetup& s, const std::string& key_store_state) {
    integration::TableFile t(daemon().table_path());
    EXPECT_EQ(
        t.QueryText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=1", {s.svm_uuid}),
        "active");
    EXPECT_EQ(
        t.QueryText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=2", {s.svm_uuid}),
        "pending");
    EXPECT_EQ(t.QueryText("SELECT state FROM key_stores WHERE uuid=?1", {s.config_uuid}),
              key_store_state);
  }

  std::string NewRekey(const SvmSetup& s) {
    auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 0, 60s);
    EXPECT_EQ(status, 202u);
    return job;
  }
};

TEST_F(JobControlLoopTest, PauseResumeCancelAndKillNineAtRandomPointsOfA100kRekey) {
  const uint64_t volumes = EnvOr("SVMKEY_JOBCTL_VOLUMES", 100000);
  const uint64_t actions = EnvOr("SVMKEY_JOBCTL_ACTIONS", 6);
  const uint64_t seed = EnvOr("SVMKEY_JOBCTL_SEED", std::random_device{}());
  std::printf("[job-control] seed %llu (SVMKEY_JOBCTL_SEED replays it), %llu volumes\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(volumes));
  std::mt19937_64 rng(seed);

  const SvmSetup s = SetUpSvm("vs1");
  const std::string set = MakeVolumeSet(s.svm_uuid, volumes);
  ASSERT_EQ(RegisterVolumeSet("vs1", set), volumes);
  std::array<uint8_t, 32> fp_key{};
  randombytes_buf(fp_key.data(), fp_key.size());
  std::string error;
  const VolumeFingerprints before = integration::FingerprintVolumes(
      daemon().table_path(), s.svm_uuid, 1, 1, s.key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(before.opened, volumes);

  const auto t_set = std::chrono::steady_clock::now();
  // Every kind of action at least once (for `actions` >= 4), in a random order.
  std::vector<int> order;
  for (uint64_t i = 0; i < actions; ++i) order.push_back(static_cast<int>(i % 4));
  std::shuffle(order.begin(), order.end(), rng);
  std::string job = NewRekey(s);
  std::map<std::string, int> done_actions;
  for (uint64_t i = 0; i < actions; ++i) {
    // A random point of the run's first half (a run restarted by a rerun, a resume or a
    // restart counts the volumes it finds at g+1 again, from 0, and skips them fast).
    const uint64_t at = std::uniform_int_distribution<uint64_t>(1, volumes / 2)(rng);
    const int action = order[i];
    VariantMap j = WaitProgress(job, at);
    if (State(j) != "running" && State(j) != "queued") break;  // ended before the point
    std::string what;
    if (action == 0 || action == 1) {
      // Pause; with action 1 also kill -9 while paused, and check it stays paused.
      const std::string r = Control(job, "pause");
      if (!r.empty()) {
        EXPECT_NE(r.find("ResourceInUse"), std::string::npos) << r;  // the commit began
        break;
      }
      j = WaitNotRunning(job);
      if (State(j) != "paused") {
        EXPECT_EQ(State(j), "success") << Message(j) << DaemonLog();
        break;
      }
      ExpectBothGenerations(s, "svm_kek_rekey");
      if (action == 1) {
        daemon().Kill9();
        StartDaemonAgain();
        ASSERT_FALSE(HasFatalFailure());
        EXPECT_EQ(State(km().GetJob(job)), "paused") << DaemonLog();
        what = "pause, kill -9, resume";
      } else {
        what = "pause, resume";
      }
      ASSERT_EQ(Control(job, "resume"), "") << DaemonLog();
    } else if (action == 2) {
      daemon().Kill9();
      StartDaemonAgain();
      ASSERT_FALSE(HasFatalFailure());
      what = "kill -9 (resumed at start)";
    } else {
      const std::string r = Control(job, "cancel");
      if (!r.empty()) {
        EXPECT_NE(r.find("ResourceInUse"), std::string::npos) << r;
        break;
      }
      j = WaitNotRunning(job);
      if (State(j) == "success") break;  // the last batch was already done: it committed
      ASSERT_EQ(State(j), "failure") << Message(j) << DaemonLog();
      EXPECT_EQ(Code(j), 458762u) << Message(j);
      ExpectBothGenerations(s, "active");
      job = NewRekey(s);
      what = "cancel, rerun";
    }
    ++done_actions[what];
    ASSERT_FALSE(HasFailure()) << "after action " << i + 1 << " (" << what << ") at " << at;
  }
  VariantMap end = WaitJob(job, 600s);
  if (State(end) == "failure") {
    // Canceled at the very end: one more rerun completes.
    ASSERT_EQ(Code(end), 458762u) << Message(end);
    end = WaitJob(NewRekey(s), 600s);
  }
  ASSERT_EQ(State(end), "success") << Message(end) << DaemonLog();
  std::printf("[job-control] %.1f s from the first rekey call to success\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_set).count());
  for (const auto& [what, n] : done_actions) {
    std::printf("[job-control] %-28s %d\n", what.c_str(), n);
  }
  EXPECT_EQ(CheckInvariant(daemon().table_path(), s.svm_uuid, s.config_uuid, 2, s.key.key_file,
                           before, fp_key),
            "");
}

}  // namespace
}  // namespace svmkey::reliability
