// Volume metadata files the daemon must not trust (issue 14 items 7 and 8;
// docs/ARCHITECTURE.md §4): svmkeyd under systemd's default descriptor limits, a FIFO, a
// symlink or a path outside the volume roots in place of a volume file. Real bus, real
// Barbican, real table, real io_uring.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kInvalidEncryptionBlob = 65536889;
constexpr uint32_t kResourceLimit = 7;

// Every metadata file of a volume set, in path order.
std::vector<std::string> SetFiles(const std::string& set_dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(set_dir)) {
    if (e.is_regular_file() && e.path().extension() == ".meta") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// svmkeyd started by the harness under `prlimit --nofile=<limits>` with `args`.
class DescriptorLimitTest : public DaemonTest {
 protected:
  DaemonOptions Options() override {
    DaemonOptions o;
    o.prefix = {"prlimit", "--nofile=" + limits_, "--"};
    o.extra_args = args_;
    return o;
  }
  // Verify, then rekey-internal, of 5,000 volumes; returns both jobs' codes.
  std::pair<uint32_t, uint32_t> VerifyAndRekey() {
    const SvmSetup s = SetUpSvm("vs1");
    const std::string set = MakeVolumeSet(s.svm_uuid, 5000);
    EXPECT_EQ(RegisterVolumeSet("vs1", set), 5000u);
    auto [vs, vjob] = km().VerifyVolumesWithin("vs1", 120, 180s);
    EXPECT_EQ(vs, 201u) << DaemonLog();
    const VariantMap verify = WaitJob(vjob);
    auto [rs, rjob] = km().RekeyInternalWithin(s.config_uuid, 120, 180s);
    EXPECT_TRUE(rs == 201u || rs == 202u) << rs << DaemonLog();
    const VariantMap rekey = WaitJob(rjob);
    std::printf("[nofile %s] verify: %s / rekey: %s\n", limits_.c_str(), Message(verify).c_str(),
                Message(rekey).c_str());
    return {Code(verify), Code(rekey)};
  }
  std::string limits_;
  std::vector<std::string> args_;
};

// systemd's default for services: soft 1024, hard 524288 (or this process's hard limit
// if lower: raising it takes CAP_SYS_RESOURCE, which a test container may lack). The
// default configuration (2 threads x 2,048-volume batches) then succeeds: the daemon
// raises its soft limit.
uint64_t SystemdDefaultHardLimit() {
  rlimit own{};
  if (::getrlimit(RLIMIT_NOFILE, &own) != 0) return 524288;
  return std::min<uint64_t>(524288, own.rlim_max);
}

class DescriptorLimitDefaultTest : public DescriptorLimitTest {
 protected:
  DescriptorLimitDefaultTest() { limits_ = "1024:" + std::to_string(SystemdDefaultHardLimit()); }
};

TEST_F(DescriptorLimitDefaultTest, DefaultConfigurationVerifiesAndRekeysEveryVolume) {
  const auto [verify, rekey] = VerifyAndRekey();
  EXPECT_EQ(verify, 0u) << DaemonLog();
  EXPECT_EQ(rekey, 0u) << DaemonLog();
  const std::string hard = std::to_string(SystemdDefaultHardLimit());
  ASSERT_GT(SystemdDefaultHardLimit(), 4096u + 256u) << "too low a hard limit to test with";
  EXPECT_NE(daemon().log().find("RLIMIT_NOFILE soft 1024 -> " + hard + ", hard " + hard),
            std::string::npos)
      << DaemonLog();
}

// A hard limit of 1024 and batches far too big for it (4 threads x 4,096): the daemon
// shrinks the batch (said once in the log) and succeeds; a failure could only be 7,
// never a damaged volume.
class DescriptorLimitTightTest : public DescriptorLimitTest {
 protected:
  DescriptorLimitTightTest() {
    limits_ = "1024:1024";
    args_ = {"--batch-size=4096", "--rewrap-threads=4"};
  }
};

TEST_F(DescriptorLimitTightTest, BigBatchesAreBoundedByTheLimitNeverReportedAsDamage) {
  const auto [verify, rekey] = VerifyAndRekey();
  for (const uint32_t code : {verify, rekey}) {
    EXPECT_NE(code, kInvalidEncryptionBlob) << DaemonLog();
    EXPECT_TRUE(code == 0 || code == kResourceLimit) << code << DaemonLog();
  }
  EXPECT_EQ(verify, 0u) << DaemonLog();
  EXPECT_EQ(rekey, 0u) << DaemonLog();
  EXPECT_NE(daemon().log().find("batch size reduced from 4096 to 192"), std::string::npos)
      << DaemonLog();
}

class VolumeFilesTest : public DaemonTest {};

// A FIFO (with a silent writer held open), a symlink to a valid copy and a table path
// outside the volume roots: verify and rekey each fail those volumes within seconds
// (the others are rewrapped), the daemon answers meanwhile, follows no link, and stops
// on SIGTERM.
TEST_F(VolumeFilesTest, FifoSymlinkAndForeignPathFailTheirVolumesAndNothingHangs) {
  const SvmSetup s = SetUpSvm("vs1");
  const std::string set = MakeVolumeSet(s.svm_uuid, 40);
  ASSERT_EQ(RegisterVolumeSet("vs1", set), 40u);
  const std::vector<std::string> files = SetFiles(set);
  ASSERT_EQ(files.size(), 40u);
  // files[3]: a FIFO with a writer that never writes.
  ASSERT_EQ(0, ::unlink(files[3].c_str()));
  ASSERT_EQ(0, ::mkfifo(files[3].c_str(), 0600));
  const int writer = ::open(files[3].c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  // files[7]: a symlink to a valid copy of itself outside the set.
  const std::string target = dir().path() + "/target.meta";
  ASSERT_EQ(0, ::rename(files[7].c_str(), target.c_str()));
  const std::string target_before = ReadFile(target);
  ASSERT_EQ(0, ::symlink(target.c_str(), files[7].c_str()));
  // One row's path names a file outside every volume root.
  {
    TableFile t(daemon().table_path());
    ASSERT_TRUE(t.Exec("UPDATE volumes SET metadata_path='/etc/hostname' WHERE metadata_path=?1",
                       {files[11]}));
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto [vs, vjob] = km().VerifyVolumesWithin("vs1", 0, 30s);
  ASSERT_EQ(vs, 202u);
  // Served while the job runs.
  EXPECT_FALSE(km().ListSvms({}).empty());
  const VariantMap verify = WaitJob(vjob, 60s);
  EXPECT_EQ(State(verify), "failure") << DaemonLog();
  EXPECT_EQ(Code(verify), kInvalidEncryptionBlob) << Message(verify);
  EXPECT_NE(Message(verify).find("40 volumes verified"), std::string::npos) << Message(verify);
  EXPECT_NE(Message(verify).find("3 failed"), std::string::npos) << Message(verify);

  auto [rs, rjob] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
  ASSERT_EQ(rs, 202u);
  const VariantMap rekey = WaitJob(rjob, 60s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 60s);
  ::close(writer);
  EXPECT_EQ(State(rekey), "failure") << DaemonLog();
  EXPECT_EQ(Code(rekey), kInvalidEncryptionBlob) << Message(rekey);
  EXPECT_NE(Message(rekey).find("3 of 40 volumes could not be rewrapped"), std::string::npos)
      << Message(rekey);
  EXPECT_EQ(ReadFile(target), target_before) << "the symlink was followed";
  EXPECT_TRUE(std::filesystem::is_symlink(files[7]));
  {
    TableFile t(daemon().table_path());
    EXPECT_EQ(t.QueryInt("SELECT count(*) FROM volumes WHERE svm_uuid=?1 AND generation=2",
                         {s.svm_uuid}),
              37);
  }
  // Still serving, and SIGTERM stops it promptly.
  EXPECT_FALSE(km().ListSvms({}).empty());
  EXPECT_EQ(daemon().Stop(SIGTERM, 10s), 0) << DaemonLog();
}

}  // namespace
}  // namespace svmkey::integration
