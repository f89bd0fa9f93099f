// Scenario 6: how long rekey-internal takes through the daemon (RekeyInternal call to
// the job's success as a client sees it) for 10^4 and 10^5 volumes, beside the
// engine-only rate that svmkey-bench measures for sets of the same size (io_uring, warm
// page cache). Prints the numbers; asserts only that every run succeeds.
#include <regex>
#include <sstream>
#include <thread>

#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// svmkey-bench's CSV → volumes/s of mode svmkey-uring, warm, per N.
std::map<uint64_t, double> EngineRates(const std::string& csv) {
  std::map<uint64_t, double> out;
  std::istringstream in(csv);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) f.push_back(cell);
    if (f.size() > 4 && f[0] == "svmkey-uring" && f[2] == "warm") {
      out[std::stoull(f[1])] = std::stod(f[4]);
    }
  }
  return out;
}

class RekeyTimingTest : public DaemonTest {};

TEST_F(RekeyTimingTest, ThroughTheDaemonVersusEngineOnly) {
  const std::vector<uint64_t> sizes = {10000, 100000};
  struct Row {
    uint64_t n;
    double create_s, register_s, rekey_s, job_s;
  };
  std::vector<Row> rows;
  for (uint64_t n : sizes) {
    const std::string name = "t" + std::to_string(n);
    const SvmSetup s = SetUpSvm(name);
    auto t0 = Clock::now();
    const std::string set = MakeVolumeSet(s.svm_uuid, n);
    const double create_s = Seconds(Clock::now() - t0);
    t0 = Clock::now();
    ASSERT_EQ(RegisterVolumeSet(name, set), n);
    const double register_s = Seconds(Clock::now() - t0);

    t0 = Clock::now();
    auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 0, 60s);
    ASSERT_EQ(status, 202u);
    VariantMap j;
    for (;;) {
      j = km().GetJob(job);
      if (State(j) == "success" || State(j) == "failure") break;
      ASSERT_LT(Seconds(Clock::now() - t0), 600.0) << "rekey of " << n << " volumes takes too long";
      std::this_thread::sleep_for(5ms);
    }
    const double rekey_s = Seconds(Clock::now() - t0);
    ASSERT_EQ(State(j), "success") << Message(j) << DaemonLog();
    ASSERT_EQ(j.at("volumes_done").get<uint64_t>(), n);
    const double job_s =
        static_cast<double>(j.at("end_time").get<int64_t>() - j.at("start_time").get<int64_t>()) /
        1e6;
    rows.push_back({n, create_s, register_s, rekey_s, job_s});
    std::printf(
        "[timing] N=%llu: volset create %.1f s, RegisterVolumeSet %.1f s, RekeyInternal -> "
        "success %.2f s (%.0f volumes/s; job start->end %.2f s)\n",
        static_cast<unsigned long long>(n), create_s, register_s, rekey_s, n / rekey_s, job_s);
    std::fflush(stdout);
    // Free the disk before the next (bigger) set.
    auto r = Sh("rm -rf " + Quote(set));
    EXPECT_EQ(r.status, 0);
  }
  // Engine only: svmkey-bench on sets of the same sizes (its own, made the same way).
  const std::string work = dir() / "bench";
  auto t0 = Clock::now();
  auto r = Sh(Quote(BenchPath()) + " --work-dir " + Quote(work) +
                  " --sizes 10000,100000 --reps 1 --modes svmkey-uring --cache warm --remove-sets",
              600s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const auto engine = EngineRates(ReadFile(work + "/bench.csv"));
  std::printf("[timing] svmkey-bench (%.0f s incl. set creation):\n%s\n",
              Seconds(Clock::now() - t0), r.out.c_str());
  std::printf("[timing] %-8s %14s %14s %16s %8s\n", "N", "daemon s", "daemon vol/s", "engine vol/s",
              "ratio");
  for (const Row& row : rows) {
    const double daemon_rate = row.n / row.rekey_s;
    const double engine_rate = engine.count(row.n) ? engine.at(row.n) : 0;
    EXPECT_GT(engine_rate, 0) << "no engine figure for N=" << row.n;
    std::printf("[timing] %-8llu %14.2f %14.0f %16.0f %8.2f\n",
                static_cast<unsigned long long>(row.n), row.rekey_s, daemon_rate, engine_rate,
                engine_rate > 0 ? daemon_rate / engine_rate : 0.0);
  }
  std::fflush(stdout);
}

}  // namespace
}  // namespace svmkey::integration
