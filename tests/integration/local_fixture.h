// LocalDaemonTest: a private bus and svmkeyd, without Keystone/Barbican (for policy,
// credential, argument and systemd tests). The test users and group svmkey are made
// before the bus starts, because dbus-daemon resolves group names when it loads.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "tests/integration/harness.h"

namespace svmkey::integration {

class LocalDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    users_ = EnsureTestUsers();
    ASSERT_TRUE(users_.error.empty()) << users_.error;
    dir_ = std::make_unique<TempDir>("svmkey-it");
    ASSERT_FALSE(dir_->path().empty());
    bus_ = std::make_unique<PrivateBus>(dir_->path(), ExtraPolicy());
    ASSERT_TRUE(bus_->ok()) << bus_->error();
    daemon_ = std::make_unique<Daemon>(*bus_, dir_->path(), Options());
    if (!StartDaemonInSetUp()) return;
    ASSERT_TRUE(daemon_->Start()) << "svmkeyd did not report READY=1\n" << daemon_->LogTail();
    Connect();
  }
  void TearDown() override {
    km_.reset();
    if (conn_) conn_->leaveEventLoop();
    conn_.reset();
    if (daemon_ && daemon_->running()) {
      EXPECT_EQ(daemon_->Stop(SIGTERM), 0) << "svmkeyd did not exit 0 on SIGTERM";
    }
    if (HasFailure() && daemon_) {
      std::fprintf(stderr, "--- svmkeyd log ---\n%s\n--- dbus-daemon log ---\n%s\n",
                   daemon_->LogTail().c_str(), bus_->log().c_str());
    }
    daemon_.reset();
    bus_.reset();
    dir_.reset();
  }
  void Connect() {
    conn_ = sdbus::createSessionBusConnectionWithAddress(bus_->address());
    conn_->enterEventLoopAsync();
    km_ = std::make_unique<KeyManagerProxy>(*conn_);
  }
  virtual DaemonOptions Options() { return {}; }
  virtual std::string ExtraPolicy() { return ""; }
  virtual bool StartDaemonInSetUp() { return true; }

  const std::string& address() const { return bus_->address(); }
  KeyManagerProxy& km() { return *km_; }
  Daemon& daemon() { return *daemon_; }
  std::string DaemonLog() { return "\n--- svmkeyd log ---\n" + daemon_->LogTail(); }

  TestUsers users_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<PrivateBus> bus_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<sdbus::IConnection> conn_;
  std::unique_ptr<KeyManagerProxy> km_;
};

inline std::string ErrorName(const char* short_name) {
  return std::string("org.svmkey.Error.") + short_name;
}

inline ::testing::AssertionResult IsSvmkeyError(const BusError& e, const char* name,
                                                uint32_t code) {
  const std::string prefix = std::to_string(code) + ": ";
  if (e.name != ErrorName(name) || e.message.rfind(prefix, 0) != 0) {
    return ::testing::AssertionFailure()
           << "expected " << ErrorName(name) << " \"" << prefix << "...\", got " << e.name << " \""
           << e.message.substr(0, 300) << "\"";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace svmkey::integration
