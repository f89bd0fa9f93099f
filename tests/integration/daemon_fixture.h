// DaemonTest: a gtest fixture with its own private bus, svmkeyd and proxy (harness.h),
// plus helpers that set up an SVM with a Barbican configuration on the shared real
// Keystone + Barbican (tests/daemon/barbican/kms_environment.h).
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace svmkey::integration {

// A Barbican secret and application credential a test may use (and destroy).
struct KmsKey {
  std::string key_id;    // secret ref (https URL)
  std::string key_file;  // its 32 bytes
};
struct KmsCredential {
  std::string id;
  std::string secret;
};

// What SetUpSvm made.
struct SvmSetup {
  std::string svm_uuid;
  std::string svm_name;
  std::string config_uuid;
  KmsKey key;
  KmsCredential credential;
};

struct SvmSetupOptions {
  bool own_secret = false;      // a fresh Barbican secret (barbican-admin secret-new)
  bool own_credential = false;  // a fresh application credential
  bool enable = true;
  int volumes = 0;  // CreateVolume calls
};

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Override to change the daemon's options before it starts.
  virtual DaemonOptions Options() { return {}; }
  // Extra bus policy (a test-only include) for this fixture.
  virtual std::string ExtraPolicy() { return ""; }

  const std::string& address() const { return bus_->address(); }
  KeyManagerProxy& km() { return *km_; }
  sdbus::IConnection& connection() { return *conn_; }
  Daemon& daemon() { return *daemon_; }
  TempDir& dir() { return *dir_; }

  // Restarts svmkeyd (after a Stop/Kill9) and waits for READY=1.
  void StartDaemonAgain();

  // KMS (shared services; see kms_environment.h).
  static std::string KmsVar(const std::string& key);
  KmsKey NewSecret();
  void DeleteSecret(const KmsKey& key);
  KmsCredential NewCredential();
  void DeleteCredential(const KmsCredential& cred);
  // A 0600 file with the secret (root-owned), for busctl's `h` redirections.
  std::string SecretFile(const std::string& secret);
  // The read end of a pipe holding the secret, for application_cred_secret_fd (h).
  static sdbus::UnixFd SecretFd(const std::string& secret);
  // `path` opened for reading (h), e.g. kek_fd; its contents as bytes (ay), e.g. ca_pem.
  static sdbus::UnixFd OpenFd(const std::string& path);
  static std::vector<uint8_t> FileBytes(const std::string& path);

  SvmSetup SetUpSvm(const std::string& name, const SvmSetupOptions& options = {});
  std::string CreateVolume(const std::string& svm, const std::string& name,
                           const VariantMap& options = {});

  // svmkey-volset create; returns the set's directory (DIR/volset.manifest, DIR/kek.bin).
  std::string MakeVolumeSet(const std::string& svm_uuid, uint64_t count);
  uint64_t RegisterVolumeSet(const std::string& svm, const std::string& set_dir);

  // GetJob until the state is terminal (or the timeout); returns the last map.
  VariantMap WaitJob(const std::string& job, std::chrono::seconds timeout = 300s);
  static std::string State(const VariantMap& job);
  static uint32_t Code(const VariantMap& job);
  static std::string Message(const VariantMap& job);

  // Fails the test with the daemon's log attached.
  std::string DaemonLog() { return "\n--- svmkeyd log ---\n" + daemon_->LogTail(); }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<PrivateBus> bus_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<sdbus::IConnection> conn_;
  std::unique_ptr<KeyManagerProxy> km_;
  bool expect_clean_exit_ = true;  // TearDown: SIGTERM → exit 0
};

// Reads wrapped SVM-KEKs from the table file and opens them with a Barbican key file
// (the engine test peer), then fingerprints every volume's VDEK (engine VerifyVolumes).
struct VolumeFingerprints {
  std::vector<std::string> uuids;                     // in table order
  std::vector<std::array<uint8_t, 16>> fingerprints;  // per volume
  std::vector<uint64_t> generations;                  // slot generation that opened
  std::vector<uint32_t> codes;                        // 0 = opened
  size_t opened = 0;
};
// Opens every volume of `svm` recorded in `table_path` with the SVM-KEK of `generation`
// (unwrapped from its table row with the Barbican key in `kek_file`), labelled as
// generation `as_generation` in the key ring (normally the same; a different label
// proves a slot does NOT open under that key). `fingerprint_key` is 32 bytes.
VolumeFingerprints FingerprintVolumes(const std::string& table_path, const std::string& svm,
                                      uint64_t generation, uint64_t as_generation,
                                      const std::string& kek_file,
                                      const std::array<uint8_t, 32>& fingerprint_key,
                                      std::string* error);

}  // namespace svmkey::integration
