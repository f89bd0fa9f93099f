// Job scheduling under load and faults (issue 14 item 8; docs/ARCHITECTURE.md §7):
//   - 100 rekey-internal requests for 100 SVMs at once: at most --max-running-jobs run,
//     the rest are `queued` (GetJob and the Job1 State), all succeed, and svmkeyd's peak
//     RSS (VmHWM) and thread count stay within the bound the documentation gives;
//   - --job-retention-count prunes the oldest finished jobs and their Job1 objects as
//     jobs end;
//   - another process holds the table's write lock (BEGIN EXCLUSIVE) past the busy
//     timeout mid-rekey: the job ends `failure` (not `running` with no thread), the SVM
//     takes new keys again, and a rerun adopts the pending key and succeeds, without a
//     restart.
#include <sodium.h>
#include <sqlite3.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <thread>

#include "ipc/bus_names.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/reliability/reliability_util.h"

namespace svmkey::reliability {
namespace {

using namespace std::chrono_literals;
using integration::BusError;
using integration::CatchBusError;
using integration::DaemonOptions;
using integration::DaemonTest;
using integration::JobProxy;
using integration::SvmSetup;
using integration::VariantMap;

// A field of /proc/<pid>/status in kB (VmHWM, VmRSS) or as a count (Threads).
uint64_t ProcStatus(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}

class JobSchedTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    randombytes_buf(fp_key_.data(), fp_key_.size());
  }
  std::map<std::string, std::string> JobStates() {
    std::map<std::string, std::string> out;
    for (const VariantMap& j : km().ListJobs({{"limit", sdbus::Variant(uint32_t{1000})}})) {
      out[j.at("uuid").get<std::string>()] = State(j);
    }
    return out;
  }
  std::array<uint8_t, 32> fp_key_{};
};

// The defaults svmkeyd documents (--max-running-jobs 4, --batch-size 2048,
// --rewrap-threads 2), with a pause after each batch so every job lasts long enough for
// the queue to be seen on any machine.
class JobLoadTest : public JobSchedTest {
 protected:
  DaemonOptions Options() override {
    DaemonOptions o;
    o.extra_args = {"--rewrap-pause-ms=300"};
    return o;
  }
};

// docs/ARCHITECTURE.md §7: peak RSS <= base + max_running x per job; threads <= base +
// max_running x (1 + rewrap_threads).
constexpr uint64_t kMaxRunning = 4;
constexpr uint64_t kPerJobKiB = 64 * 1024;
constexpr uint64_t kRewrapThreads = 2;

TEST_F(JobLoadTest, HundredRekeysOfHundredSvmsStayWithinTheDocumentedBounds) {
  constexpr int kSvms = 100;
  constexpr uint64_t kVolumes = 200;
  std::vector<SvmSetup> svms;
  for (int i = 0; i < kSvms; ++i) {
    svms.push_back(SetUpSvm("load" + std::to_string(i)));
    const std::string set = MakeVolumeSet(svms.back().svm_uuid, kVolumes);
    ASSERT_EQ(RegisterVolumeSet(svms.back().svm_name, set), kVolumes);
  }
  const pid_t pid = daemon().pid();
  // Reset the peak to the current RSS (proc(5) clear_refs "5"): the base is the daemon
  // before the rekeys, not the high-water mark of registering the volume sets.
  {
    std::ofstream clear("/proc/" + std::to_string(pid) + "/clear_refs");
    clear << "5";
  }
  const uint64_t base_kib = ProcStatus(pid, "VmHWM");
  const uint64_t base_threads = ProcStatus(pid, "Threads");
  ASSERT_GT(base_kib, 0u);

  std::vector<std::string> jobs;
  for (const SvmSetup& s : svms) {
    auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
    ASSERT_EQ(status, 202u);
    jobs.push_back(job);
  }
  // While they run: never more than the bound running; the rest queued, also on Job1.
  uint64_t max_running_seen = 0, max_threads = 0, queued_seen = 0;
  bool job1_queued = false;
  for (;;) {
    const auto states = JobStates();
    uint64_t running = 0, queued = 0, ended = 0;
    for (const auto& j : jobs) {
      const std::string& st = states.at(j);
      running += st == "running";
      queued += st == "queued";
      ended += st == "success" || st == "failure";
      if (st == "queued" && !job1_queued) {
        JobProxy job1(connection(), ipc::JobObjectPath(j));
        const std::string job1_state = job1.State();
        job1_queued = job1_state == "queued" || job1_state == "running";
        EXPECT_TRUE(job1_queued) << j << " is " << job1_state << " on Job1";
      }
    }
    max_running_seen = std::max(max_running_seen, running);
    queued_seen = std::max(queued_seen, queued);
    max_threads = std::max(max_threads, ProcStatus(pid, "Threads"));
    if (ended == jobs.size()) break;
    std::this_thread::sleep_for(100ms);
  }
  const uint64_t peak_kib = ProcStatus(pid, "VmHWM");
  EXPECT_LE(max_running_seen, kMaxRunning);
  EXPECT_GT(queued_seen, 0u) << "no job was ever seen queued";
  EXPECT_TRUE(job1_queued);
  EXPECT_LE(max_threads, base_threads + kMaxRunning * (1 + kRewrapThreads));
  EXPECT_LE(peak_kib, base_kib + kMaxRunning * kPerJobKiB)
      << "peak " << peak_kib << " KiB, before the rekeys " << base_kib << " KiB";
  for (const auto& j : jobs) {
    const VariantMap end = km().GetJob(j);
    EXPECT_EQ(State(end), "success") << j << ": " << Message(end) << DaemonLog();
  }
  std::printf(
      "[job-load] %d rekeys of %d x %llu volumes: at most %llu running, up to %llu queued, "
      "all success; VmHWM %llu KiB before, %llu KiB peak (+%llu KiB, %.1f MiB per running "
      "job); threads %llu before, %llu peak\n",
      kSvms, kSvms, static_cast<unsigned long long>(kVolumes),
      static_cast<unsigned long long>(max_running_seen),
      static_cast<unsigned long long>(queued_seen), static_cast<unsigned long long>(base_kib),
      static_cast<unsigned long long>(peak_kib),
      static_cast<unsigned long long>(peak_kib - base_kib),
      static_cast<double>(peak_kib - base_kib) / 1024.0 / static_cast<double>(kMaxRunning),
      static_cast<unsigned long long>(base_threads), static_cast<unsigned long long>(max_threads));
}

class JobRetentionTest : public JobSchedTest {
 protected:
  DaemonOptions Options() override {
    DaemonOptions o;
    o.extra_args = {"--job-retention-count=3"};
    return o;
  }
};

TEST_F(JobRetentionTest, TheOldestFinishedJobsArePrunedWithTheirObjectsAsJobsEnd) {
  SetUpSvm("keep", {.volumes = 3});
  std::vector<std::string> jobs;
  for (int i = 0; i < 5; ++i) {
    auto [status, job] = km().VerifyVolumesWithin("keep", 120, 120s);
    ASSERT_EQ(status, 201u);
    jobs.push_back(job);
  }
  // The newest three stay, the oldest two are gone from the table and the bus.
  const auto states = JobStates();
  EXPECT_EQ(states.size(), 3u);
  for (int i = 0; i < 5; ++i) {
    const BusError e = CatchBusError([&] { km().GetJob(jobs[i]); });
    const auto intro = integration::Busctl(
        address(), "introspect org.svmkey.KeyManager1 " + ipc::JobObjectPath(jobs[i]) +
                       " org.svmkey.Job1");
    if (i < 2) {
      EXPECT_EQ(e.name, "org.svmkey.Error.EntryNotFound") << jobs[i];
      EXPECT_NE(intro.status, 0) << jobs[i] << " still has a Job1 object";
    } else {
      EXPECT_EQ(e.name, "") << jobs[i] << ": " << e.message;
      EXPECT_EQ(intro.status, 0) << jobs[i] << ": " << intro.err;
    }
  }
}

// Rewrap batches of 20 with 500 ms pauses: 200 volumes keep the rewrap phase 5 s long.
class TableLockTest : public JobSchedTest {
 protected:
  DaemonOptions Options() override { return DaemonOptions::ThrottledRewrap(20, 500); }
};

TEST_F(TableLockTest, AJobWhoseEndTheTableRefusedEndsFailedAndARerunSucceeds) {
  const SvmSetup s = SetUpSvm("locked");
  const std::string set = MakeVolumeSet(s.svm_uuid, 200);
  ASSERT_EQ(RegisterVolumeSet("locked", set), 200u);
  std::string error;
  const auto before = integration::FingerprintVolumes(daemon().table_path(), s.svm_uuid, 1, 1,
                                                      s.key.key_file, fp_key_, &error);
  ASSERT_EQ(error, "");
  auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
  ASSERT_EQ(status, 202u);
  for (int i = 0; i < 3000; ++i) {
    const VariantMap j = km().GetJob(job);
    if (j.at("phase").get<std::string>() == "rewrap_volumes" &&
        j.at("volumes_done").get<uint64_t>() > 0) {
      break;
    }
    ASSERT_TRUE(State(j) == "queued" || State(j) == "running") << State(j) << Message(j);
    std::this_thread::sleep_for(10ms);
  }
  // Another process's exclusive transaction for 20 s: four busy timeouts (5 s) in a row,
  // so the body's batch write, its failure record and its job-end record all fail.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(daemon().table_path().c_str(), &other), SQLITE_OK);
  sqlite3_busy_timeout(other, 5000);  // BEGIN EXCLUSIVE waits for a write in progress
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::this_thread::sleep_for(20s);
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);

  const VariantMap end = WaitJob(job, 120s);
  EXPECT_EQ(State(end), "failure") << Message(end) << DaemonLog();
  EXPECT_NE(Code(end), 0u) << Message(end);
  EXPECT_NE(daemon().log().find("ended without recording its end"), std::string::npos)
      << DaemonLog();
  // No restart: the key store is active again (new keys are not refused with 8), and a
  // rerun adopts the pending key.
  EXPECT_EQ(km().GetBarbicanConfig(s.config_uuid, {}).at("state").get<std::string>(), "active");
  auto [rerun_status, rerun] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
  ASSERT_EQ(rerun_status, 202u);
  const VariantMap rerun_end = WaitJob(rerun, 300s);
  EXPECT_EQ(State(rerun_end), "success") << Message(rerun_end) << DaemonLog();
  EXPECT_NE(daemon().log().find("adopted pending SVM-KEK generation 2"), std::string::npos);
  EXPECT_EQ(CheckInvariant(daemon().table_path(), s.svm_uuid, s.config_uuid, 2, s.key.key_file,
                           before, fp_key_),
            "");
  const BusError create = CatchBusError([&] { CreateVolume("locked", "after-lock"); });
  EXPECT_EQ(create.name, "") << create.message;
}

}  // namespace
}  // namespace svmkey::reliability
