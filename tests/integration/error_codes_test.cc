// Scenario 3: every rekey-internal error code of ontap-semantics §D that svmkeyd raises,
// provoked through the bus at its point: prechecks from table state (made through the
// API or crafted with SQLite while the daemon runs), Barbican failures from the real
// Keystone/Barbican (a revoked application credential, a deleted secret), and job
// failures from crafted volume metadata files and a write that really fails.
//
// Error names are checked with gdbus or the generated proxy (busctl hides them); every
// message starts with "<code>: ".
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "engine/volume_metadata.h"
#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

std::string Name(const char* short_name) { return std::string("org.svmkey.Error.") + short_name; }

::testing::AssertionResult IsError(const BusError& e, const char* name, uint32_t code) {
  const std::string prefix = std::to_string(code) + ": ";
  if (e.name != Name(name) || e.message.rfind(prefix, 0) != 0) {
    return ::testing::AssertionFailure() << "expected " << Name(name) << " \"" << prefix
                                         << "...\", got " << e.name << " \"" << e.message << "\"";
  }
  return ::testing::AssertionSuccess();
}

std::string JobPath(const std::string& job) {
  std::string p = job;
  for (char& c : p) c = c == '-' ? '_' : c;
  return std::string(kManagerPath) + "/job/" + p;
}

class ErrorCodesTest : public DaemonTest {
 protected:
  // RekeyInternal through gdbus; returns its error (name, message) or an empty name.
  BusError RekeyViaGdbus(const std::string& config, uint32_t return_timeout = 0) {
    auto r = Gdbus(address(), "org.svmkey.KeyManager1.RekeyInternal",
                   Quote("'" + config + "'") + " " + std::to_string(return_timeout) + " false");
    if (r.status == 0) return {};
    return {GdbusErrorName(r.err), GdbusErrorMessage(r.err)};
  }
  BusError RekeyViaProxy(const std::string& config, uint32_t return_timeout) {
    return CatchBusError([&] { km().RekeyInternalWithin(config, return_timeout, 180s); });
  }
  size_t JobCount() { return km().ListJobs({}).size(); }
  // The newest job of an SVM.
  VariantMap LastJob(const std::string& svm_uuid) {
    VariantMap filter;
    filter["svm"] = sdbus::Variant(svm_uuid);
    auto jobs = km().ListJobs(filter);
    EXPECT_FALSE(jobs.empty());
    return jobs.empty() ? VariantMap{} : jobs.front();
  }
  std::string KeyStoreState(const std::string& config) {
    TableFile t(daemon().table_path());
    return t.QueryText("SELECT state FROM key_stores WHERE uuid=?1", {config}).value_or("?");
  }
  std::string MetadataPath(const std::string& volume) {
    TableFile t(daemon().table_path());
    return t.QueryText("SELECT metadata_path FROM volumes WHERE uuid=?1", {volume}).value_or("");
  }
};

// ---- prechecks (synchronous, no side effects) ----

TEST_F(ErrorCodesTest, PrechecksRefuseSynchronouslyWithTheirCodes) {
  // 4: no such configuration.
  EXPECT_TRUE(IsError(RekeyViaGdbus(Uuid::Random().ToString()), "EntryNotFound", 4));

  // 65539836: the SVM has a configuration, but no enabled key store at all.
  const SvmSetup plain = SetUpSvm("vs-none", {.enable = false});
  EXPECT_TRUE(IsError(RekeyViaGdbus(plain.config_uuid), "NoKeyManagerConfigured", 65539836));

  // 65539817: this configuration is not the SVM's enabled one (another one is).
  const SvmSetup s = SetUpSvm("vs1");
  VariantMap other;
  other["svm"] = sdbus::Variant(std::string("vs1"));
  other["name"] = sdbus::Variant(std::string("vs1-other"));
  other["key_id"] = sdbus::Variant(s.key.key_id);
  other["keystone_url"] = sdbus::Variant(KmsVar("KEYSTONE_URL"));
  other["application_cred_id"] = sdbus::Variant(s.credential.id);
  other["application_cred_secret_fd"] = sdbus::Variant(SecretFd(s.credential.secret));
  const std::string not_enabled = km().CreateBarbicanConfig(other);
  BusError e = RekeyViaGdbus(not_enabled);
  EXPECT_TRUE(IsError(e, "BarbicanNotConfigured", 65539817));
  EXPECT_NE(e.message.find(not_enabled), std::string::npos) << e.message;

  // 65537559: enabled, but no SVM-KEK yet (no encrypted volume).
  EXPECT_TRUE(IsError(RekeyViaProxy(s.config_uuid, 0), "NoInternalKeys", 65537559));

  // Key store states (crafted in the table file while the daemon runs).
  CreateVolume("vs1", "v1");
  struct StateCase {
    const char* state;
    const char* name;
    uint32_t code;
  };
  for (const StateCase& c : {StateCase{"switching", "KeystoreSwitching", 65537610},
                             StateCase{"initializing", "KeystoreInitializing", 65539436},
                             StateCase{"disabling", "KeystoreDisabling", 65539437},
                             StateCase{"blocked", "KeyManagerBlocked", 65537556}}) {
    SCOPED_TRACE(c.state);
    {
      TableFile t(daemon().table_path());
      ASSERT_TRUE(t.Exec("UPDATE key_stores SET state=?1 WHERE uuid=?2", {c.state, s.config_uuid}))
          << t.error();
    }
    EXPECT_TRUE(IsError(RekeyViaGdbus(s.config_uuid), c.name, c.code));
    EXPECT_EQ(KeyStoreState(s.config_uuid), c.state) << "a precheck changed the key store";
  }
  // ... and switching persists across a restart until it is resolved.
  {
    TableFile t(daemon().table_path());
    ASSERT_TRUE(t.Exec("UPDATE key_stores SET state='switching' WHERE uuid=?1", {s.config_uuid}));
  }
  ASSERT_EQ(daemon().Stop(SIGTERM), 0);
  StartDaemonAgain();
  EXPECT_TRUE(IsError(RekeyViaProxy(s.config_uuid, 0), "KeystoreSwitching", 65537610));
  {
    TableFile t(daemon().table_path());
    ASSERT_TRUE(t.Exec("UPDATE key_stores SET state='active' WHERE uuid=?1", {s.config_uuid}));
  }

  // 65537547: a volume whose key is held by the admin SVM's key manager.
  VariantMap admin;
  admin["key_manager"] = sdbus::Variant(std::string("admin"));
  const std::string admin_volume = CreateVolume("vs1", "v-admin", admin);
  EXPECT_TRUE(IsError(RekeyViaGdbus(s.config_uuid), "KeysInAdminSvm", 65537547));

  // None of these made a job; with the admin volume gone the same call succeeds.
  EXPECT_EQ(JobCount(), 0u);
  {
    TableFile t(daemon().table_path());
    ASSERT_TRUE(t.Exec("UPDATE volumes SET key_manager='data' WHERE uuid=?1", {admin_volume}));
  }
  auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 120, 180s);
  EXPECT_EQ(status, 201u) << DaemonLog();
}

// ---- 8: one rekey per SVM; new volume keys refused meanwhile ----

class ErrorCodesBusyTest : public ErrorCodesTest {
 protected:
  // A long rekey: many batch boundaries, and a pause after each (625 batches x 5 ms >=
  // 3 s), so the rekey outlasts the checks below and a 1 s return_timeout however fast
  // the machine is.
  DaemonOptions Options() override { return DaemonOptions::ThrottledRewrap(16, 5); }
};

TEST_F(ErrorCodesBusyTest, SecondRekeyWhileOneRunsIsResourceInUseNamingTheJob) {
  const SvmSetup s = SetUpSvm("vs1");
  const std::string set = MakeVolumeSet(s.svm_uuid, 10000);
  ASSERT_EQ(RegisterVolumeSet("vs1", set), 10000u);
  const auto t0 = std::chrono::steady_clock::now();
  // The first rekey through busctl with return_timeout 120: the reply waits for the job,
  // but never blocks the bus (every call below is answered meanwhile).
  auto waiting = std::async(std::launch::async, [&] {
    return Busctl(address(),
                  "--timeout=300 call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 "
                  "org.svmkey.KeyManager1 RekeyInternal sub " +
                      s.config_uuid + " 120 false");
  });
  std::string job;
  while (job.empty() && std::chrono::steady_clock::now() - t0 < 60s) {
    const auto jobs = km().ListJobs({});
    if (!jobs.empty()) job = jobs.front().at("uuid").get<std::string>();
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_FALSE(job.empty()) << "the rekey made no job";

  // A second rekey of the same SVM: 8, naming the running job (before and after the
  // key store entered svm_kek_rekey).
  BusError e = RekeyViaProxy(s.config_uuid, 0);
  EXPECT_TRUE(IsError(e, "ResourceInUse", 8));
  EXPECT_NE(e.message.find(job), std::string::npos) << e.message;

  // Wait for svm_kek_rekey (phase 3 done), then: new volume keys are refused with 8.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (KeyStoreState(s.config_uuid) != "svm_kek_rekey" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(KeyStoreState(s.config_uuid), "svm_kek_rekey");
  ASSERT_EQ(State(km().GetJob(job)), "running") << "the rekey ended too early for this test";
  e = CatchBusError([&] { CreateVolume("vs1", "new-during-rekey"); });
  EXPECT_TRUE(IsError(e, "ResourceInUse", 8));
  EXPECT_NE(e.message.find("svm_kek_rekey"), std::string::npos) << e.message;
  auto r = Gdbus(address(), "org.svmkey.KeyManager1.RekeyInternal",
                 Quote("'" + s.config_uuid + "'") + " 0 false");
  EXPECT_EQ(GdbusErrorName(r.err), Name("ResourceInUse")) << r.err;
  EXPECT_EQ(GdbusErrorMessage(r.err).rfind("8: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(job), std::string::npos) << r.err;
  // A verify of the SVM is another job of it: refused too while the rekey runs.
  e = CatchBusError([&] { km().VerifyVolumesWithin("vs1", 0, 30s); });
  EXPECT_TRUE(IsError(e, "ResourceInUse", 8));
  // The bus thread is free while a caller waits on the job.
  const auto q0 = std::chrono::steady_clock::now();
  EXPECT_EQ(State(km().GetJob(job)), "running")
      << "the checks above raced with the end of the rekey";
  EXPECT_LT(std::chrono::steady_clock::now() - q0, 2s)
      << "GetJob was slow while a reply waits on the job";
  EXPECT_EQ(waiting.wait_for(0s), std::future_status::timeout) << "the 120 s reply came early";

  const CommandResult first = waiting.get();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(first.out, "us 201 \"" + job + "\"\n") << first.err << DaemonLog();
  EXPECT_EQ(State(km().GetJob(job)), "success");
  std::printf("[busy] 10000 volumes, batch 16: rekey took %.1f s\n", took);
  // Afterwards both work again; return_timeout 1 on a rekey that takes longer: 202 at
  // the deadline, and the job goes on to success.
  EXPECT_TRUE(Uuid::Parse(CreateVolume("vs1", "new-after-rekey")));
  const auto t1 = std::chrono::steady_clock::now();
  auto [status2, job2] = km().RekeyInternalWithin(s.config_uuid, 1, 30s);
  const auto waited = std::chrono::steady_clock::now() - t1;
  EXPECT_EQ(status2, 202u);
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(State(km().GetJob(job2)), "running");
  EXPECT_EQ(State(WaitJob(job2)), "success");
}

// ---- failures that come from the real Keystone / Barbican ----

TEST_F(ErrorCodesTest, RevokedApplicationCredentialIsBlocked) {
  const SvmSetup s = SetUpSvm("vs1", {.own_credential = true, .volumes = 2});
  DeleteCredential(s.credential);
  // The daemon caches a token per configuration; a settings change drops the client, so
  // the next fetch logs in again with the revoked credential (Keystone: 404).
  VariantMap settings;
  settings["timeout"] = sdbus::Variant(uint32_t{20});
  km().UpdateBarbicanConfig(s.config_uuid, settings);

  // Prechecks pass (the table does not know yet): the job fails in phase 2.
  BusError e = RekeyViaProxy(s.config_uuid, 120);
  EXPECT_TRUE(IsError(e, "KeyManagerBlocked", 65537556)) << DaemonLog();
  const VariantMap job = LastJob(s.svm_uuid);
  EXPECT_EQ(State(job), "failure");
  EXPECT_EQ(Code(job), 65537556u);
  EXPECT_EQ(Message(job).rfind("65537556: ", 0), 0u) << Message(job);
  // Nothing changed: generation 1 active, no pending key, key store active.
  TableFile t(daemon().table_path());
  EXPECT_EQ(t.QueryInt("SELECT count(*) FROM svm_keks WHERE svm_uuid=?1", {s.svm_uuid}), 1);
  EXPECT_EQ(KeyStoreState(s.config_uuid), "active");
  // The secret never shows up in the job's text.
  EXPECT_EQ(Message(job).find(s.credential.secret), std::string::npos);
}

TEST_F(ErrorCodesTest, DeletedBarbicanSecretIsKeyIdNotFound) {
  const SvmSetup s = SetUpSvm("vs1", {.own_secret = true, .volumes = 2});
  DeleteSecret(s.key);
  // return_timeout 0: 202, then the job fails with the code as its Code property.
  auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
  EXPECT_EQ(status, 202u);
  const VariantMap end = WaitJob(job, 120s);
  EXPECT_EQ(State(end), "failure");
  EXPECT_EQ(Code(end), 65539834u);
  {
    JobProxy jp(connection(), JobPath(job));
    EXPECT_EQ(jp.Code(), 65539834u);
    EXPECT_EQ(jp.State(), "failure");
    EXPECT_EQ(jp.Message().rfind("65539834: ", 0), 0u) << jp.Message();
  }
  EXPECT_TRUE(km().WaitJobChanged(job, "failure", 10s));
  // return_timeout 120: the job's error is the reply.
  EXPECT_TRUE(IsError(RekeyViaProxy(s.config_uuid, 120), "KeyIdNotFound", 65539834));
}

// ---- 65539202: the stored SVM-KEK does not open under the Barbican key ----

TEST_F(ErrorCodesTest, SvmKekRowWrappedUnderAnotherKeyIsDecryptFailed) {
  const SvmSetup s = SetUpSvm("vs1", {.volumes = 2});
  const SvmSetup other = SetUpSvm("vs2", {.own_secret = true, .volumes = 1});
  std::vector<uint8_t> original, foreign;
  {
    TableFile t(daemon().table_path());
    original = t.QueryBlob("SELECT wrapped FROM svm_keks WHERE svm_uuid=?1", {s.svm_uuid}).value();
    foreign =
        t.QueryBlob("SELECT wrapped FROM svm_keks WHERE svm_uuid=?1", {other.svm_uuid}).value();
    // vs1's row now holds a blob sealed under another Barbican key (vs2's).
    ASSERT_TRUE(
        t.SetBlob("UPDATE svm_keks SET wrapped=?1 WHERE svm_uuid=?2", foreign, {s.svm_uuid}))
        << t.error();
  }
  EXPECT_TRUE(IsError(RekeyViaProxy(s.config_uuid, 120), "DecryptFailed", 65539202));
  EXPECT_EQ(Code(LastJob(s.svm_uuid)), 65539202u);
  // A flipped bit in the tag is the same failure.
  std::vector<uint8_t> flipped = original;
  flipped.back() ^= 0x01;
  {
    TableFile t(daemon().table_path());
    ASSERT_TRUE(
        t.SetBlob("UPDATE svm_keks SET wrapped=?1 WHERE svm_uuid=?2", flipped, {s.svm_uuid}));
  }
  auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
  EXPECT_EQ(status, 202u);
  EXPECT_EQ(Code(WaitJob(job, 120s)), 65539202u);
  // Nothing was changed by the failures: with the right blob back, the rekey succeeds.
  {
    TableFile t(daemon().table_path());
    ASSERT_TRUE(
        t.SetBlob("UPDATE svm_keks SET wrapped=?1 WHERE svm_uuid=?2", original, {s.svm_uuid}));
    EXPECT_EQ(t.QueryInt("SELECT count(*) FROM svm_keks WHERE svm_uuid=?1", {s.svm_uuid}), 1);
  }
  auto [ok_status, ok_job] = km().RekeyInternalWithin(s.config_uuid, 120, 180s);
  EXPECT_EQ(ok_status, 201u) << DaemonLog();
}

// ---- phase 4 failures from crafted volume metadata files ----

struct FileCase {
  const char* what;
  const char* name;
  uint32_t code;
};

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

TEST_F(ErrorCodesTest, CorruptForeignAndMissingMetadataFailTheJobWithTheirCodes) {
  const std::vector<FileCase> cases = {
      {"header magic overwritten", "InvalidEncryptionBlob", 65536889},
      {"another volume's file", "InvalidEncryptionBlob", 65536889},
      {"header with a nil volume uuid", "VolumeUuidMissing", 65536882},
      {"header with DSID 0", "VolumeDsidMissing", 65536973},
      {"file deleted", "VolumeKeyMissing", 65536883},
      {"both slots empty", "VolumeKeyMissing", 65536883},
      {"slot with key length 33", "VolumeKeyInvalid", 65536884},
  };
  int n = 0;
  for (const FileCase& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string name = "vs" + std::to_string(++n);
    const SvmSetup s = SetUpSvm(name);
    std::vector<std::string> volumes;
    for (int i = 0; i < 3; ++i) volumes.push_back(CreateVolume(name, "v" + std::to_string(i)));
    const std::string victim = MetadataPath(volumes[1]);
    const std::vector<uint8_t> good = ReadBytes(victim);
    ASSERT_EQ(good.size(), kMetadataFileSize);
    std::vector<uint8_t> bad = good;
    const std::string what = c.what;
    VolumeIdentity id;
    uint32_t flags = 0;
    ASSERT_TRUE(DecodeHeader(std::span(good).first(kSectorSize), &id, &flags).ok());
    if (what == "header magic overwritten") {
      std::memcpy(bad.data(), "XXXXXXXX", 8);
    } else if (what == "another volume's file") {
      bad = ReadBytes(MetadataPath(volumes[0]));
    } else if (what == "header with a nil volume uuid") {
      VolumeIdentity nil = id;
      nil.volume = Uuid{};
      EncodeHeader(nil, flags, bad.data());
    } else if (what == "header with DSID 0") {
      VolumeIdentity zero = id;
      zero.dsid = 0;
      EncodeHeader(zero, flags, bad.data());
    } else if (what == "both slots empty") {
      std::fill(bad.begin() + 512, bad.begin() + 1536, 0);
    } else if (what == "slot with key length 33") {
      auto meta = DecodeMetadataFile(good, &id);
      ASSERT_TRUE(meta.ok());
      VdekSlot slot = *meta->slot[0];
      slot.key_length = 33;
      EncodeSlot(slot, 0, bad.data() + 512);
      std::fill(bad.begin() + 1024, bad.begin() + 1536, 0);
    }
    if (what == "file deleted") {
      ASSERT_EQ(::unlink(victim.c_str()), 0);
    } else {
      WriteBytes(victim, bad);
    }

    // return_timeout 120: the job's error is the reply; the job object has the code.
    const BusError e = RekeyViaProxy(s.config_uuid, 120);
    EXPECT_TRUE(IsError(e, c.name, c.code)) << DaemonLog();
    EXPECT_NE(e.message.find(volumes[1]), std::string::npos)
        << "the message does not name the volume";
    const VariantMap job = LastJob(s.svm_uuid);
    EXPECT_EQ(State(job), "failure");
    {
      JobProxy jp(connection(), JobPath(job.at("uuid").get<std::string>()));
      EXPECT_EQ(jp.Code(), c.code);
      EXPECT_EQ(jp.State(), "failure");
    }
    // return_timeout 0: 202, then the same failure as the job's Code.
    auto [status, job2] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
    EXPECT_EQ(status, 202u);
    EXPECT_EQ(Code(WaitJob(job2, 120s)), c.code);
    // The failure kept both keys and left the key store active; the other volumes are
    // readable, and after the file is repaired a rerun completes the rotation.
    EXPECT_EQ(KeyStoreState(s.config_uuid), "active");
    {
      TableFile t(daemon().table_path());
      EXPECT_EQ(t.QueryText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=2",
                            {s.svm_uuid}),
                "pending");
    }
    if (n == 1) {
      WriteBytes(victim, good);
      auto [st3, job3] = km().RekeyInternalWithin(s.config_uuid, 120, 180s);
      EXPECT_EQ(st3, 201u) << DaemonLog();
      auto [vs, vj] = km().VerifyVolumesWithin(name, 120, 180s);
      EXPECT_EQ(vs, 201u);
      EXPECT_EQ(Message(km().GetJob(vj)), "3 volumes verified, 0 failed");
    }
  }
}

// 65537565: the rewrapped slot cannot be written. The volume's metadata file is made
// immutable (FS_IMMUTABLE_FL, as `chattr +i`): it still reads fine, and the daemon's
// read-write open really fails (EPERM), which is the blob that cannot be updated, not a
// damaged one.
namespace {
bool SetImmutable(const std::string& path, bool on) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  ok = ok && ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

TEST_F(ErrorCodesTest, MetadataWriteFailureIsVdekBlobUpdateFailed) {
  const SvmSetup s = SetUpSvm("vs1");
  std::vector<std::string> volumes;
  for (int i = 0; i < 3; ++i) volumes.push_back(CreateVolume("vs1", "v" + std::to_string(i)));
  const std::string victim = MetadataPath(volumes[2]);
  ASSERT_TRUE(SetImmutable(victim, true)) << "the test's file system must support chattr +i";
  // Proof that the file refuses writes (and allows reads) before the daemon tries.
  {
    const int probe = ::open(victim.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(probe, 0);
    char sector[512] = {};
    EXPECT_EQ(::pread(probe, sector, sizeof sector, 0), 512);
    ::close(probe);
    EXPECT_EQ(::open(victim.c_str(), O_RDWR | O_CLOEXEC), -1);
    EXPECT_EQ(errno, EPERM);
  }
  const BusError e = RekeyViaProxy(s.config_uuid, 120);
  const bool restored = SetImmutable(victim, false);
  EXPECT_TRUE(IsError(e, "VdekBlobUpdateFailed", 65537565)) << DaemonLog();
  EXPECT_NE(e.message.find(volumes[2]), std::string::npos) << e.message;
  EXPECT_EQ(Code(LastJob(s.svm_uuid)), 65537565u);
  // Resumable: the blob is still readable (it was never touched), and with the file
  // writable again the rerun completes.
  ASSERT_TRUE(restored);
  auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 120, 180s);
  EXPECT_EQ(status, 201u) << DaemonLog();
  auto [vs, vj] = km().VerifyVolumesWithin("vs1", 120, 180s);
  EXPECT_EQ(vs, 201u);
}

}  // namespace
}  // namespace svmkey::integration
