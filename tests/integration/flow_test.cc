// Scenario 1: the full flow through busctl (the real tool) and the generated proxy.
// SVM, Barbican configuration (secret and KEK as descriptors through the proxy, the CA
// bundle as bytes through busctl), enable, 1,000 volumes from svmkey-volset + a few CreateVolume, rekey-internal
// with return_timeout 0 (202, then job success seen by GetJob polling, JobChanged and
// PropertiesChanged) and 120 (201). Every VDEK is the same before and after, and the
// current slot opens only under the new SVM-KEK (unwrapped here from the table file
// with the Barbican key).
#include <sodium.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <thread>

#include "engine/uuid.h"
#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

// `s "text"` → text (busctl's output for one string).
std::string BusctlString(const std::string& out) {
  std::smatch m;
  static const std::regex re("^s \"([^\"]*)\"");
  if (std::regex_search(out, m, re)) return m[1];
  return "";
}

std::string JobPath(const std::string& job) {
  std::string p = std::string(kManagerPath) + "/job/" + job;
  for (size_t i = std::string(kManagerPath).size(); i < p.size(); ++i) {
    if (p[i] == '-') p[i] = '_';
  }
  return p;
}

std::array<uint8_t, 32> RandomKey() {
  std::array<uint8_t, 32> k{};
  randombytes_buf(k.data(), k.size());
  return k;
}

class FlowTest : public DaemonTest {};

TEST_F(FlowTest, FullFlowThroughBusctlAndProxy) {
  const std::string A = address();
  const std::string M = "org.svmkey.KeyManager1 /org/svmkey/KeyManager1 org.svmkey.KeyManager1 ";

  // --- SVM through busctl; the Barbican configuration through the proxy, since the
  // secret must be a descriptor and busctl of systemd 252 cannot pass an `h` argument;
  // the CA bundle through busctl as bytes (ca_pem, type ay) ---
  auto r = Busctl(A, "call " + M + "CreateSvm 'sa{sv}' vs1 0");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string svm = BusctlString(r.out);
  ASSERT_TRUE(Uuid::Parse(svm)) << r.out;

  const KmsKey key = NewSecret();
  const KmsCredential cred = NewCredential();
  VariantMap cfg;
  cfg["svm"] = sdbus::Variant(std::string("vs1"));
  cfg["name"] = sdbus::Variant(std::string("vs1-kms"));
  cfg["key_id"] = sdbus::Variant(key.key_id);
  cfg["keystone_url"] = sdbus::Variant(KmsVar("KEYSTONE_URL"));
  cfg["application_cred_id"] = sdbus::Variant(cred.id);
  cfg["application_cred_secret_fd"] = sdbus::Variant(SecretFd(cred.secret));
  cfg["timeout"] = sdbus::Variant(uint32_t{30});
  const std::string config = km().CreateBarbicanConfig(cfg);
  ASSERT_TRUE(Uuid::Parse(config)) << config;
  // Without a CA bundle the daemon uses the system store: enabling fails (our throwaway CA).
  r = Busctl(A, "call " + M + "EnableKeyStore s " + config);
  EXPECT_NE(r.status, 0) << "enable worked without the CA: " << r.out;
  const std::string ca = Quote(KmsVar("CA_FILE"));
  r = Busctl(A, "call " + M + "UpdateBarbicanConfig 'sa{sv}' " + config +
                    " 1 ca_pem ay $(stat -c %s " + ca + ") $(od -An -v -tu1 " + ca + ")");
  ASSERT_EQ(r.status, 0) << r.err;
  r = Busctl(A, "call " + M + "EnableKeyStore s " + config);
  ASSERT_EQ(r.status, 0) << r.err << DaemonLog();
  r = Busctl(A, "call " + M + "GetBarbicanConfig 'sa{sv}' " + config + " 0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"enabled\" b true"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(cred.secret), std::string::npos) << "the secret came back";

  // --- 1,000 volumes from svmkey-volset, plus three CreateVolume ---
  const std::string set = MakeVolumeSet(svm, 1000);
  ASSERT_EQ(RegisterVolumeSet("vs1", set), 1000u) << DaemonLog();
  EXPECT_TRUE(std::filesystem::exists(set + "/kek.bin")) << "the daemon removed the caller's file";
  for (int i = 0; i < 3; ++i) {
    r = Busctl(A, "call " + M + "CreateVolume 'ssa{sv}' vs1 extra" + std::to_string(i) + " 0");
    ASSERT_EQ(r.status, 0) << r.err << DaemonLog();
    EXPECT_TRUE(Uuid::Parse(BusctlString(r.out))) << r.out;
  }
  const uint64_t total = 1003;

  // Fingerprints of every VDEK under generation 1 (key from the table + Barbican key).
  const auto fp_key = RandomKey();
  std::string error;
  const VolumeFingerprints before =
      FingerprintVolumes(daemon().table_path(), svm, 1, 1, key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(before.uuids.size(), total);
  ASSERT_EQ(before.opened, total);

  // --- rekey-internal, return_timeout 0 → 202, then success ---
  SignalLog props(connection(),
                  "type='signal',sender='org.svmkey.KeyManager1',"
                  "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                  "path_namespace='/org/svmkey/KeyManager1/job'");
  r = Busctl(A, "call " + M + "RekeyInternal sub " + config + " 0 false");
  ASSERT_EQ(r.status, 0) << r.err << DaemonLog();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("^us 202 \"([0-9a-f-]{36})\""))) << r.out;
  const std::string job = m[1];
  const VariantMap done = WaitJob(job, 300s);
  ASSERT_EQ(State(done), "success") << Message(done) << DaemonLog();
  EXPECT_EQ(Code(done), 0u);
  EXPECT_EQ(done.at("volumes_done").get<uint64_t>(), total);
  EXPECT_EQ(done.at("volumes_total").get<uint64_t>(), total);
  EXPECT_EQ(done.at("svm").get<std::string>(), svm);
  EXPECT_GT(done.at("end_time").get<int64_t>(), 0);
  EXPECT_EQ(done.at("object_path").get<sdbus::ObjectPath>(), JobPath(job));
  EXPECT_TRUE(km().WaitJobChanged(job, "success", 10s)) << "no JobChanged(" << job << ", success)";
  EXPECT_TRUE(props.WaitFor(
      [&](const RecordedSignal& s) {
        return s.path == JobPath(job) && s.values.count("State") &&
               s.values.at("State") == "success";
      },
      10s))
      << "no PropertiesChanged State=success on " << JobPath(job);
  EXPECT_TRUE(props.WaitFor(
      [&](const RecordedSignal& s) {
        return s.path == JobPath(job) && s.values.count("VolumesDone");
      },
      1s))
      << "no PropertiesChanged of VolumesDone";
  // The job object's properties, through the generated Job1 proxy and through busctl.
  {
    JobProxy jp(connection(), JobPath(job));
    EXPECT_EQ(jp.State(), "success");
    EXPECT_EQ(jp.Code(), 0u);
    EXPECT_EQ(jp.Uuid(), job);
    EXPECT_EQ(jp.VolumesDone(), total);
    EXPECT_EQ(jp.VolumesTotal(), total);
    EXPECT_DOUBLE_EQ(jp.Progress(), 1.0);
    EXPECT_EQ(jp.Svm(), svm);
    EXPECT_NE(jp.Description().find("rekey-internal"), std::string::npos) << jp.Description();
  }
  r = Busctl(A,
             "get-property org.svmkey.KeyManager1 " + JobPath(job) + " org.svmkey.Job1 State Code");
  EXPECT_EQ(r.out, "s \"success\"\nu 0\n") << r.err;

  // The table: generation 2 active, 1 retired, key store active again.
  {
    TableFile t(daemon().table_path());
    EXPECT_EQ(t.QueryText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=1", {svm}),
              "retired");
    EXPECT_EQ(t.QueryText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=2", {svm}),
              "active");
    EXPECT_EQ(t.QueryText("SELECT state FROM key_stores WHERE uuid=?1", {config}), "active");
    EXPECT_EQ(t.QueryInt("SELECT count(*) FROM volumes WHERE svm_uuid=?1 AND generation=2", {svm}),
              static_cast<int64_t>(total));
  }
  // Every VDEK unchanged, now opening at generation 2 ...
  const VolumeFingerprints after =
      FingerprintVolumes(daemon().table_path(), svm, 2, 2, key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(after.opened, total);
  for (size_t i = 0; i < total; ++i) {
    ASSERT_EQ(after.uuids[i], before.uuids[i]);
    EXPECT_EQ(after.generations[i], 2u) << after.uuids[i];
    EXPECT_EQ(after.fingerprints[i], before.fingerprints[i])
        << "VDEK of " << after.uuids[i] << " changed";
  }
  // ... and the current slot (generation 2) does not open under the old SVM-KEK.
  const VolumeFingerprints old_as_new =
      FingerprintVolumes(daemon().table_path(), svm, 1, 2, key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(old_as_new.opened, 0u) << "a generation-2 slot opened under SVM-KEK generation 1";
  for (uint32_t c : old_as_new.codes) EXPECT_EQ(c, 65539202u);

  // The daemon's own verify agrees (return_timeout 120 → 201).
  auto [vstatus, vjob] = km().VerifyVolumesWithin("vs1", 120, 180s);
  EXPECT_EQ(vstatus, 201u);
  const VariantMap verified = km().GetJob(vjob);
  EXPECT_EQ(State(verified), "success");
  EXPECT_EQ(Message(verified), "1003 volumes verified, 0 failed");

  // --- rekey-internal, return_timeout 120 through the proxy → 201 ---
  auto [status, job2] = km().RekeyInternalWithin(config, 120, 180s);
  EXPECT_EQ(status, 201u) << DaemonLog();
  EXPECT_EQ(State(km().GetJob(job2)), "success");
  const VolumeFingerprints third =
      FingerprintVolumes(daemon().table_path(), svm, 3, 3, key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(third.opened, total);
  EXPECT_EQ(third.fingerprints, before.fingerprints);
  bool found = false;
  for (const auto& s : km().ListSvms({})) {
    if (s.at("uuid").get<std::string>() == svm) {
      found = true;
      EXPECT_EQ(s.at("key_generation").get<uint64_t>(), 3u);
    }
  }
  EXPECT_TRUE(found);
  // ListJobs has both rekeys and the verify, newest first.
  const auto jobs = km().ListJobs({});
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].at("uuid").get<std::string>(), job2);
}

TEST_F(FlowTest, SecretByFdThroughTheProxyAndTwoSvmsSideBySide) {
  // vs-a: configuration made through the proxy with the secret passed as a file
  // descriptor (type h); vs-b through the fixture. Both rekeyed at the same time.
  const KmsCredential cred{KmsVar("APP_CRED_ID"), KmsVar("APP_CRED_SECRET")};
  km().CreateSvm("vs-a", {});
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string secret = cred.secret + "\n";
  ASSERT_EQ(::write(fds[1], secret.data(), secret.size()), static_cast<ssize_t>(secret.size()));
  ::close(fds[1]);
  VariantMap c;
  c["svm"] = sdbus::Variant(std::string("vs-a"));
  c["name"] = sdbus::Variant(std::string("kms-a"));
  c["key_id"] = sdbus::Variant(KmsVar("BARBICAN_KEY_ID"));
  c["keystone_url"] = sdbus::Variant(KmsVar("KEYSTONE_URL"));
  c["application_cred_id"] = sdbus::Variant(cred.id);
  c["application_cred_secret_fd"] = sdbus::Variant(sdbus::UnixFd(fds[0]));
  c["ca_pem"] = sdbus::Variant(FileBytes(KmsVar("CA_FILE")));
  const std::string config_a = km().CreateBarbicanConfig(c);
  ::close(fds[0]);
  km().EnableKeyStore(config_a);  // fetches the Barbican key with the fd's secret
  const SvmSetup b = SetUpSvm("vs-b");

  for (const char* svm : {"vs-a", "vs-b"}) {
    for (int i = 0; i < 20; ++i) CreateVolume(svm, std::string(svm) + "-v" + std::to_string(i));
  }
  auto [sa, ja] = km().RekeyInternalWithin(config_a, 0, 30s);
  auto [sb, jb] = km().RekeyInternalWithin(b.config_uuid, 0, 30s);
  EXPECT_EQ(sa, 202u);
  EXPECT_EQ(sb, 202u);
  EXPECT_EQ(State(WaitJob(ja)), "success") << DaemonLog();
  EXPECT_EQ(State(WaitJob(jb)), "success") << DaemonLog();
  for (const char* svm : {"vs-a", "vs-b"}) {
    auto [vs, vj] = km().VerifyVolumesWithin(svm, 120, 180s);
    EXPECT_EQ(vs, 201u);
    EXPECT_EQ(Message(km().GetJob(vj)), "20 volumes verified, 0 failed");
  }
}

// Enabling a second configuration of an SVM switches its key store to another Barbican
// key: a job (a Job1 object with progress in SVM-KEK generations) rewraps every
// generation under the new key, and the SVM keeps working under it.
TEST_F(FlowTest, KeyStoreSwitchRunsAsAJobAndTheSvmKeepsWorking) {
  const SvmSetup s = SetUpSvm("vs-sw", {.volumes = 3});
  auto [status, rekey] = km().RekeyInternalWithin(s.config_uuid, 120, 180s);
  ASSERT_EQ(status, 201u) << DaemonLog();  // generations 1 (retired) and 2 (active)

  const KmsKey other = NewSecret();
  VariantMap c;
  c["svm"] = sdbus::Variant(std::string("vs-sw"));
  c["name"] = sdbus::Variant(std::string("vs-sw-other"));
  c["key_id"] = sdbus::Variant(other.key_id);
  c["keystone_url"] = sdbus::Variant(KmsVar("KEYSTONE_URL"));
  c["application_cred_id"] = sdbus::Variant(s.credential.id);
  c["application_cred_secret_fd"] = sdbus::Variant(SecretFd(s.credential.secret));
  c["ca_pem"] = sdbus::Variant(FileBytes(KmsVar("CA_FILE")));
  const std::string config_b = km().CreateBarbicanConfig(c);
  km().EnableKeyStore(config_b);  // replies when the switch job has ended

  VariantMap filter;
  filter["svm"] = sdbus::Variant(std::string("vs-sw"));
  const auto jobs = km().ListJobs(filter);
  ASSERT_FALSE(jobs.empty());
  const VariantMap& sw = jobs[0];  // newest first
  EXPECT_EQ(sw.at("description").get<std::string>(), "key-store switch of SVM vs-sw");
  EXPECT_EQ(State(sw), "success") << Message(sw);
  EXPECT_EQ(sw.at("volumes_done").get<uint64_t>(), 2u);  // both generations moved
  EXPECT_EQ(sw.at("volumes_total").get<uint64_t>(), 2u);
  EXPECT_EQ(Message(sw), "2 SVM-KEK generations rewrapped");
  auto r = Busctl(address(), "get-property org.svmkey.KeyManager1 " +
                                 JobPath(sw.at("uuid").get<std::string>()) + " org.svmkey.Job1 State");
  EXPECT_EQ(r.out, "s \"success\"\n") << r.err;

  // The old configuration is no longer the key store; the new one rekeys and verifies.
  const BusError e = CatchBusError([&] { km().RekeyInternalWithin(s.config_uuid, 0, 30s); });
  EXPECT_EQ(e.name, "org.svmkey.Error.BarbicanNotConfigured") << e.message;
  auto [s2, j2] = km().RekeyInternalWithin(config_b, 120, 180s);
  EXPECT_EQ(s2, 201u) << DaemonLog();
  auto [vs, vj] = km().VerifyVolumesWithin("vs-sw", 120, 180s);
  EXPECT_EQ(vs, 201u);
  EXPECT_EQ(Message(km().GetJob(vj)), "3 volumes verified, 0 failed");
}

// Terminal jobs are kept for the retention period, then pruned (table row and object).
class FlowRetentionTest : public DaemonTest {
 protected:
  DaemonOptions Options() override {
    DaemonOptions o;
    o.extra_args = {"--job-retention-hours=0.0005"};  // 1.8 s
    return o;
  }
};

TEST_F(FlowRetentionTest, FinishedJobsArePrunedAfterTheRetentionPeriod) {
  SetUpSvm("vs1", {.volumes = 2});
  auto [status, job] = km().VerifyVolumesWithin("vs1", 120, 180s);
  ASSERT_EQ(status, 201u);
  EXPECT_EQ(State(km().GetJob(job)), "success");
  const std::string path = JobPath(job);
  auto r =
      Busctl(address(), "get-property org.svmkey.KeyManager1 " + path + " org.svmkey.Job1 State");
  EXPECT_EQ(r.out, "s \"success\"\n") << r.err;
  std::this_thread::sleep_for(2500ms);
  // Pruning runs at start (and every 10 minutes): restart.
  ASSERT_EQ(daemon().Stop(SIGTERM), 0);
  StartDaemonAgain();
  const BusError e = CatchBusError([&] { km().GetJob(job); });
  EXPECT_EQ(e.name, "org.svmkey.Error.EntryNotFound") << e.message;
  EXPECT_EQ(e.message.rfind("4: ", 0), 0u) << e.message;
  r = Busctl(address(), "get-property org.svmkey.KeyManager1 " + path + " org.svmkey.Job1 State");
  EXPECT_NE(r.status, 0) << "the job object outlived its retention: " << r.out;
  EXPECT_TRUE(km().ListJobs({}).empty());
}

}  // namespace
}  // namespace svmkey::integration
