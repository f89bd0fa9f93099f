// A read flood from members (issue 14, point 8): 4 connections call ListSvms,
// ListVolumes (1,000 rows a page) and GetJob for 60 s, 8 calls in flight each. The loop handles a
// bounded number of bus messages per turn (daemon/core/event_loop.h), so meanwhile
// - no gap between WATCHDOG=1 pings exceeds the ping period (WATCHDOG_USEC/2) + 1 s, and
// - a call answered by a posted reply (CreateSvm: control worker, then a task posted to
//   the loop) answers within 1 s.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/local_fixture.h"

namespace svmkey::integration {
namespace {

using sdbus::Variant;
using Clock = std::chrono::steady_clock;

constexpr auto kPingPeriod = 1s;  // WATCHDOG_USEC/2
constexpr auto kFlood = 60s;

class ReadFloodTest : public LocalDaemonTest {
 protected:
  DaemonOptions Options() override {
    DaemonOptions o;
    o.extra_env = {"WATCHDOG_USEC=" + std::to_string(2 * kPingPeriod / 1us)};
    return o;
  }
};

TEST_F(ReadFloodTest, WatchdogAndPostedRepliesKeepTheirPaceDuringAFlood) {
  const std::string svm = km().CreateSvm("flood", {});
  {
    TableFile table(daemon().table_path());
    ASSERT_TRUE(table.ok()) << table.error();
    ASSERT_TRUE(
        table.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
                   "INSERT INTO volumes (uuid, svm_uuid, name, dsid, metadata_path, generation) "
                   "SELECT printf('%08x-0000-4000-8000-%012x', i, i), ?, printf('vol%05d', i), i, "
                   "printf('/srv/volumes/%d.meta', i), 1 FROM n",
                   {svm}))
        << table.error();
  }

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> failures{0};
  std::vector<std::thread> flooders;
  for (int t = 0; t < 4; ++t) {
    flooders.emplace_back([&, t] {
      // Pipelined: up to kWindow calls in flight per connection, so the daemon's queue
      // never runs dry (synchronous callers leave it empty between their calls).
      constexpr int kWindow = 8;
      auto conn = sdbus::createSessionBusConnectionWithAddress(address());
      conn->enterEventLoopAsync();
      auto proxy = sdbus::createProxy(*conn, kBusName, kManagerPath);
      std::atomic<int> in_flight{0};
      const VariantMap none;
      const VariantMap page{{"limit", Variant(uint32_t{1000})}};
      auto done = [&](const sdbus::Error* e) {
        // GetJob of an unknown job is 4; anything else is a failure.
        if (e != nullptr && e->getName() != "org.svmkey.Error.EntryNotFound") ++failures;
        ++calls;
        --in_flight;
      };
      for (uint64_t i = t; !stop.load(); ++i) {
        if (in_flight.load() >= kWindow) {
          std::this_thread::sleep_for(1ms);
          continue;
        }
        ++in_flight;
        switch (i % 3) {
          case 0:
            proxy->callMethodAsync("ListSvms")
                .onInterface(kManagerInterface)
                .withArguments(none)
                .uponReplyInvoke([&](const sdbus::Error* e, std::vector<VariantMap>) { done(e); });
            break;
          case 1:
            proxy->callMethodAsync("ListVolumes")
                .onInterface(kManagerInterface)
                .withArguments(svm, page)
                .uponReplyInvoke([&](const sdbus::Error* e, std::vector<VariantMap>) { done(e); });
            break;
          default:
            proxy->callMethodAsync("GetJob")
                .onInterface(kManagerInterface)
                .withArguments(std::string("00000000-0000-4000-8000-000000000001"))
                .uponReplyInvoke([&](const sdbus::Error* e, VariantMap) { done(e); });
        }
      }
      for (int w = 0; w < 3000 && in_flight.load() > 0; ++w) std::this_thread::sleep_for(10ms);
      conn->leaveEventLoop();
    });
  }

  const auto start = Clock::now();
  std::vector<double> create_seconds;
  for (int i = 0; Clock::now() - start < kFlood; ++i) {
    std::this_thread::sleep_for(2s);
    const auto t0 = Clock::now();
    const BusError e = CatchBusError([&] { km().CreateSvm("posted" + std::to_string(i), {}); });
    create_seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    EXPECT_TRUE(e.name.empty()) << e.name << ": " << e.message;
  }
  const auto end = Clock::now();
  stop = true;
  for (auto& t : flooders) t.join();

  EXPECT_EQ(failures.load(), 0u);
  EXPECT_GT(calls.load(), 1000u) << "the flood did not happen";
  for (size_t i = 0; i < create_seconds.size(); ++i) {
    EXPECT_LT(create_seconds[i], 1.0) << "CreateSvm " << i << " waited behind the flood";
  }
  // Every ping gap that overlaps the flood.
  const auto pings = daemon().notify().ArrivalsOf("WATCHDOG=1");
  size_t gaps = 0;
  double worst = 0;
  for (size_t i = 1; i < pings.size(); ++i) {
    if (pings[i] < start || pings[i - 1] > end) continue;
    ++gaps;
    worst = std::max(worst, std::chrono::duration<double>(pings[i] - pings[i - 1]).count());
  }
  EXPECT_GE(gaps, 25u) << "too few watchdog pings during the flood";
  EXPECT_LE(worst, std::chrono::duration<double>(kPingPeriod + 1s).count())
      << "a watchdog ping waited behind the flood";
  std::printf("read flood: %llu calls in %.0f s, worst ping gap %.3f s\n",
              static_cast<unsigned long long>(calls.load()),
              std::chrono::duration<double>(end - start).count(), worst);
}

}  // namespace
}  // namespace svmkey::integration
