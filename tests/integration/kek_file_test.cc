// RegisterVolumeSet's KEK, passed by a member of group svmkey against svmkeyd running as
// root: only as a descriptor the member opened (kek_fd); a path (kek_file) is refused with
// 262185 before anything is read, and the daemon removes no file it did not create: the
// set's kek.bin, a root-only file and the daemon's host key all still exist afterwards.
#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

class KekFileTest : public DaemonTest {
 protected:
  void SetUp() override {
    // Group svmkey must exist before the bus loads its policy and the daemon starts.
    users_ = EnsureTestUsers();
    ASSERT_TRUE(users_.error.empty()) << users_.error;
    DaemonTest::SetUp();
  }
  TestUsers users_;
};

TEST_F(KekFileTest, KekArrivesAsAnFdAndNoFileIsRemoved) {
  const SvmSetup s = SetUpSvm("vs1");
  const std::string set = MakeVolumeSet(s.svm_uuid, 10);
  const std::string kek = ReadFile(set + "/kek.bin");
  ASSERT_EQ(kek.size(), 32u);
  const std::string victim = dir().path() + "/root-only.key";
  WriteFile(victim, kek, 0600);
  const std::string host_key = daemon().state_dir() + "/host.key";
  const std::string host_key_bytes = ReadFile(host_key);
  ASSERT_FALSE(host_key_bytes.empty());
  // A path is refused before anything is read or imported.
  auto r = Gdbus(address(), "org.svmkey.KeyManager1.RegisterVolumeSet",
                 "vs1 " + Quote(set) + " " + Quote("{'kek_file': <'" + host_key + "'>}"),
                 kOperatorUser);
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_EQ(GdbusErrorName(r.err), "org.svmkey.Error.InvalidValue") << r.err;
  EXPECT_NE(r.err.find("'kek_file' is refused"), std::string::npos) << r.err;
  EXPECT_TRUE(km().ListVolumes("vs1", {}).empty()) << "a refused registration added volumes";

  // A descriptor of the set's kek.bin: imported; the file stays. (busctl of systemd 252
  // cannot pass an `h` argument, so the generated proxy passes it.)
  EXPECT_EQ(RegisterVolumeSet("vs1", set), 10u) << DaemonLog();
  EXPECT_EQ(km().ListVolumes("vs1", {}).size(), 10u);
  EXPECT_EQ(ReadFile(set + "/kek.bin"), kek) << "the daemon changed or removed the caller's kek.bin";
  EXPECT_EQ(ReadFile(victim), kek);
  EXPECT_EQ(ReadFile(host_key), host_key_bytes);
}

}  // namespace
}  // namespace svmkey::integration
