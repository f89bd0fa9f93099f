// Descriptors a caller passes (secrets, CA bundle, KEK) that never deliver: a pipe whose
// writer stays silent, a FIFO, /dev/zero, a file larger than the bound. Each call gets
// 262185 naming the argument within the documented timeout (5 s,
// daemon/service/caller_input.h), another connection's ListSvms is answered within 1 s
// meanwhile, and SIGTERM stops the daemon while a read is pending. Also: the CA bundle the
// daemon keeps is its own 0600 file, replaced whole and removed with its configuration.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "tests/integration/local_fixture.h"

namespace svmkey::integration {
namespace {

using sdbus::Variant;
using Clock = std::chrono::steady_clock;

const char* const kM = "org.svmkey.KeyManager1 /org/svmkey/KeyManager1 org.svmkey.KeyManager1 ";
constexpr auto kReadTimeout = 5s;  // kCallerInputTimeout
const std::string kKeyId = "https://127.0.0.1:1/v1/secrets/0b8a3f0e-6c9b-4e54-a0c6-2a3d1f0e9b11";
const std::string kPem =
    "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

class CallerFdTest : public LocalDaemonTest {
 protected:
  void SetUp() override {
    LocalDaemonTest::SetUp();
    if (HasFatalFailure()) return;
    km().CreateSvm("vs1", {});
  }
  VariantMap Config(const std::string& name) {
    VariantMap c;
    c["svm"] = Variant(std::string("vs1"));
    c["name"] = Variant(name);
    c["key_id"] = Variant(kKeyId);
    c["keystone_url"] = Variant(std::string("https://127.0.0.1:1/v3"));
    c["application_cred_id"] = Variant(std::string("cred-id"));
    return c;
  }
  sdbus::UnixFd Open(const std::string& path, int flags = O_RDONLY) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    EXPECT_GE(fd, 0) << path;
    return sdbus::UnixFd(fd, sdbus::adopt_fd);
  }
  std::string SparseFile(const std::string& name, off_t size) {
    const std::string path = dir_->path() + "/" + name;
    WriteFile(path, "", 0600);
    EXPECT_EQ(::truncate(path.c_str(), size), 0);
    return path;
  }
  // Runs `call` on a thread; while it is pending, ListSvms from another connection (as a
  // member of group svmkey) must be answered within 1 s. Then `call` must have failed with
  // InvalidValue "<argument>: <why>" within the read timeout (plus slack for the bus).
  void ExpectRefusedInTime(const std::function<void()>& call, const std::string& text) {
    BusError e;
    const auto start = Clock::now();
    std::thread caller([&] { e = CatchBusError(call); });
    std::this_thread::sleep_for(200ms);
    const auto list_start = Clock::now();
    auto r = Busctl(address(), std::string("--timeout=1 call ") + kM + "ListSvms 'a{sv}' 0",
                    kOperatorUser);
    const auto list_took = Clock::now() - list_start;
    caller.join();
    const auto took = Clock::now() - start;
    EXPECT_EQ(r.status, 0) << "ListSvms was not answered while a read was pending: " << r.err;
    EXPECT_LT(list_took, 1500ms) << "ListSvms (busctl --timeout=1) took too long";
    EXPECT_TRUE(IsSvmkeyError(e, "InvalidValue", 262185));
    EXPECT_NE(e.message.find(text), std::string::npos) << e.message;
    EXPECT_LT(took, kReadTimeout + 3s) << e.message;
  }
};

TEST_F(CallerFdTest, SilentPipeAsSecretIsRefusedWithinTheTimeout) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);  // the writer stays open and never writes
  VariantMap c = Config("k1");
  c["application_cred_secret_fd"] = Variant(sdbus::UnixFd(p[0], sdbus::adopt_fd));
  ExpectRefusedInTime([&] { km().CreateBarbicanConfig(c); },
                      "application_cred_secret_fd: no data within 5 s");
  ::close(p[1]);
  EXPECT_TRUE(km().ListBarbicanConfigs({}).empty());
}

TEST_F(CallerFdTest, FifoAsCaBundleIsRefusedWithinTheTimeout) {
  const std::string fifo = dir_->path() + "/ca.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  VariantMap c = Config("k1");
  c["application_cred_secret_fd"] = Variant(PipeHolding("s3cret\n"));
  const std::string config = km().CreateBarbicanConfig(c);
  VariantMap settings;
  settings["ca_fd"] = Variant(Open(fifo, O_RDWR));  // a writer of its own: never EOF
  ExpectRefusedInTime([&] { km().UpdateBarbicanConfig(config, settings); },
                      "ca_fd: no data within 5 s");
}

TEST_F(CallerFdTest, DevZeroAsProxyPasswordIsRefusedAsTooLong) {
  VariantMap c = Config("k1");
  c["application_cred_secret_fd"] = Variant(PipeHolding("s3cret\n"));
  c["proxy_host"] = Variant(std::string("127.0.0.1"));
  c["proxy_port"] = Variant(uint32_t{1});
  c["proxy_password_fd"] = Variant(Open("/dev/zero"));
  ExpectRefusedInTime([&] { km().CreateBarbicanConfig(c); },
                      "proxy_password_fd: longer than 4096 bytes");
}

TEST_F(CallerFdTest, CaBundleOverOneMiBIsRefused) {
  VariantMap c = Config("k1");
  c["application_cred_secret_fd"] = Variant(PipeHolding("s3cret\n"));
  c["ca_fd"] = Variant(Open(SparseFile("big.pem", (off_t{1} << 20) + 1)));
  ExpectRefusedInTime([&] { km().CreateBarbicanConfig(c); },
                      "ca_fd: longer than 1048576 bytes");
  VariantMap d = Config("k2");
  d["application_cred_secret_fd"] = Variant(PipeHolding("s3cret\n"));
  d["ca_pem"] = Variant(std::vector<uint8_t>((size_t{1} << 20) + 1, 'x'));
  EXPECT_TRUE(IsSvmkeyError(CatchBusError([&] { km().CreateBarbicanConfig(d); }),
                            "InvalidValue", 262185));
  EXPECT_TRUE(km().ListBarbicanConfigs({}).empty());
}

TEST_F(CallerFdTest, KekFdThatNeverDeliversIsRefused) {
  auto register_with = [&](sdbus::UnixFd fd) {
    return [this, fd] {
      km().RegisterVolumeSetWithin("vs1", daemon().volume_root() + "/sets/s", {{"kek_fd", Variant(fd)}}, 30s);
    };
  };
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ExpectRefusedInTime(register_with(sdbus::UnixFd(p[0], sdbus::adopt_fd)),
                      "kek_fd: no data within 5 s");
  ::close(p[1]);
  ExpectRefusedInTime(register_with(Open("/dev/zero")), "kek_fd: longer than 32 bytes");
  ExpectRefusedInTime(register_with(Open(SparseFile("kek.big", off_t{10} << 30))),
                      "kek_fd: longer than 32 bytes");
  EXPECT_TRUE(km().ListVolumes("vs1", {}).empty());
}

TEST_F(CallerFdTest, SigtermStopsTheDaemonWhileAReadIsPending) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  VariantMap c = Config("k1");
  c["application_cred_secret_fd"] = Variant(sdbus::UnixFd(p[0], sdbus::adopt_fd));
  std::thread caller([&] { CatchBusError([&] { km().CreateBarbicanConfig(c); }); });
  std::this_thread::sleep_for(500ms);
  const auto start = Clock::now();
  EXPECT_EQ(daemon().Stop(SIGTERM, 10s), 0) << "svmkeyd did not exit 0 on SIGTERM";
  EXPECT_LT(Clock::now() - start, 4s) << "SIGTERM waited for the pending read";
  caller.join();
  ::close(p[1]);
}

TEST_F(CallerFdTest, CaBundleIsTheDaemonsOwnFileAndGoesWithItsConfig) {
  VariantMap c = Config("k1");
  c["application_cred_secret_fd"] = Variant(PipeHolding("s3cret\n"));
  c["ca_pem"] = Variant(std::vector<uint8_t>(kPem.begin(), kPem.end()));
  const std::string config = km().CreateBarbicanConfig(c);
  const std::string copy = daemon().state_dir() + "/ca/" + config + ".pem";
  EXPECT_EQ(km().GetBarbicanConfig(config, {}).at("ca_file").get<std::string>(), copy);
  EXPECT_EQ(ReadFile(copy), kPem);
  struct stat st {};
  ASSERT_EQ(::stat(copy.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // Replaced whole from a descriptor; bytes that are not PEM are refused.
  const std::string other = kPem + "# second\n";
  VariantMap settings;
  settings["ca_fd"] = Variant(PipeHolding(other));
  km().UpdateBarbicanConfig(config, settings);
  EXPECT_EQ(ReadFile(copy), other);
  VariantMap bad;
  bad["ca_pem"] = Variant(std::vector<uint8_t>{'n', 'o', 't'});
  const BusError e = CatchBusError([&] { km().UpdateBarbicanConfig(config, bad); });
  EXPECT_TRUE(IsSvmkeyError(e, "InvalidValue", 262185));
  EXPECT_NE(e.message.find("ca_pem"), std::string::npos) << e.message;
  EXPECT_EQ(ReadFile(copy), other);
  km().DeleteKeyStore(config);
  EXPECT_FALSE(std::filesystem::exists(copy)) << "the daemon's CA copy outlived its config";
}

}  // namespace
}  // namespace svmkey::integration
