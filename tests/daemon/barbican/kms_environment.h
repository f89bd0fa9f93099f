// KmsEnvironment: the real Keystone + Barbican that the 'integration' tests of this folder
// share, started once per test binary run.
//
// If SVMKEY_KMS_ENV names an env file written by tools/barbican-up, those services are
// used as they are (and left running). Otherwise tools/barbican-up is run (SKIP_INSTALL=1)
// into a fresh temporary directory on two free loopback ports, and tools/barbican-down
// stops it when the run ends; a watchdog shell stops it too if this process is killed.
// If the services cannot be had, every test that needs them fails (nothing is skipped).
//
// Thread safety: set up before the first test and torn down after the last (gtest's
// global environment); tests only read it.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "daemon/barbican/barbican_client.h"

namespace svmkey::barbican::testing {

class KmsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;

  // The one instance (registered at static initialization time).
  static KmsEnvironment& Get();

  bool ready() const { return ready_; }
  const std::string& error() const { return error_; }
  // A value from the env file; fails the current test if it is missing.
  std::string Var(const std::string& key) const;

  // A config for the shared application credential and key.
  BarbicanConfig Config() const;

  // Runs tools/barbican-admin STATE_DIR args... and returns its KEY=VALUE output.
  // Fails the current test on a non-zero exit.
  std::map<std::string, std::string> Admin(const std::vector<std::string>& args) const;

  // Path of a tool in the source tree's tools/ directory.
  static std::string ToolPath(const std::string& name);

 private:
  bool ready_ = false;
  bool started_here_ = false;
  std::string error_;
  std::string state_dir_;
  std::map<std::string, std::string> vars_;
};

// Reads KEY=VALUE lines (later keys win). Lines without '=' are ignored.
std::map<std::string, std::string> ParseKeyValues(const std::string& text);
// A TCP port on 127.0.0.1 that nothing listens on right now.
int FreeLoopbackPort();
// The bytes of a small file.
std::vector<uint8_t> ReadFileBytes(const std::string& path);

}  // namespace svmkey::barbican::testing
