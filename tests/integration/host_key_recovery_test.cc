// The host key (daemon/table/host_key.h) lost from disk: after a restart the daemon has
// a new key and the sealed application credential no longer opens. Every call that needs
// it says so, and naming the way out; re-entering the credential with
// UpdateBarbicanCredentials seals it under the new key, and reachability, volume
// creation and rekey work again.
#include <filesystem>
#include <string>

#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

class HostKeyRecoveryTest : public DaemonTest {};

constexpr char kLostKeyMessage[] =
    "stored credential cannot be unsealed: the host key changed or was lost; re-enter it "
    "with UpdateBarbicanCredentials";

TEST_F(HostKeyRecoveryTest, ReenteringTheCredentialRecoversALostHostKey) {
  const SvmSetup s = SetUpSvm("vs1", {.volumes = 2});
  const std::string host_key = daemon().state_dir() + "/host.key";
  const std::string old_key = ReadFile(host_key);
  ASSERT_EQ(old_key.size(), 32u);
  ASSERT_EQ(daemon().Stop(SIGTERM), 0) << DaemonLog();
  ASSERT_TRUE(std::filesystem::remove(host_key));
  StartDaemonAgain();
  ASSERT_NE(ReadFile(host_key), old_key) << "no new host key was made";

  VariantMap check;
  check["reachability"] = sdbus::Variant(true);
  VariantMap config = km().GetBarbicanConfig(s.config_uuid, check);
  EXPECT_FALSE(config.at("barbican_reachability_reachable").get<bool>());
  EXPECT_NE(config.at("barbican_reachability_message").get<std::string>().find(kLostKeyMessage),
            std::string::npos)
      << config.at("barbican_reachability_message").get<std::string>();
  try {
    CreateVolume("vs1", "after-loss");
    ADD_FAILURE() << "a volume was created without the Barbican credential";
  } catch (const sdbus::Error& e) {
    EXPECT_NE(e.getMessage().find(kLostKeyMessage), std::string::npos) << e.getMessage();
  }

  VariantMap credentials;
  credentials["application_cred_id"] = sdbus::Variant(s.credential.id);
  credentials["application_cred_secret_fd"] = sdbus::Variant(SecretFd(s.credential.secret));
  km().UpdateBarbicanCredentials(s.config_uuid, credentials);

  config = km().GetBarbicanConfig(s.config_uuid, check);
  EXPECT_TRUE(config.at("barbican_reachability_reachable").get<bool>())
      << config.at("barbican_reachability_message").get<std::string>();
  EXPECT_FALSE(CreateVolume("vs1", "after-recovery").empty());
  auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 120, 180s);
  EXPECT_EQ(status, 201u) << DaemonLog();
  EXPECT_EQ(State(km().GetJob(job)), "success") << Message(km().GetJob(job));
  // And it survives another restart: the credential is sealed under the key on disk.
  ASSERT_EQ(daemon().Stop(SIGTERM), 0) << DaemonLog();
  StartDaemonAgain();
  config = km().GetBarbicanConfig(s.config_uuid, check);
  EXPECT_TRUE(config.at("barbican_reachability_reachable").get<bool>());
}

}  // namespace
}  // namespace svmkey::integration
