// Secret hygiene (issue 7): the whole flow — SVM, Barbican configuration, enable,
// volumes, three rekeys, verify, restore, a restart, CLI calls with
// svmkeyctl and busctl — runs with known secret values, then every place a secret could
// leak to is searched for each of them in raw, hex (lower/upper) and base64 (standard,
// URL-safe, at each byte alignment): svmkeyd's stderr log, every bus message (a pcap of
// the private bus, captured for the whole run with `busctl capture`, as root), the table
// file rdb.sqlite and its -wal, the CLI's output, the bus daemon's log, and this test's
// own stdout/stderr. The secrets: the Barbican key (KEK_FILE), the application credential
// secret, every SVM-KEK (unwrapped from the table's rows with the test peer) and a sample
// of VDEKs (opened from the metadata files with the engine). Zero hits is asserted, and
// positive controls show each search would find a secret that is there.
//
// svmkeyd runs as an unprivileged user here, so its non-dumpability can be observed the
// way the kernel enforces it (its /proc files belong to root), and its key memory must be
// excluded from core dumps: every locked mapping in /proc/<pid>/smaps has VmFlags dd.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/key_table.h"
#include "engine/svm_kek.h"
#include "engine/testing/key_table_test_peer.h"
#include "engine/uuid.h"
#include "engine/volume.h"
#include "tests/reliability/reliability_util.h"

namespace svmkey::reliability {
namespace {

using namespace std::chrono_literals;
using integration::Busctl;
using integration::CommandResult;
using integration::DaemonOptions;
using integration::DaemonTest;
using integration::Quote;
using integration::ReadFile;
using integration::Sh;
using integration::TableFile;
using integration::VariantMap;

// Sends this process's stdout and stderr to a file until Stop(), which restores them
// and returns what was written (the caller searches it, then prints it).
class StdioCapture {
 public:
  explicit StdioCapture(const std::string& path) : path_(path) {
    std::fflush(stdout);
    std::fflush(stderr);
    saved_out_ = ::dup(1);
    saved_err_ = ::dup(2);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::close(fd);
  }
  std::string Stop() {
    if (saved_out_ < 0) return ReadFile(path_);
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(saved_out_, 1);
    ::dup2(saved_err_, 2);
    ::close(saved_out_);
    ::close(saved_err_);
    saved_out_ = saved_err_ = -1;
    return ReadFile(path_);
  }
  // On an early exit (a fatal assertion, an exception) what was captured is shown.
  ~StdioCapture() {
    if (saved_out_ >= 0) std::fputs(Stop().c_str(), stdout);
  }

 private:
  std::string path_;
  int saved_out_ = -1;
  int saved_err_ = -1;
};

class SecretHygieneTest : public DaemonTest {
 protected:
  void SetUp() override {
    users_ = integration::EnsureTestUsers();
    ASSERT_TRUE(users_.error.empty()) << users_.error;
    dir_ = std::make_unique<integration::TempDir>("svmkey-rel");
    bus_ = std::make_unique<integration::PrivateBus>(
        dir_->path(),
        // The unprivileged daemon may own the name on this bus (as in DumpableTest).
        "  <policy context=\"mandatory\">\n"
        "    <allow own=\"org.svmkey.KeyManager1\"/>\n"
        "  </policy>\n");
    ASSERT_TRUE(bus_->ok()) << bus_->error();
    DaemonOptions o;
    o.extra_env = {"SVMKEYD_DEBUG=1"};  // the most verbose log there is
    o.prefix = {"/usr/bin/setpriv", "--reuid=" + std::to_string(users_.unpriv_uid),
                "--regid=" + std::to_string(users_.unpriv_gid), "--clear-groups", "--"};
    daemon_ = std::make_unique<integration::Daemon>(*bus_, dir_->path(), o);
    for (const auto& d : {daemon_->state_dir(), daemon_->volume_root()}) {
      std::filesystem::create_directories(d);
      ASSERT_EQ(::chown(d.c_str(), users_.unpriv_uid, users_.unpriv_gid), 0);
    }
    ASSERT_TRUE(daemon_->Start()) << "svmkeyd did not start unprivileged" << DaemonLog();
    conn_ = sdbus::createSessionBusConnectionWithAddress(bus_->address());
    conn_->enterEventLoopAsync();
    km_ = std::make_unique<integration::KeyManagerProxy>(*conn_);
  }

  CommandResult Ctl(const std::string& args) {
    CommandResult r =
        Sh(Quote(SVMKEYCTL_PATH) + " --address " + Quote(address()) + " " + args, 300s);
    cli_output_ += r.out + r.err;
    ++cli_calls_;
    EXPECT_EQ(r.status, 0) << "svmkeyctl " << args.substr(0, 60)
                           << " failed: " << r.err.substr(0, 300);
    return r;
  }

  integration::TestUsers users_;
  std::string cli_output_;
  int cli_calls_ = 0;
};

std::string Bytes(const std::array<uint8_t, kKeyBytes>& a) {
  return std::string(reinterpret_cast<const char*>(a.data()), a.size());
}

TEST_F(SecretHygieneTest, NoSecretInLogsBusMessagesTableCliOrTestOutput) {
  const std::string kek_file = KmsVar("KEK_FILE");
  const std::string app_secret = KmsVar("APP_CRED_SECRET");
  ASSERT_EQ(ReadFile(kek_file).size(), kKeyBytes);
  ASSERT_GE(app_secret.size(), 16u);

  // The whole run's bus traffic, as the bus daemon's monitor sees it (root may monitor).
  const std::string pcap = *dir_ / "bus.pcap";
  integration::Child capture;
  ASSERT_TRUE(capture.Spawn({"/usr/bin/busctl", "--address=" + address(), "capture"}, {}, pcap));
  // The capture is live once a marker call shows up in it (no sleep).
  std::array<uint8_t, 32> canary{};
  randombytes_buf(canary.data(), canary.size());
  char canary_hex[65];
  sodium_bin2hex(canary_hex, sizeof canary_hex, canary.data(), canary.size());
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (ReadFile(pcap).find(canary_hex) == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    // The canary travels in a method call (refused: not a uuid): the positive control
    // for the bus search.
    integration::CatchBusError([&] { km().GetJob(canary_hex); });
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_NE(ReadFile(pcap).find(canary_hex), std::string::npos) << "busctl capture saw nothing";

  StdioCapture own(*dir_ / "test-output.txt");
  // ---- the flow ----
  const std::string secret_file = SecretFile(app_secret);
  // The CA bundle, where the unprivileged daemon can read it.
  const std::string ca = *dir_ / "ca.pem";
  integration::WriteFile(ca, ReadFile(KmsVar("CA_FILE")), 0644);
  Ctl("svm create hyg1");
  Ctl("barbican create-config --svm hyg1 --config-name c1 --key-id " +
      Quote(KmsVar("BARBICAN_KEY_ID")) + " --keystone-url " + Quote(KmsVar("KEYSTONE_URL")) +
      " --application-cred-id " + Quote(KmsVar("APP_CRED_ID")) +
      " --application-cred-secret-file " + Quote(secret_file) + " --ca-file " + Quote(ca));
  Ctl("keystore enable --svm hyg1 --config-name c1");
  for (int i = 0; i < 6; ++i) Ctl("volume create --svm hyg1 --name cli" + std::to_string(i));
  std::vector<std::string> vols;
  for (int i = 0; i < 100; ++i)
    vols.push_back(km().CreateVolume("hyg1", "v" + std::to_string(i), {}));
  Ctl("barbican show --svm hyg1");
  Ctl("--json barbican show --svm hyg1");
  Ctl("barbican check --svm hyg1");
  Ctl("barbican rekey-internal --svm hyg1");
  Ctl("--json barbican rekey-internal --svm hyg1");
  Ctl("volume verify --svm hyg1");
  Ctl("--json volume list --svm hyg1 --limit 20");
  Ctl("job list");
  Ctl("--json job list");
  Ctl("svm show");
  Ctl("keystore show --svm hyg1");
  Ctl("barbican update-credentials --svm hyg1 --application-cred-id " +
      Quote(KmsVar("APP_CRED_ID")) + " --application-cred-secret-file " + Quote(secret_file));
  // A restart: the SVM-KEK is opened again from the table (restore), then a third rekey
  // through busctl.
  ASSERT_EQ(daemon().Stop(SIGTERM), 0) << DaemonLog();
  StartDaemonAgain();
  Ctl("barbican restore --svm hyg1");
  std::string config;
  {
    TableFile t(daemon().table_path());
    config = t.QueryText("SELECT uuid FROM key_stores WHERE name='c1'").value_or("");
  }
  ASSERT_FALSE(config.empty());
  auto r = Busctl(address(),
                  "call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 "
                  "org.svmkey.KeyManager1 RekeyInternal sub " +
                      config + " 120 false");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("us 201 ", 0), 0u) << r.out;
  r = Busctl(address(),
             "call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 "
             "org.svmkey.KeyManager1 GetBarbicanConfig 'sa{sv}' " +
                 config + " 1 reachability b true");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("barbican_reachability_reachable"), std::string::npos) << r.out;
  Ctl("volume verify --svm hyg1");

  // ---- the daemon's memory: not dumpable, key memory out of core dumps ----
  const std::string proc = "/proc/" + std::to_string(daemon().pid());
  EXPECT_NE(ReadFile(proc + "/status").find("Uid:\t" + std::to_string(users_.unpriv_uid) + "\t"),
            std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat((proc + "/environ").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "svmkeyd is dumpable: its /proc files belong to uid " << st.st_uid;
  auto env =
      Sh("runuser -u " + std::string(integration::kUnprivUser) + " -- cat " + proc + "/environ");
  EXPECT_NE(env.status, 0) << "the daemon's own user could read its environment";
  {
    std::istringstream smaps(ReadFile(proc + "/smaps"));
    std::string line, mapping;
    size_t locked = 0, locked_dumpable = 0;
    while (std::getline(smaps, line)) {
      if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
          line.find('-') != std::string::npos && line.find(':') > line.find(' ')) {
        mapping = line;
      }
      if (line.rfind("VmFlags:", 0) == 0 && (line + " ").find(" lo ") != std::string::npos) {
        ++locked;
        if ((line + " ").find(" dd ") == std::string::npos) {
          ++locked_dumpable;
          ADD_FAILURE() << "locked mapping without dd (dumped to cores): " << mapping << " "
                        << line;
        }
      }
    }
#if !defined(__SANITIZE_ADDRESS__)
    // (AddressSanitizer turns mlock(2) into a no-op, so an ASan build has none.)
    EXPECT_GT(locked, 0u) << "no locked mapping: where is the key table?";
#endif
    EXPECT_EQ(locked_dumpable, 0u);
    std::printf("[hygiene] svmkeyd: %zu locked mappings, all MADV_DONTDUMP\n", locked);
  }

  // ---- the secrets, read back with the engine's test-only export ----
  std::map<std::string, std::string> secrets;
  secrets["barbican-key"] = ReadFile(kek_file);
  secrets["app-cred-secret"] = app_secret;
  const std::string table_bytes = ReadFile(daemon().table_path());
  const std::string wal_bytes = ReadFile(daemon().table_path() + "-wal");
  std::string svm;
  {
    TableFile t(daemon().table_path());
    svm = t.QueryText("SELECT uuid FROM svms WHERE name='hyg1'").value_or("");
    ASSERT_FALSE(svm.empty());
    auto kt = KeyTable::Create(64);
    ASSERT_TRUE(kt.ok());
    std::array<uint8_t, kKeyBytes> raw{};
    const std::string kek = ReadFile(kek_file);
    std::copy(kek.begin(), kek.end(), raw.begin());
    auto external = KeyTableTestPeer::ImportRaw(**kt, raw);
    ASSERT_TRUE(external.ok());
    const auto svm_id = *Uuid::Parse(svm);
    KeyRing ring;
    for (const auto& row :
         t.QueryRows("SELECT generation, key_id FROM svm_keks WHERE svm_uuid=?1", {svm})) {
      const uint64_t g = std::stoull(row[0]);
      const auto wrapped = t.QueryBlob(
          "SELECT wrapped FROM svm_keks WHERE svm_uuid=?1 AND generation=?2", {svm, row[0]});
      ASSERT_TRUE(wrapped.has_value());
      auto h = UnwrapSvmKek(**kt, *external, *wrapped, svm_id, g, row[1]);
      ASSERT_TRUE(h.ok()) << h.status().ToString();
      std::array<uint8_t, kKeyBytes> bytes{};
      ASSERT_TRUE(KeyTableTestPeer::Export(**kt, *h, &bytes).ok());
      secrets["svm-kek-" + row[0]] = Bytes(bytes);
      ring.Add(g, *h);
    }
    EXPECT_EQ(ring.keys().size(), 4u) << "three rekeys: generations 1..4";
    auto opener = VdekOpener::Create(**kt, ring);
    ASSERT_TRUE(opener.ok());
    size_t n = 0;
    for (const auto& row :
         t.QueryRows("SELECT uuid, dsid, metadata_path FROM volumes WHERE svm_uuid=?1 ORDER BY id",
                     {svm})) {
      if (n++ % 5 != 0) continue;  // every fifth volume
      const std::string file = ReadFile(row[2]);
      VolumeIdentity id{*Uuid::Parse(row[0]), svm_id, std::stoull(row[1])};
      auto meta = DecodeMetadataFile(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(file.data()), file.size()),
          &id);
      ASSERT_TRUE(meta.ok()) << meta.status().ToString();
      std::array<uint8_t, kKeyBytes> vdek{};
      const OpenResult o = opener->Open(*meta, vdek.data(), nullptr);
      ASSERT_TRUE(o.status.ok()) << o.status.ToString();
      EXPECT_EQ(o.generation, 4u);
      secrets["vdek-" + row[0]] = Bytes(vdek);
      sodium_memzero(vdek.data(), vdek.size());
    }
  }

  // Flush the capture: a last marker must be in the file before it stops.
  const std::string end_marker = std::string(canary_hex).substr(0, 32) + "-end";
  const auto end_deadline = std::chrono::steady_clock::now() + 60s;
  while (ReadFile(pcap).find(end_marker) == std::string::npos &&
         std::chrono::steady_clock::now() < end_deadline) {
    integration::CatchBusError([&] { km().GetJob(end_marker); });
    std::this_thread::sleep_for(50ms);
  }
  capture.Stop(SIGINT, 10s);
  const std::string bus_bytes = ReadFile(pcap);
  EXPECT_NE(bus_bytes.find(end_marker), std::string::npos);

  const std::string own_output = own.Stop();
  std::fputs(own_output.c_str(), stdout);  // what the test printed meanwhile

  // ---- the search ----
  const std::vector<std::pair<std::string, std::string>> haystacks = {
      {"svmkeyd log", daemon().log()},   {"bus capture", bus_bytes},
      {"rdb.sqlite", table_bytes},       {"rdb.sqlite-wal", wal_bytes},
      {"svmkeyctl output", cli_output_}, {"dbus-daemon log", bus_->log()},
      {"test output", own_output},
  };
  std::vector<std::string> hits;
  size_t bytes = 0;
  for (const auto& [where, text] : haystacks) {
    EXPECT_FALSE(text.empty()) << where << " is empty: nothing was searched";
    bytes += text.size();
    CountSecretHits(text, where, secrets, &hits);
  }
  EXPECT_TRUE(hits.empty()) << hits.size() << " secret hits, first: " << hits.front();
  // The haystacks are the right ones: each holds what it should.
  EXPECT_NE(daemon().log().find("committed: SVM-KEK generation 3 -> 4"), std::string::npos);
  EXPECT_NE(bus_bytes.find("RekeyInternal"), std::string::npos);
  EXPECT_NE(table_bytes.find(KmsVar("APP_CRED_ID")), std::string::npos);
  EXPECT_GT(wal_bytes.size(), 0u);
  EXPECT_NE(cli_output_.find("hyg1"), std::string::npos);
  const size_t encodings = Encodings(secrets.begin()->second).size();
  std::printf(
      "[hygiene] %zu secrets (Barbican key, app credential secret, %zu SVM-KEKs, %zu "
      "VDEKs) x %zu encodings searched in %zu bytes of %zu places (%d CLI calls): %zu hits\n",
      secrets.size(), size_t{4}, secrets.size() - 6, encodings, bytes, haystacks.size(), cli_calls_,
      hits.size());

  // Positive controls: the same search finds secrets that are there.
  std::map<std::string, std::string> canary_secret{{"canary", Bytes(canary)}};
  EXPECT_GT(CountSecretHits(bus_bytes, "bus capture", canary_secret, nullptr), 0u)
      << "the bus search cannot see a hex value sent in a method call";
  const std::string kek4 = secrets["svm-kek-4"];
  std::string planted = "log line " + secrets["app-cred-secret"] + "\n";
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, reinterpret_cast<const unsigned char*>(kek4.data()), 32);
  planted += std::string("key=") + hex + "\n";
  for (int shift = 0; shift < 3; ++shift) {
    const std::string stream = std::string(static_cast<size_t>(shift) + 7, 'x') +
                               secrets["barbican-key"] + "trailing bytes";
    std::string b64(sodium_base64_encoded_len(stream.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(stream.data()),
                      stream.size(), sodium_base64_VARIANT_ORIGINAL);
    planted += b64.c_str() + std::string("\n");
  }
  integration::WriteFile(*dir_ / "planted.txt", planted);
  std::vector<std::string> control;
  CountSecretHits(ReadFile(*dir_ / "planted.txt"), "planted.txt", secrets, &control);
  const std::string all = ::testing::PrintToString(control);
  for (const char* want : {"app-cred-secret/raw", "svm-kek-4/hex", "barbican-key/base64+0",
                           "barbican-key/base64+1", "barbican-key/base64+2"}) {
    EXPECT_NE(all.find(want), std::string::npos)
        << "the search misses a planted " << want << ": " << all;
  }
}

}  // namespace
}  // namespace svmkey::reliability
