#include "tests/integration/daemon_fixture.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "engine/file_io.h"
#include "engine/key_table.h"
#include "engine/svm_kek.h"
#include "engine/testing/key_table_test_peer.h"
#include "engine/uuid.h"
#include "engine/volume.h"
#include "tests/daemon/barbican/kms_environment.h"

namespace svmkey::integration {

using barbican::testing::KmsEnvironment;

void DaemonTest::SetUp() {
  dir_ = std::make_unique<TempDir>("svmkey-it");
  ASSERT_FALSE(dir_->path().empty()) << "mkdtemp failed";
  bus_ = std::make_unique<PrivateBus>(dir_->path(), ExtraPolicy());
  ASSERT_TRUE(bus_->ok()) << bus_->error();
  daemon_ = std::make_unique<Daemon>(*bus_, dir_->path(), Options());
  ASSERT_TRUE(daemon_->Start()) << "svmkeyd did not report READY=1" << DaemonLog();
  conn_ = sdbus::createSessionBusConnectionWithAddress(bus_->address());
  conn_->enterEventLoopAsync();
  km_ = std::make_unique<KeyManagerProxy>(*conn_);
}

void DaemonTest::TearDown() {
  km_.reset();
  if (conn_) conn_->leaveEventLoop();
  conn_.reset();
  if (daemon_ && daemon_->running()) {
    const int rc = daemon_->Stop(SIGTERM);
    if (expect_clean_exit_) {
      EXPECT_EQ(rc, 0) << "svmkeyd did not exit 0 on SIGTERM" << DaemonLog();
    }
  }
  if (HasFailure() && daemon_) std::fprintf(stderr, "%s\n", DaemonLog().c_str());
  daemon_.reset();
  bus_.reset();
  dir_.reset();
}

void DaemonTest::StartDaemonAgain() {
  ASSERT_TRUE(daemon_->Start()) << "svmkeyd did not report READY=1 after a restart" << DaemonLog();
}

std::string DaemonTest::KmsVar(const std::string& key) {
  KmsEnvironment& env = KmsEnvironment::Get();
  if (!env.ready()) {
    ADD_FAILURE() << "no Keystone/Barbican: " << env.error();
    return "";
  }
  return env.Var(key);
}

KmsKey DaemonTest::NewSecret() {
  auto out = KmsEnvironment::Get().Admin({"secret-new", "svmkey-it"});
  KmsKey k{out["SECRET_REF"], out["SECRET_FILE"]};
  EXPECT_FALSE(k.key_id.empty()) << "barbican-admin secret-new gave no SECRET_REF";
  return k;
}

void DaemonTest::DeleteSecret(const KmsKey& key) {
  auto out = KmsEnvironment::Get().Admin({"secret-delete", key.key_id});
  EXPECT_EQ(out["DELETED"], key.key_id);
}

KmsCredential DaemonTest::NewCredential() {
  auto out = KmsEnvironment::Get().Admin({"appcred-new"});
  KmsCredential c{out["APP_CRED_ID"], out["APP_CRED_SECRET"]};
  EXPECT_FALSE(c.id.empty()) << "barbican-admin appcred-new gave no APP_CRED_ID";
  return c;
}

void DaemonTest::DeleteCredential(const KmsCredential& cred) {
  auto out = KmsEnvironment::Get().Admin({"appcred-delete", cred.id});
  EXPECT_EQ(out["DELETED"], cred.id);
}

std::string DaemonTest::SecretFile(const std::string& secret) {
  static int n = 0;
  const std::string path = *dir_ / ("secret." + std::to_string(++n));
  WriteFile(path, secret + "\n", 0600);
  return path;
}

sdbus::UnixFd DaemonTest::SecretFd(const std::string& secret) {
  return PipeHolding(secret + "\n");
}

sdbus::UnixFd DaemonTest::OpenFd(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << "cannot open " << path;
  return sdbus::UnixFd(fd, sdbus::adopt_fd);
}

std::vector<uint8_t> DaemonTest::FileBytes(const std::string& path) {
  const std::string text = ReadFile(path);
  return std::vector<uint8_t>(text.begin(), text.end());
}

SvmSetup DaemonTest::SetUpSvm(const std::string& name, const SvmSetupOptions& options) {
  SvmSetup s;
  s.svm_name = name;
  s.key = options.own_secret ? NewSecret() : KmsKey{KmsVar("BARBICAN_KEY_ID"), KmsVar("KEK_FILE")};
  s.credential = options.own_credential
                     ? NewCredential()
                     : KmsCredential{KmsVar("APP_CRED_ID"), KmsVar("APP_CRED_SECRET")};
  s.svm_uuid = km().CreateSvm(name, {});
  VariantMap config;
  config["svm"] = sdbus::Variant(name);
  config["name"] = sdbus::Variant(name + "-barbican");
  config["key_id"] = sdbus::Variant(s.key.key_id);
  config["keystone_url"] = sdbus::Variant(KmsVar("KEYSTONE_URL"));
  config["application_cred_id"] = sdbus::Variant(s.credential.id);
  config["application_cred_secret_fd"] = sdbus::Variant(SecretFd(s.credential.secret));
  config["ca_pem"] = sdbus::Variant(FileBytes(KmsVar("CA_FILE")));
  config["timeout"] = sdbus::Variant(uint32_t{30});
  s.config_uuid = km().CreateBarbicanConfig(config);
  if (options.enable) km().EnableKeyStore(s.config_uuid);
  for (int i = 0; i < options.volumes; ++i) CreateVolume(name, name + "-vol" + std::to_string(i));
  return s;
}

std::string DaemonTest::CreateVolume(const std::string& svm, const std::string& name,
                                     const VariantMap& options) {
  return km().CreateVolume(svm, name, options);
}

std::string DaemonTest::MakeVolumeSet(const std::string& svm_uuid, uint64_t count) {
  static int n = 0;
  // Beneath the volume root: RegisterVolumeSet refuses a directory anywhere else unless
  // svmkeyd was given a --volume-set-root for it.
  const std::string set_dir = daemon().volume_root() + "/sets/set" + std::to_string(++n);
  auto r = Sh(Quote(VolsetPath()) + " create --dir " + Quote(set_dir) + " --svm-uuid " +
                  Quote(svm_uuid) + " --count " + std::to_string(count),
              600s);
  EXPECT_EQ(r.status, 0) << "svmkey-volset create failed: " << r.out << r.err;
  return set_dir;
}

uint64_t DaemonTest::RegisterVolumeSet(const std::string& svm, const std::string& set_dir) {
  VariantMap options;
  options["kek_fd"] = sdbus::Variant(OpenFd(set_dir + "/kek.bin"));
  return km().RegisterVolumeSetWithin(svm, set_dir, options, 600s);
}

VariantMap DaemonTest::WaitJob(const std::string& job, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  VariantMap m;
  while (std::chrono::steady_clock::now() < deadline) {
    m = km().GetJob(job);
    const std::string state = State(m);
    if (state == "success" || state == "failure") return m;
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "job " << job << " did not end within " << timeout.count() << " s";
  return m;
}

std::string DaemonTest::State(const VariantMap& job) {
  auto it = job.find("state");
  return it == job.end() ? "" : it->second.get<std::string>();
}

uint32_t DaemonTest::Code(const VariantMap& job) {
  auto it = job.find("code");
  return it == job.end() ? 0 : it->second.get<uint32_t>();
}

std::string DaemonTest::Message(const VariantMap& job) {
  auto it = job.find("message");
  return it == job.end() ? "" : it->second.get<std::string>();
}

VolumeFingerprints FingerprintVolumes(const std::string& table_path, const std::string& svm,
                                      uint64_t generation, uint64_t as_generation,
                                      const std::string& kek_file,
                                      const std::array<uint8_t, 32>& fingerprint_key,
                                      std::string* error) {
  VolumeFingerprints out;
  TableFile table(table_path);
  if (!table.ok()) {
    *error = "cannot open " + table_path + ": " + table.error();
    return out;
  }
  const auto wrapped =
      table.QueryBlob("SELECT wrapped FROM svm_keks WHERE svm_uuid = ?1 AND generation = ?2",
                      {svm, std::to_string(generation)});
  const auto key_id =
      table.QueryText("SELECT key_id FROM svm_keks WHERE svm_uuid = ?1 AND generation = ?2",
                      {svm, std::to_string(generation)});
  if (!wrapped || !key_id) {
    *error = "no SVM-KEK row for generation " + std::to_string(generation);
    return out;
  }
  const std::string kek_bytes = ReadFile(kek_file);
  if (kek_bytes.size() != kKeyBytes) {
    *error = kek_file + " is not 32 bytes";
    return out;
  }
  auto kt = KeyTable::Create(16);
  if (!kt.ok()) {
    *error = kt.status().ToString();
    return out;
  }
  std::array<uint8_t, kKeyBytes> raw{};
  std::copy(kek_bytes.begin(), kek_bytes.end(), raw.begin());
  auto external = KeyTableTestPeer::ImportRaw(**kt, raw);
  if (!external.ok()) {
    *error = external.status().ToString();
    return out;
  }
  const auto svm_id = Uuid::Parse(svm);
  auto kek = UnwrapSvmKek(**kt, *external, *wrapped, *svm_id, generation, *key_id);
  if (!kek.ok()) {
    *error =
        "UnwrapSvmKek of generation " + std::to_string(generation) + ": " + kek.status().ToString();
    return out;
  }
  KeyRing ring;
  ring.Add(as_generation, *kek);
  const auto rows = table.QueryRows(
      "SELECT uuid, dsid, metadata_path FROM volumes WHERE svm_uuid = ?1 ORDER BY id", {svm});
  std::vector<VolumeRef> refs;
  for (const auto& r : rows) {
    VolumeRef ref;
    ref.id.volume = *Uuid::Parse(r[0]);
    ref.id.svm = *svm_id;
    ref.id.dsid = std::stoull(r[1]);
    ref.path = r[2];
    refs.push_back(ref);
    out.uuids.push_back(r[0]);
  }
  std::vector<OpenResult> results(refs.size());
  auto io = MakeSyncFileIo();
  Status s = VerifyVolumes(*io, **kt, ring, refs, results, fingerprint_key.data());
  if (!s.ok()) {
    *error = "VerifyVolumes: " + s.ToString();
    return out;
  }
  for (const auto& r : results) {
    out.fingerprints.push_back(r.fingerprint);
    out.generations.push_back(r.generation);
    out.codes.push_back(r.status.ok() ? 0 : r.status.numeric_code());
    if (r.status.ok()) ++out.opened;
  }
  return out;
}

}  // namespace svmkey::integration
