// RegisterVolumeSet's KEK, passed by a member of group svmkey against svmkeyd running as
// root: only as a descriptor the member opened (kek_fd); a path (kek_file) is refused with
// 262185 before anything is read, and the daemon removes no file it did not create: the
// set's kek.bin, a root-only file and the daemon's host key all still exist afterwards.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

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
  // busctl as the operator: the shell opens `kek` as fd 3 and busctl passes it as `h`.
  CommandResult RegisterAsOperator(const std::string& set_dir, const std::string& kek) {
    return Busctl(address(),
                  "--timeout=120 call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 "
                  "org.svmkey.KeyManager1 RegisterVolumeSet 'ssa{sv}' vs1 " + Quote(set_dir) +
                      " 1 kek_fd h 3 3<" + Quote(kek),
                  kOperatorUser);
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

  // The member's descriptor of the set's kek.bin: imported; the file stays.
  ASSERT_EQ(::chown((set + "/kek.bin").c_str(), users_.operator_uid, static_cast<gid_t>(-1)), 0);
  r = RegisterAsOperator(set, set + "/kek.bin");
  EXPECT_EQ(r.status, 0) << r.err << DaemonLog();
  EXPECT_EQ(r.out, "t 10\n");
  EXPECT_EQ(km().ListVolumes("vs1", {}).size(), 10u);
  EXPECT_EQ(ReadFile(set + "/kek.bin"), kek) << "the daemon changed or removed the caller's kek.bin";
  EXPECT_EQ(ReadFile(victim), kek);
  EXPECT_EQ(ReadFile(host_key), host_key_bytes);
}

}  // namespace
}  // namespace svmkey::integration
