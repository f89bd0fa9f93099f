// RegisterVolumeSet's kek_file, named by a member of group svmkey against svmkeyd running
// as root (daemon/service/caller_file.h): a file the member does not own, or one reached
// through a symlink, is refused with 262185 before anything is imported, and is neither
// read nor removed; the member's own 0600 file is imported and then removed.
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
  CommandResult RegisterAsOperator(const std::string& set_dir, const std::string& kek_file) {
    return Gdbus(address(), "org.svmkey.KeyManager1.RegisterVolumeSet",
                 "vs1 " + Quote(set_dir) + " " + Quote("{'kek_file': <'" + kek_file + "'>}"),
                 kOperatorUser);
  }
  void ExpectRefused(const CommandResult& r) {
    EXPECT_NE(r.status, 0) << r.out;
    EXPECT_EQ(GdbusErrorName(r.err), "org.svmkey.Error.InvalidValue") << r.err;
    EXPECT_EQ(GdbusErrorMessage(r.err).rfind("262185: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("kek_file"), std::string::npos) << r.err;
  }
  TestUsers users_;
};

TEST_F(KekFileTest, MemberCannotHaveRootFilesImportedOrRemoved) {
  const SvmSetup s = SetUpSvm("vs1");
  const std::string set = MakeVolumeSet(s.svm_uuid, 10);
  const std::string kek = ReadFile(set + "/kek.bin");
  ASSERT_EQ(kek.size(), 32u);
  // A root-only 0600 file of the right size (as the daemon's host key is): the old
  // daemon imported it as the SVM-KEK and then deleted it.
  const std::string victim = dir().path() + "/root-only.key";
  WriteFile(victim, kek, 0600);
  ExpectRefused(RegisterAsOperator(set, victim));
  EXPECT_EQ(ReadFile(victim), kek) << "the root-only file was changed or removed";
  const std::string host_key = daemon().state_dir() + "/host.key";
  const std::string host_key_bytes = ReadFile(host_key);
  ASSERT_FALSE(host_key_bytes.empty());
  ExpectRefused(RegisterAsOperator(set, host_key));
  EXPECT_EQ(ReadFile(host_key), host_key_bytes) << "the host key was changed or removed";

  // The member's own file through a symlink (last component, then a directory).
  ASSERT_EQ(::chown((set + "/kek.bin").c_str(), users_.operator_uid, static_cast<gid_t>(-1)), 0);
  ASSERT_EQ(::symlink((set + "/kek.bin").c_str(), (dir().path() + "/kek-link").c_str()), 0);
  ExpectRefused(RegisterAsOperator(set, dir().path() + "/kek-link"));
  ASSERT_EQ(::symlink(set.c_str(), (dir().path() + "/set-link").c_str()), 0);
  ExpectRefused(RegisterAsOperator(set, dir().path() + "/set-link/kek.bin"));
  EXPECT_TRUE(std::filesystem::exists(set + "/kek.bin"));
  EXPECT_TRUE(km().ListVolumes("vs1", {}).empty()) << "a refused registration added volumes";

  // The positive control: the member's own 0600 file is imported, then removed.
  auto r = RegisterAsOperator(set, set + "/kek.bin");
  EXPECT_EQ(r.status, 0) << r.err << DaemonLog();
  EXPECT_NE(r.out.find("10"), std::string::npos) << r.out;
  EXPECT_EQ(km().ListVolumes("vs1", {}).size(), 10u);
  EXPECT_FALSE(std::filesystem::exists(set + "/kek.bin"));
  EXPECT_EQ(ReadFile(victim), kek);
}

}  // namespace
}  // namespace svmkey::integration
