// The daemon's concurrency (issue 7; run under ThreadSanitizer by tools/check): parallel
// rekeys of different SVMs, bus calls from several clients during a rekey, and a restart
// (SIGTERM, then kill -9) while job retention pruning runs beside a resumed rekey. Each
// ends with the jobs in success and the key-hierarchy invariant of every SVM intact.
#include <sodium.h>

#include <atomic>
#include <thread>

#include "tests/integration/local_fixture.h"
#include "tests/reliability/reliability_util.h"

namespace svmkey::reliability {
namespace {

using namespace std::chrono_literals;
using integration::BusError;
using integration::CatchBusError;
using integration::DaemonOptions;
using integration::DaemonTest;
using integration::KeyManagerProxy;
using integration::SvmSetup;
using integration::TableFile;
using integration::VariantMap;

class ConcurrencyTest : public DaemonTest {
 protected:
  // A pause after every rewrap batch keeps a 15,000-volume rewrap phase over a second
  // long on any machine, so the clients below can watch it (without it a quiet host
  // finished before the first poll).
  DaemonOptions Options() override { return DaemonOptions::ThrottledRewrap(256, 20); }
  struct Svm {
    SvmSetup s;
    VolumeFingerprints before;
  };
  Svm MakeSvm(const std::string& name, uint64_t volumes) {
    Svm v;
    v.s = SetUpSvm(name);
    const std::string set = MakeVolumeSet(v.s.svm_uuid, volumes);
    EXPECT_EQ(RegisterVolumeSet(name, set), volumes);
    std::string error;
    v.before = integration::FingerprintVolumes(daemon().table_path(), v.s.svm_uuid, 1, 1,
                                               v.s.key.key_file, fp_key_, &error);
    EXPECT_EQ(error, "");
    EXPECT_EQ(v.before.opened, volumes);
    return v;
  }
  std::string Invariant(const Svm& v, uint64_t g) {
    return CheckInvariant(daemon().table_path(), v.s.svm_uuid, v.s.config_uuid, g, v.s.key.key_file,
                          v.before, fp_key_);
  }
  void SetUp() override {
    DaemonTest::SetUp();
    randombytes_buf(fp_key_.data(), fp_key_.size());
  }
  std::array<uint8_t, 32> fp_key_{};
};

TEST_F(ConcurrencyTest, ParallelRekeysOfDifferentSvms) {
  std::vector<Svm> svms;
  for (int i = 0; i < 3; ++i) svms.push_back(MakeSvm("par" + std::to_string(i), 3000));
  ASSERT_FALSE(HasFailure());
  std::vector<std::string> jobs;
  for (const Svm& v : svms) {
    auto [status, job] = km().RekeyInternalWithin(v.s.config_uuid, 0, 30s);
    EXPECT_EQ(status, 202u);
    jobs.push_back(job);
  }
  // One rekey per SVM at a time: a second request names the running job.
  const BusError busy = CatchBusError([&] { km().RekeyInternal(svms[0].s.config_uuid, 0, false); });
  const std::string state0 = State(km().GetJob(jobs[0]));
  if (state0 == "running") {
    EXPECT_EQ(busy.name, "org.svmkey.Error.ResourceInUse") << busy.message;
    EXPECT_NE(busy.message.find(jobs[0]), std::string::npos) << busy.message;
  }
  size_t running_together = 0;
  for (const auto& j : jobs) running_together += State(km().GetJob(j)) == "running";
  for (size_t i = 0; i < jobs.size(); ++i) {
    const VariantMap end = WaitJob(jobs[i], 600s);
    EXPECT_EQ(State(end), "success") << Message(end) << DaemonLog();
    EXPECT_EQ(Invariant(svms[i], 2), "");
  }
  std::printf(
      "[concurrency] 3 rekeys of 3000 volumes started together (%zu seen running at "
      "once): all success, every VDEK intact\n",
      running_together);
}

TEST_F(ConcurrencyTest, BusCallsFromSeveralClientsDuringARekey) {
  Svm big = MakeSvm("busy", 15000);
  SetUpSvm("other");
  ASSERT_FALSE(HasFailure());
  auto [status, job] = km().RekeyInternalWithin(big.s.config_uuid, 0, 30s);
  ASSERT_EQ(status, 202u);
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, read_errors{0}, creates{0}, refused{0}, wrong{0};
  std::vector<std::thread> clients;
  // Whatever leaves this scope (a failed assertion, an exception from a bus call) stops
  // and joins the clients first, so gtest reports the cause instead of std::terminate.
  struct JoinClients {
    std::atomic<bool>& stop;
    std::vector<std::thread>& clients;
    ~JoinClients() {
      stop = true;
      for (auto& c : clients) {
        if (c.joinable()) c.join();
      }
    }
  } join_clients{stop, clients};
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      // A client thread must not throw (that is std::terminate): anything unexpected is
      // counted as a wrong answer and reported by the test thread.
      try {
        auto conn = sdbus::createSessionBusConnectionWithAddress(address());
        conn->enterEventLoopAsync();
        {
          KeyManagerProxy k(*conn);
          for (int i = 0; !stop && i < 100000; ++i) {
            const BusError e = CatchBusError([&] {
              switch (i % 6) {
                case 0:
                  k.GetJob(job);
                  break;
                case 1:
                  k.ListJobs({});
                  break;
                case 2:
                  k.ListVolumes("busy", {});
                  break;
                case 3:
                  k.GetBarbicanConfig(big.s.config_uuid, {});
                  break;
                case 4:
                  k.ListSvms({});
                  break;
                case 5:
                  k.CreateVolume("other", "o" + std::to_string(t) + "-" + std::to_string(i), {});
                  break;
              }
            });
            if (i % 6 == 5) {
              ++creates;
              if (!e.name.empty()) ++wrong;
            } else {
              ++reads;
              if (!e.name.empty()) ++read_errors;
            }
            if (t == 0 && i % 6 == 0) {
              // New keys for the SVM being rekeyed are refused with 8 while it is in
              // svm_kek_rekey; before the pending key is stored or after the commit they are
              // made (and must then be at the new generation after the job).
              const BusError c =
                  CatchBusError([&] { k.CreateVolume("busy", "late" + std::to_string(i), {}); });
              if (!c.name.empty()) {
                ++refused;
                if (c.name != "org.svmkey.Error.ResourceInUse") ++wrong;
              }
            }
          }
        }
        conn->leaveEventLoop();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "client %d: %s\n", t, e.what());
        ++wrong;
      }
    });
  }
  // Mid-rewrap (the key store is in svm_kek_rekey), a new key for the SVM is refused
  // with 8; if the call got through, the rekey must have committed before it arrived.
  bool checked_mid_rewrap = false;
  for (int i = 0; i < 100000 && !checked_mid_rewrap; ++i) {
    const VariantMap j = km().GetJob(job);
    if (State(j) == "success" || State(j) == "failure") break;
    if (j.at("phase").get<std::string>() != "rewrap_volumes") continue;
    checked_mid_rewrap = true;
    const BusError e = CatchBusError([&] { km().CreateVolume("busy", "mid-rewrap", {}); });
    if (e.name.empty()) {
      EXPECT_EQ(State(km().GetJob(job)), "success") << "a key was made mid-rekey";
    } else {
      EXPECT_EQ(e.name, "org.svmkey.Error.ResourceInUse") << e.message;
      EXPECT_EQ(e.message.rfind("8: ", 0), 0u) << e.message;
    }
  }
  EXPECT_TRUE(checked_mid_rewrap) << "never saw the job in its rewrap phase";
  const VariantMap end = WaitJob(job, 600s);
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(State(end), "success") << Message(end) << DaemonLog();
  EXPECT_EQ(read_errors.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  // Every volume of both SVMs opens under the active key.
  auto [vs, vj] = km().VerifyVolumesWithin("busy", 120, 300s);
  EXPECT_EQ(vs, 201u);
  EXPECT_NE(Message(km().GetJob(vj)).find(" 0 failed"), std::string::npos);
  auto [os, oj] = km().VerifyVolumesWithin("other", 120, 300s);
  EXPECT_EQ(os, 201u);
  std::printf(
      "[concurrency] during one rekey of 15000 volumes: %d reads, %d creates on another "
      "SVM, %d creates refused with 8 on the rekeying SVM; 0 errors\n",
      reads.load(), creates.load(), refused.load());
}

TEST_F(ConcurrencyTest, RestartDuringRetentionPruningBesideAResumedRekey) {
  Svm big = MakeSvm("prune", 5000);
  SetUpSvm("jobs", {.volumes = 1});
  ASSERT_FALSE(HasFailure());
  // Finished jobs to prune.
  std::vector<std::string> old_jobs;
  for (int i = 0; i < 200; ++i) {
    auto [s, j] = km().VerifyVolumesWithin("jobs", 120, 60s);
    EXPECT_EQ(s, 201u);
    old_jobs.push_back(j);
  }
  // A rekey stopped midway (SIGTERM: resumable at the next start).
  auto [status, job] = km().RekeyInternalWithin(big.s.config_uuid, 0, 30s);
  ASSERT_EQ(status, 202u);
  while (km().GetJob(job).at("volumes_done").get<uint64_t>() == 0) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(daemon().Stop(SIGTERM), 0) << DaemonLog();
  // Retention 0: the start prunes every finished job while the resumed rekey runs.
  daemon().options().extra_args = {"--job-retention-hours=0"};
  StartDaemonAgain();
  std::this_thread::sleep_for(std::chrono::milliseconds(randombytes_uniform(200)));
  daemon().Kill9();
  StartDaemonAgain();
  const VariantMap end = WaitJob(job, 600s);
  EXPECT_EQ(State(end), "success") << Message(end) << DaemonLog();
  EXPECT_EQ(Invariant(big, 2), "");
  size_t gone = 0;
  for (const auto& j : old_jobs) {
    gone += CatchBusError([&] { km().GetJob(j); }).name == "org.svmkey.Error.EntryNotFound";
  }
  EXPECT_EQ(gone, old_jobs.size()) << "finished jobs past retention are still there";
  TableFile t(daemon().table_path());
  EXPECT_EQ(t.QueryText("PRAGMA integrity_check"), "ok");
  std::printf(
      "[concurrency] restart + kill -9 while pruning %zu jobs beside a resumed rekey: "
      "pruned, rekey success, integrity ok\n",
      old_jobs.size());
}

}  // namespace
}  // namespace svmkey::reliability
