// Issue 14, point 5: a lost bus connection does not end svmkeyd. The private
// dbus-daemon is killed (every connection drops) and restarted on the same socket in the
// middle of a throttled rekey-internal: the same svmkeyd process reconnects, owns
// org.svmkey.KeyManager1 again, republishes the job's Job1 object, and the job, which
// never depended on the bus, goes on to success.
#include <thread>

#include "ipc/bus_names.h"
#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

class BusReconnectTest : public DaemonTest {
 protected:
  DaemonOptions Options() override {
    // 2,000 volumes in batches of 16 with a 100 ms pause: several seconds of rewrap.
    DaemonOptions o = DaemonOptions::ThrottledRewrap(16, 100);
    // The socket without the bus's guid, so the address stays valid for the new bus.
    o.extra_env = {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_->socket_address()};
    return o;
  }
  // The test's own connection dies with the bus; its event-loop thread must be gone
  // before the bus is.
  void Disconnect() {
    km_.reset();
    if (conn_) conn_->leaveEventLoop();
    conn_.reset();
  }
  void ConnectAgain() {
    conn_ = sdbus::createSessionBusConnectionWithAddress(bus_->socket_address());
    conn_->enterEventLoopAsync();
    km_ = std::make_unique<KeyManagerProxy>(*conn_);
  }
};

TEST_F(BusReconnectTest, TheDaemonSurvivesTheBusRestartingMidRekey) {
  const SvmSetup s = SetUpSvm("recon");
  const std::string set = MakeVolumeSet(s.svm_uuid, 2000);
  ASSERT_EQ(RegisterVolumeSet("recon", set), 2000u);
  auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 0, 60s);
  ASSERT_EQ(status, 202u);
  // Into the rewrap phase.
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  VariantMap j;
  for (;;) {
    j = km().GetJob(job);
    if (j.at("volumes_done").get<uint64_t>() > 0 || State(j) == "success" ||
        State(j) == "failure") {
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << DaemonLog();
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(State(j), "running") << "the rekey ended before the bus could be restarted";
  const pid_t pid = daemon().pid();

  Disconnect();
  ASSERT_TRUE(bus_->Restart()) << bus_->error();
  ConnectAgain();
  // The same process answers again on the new bus.
  bool answered = false;
  const auto back_by = std::chrono::steady_clock::now() + 30s;
  while (!answered && std::chrono::steady_clock::now() < back_by) {
    answered = CatchBusError([&] { j = km().GetJob(job); }).name.empty();
    if (!answered) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(answered) << "svmkeyd did not come back on the new bus" << DaemonLog();
  EXPECT_TRUE(daemon().running());
  EXPECT_EQ(daemon().pid(), pid);
  j = WaitJob(job);
  EXPECT_EQ(State(j), "success") << Message(j) << DaemonLog();
  EXPECT_EQ(j.at("volumes_done").get<uint64_t>(), 2000u);
  // The Job1 object is published on the new connection.
  const auto r =
      Busctl(bus_->socket_address(), "get-property org.svmkey.KeyManager1 " +
                                         ipc::JobObjectPath(job) + " org.svmkey.Job1 State");
  EXPECT_EQ(r.out, "s \"success\"\n") << r.err;
  EXPECT_NE(daemon().log().find("reconnected to the bus"), std::string::npos) << DaemonLog();
}

}  // namespace
}  // namespace svmkey::integration
