// Job control over the bus (docs/ARCHITECTURE.md §7): Job1's Pause, Resume and Cancel
// called with gdbus and busctl as a member of group svmkey, refused to a caller that is
// not; Cancelable and StartedByUID; a paused job stays paused across a kill -9 and a
// restart; a cancel before the commit leaves both SVM-KEK generations and the key store
// active, and a rerun completes the rotation with every VDEK unchanged.
#include <sodium.h>

#include <thread>

#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

constexpr uint64_t kVolumes = 10000;
constexpr const char* kJob1 = "org.svmkey.Job1";

class JobControlTest : public DaemonTest {
 protected:
  // ~80 batches with a 20 ms pause after each: the rewrap lasts well over a second, so
  // a request lands between batches.
  DaemonOptions Options() override { return DaemonOptions::ThrottledRewrap(128, 20); }
  // Every local user may send to the daemon, so that the daemon's own check (not the
  // bus policy) is what refuses a caller outside group svmkey.
  std::string ExtraPolicy() override {
    return "  <policy context=\"mandatory\">\n"
           "    <allow send_destination=\"org.svmkey.KeyManager1\"/>\n"
           "  </policy>\n";
  }

  void SetUp() override {
    DaemonTest::SetUp();
    users_ = EnsureTestUsers();
    ASSERT_TRUE(users_.error.empty()) << users_.error;
  }

  static std::string PathOf(const std::string& job) {
    std::string p = job;
    for (char& c : p) c = c == '-' ? '_' : c;
    return "/org/svmkey/KeyManager1/job/" + p;
  }

  // Job1.<method> on `job` with gdbus as `user`; returns the D-Bus error name ("" = OK).
  std::string Control(const std::string& job, const std::string& method,
                      const std::string& user = kOperatorUser, std::string* message = nullptr) {
    const CommandResult r =
        Gdbus(address(), std::string(kJob1) + "." + method, "", user, PathOf(job));
    if (message) *message = GdbusErrorMessage(r.err);
    if (r.status == 0) return "";
    const std::string name = GdbusErrorName(r.err);
    return name.empty() ? "exit " + std::to_string(r.status) + ": " + r.err : name;
  }

  // A Job1 property with busctl (busctl's text form, e.g. `s "paused"`, `b true`).
  std::string Property(const std::string& job, const std::string& name) {
    const CommandResult r = Busctl(
        address(), "get-property org.svmkey.KeyManager1 " + PathOf(job) + " " + kJob1 + " " + name);
    EXPECT_EQ(r.status, 0) << r.err;
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  // Polls GetJob until the state is `state` (or the timeout); returns the last map.
  VariantMap WaitState(const std::string& job, const std::string& state,
                       std::chrono::seconds timeout = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    VariantMap j = km().GetJob(job);
    while (State(j) != state && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
      j = km().GetJob(job);
    }
    return j;
  }

  // Polls until the job has rewrapped at least `volumes`.
  uint64_t WaitDone(const std::string& job, uint64_t volumes) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    for (;;) {
      const VariantMap j = km().GetJob(job);
      const uint64_t done = j.at("volumes_done").get<uint64_t>();
      const bool unfinished = State(j) == "running" || State(j) == "queued";
      if (done >= volumes || !unfinished || std::chrono::steady_clock::now() > deadline) {
        return done;
      }
      std::this_thread::sleep_for(2ms);
    }
  }

  std::string TableText(const std::string& sql, const std::string& param) {
    TableFile t(daemon().table_path());
    return t.QueryText(sql, {param}).value_or("(none)");
  }

  TestUsers users_;
};

TEST_F(JobControlTest, PauseSurvivesARestartResumeContinuesCancelKeepsBothKeysRerunCompletes) {
  const SvmSetup s = SetUpSvm("vs1");
  const std::string set = MakeVolumeSet(s.svm_uuid, kVolumes);
  ASSERT_EQ(RegisterVolumeSet("vs1", set), kVolumes);
  std::array<uint8_t, 32> fp_key{};
  randombytes_buf(fp_key.data(), fp_key.size());
  std::string error;
  const VolumeFingerprints before =
      FingerprintVolumes(daemon().table_path(), s.svm_uuid, 1, 1, s.key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(before.opened, kVolumes);

  // The member of group svmkey starts the rekey: StartedByUID is its uid.
  const CommandResult started = Busctl(
      address(),
      "call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 org.svmkey.KeyManager1 RekeyInternal "
      "sub " +
          s.config_uuid + " 0 false",
      kOperatorUser);
  ASSERT_EQ(started.status, 0) << started.err;
  const size_t q = started.out.find('"');
  ASSERT_NE(q, std::string::npos) << started.out;
  const std::string job = started.out.substr(q + 1, started.out.find('"', q + 1) - q - 1);
  EXPECT_EQ(Property(job, "StartedByUID"), "u " + std::to_string(users_.operator_uid));
  EXPECT_EQ(km().GetJob(job).at("started_by_uid").get<uint32_t>(), users_.operator_uid);
  ASSERT_GT(WaitDone(job, kVolumes / 10), 0u);
  EXPECT_EQ(Property(job, "Cancelable"), "b true");

  // Not in group svmkey: refused by the daemon, the job unaffected.
  std::string msg;
  for (const char* method : {"Pause", "Cancel", "Resume"}) {
    EXPECT_EQ(Control(job, method, kUnprivUser, &msg), "org.svmkey.Error.PermissionDenied")
        << method;
    EXPECT_NE(msg.find("6: "), std::string::npos) << msg;
  }

  // Pause: stops at a batch boundary, both generations and svm_kek_rekey kept.
  ASSERT_EQ(Control(job, "Pause"), "");
  VariantMap j = WaitState(job, "paused");
  ASSERT_EQ(State(j), "paused") << Message(j) << DaemonLog();
  EXPECT_EQ(Property(job, "State"), "s \"paused\"");
  EXPECT_EQ(Property(job, "Cancelable"), "b true");
  EXPECT_TRUE(j.at("cancelable").get<bool>());
  const uint64_t paused_at = j.at("volumes_done").get<uint64_t>();
  EXPECT_GT(paused_at, 0u);
  EXPECT_LT(paused_at, kVolumes);
  EXPECT_EQ(TableText("SELECT state FROM key_stores WHERE uuid=?1", s.config_uuid),
            "svm_kek_rekey");
  EXPECT_EQ(TableText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=2", s.svm_uuid),
            "pending");
  EXPECT_EQ(Control(job, "Pause", kOperatorUser, &msg), "org.svmkey.Error.InvalidValue");
  EXPECT_NE(msg.find("already paused"), std::string::npos) << msg;
  EXPECT_NE(
      daemon().LogTail(1 << 20).find("pause asked by uid " + std::to_string(users_.operator_uid)),
      std::string::npos)
      << DaemonLog();
  // The paused job holds the SVM: no second rekey.
  const CommandResult second =
      Busctl(address(),
             "call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 org.svmkey.KeyManager1 "
             "RekeyInternal sub " +
                 s.config_uuid + " 0 false");
  EXPECT_NE(second.status, 0);
  EXPECT_NE(second.err.find("8: "), std::string::npos) << second.err;

  // kill -9 and a restart: still paused, not resumed, nothing moves.
  daemon().Kill9();
  StartDaemonAgain();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(daemon().LogTail(1 << 20).find("resuming job " + job), std::string::npos)
      << DaemonLog();
  std::this_thread::sleep_for(300ms);
  j = km().GetJob(job);
  EXPECT_EQ(State(j), "paused");
  EXPECT_EQ(j.at("volumes_done").get<uint64_t>(), paused_at);
  EXPECT_EQ(Property(job, "State"), "s \"paused\"");
  EXPECT_EQ(Property(job, "StartedByUID"), "u " + std::to_string(users_.operator_uid));

  // Resume (busctl, as the member): continues from where it stopped.
  const CommandResult resumed =
      Busctl(address(), "call org.svmkey.KeyManager1 " + PathOf(job) + " " + kJob1 + " Resume",
             kOperatorUser);
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(Control(job, "Resume", kOperatorUser, &msg), "org.svmkey.Error.InvalidValue");
  ASSERT_GT(WaitDone(job, paused_at + 1), paused_at) << DaemonLog();
  EXPECT_EQ(Property(job, "State"), "s \"running\"");

  // Cancel before the commit: failure 458762, both generations kept, key store active.
  ASSERT_EQ(Control(job, "Cancel"), "") << DaemonLog();
  j = WaitJob(job, 120s);
  ASSERT_EQ(State(j), "failure") << Message(j) << DaemonLog();
  EXPECT_EQ(Code(j), 458762u) << Message(j);
  EXPECT_NE(Message(j).find("Job canceled by the operator."), std::string::npos) << Message(j);
  EXPECT_FALSE(j.at("cancelable").get<bool>());
  EXPECT_EQ(Property(job, "Cancelable"), "b false");
  EXPECT_EQ(Property(job, "Code"), "u 458762");
  EXPECT_EQ(TableText("SELECT state FROM key_stores WHERE uuid=?1", s.config_uuid), "active");
  EXPECT_EQ(TableText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=1", s.svm_uuid),
            "active");
  EXPECT_EQ(TableText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=2", s.svm_uuid),
            "pending");
  // A finished job: every action refused with 262185.
  for (const char* method : {"Pause", "Cancel", "Resume"}) {
    EXPECT_EQ(Control(job, method, kOperatorUser, &msg), "org.svmkey.Error.InvalidValue") << method;
    EXPECT_NE(msg.find("already ended"), std::string::npos) << msg;
  }

  // The rerun adopts the pending key and completes; every VDEK unchanged at generation 2.
  const auto wrapped_pending = TableFile(daemon().table_path())
                                   .QueryBlob(
                                       "SELECT wrapped FROM svm_keks WHERE svm_uuid=?1 "
                                       "AND generation=2",
                                       {s.svm_uuid});
  auto [status, rerun] = km().RekeyInternalWithin(s.config_uuid, 120, 300s);
  ASSERT_EQ(status, 201u) << DaemonLog();
  EXPECT_EQ(TableFile(daemon().table_path())
                .QueryBlob("SELECT wrapped FROM svm_keks WHERE svm_uuid=?1 AND state='active'",
                           {s.svm_uuid}),
            wrapped_pending);
  const VolumeFingerprints after =
      FingerprintVolumes(daemon().table_path(), s.svm_uuid, 2, 2, s.key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(after.opened, kVolumes);
  size_t changed = 0;
  for (size_t i = 0; i < after.fingerprints.size() && i < before.fingerprints.size(); ++i) {
    changed += after.fingerprints[i] != before.fingerprints[i];
  }
  EXPECT_EQ(changed, 0u);
}

TEST_F(JobControlTest, CancelOfAPausedJobRecordsItAtOnce) {
  const SvmSetup s = SetUpSvm("vs1");
  const std::string set = MakeVolumeSet(s.svm_uuid, kVolumes);
  ASSERT_EQ(RegisterVolumeSet("vs1", set), kVolumes);
  auto [status, job] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
  ASSERT_EQ(status, 202u);
  EXPECT_EQ(km().GetJob(job).at("started_by_uid").get<uint32_t>(), 0u);  // root
  ASSERT_GT(WaitDone(job, 1000), 0u);
  // Root, through the generated Job1 proxy.
  JobProxy proxy(connection(), PathOf(job));
  proxy.Pause();
  ASSERT_EQ(State(WaitState(job, "paused")), "paused") << DaemonLog();
  const uint64_t paused_at = km().GetJob(job).at("volumes_done").get<uint64_t>();
  proxy.Cancel();
  const VariantMap j = WaitJob(job, 60s);
  ASSERT_EQ(State(j), "failure") << DaemonLog();
  EXPECT_EQ(Code(j), 458762u);
  EXPECT_EQ(j.at("volumes_done").get<uint64_t>(), paused_at);  // no batch after the pause
  EXPECT_EQ(TableText("SELECT state FROM key_stores WHERE uuid=?1", s.config_uuid), "active");

  // A rerun completes the rotation from the pending key.
  auto [rs, rerun] = km().RekeyInternalWithin(s.config_uuid, 120, 300s);
  EXPECT_EQ(rs, 201u) << DaemonLog();
  EXPECT_EQ(TableText("SELECT state FROM svm_keks WHERE svm_uuid=?1 AND generation=2", s.svm_uuid),
            "active");
}

}  // namespace
}  // namespace svmkey::integration
