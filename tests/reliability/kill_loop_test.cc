// Daemon-level crash safety (issue 7, docs/ARCHITECTURE.md §7): svmkeyd is killed with SIGKILL at
// random instants of rekey-internal — anywhere from before the job row exists to after
// the commit — restarted, and the job resumes (or, when the kill came before the job
// row existed, a rerun starts it) and ends in success with the invariant intact: every
// VDEK opens, unchanged, under the new active SVM-KEK; every file's current slot and
// every volume row is at that generation.
//
// SVMKEY_KILL_LOOPS (default 50) sets the number of killed rekeys; SVMKEY_KILL_SEED
// replays a run (the seed is printed).
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <set>
#include <thread>

#include "tests/reliability/reliability_util.h"

namespace svmkey::reliability {
namespace {

using namespace std::chrono_literals;
using integration::DaemonOptions;
using integration::DaemonTest;
using integration::SvmSetup;
using integration::TableFile;
using integration::VariantMap;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::stoull(v) : fallback;
}

class KillLoopTest : public DaemonTest {
 protected:
  DaemonOptions Options() override {
    DaemonOptions o;
    o.batch_size = batch_size_;
    return o;
  }

  void Prepare(uint64_t volumes) {
    volumes_ = volumes;
    svm_ = SetUpSvm("vs1");
    const std::string set = MakeVolumeSet(svm_.svm_uuid, volumes);
    ASSERT_EQ(RegisterVolumeSet("vs1", set), volumes);
    randombytes_buf(fp_key_.data(), fp_key_.size());
    std::string error;
    before_ = integration::FingerprintVolumes(daemon().table_path(), svm_.svm_uuid, 1, 1,
                                              svm_.key.key_file, fp_key_, &error);
    ASSERT_TRUE(error.empty()) << error;
    ASSERT_EQ(before_.opened, volumes);
    ASSERT_EQ(Invariant(1), "");
  }

  std::string Invariant(uint64_t generation) {
    return CheckInvariant(daemon().table_path(), svm_.svm_uuid, svm_.config_uuid, generation,
                          svm_.key.key_file, before_, fp_key_);
  }

  std::set<std::string> JobUuids() {
    std::set<std::string> out;
    TableFile t(daemon().table_path());
    for (const auto& r : t.QueryRows("SELECT uuid FROM jobs")) out.insert(r[0]);
    return out;
  }

  // What the killed daemon left for the jobs not in `known`: "state/phase", or "no job".
  std::string LeftBehind(const std::set<std::string>& known, std::string* job) {
    TableFile t(daemon().table_path());
    for (const auto& r : t.QueryRows("SELECT uuid, state, phase FROM jobs")) {
      if (known.count(r[0])) continue;
      *job = r[0];
      const std::string phase = r[2] == "0" ? "queued" : r[2];
      return r[1] == "running" || r[1] == "queued" ? "running/phase " + phase : r[1];
    }
    return "no job row";
  }

  // One rekey g -> g+1, killed `delay` after the call (or, if `trigger` is set, `delay`
  // after a job property matches it; 0: from the signal thread at once), then a restart and the
  // resumed job or a rerun to success. Returns what the kill left behind ("" on a test failure).
  std::string KilledRekey(
      uint64_t g, std::chrono::microseconds delay,
      std::function<bool(const std::string&, const std::string&)> trigger = nullptr) {
    const std::set<std::string> known = JobUuids();
    KillSwitch ks(connection());
    if (trigger) ks.Arm(daemon().pid(), trigger, /*kill=*/delay.count() == 0);
    std::string replied_job;
    const auto t0 = std::chrono::steady_clock::now();
    std::thread caller([&] {
      try {
        auto [status, job] = km().RekeyInternalWithin(svm_.config_uuid, 0, 60s);
        replied_job = job;
      } catch (const sdbus::Error&) {
        // The daemon died before it replied.
      }
    });
    if (trigger) {
      const auto deadline = t0 + 300s;
      while (!ks.fired() && std::chrono::steady_clock::now() < deadline && daemon().running()) {
        std::this_thread::sleep_for(1ms);
      }
      EXPECT_TRUE(ks.fired()) << "the trigger never fired";
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
    } else {
      std::this_thread::sleep_until(t0 + delay);
    }
    daemon().Kill9();
    ks.Disarm();
    caller.join();
    EXPECT_FALSE(daemon().running());
    std::string job;
    const std::string left = LeftBehind(known, &job);
    if (!replied_job.empty()) {
      EXPECT_EQ(job, replied_job);
    }

    StartDaemonAgain();
    if (HasFatalFailure()) return "";
    if (job.empty()) {
      // Killed before the job row existed: nothing started, so run it again.
      auto [status, rerun] = km().RekeyInternalWithin(svm_.config_uuid, 120, 300s);
      EXPECT_EQ(status, 201u);
      job = rerun;
    }
    const VariantMap end = WaitJob(job, 600s);
    EXPECT_EQ(State(end), "success") << "generation " << g << " -> " << g + 1 << ", killed at "
                                     << left << ": " << Message(end) << DaemonLog();
    const std::string inv = Invariant(g + 1);
    EXPECT_EQ(inv, "") << "generation " << g + 1 << " after a kill at " << left << DaemonLog();
    return left;
  }

  size_t batch_size_ = 512;
  uint64_t volumes_ = 0;
  SvmSetup svm_;
  VolumeFingerprints before_;
  std::array<uint8_t, 32> fp_key_{};
};

TEST_F(KillLoopTest, FiftyRekeysOf5000VolumesEachKilledAtARandomInstant) {
  const uint64_t loops = EnvOr("SVMKEY_KILL_LOOPS", 50);
  const uint64_t volumes = EnvOr("SVMKEY_KILL_VOLUMES", 5000);
  const uint64_t seed = EnvOr("SVMKEY_KILL_SEED", std::random_device{}());
  std::printf("[kill-loop] seed %llu (SVMKEY_KILL_SEED replays it)\n",
              static_cast<unsigned long long>(seed));
  Prepare(volumes);
  ASSERT_FALSE(HasFailure());

  // An uninterrupted rekey (generation 1 -> 2) measures the window the kills sample.
  const auto t0 = std::chrono::steady_clock::now();
  auto [status, job] = km().RekeyInternalWithin(svm_.config_uuid, 120, 300s);
  const auto measured =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  ASSERT_EQ(status, 201u) << "the uninterrupted rekey took over 120 s";
  ASSERT_EQ(Invariant(2), "");
  // The rewrap phase's own duration, from the daemon's log line.
  const std::string log = daemon().LogTail(1 << 20);
  const size_t at = log.rfind("rewrap phase took ");
  ASSERT_NE(at, std::string::npos) << DaemonLog();
  const auto rewrap =
      std::chrono::microseconds(static_cast<int64_t>(std::stod(log.substr(at + 18)) * 1e6) + 1);
  std::printf(
      "[kill-loop] uninterrupted rekey of %llu volumes: %.3f s (the kill window), "
      "rewrap phase %.3f s\n",
      static_cast<unsigned long long>(volumes), measured.count() / 1e6, rewrap.count() / 1e6);

  // Of every five runs: two killed at a uniform instant of the whole run (from the call),
  // two at a uniform instant of the rewrap phase (where volumes change), one right after
  // the commit transaction (while the key install runs).
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> when(0, measured.count());
  std::uniform_int_distribution<int64_t> when_rewrap(1, rewrap.count());
  std::map<std::string, int> where;
  uint64_t g = 2;
  for (uint64_t i = 0; i < loops; ++i, ++g) {
    std::string left;
    if (i % 5 == 4) {
      // Right after the commit: the first signal of the committed job (phase install
      // or state success), while the key install runs.
      left = KilledRekey(g, 0us, [](const std::string& k, const std::string& v) {
        return (k == "Phase" && v == "install") || (k == "State" && v == "success");
      });
      left = "after commit: " + left;
    } else if (i % 5 == 1 || i % 5 == 3) {
      left = KilledRekey(g, std::chrono::microseconds(when_rewrap(rng)),
                         [](const std::string& k, const std::string& v) {
                           return k == "Phase" && v == "rewrap_volumes";
                         });
      left = "in rewrap: " + left;
    } else {
      left = KilledRekey(g, std::chrono::microseconds(when(rng)));
    }
    ASSERT_FALSE(HasFailure()) << "kill -9 run " << i + 1 << " (" << left << ")";
    ++where[left];
  }
  std::printf(
      "[kill-loop] %llu kill -9 runs of rekey-internal on %llu volumes, all resumed "
      "to success with every VDEK intact; where the kills landed:\n",
      static_cast<unsigned long long>(loops), static_cast<unsigned long long>(volumes));
  for (const auto& [w, n] : where) std::printf("[kill-loop]   %4d  %s\n", n, w.c_str());
  TableFile t(daemon().table_path());
  EXPECT_EQ(t.QueryInt("SELECT count(*) FROM svm_keks WHERE svm_uuid=?1", {svm_.svm_uuid}),
            static_cast<int64_t>(g));
}

// The job table under crash: kill -9 at every phase transition the job publishes
// (docs/ARCHITECTURE.md §7: prechecks, unwrap_current, store_pending, rewrap_volumes, durability,
// then install / success right after the commit transaction).
class PhaseKillTest : public KillLoopTest {
 protected:
  // Small batches: the rewrap phase lasts long enough to be told from its neighbours.
  DaemonOptions Options() override {
    DaemonOptions o;
    o.batch_size = 64;
    return o;
  }
};

TEST_F(PhaseKillTest, KillAtEveryPhaseTransition) {
  Prepare(2000);
  ASSERT_FALSE(HasFailure());
  const std::vector<std::pair<std::string, std::string>> transitions = {
      {"Phase", "prechecks"},      {"Phase", "unwrap_current"}, {"Phase", "store_pending"},
      {"Phase", "rewrap_volumes"}, {"Phase", "durability"},     {"Phase", "install"},
      {"State", "success"},
  };
  uint64_t g = 1;
  for (const auto& [prop, value] : transitions) {
    const std::string left =
        KilledRekey(g, 0us, [p = prop, v = value](const std::string& k, const std::string& x) {
          return k == p && x == v;
        });
    ASSERT_FALSE(HasFailure()) << "kill at " << prop << "=" << value;
    std::printf("[phase-kill] killed at %s=%s; the table had: %s; resumed to success\n",
                prop.c_str(), value.c_str(), left.c_str());
    ++g;
  }
}

// Barbican unreachable when the daemon restarts mid-rekey: the resumed job fails with
// 65539801 and leaves both keys (every VDEK opens under one the table holds); once
// Barbican is back a rerun completes the rotation. "Down" is the configuration pointed
// at a port nobody listens on (the shared Keystone/Barbican keep serving other tests).
TEST_F(KillLoopTest, RestartWhileBarbicanIsDownFailsWithItsCodeAndARerunSucceeds) {
  Prepare(2000);
  ASSERT_FALSE(HasFailure());
  auto [status, job] = km().RekeyInternalWithin(svm_.config_uuid, 0, 30s);
  ASSERT_EQ(status, 202u);
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline &&
         km().GetJob(job).at("volumes_done").get<uint64_t>() == 0) {
    std::this_thread::sleep_for(1ms);
  }
  daemon().Kill9();
  TableFile t(daemon().table_path());
  ASSERT_EQ(t.QueryText("SELECT state FROM jobs WHERE uuid=?1", {job}), "running");
  const auto url =
      t.QueryText("SELECT keystone_url FROM barbican_configs WHERE uuid=?1", {svm_.config_uuid});
  ASSERT_TRUE(url.has_value());
  // A port that was free a moment ago: connections are refused.
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(s);
  const std::string dead = "https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/v3";
  ASSERT_TRUE(t.Exec("UPDATE barbican_configs SET keystone_url=?1 WHERE uuid=?2",
                     {dead, svm_.config_uuid}));

  StartDaemonAgain();
  const VariantMap failed = WaitJob(job, 300s);
  EXPECT_EQ(State(failed), "failure") << Message(failed);
  EXPECT_EQ(Code(failed), 65539801u) << Message(failed);
  // The failure is recorded like any after phase 3: both keys kept, the key store back
  // to active (not left in svm_kek_rekey, which would refuse every rerun with 8).
  EXPECT_EQ(t.QueryText("SELECT state FROM key_stores WHERE uuid=?1", {svm_.config_uuid}),
            "active");
  EXPECT_EQ(
      t.QueryText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=2", {svm_.svm_uuid}),
      "pending");
  // Nothing lost meanwhile: each volume opens under generation 1 or the pending 2.
  std::string e1, e2;
  const auto g1 = integration::FingerprintVolumes(daemon().table_path(), svm_.svm_uuid, 1, 1,
                                                  svm_.key.key_file, fp_key_, &e1);
  const auto g2 = integration::FingerprintVolumes(daemon().table_path(), svm_.svm_uuid, 2, 2,
                                                  svm_.key.key_file, fp_key_, &e2);
  ASSERT_EQ(e1 + e2, "");
  size_t lost = 0, moved = 0;
  for (size_t i = 0; i < before_.uuids.size(); ++i) {
    const bool ok1 = g1.codes[i] == 0 && g1.fingerprints[i] == before_.fingerprints[i];
    const bool ok2 = g2.codes[i] == 0 && g2.fingerprints[i] == before_.fingerprints[i];
    lost += !ok1 && !ok2;
    moved += ok2;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_GT(moved, 0u);
  EXPECT_LT(moved, before_.uuids.size());

  // Barbican is back (for this configuration): a rerun completes the rotation. svmkeyd
  // keeps the configurations it has read in memory (the table is its own), so the URL is
  // put back while it is stopped.
  ASSERT_EQ(daemon().Stop(SIGTERM), 0) << DaemonLog();
  ASSERT_TRUE(t.Exec("UPDATE barbican_configs SET keystone_url=?1 WHERE uuid=?2",
                     {*url, svm_.config_uuid}));
  StartDaemonAgain();
  auto [status2, job2] = km().RekeyInternalWithin(svm_.config_uuid, 120, 300s);
  EXPECT_EQ(status2, 201u);
  EXPECT_EQ(State(km().GetJob(job2)), "success");
  EXPECT_EQ(Invariant(2), "") << DaemonLog();
}

}  // namespace
}  // namespace svmkey::reliability
