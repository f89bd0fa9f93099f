// Scenario 5: the systemd contract without a running systemd.
// - `systemd-analyze verify --man=no` of the configured unit has empty stderr (ExecStart
//   rewritten to the built binary, which must exist); a broken copy is caught.
// - `systemd-analyze security --offline=true` scores the unit ≤ 2.0.
// - sd_notify through a NOTIFY_SOCKET the test owns: READY=1 only once the bus name is
//   owned (a call right after it works), STATUS=, WATCHDOG=1 at WATCHDOG_USEC/2,
//   STOPPING=1 and exit 0 on SIGTERM.
// - `meson install` puts the unit, the bus policy and the activation file in place.
#include <filesystem>
#include <regex>
#include <thread>

#include "tests/integration/local_fixture.h"

namespace svmkey::integration {
namespace {

// The configured unit with ExecStart pointing at the built svmkeyd, written to `dir`.
std::string UnitCopy(const std::string& dir, const std::string& edit_from = "",
                     const std::string& edit_to = "") {
  std::string unit = ReadFile(SVMKEYD_UNIT_PATH);
  EXPECT_FALSE(unit.empty()) << SVMKEYD_UNIT_PATH << " is missing";
  unit = std::regex_replace(unit, std::regex("ExecStart=[^ \n]*svmkeyd"),
                            "ExecStart=" + SvmkeydPath());
  if (!edit_from.empty()) {
    const size_t p = unit.find(edit_from);
    EXPECT_NE(p, std::string::npos) << edit_from;
    if (p != std::string::npos) unit.replace(p, edit_from.size(), edit_to);
  }
  const std::string path = dir + "/svmkeyd.service";
  WriteFile(path, unit, 0644);
  return path;
}

TEST(SystemdUnitTest, VerifyHasEmptyStderr) {
  TempDir dir;
  const std::string unit = UnitCopy(dir.path());
  EXPECT_NE(ReadFile(unit).find("ExecStart=" + SvmkeydPath() + " --state-dir="), std::string::npos);
  auto r = Sh("systemd-analyze verify --man=no " + Quote(unit));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "") << "systemd-analyze verify complained";
  EXPECT_EQ(r.out, "");
  // The check has teeth: a misspelt value and an unknown key leave rc 0 but show on stderr.
  TempDir bad;
  const std::string broken =
      UnitCopy(bad.path(), "ProtectSystem=strict", "ProtectSystem=strickt\nLockPersonalty=yes");
  r = Sh("systemd-analyze verify --man=no " + Quote(broken));
  EXPECT_NE(r.err.find("strickt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("LockPersonalty"), std::string::npos) << r.err;
}

TEST(SystemdUnitTest, SecurityExposureAtMostTwo) {
  TempDir dir;
  const std::string unit = UnitCopy(dir.path());
  auto r = Sh("systemd-analyze security --offline=true --no-pager " + Quote(unit));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      r.out, m, std::regex("Overall exposure level for svmkeyd\\.service: ([0-9]+\\.[0-9])")))
      << r.out << r.err;
  const double score = std::stod(m[1]);
  std::printf("[systemd] systemd-analyze security --offline=true: %.1f\n", score);
  EXPECT_LE(score, 2.0) << r.out;
  // The same bound as systemd-analyze's own threshold (0-100 scale).
  r = Sh("systemd-analyze security --offline=true --no-pager --threshold=20 " + Quote(unit));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

TEST(SystemdUnitTest, UnitHasTheContractSettings) {
  const std::string unit = ReadFile(SVMKEYD_UNIT_PATH);
  for (const char* line :
       {"Type=notify\n", "BusName=org.svmkey.KeyManager1\n", "NotifyAccess=main\n",
        "StateDirectory=svmkey\n", "ProtectSystem=strict\n", "NoNewPrivileges=yes\n",
        "MemoryDenyWriteExecute=yes\n", "SystemCallFilter=@system-service\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << "missing " << line;
  }
  EXPECT_NE(unit.find("WatchdogSec="), std::string::npos);
  EXPECT_NE(unit.find("LimitMEMLOCK="), std::string::npos);
}

class NotifyTest : public LocalDaemonTest {
 protected:
  DaemonOptions Options() override {
    DaemonOptions o;
    o.extra_env = {"WATCHDOG_USEC=200000"};
    return o;
  }
};

TEST_F(NotifyTest, ReadyStatusWatchdogStopping) {
  // SetUp returned on READY=1: the name must be owned already, and a call must work.
  auto r = Busctl(address(),
                  "call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus "
                  "NameHasOwner s org.svmkey.KeyManager1");
  EXPECT_EQ(r.out, "b true\n") << r.err;
  EXPECT_EQ(km().Version(), "0.1.0");
  const auto msgs = daemon().notify().Messages();
  ASSERT_FALSE(msgs.empty());
  std::string ready;
  for (const auto& m : msgs) {
    if (m.find("READY=1") != std::string::npos) ready = m;
  }
  EXPECT_NE(ready.find("STATUS="), std::string::npos) << "READY=1 without STATUS=: " << ready;
  // The first STATUS= comes before READY (table being opened).
  EXPECT_NE(msgs.front().find("STATUS="), std::string::npos) << msgs.front();
  // Watchdog pings at about WATCHDOG_USEC/2 = 100 ms: several within a second.
  std::this_thread::sleep_for(1s);
  int pings = 0;
  for (const auto& m : daemon().notify().Messages())
    pings += m.find("WATCHDOG=1") != std::string::npos;
  EXPECT_GE(pings, 4) << "too few WATCHDOG=1 in a second";
  EXPECT_LE(pings, 30);
  // SIGTERM: STOPPING=1 and exit 0.
  km_.reset();
  EXPECT_EQ(daemon().Stop(SIGTERM), 0);
  EXPECT_TRUE(daemon().notify().WaitFor("STOPPING=1", 2s));
}

TEST_F(NotifyTest, ReadyOnlyAfterTheNameIsOwnedEveryTime) {
  // Restart a few times and call at the very moment READY=1 arrives.
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    km_.reset();
    ASSERT_EQ(daemon().Stop(SIGTERM), 0);
    ASSERT_TRUE(daemon().Start()) << DaemonLog();
    km_ = std::make_unique<KeyManagerProxy>(*conn_);
    EXPECT_NO_THROW(EXPECT_TRUE(km().ListSvms({}).empty()));
  }
  // Without WATCHDOG_USEC there is no watchdog ping, and no NOTIFY_SOCKET is harmless.
  km_.reset();
  ASSERT_EQ(daemon().Stop(SIGTERM), 0);
  daemon().options().extra_env = {};
  ASSERT_TRUE(daemon().Start());
  std::this_thread::sleep_for(500ms);
  for (const auto& m : daemon().notify().Messages())
    EXPECT_EQ(m.find("WATCHDOG=1"), std::string::npos);
}

TEST(SystemdInstallTest, MesonInstallPlacesUnitPolicyAndActivation) {
  TempDir dest;
  auto r = Sh("meson install --no-rebuild --quiet -C " + Quote(BuildRoot()) + " --destdir " +
                  Quote(dest.path()),
              300s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::string unit, policy, activation, binary;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dest.path())) {
    const std::string p = e.path().string();
    if (p.ends_with("/lib/systemd/system/svmkeyd.service")) unit = p;
    if (p.ends_with("/share/dbus-1/system.d/org.svmkey.KeyManager1.conf")) policy = p;
    if (p.ends_with("/share/dbus-1/system-services/org.svmkey.KeyManager1.service")) activation = p;
    if (p.ends_with("/sbin/svmkeyd")) binary = p;
  }
  EXPECT_FALSE(unit.empty()) << "no unit installed";
  EXPECT_FALSE(policy.empty()) << "no bus policy installed";
  ASSERT_FALSE(activation.empty()) << "no activation file installed";
  EXPECT_FALSE(binary.empty()) << "no svmkeyd installed";
  const std::string act = ReadFile(activation);
  EXPECT_NE(act.find("Name=org.svmkey.KeyManager1\n"), std::string::npos) << act;
  EXPECT_NE(act.find("SystemdService=svmkeyd.service\n"), std::string::npos) << act;
  EXPECT_NE(act.find("User=root\n"), std::string::npos) << act;
  // Exec= and the unit's ExecStart= name the same installed binary.
  std::smatch m;
  const std::string u = ReadFile(unit);
  ASSERT_TRUE(std::regex_search(u, m, std::regex("ExecStart=([^ \n]+)")));
  EXPECT_NE(act.find("Exec=" + m[1].str() + "\n"), std::string::npos) << act << " vs " << m[1];
  EXPECT_TRUE(binary.ends_with(m[1].str())) << binary << " vs " << m[1];
  EXPECT_EQ(ReadFile(policy), ReadFile(SourceRoot() + "/ipc/org.svmkey.KeyManager1.conf"));
}

}  // namespace
}  // namespace svmkey::integration
