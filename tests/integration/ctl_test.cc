// svmkeyctl against a running svmkeyd (issue 6): every verb, the JSON shape of every read
// command, the exit statuses (0 success, 1 failure with the daemon's ONTAP code, 2 usage),
// --help with an example on every verb, ONTAP's one-dash options, and the progress bar as
// a terminal sees it (the command runs on a pseudo-terminal).
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <filesystem>
#include <regex>
#include <thread>

#include "engine/uuid.h"
#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A uuid in the engine's canonical (lower-case, hyphenated) spelling.
bool IsUuid(const json& j) {
  if (!j.is_string()) return false;
  const auto u = Uuid::Parse(j.get<std::string>());
  return u && u->ToString() == j.get<std::string>();
}

// Runs `/bin/sh -c command` with a pseudo-terminal as its stdin, stdout and stderr;
// returns what the terminal received and the exit status (-1 when it timed out).
CommandResult OnTerminal(const std::string& command, std::chrono::seconds timeout) {
  CommandResult r;
  int master = -1;
  winsize ws{};
  ws.ws_row = 40;
  ws.ws_col = 160;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
  if (pid < 0) {
    r.err = std::string("forkpty: ") + std::strerror(errno);
    return r;
  }
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO: every slave end closed (the command is done)
    r.out.append(buf, static_cast<size_t>(n));
  }
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

class CtlTest : public DaemonTest {
 protected:
  // The progress-bar test needs a rewrap phase that lasts a few redraws (200 ms each).
  DaemonOptions Options() override { return DaemonOptions::ThrottledRewrap(256, 40); }

  std::string Prefix() const {
    return Quote(SVMKEYCTL_PATH) + " --address " + Quote(address()) + " ";
  }
  CommandResult Ctl(const std::string& args, std::chrono::seconds timeout = 300s) {
    return Sh(Prefix() + args, timeout);
  }
  // Runs a command that must succeed; returns its stdout.
  std::string Ok(const std::string& args) {
    const CommandResult r = Ctl(args);
    EXPECT_EQ(r.status, 0) << "svmkeyctl " << args << "\nstdout: " << r.out << "\nstderr: " << r.err
                           << DaemonLog();
    return r.out;
  }
  // `--json` + args, which must succeed and print one JSON document.
  json Json(const std::string& args) {
    const std::string out = Ok("--json " + args);
    json j = json::parse(out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON from svmkeyctl --json " << args << ":\n" << out;
    return j;
  }
  std::string CreateConfigArgs(const std::string& svm, const std::string& name) {
    return "barbican create-config --svm " + svm + " --config-name " + name + " --key-id " +
           Quote(KmsVar("BARBICAN_KEY_ID")) + " --keystone-url " + Quote(KmsVar("KEYSTONE_URL")) +
           " --application-cred-id " + Quote(KmsVar("APP_CRED_ID")) +
           " --application-cred-secret-file " + Quote(SecretFile(KmsVar("APP_CRED_SECRET"))) +
           " --ca-file " + Quote(KmsVar("CA_FILE"));
  }
  // The ONTAP code at the start of a bus error's message ("<code>: <text>").
  static std::string CodeOf(const BusError& e) { return e.message.substr(0, e.message.find(':')); }
};

const json* Find(const json& rows, const std::string& key, const std::string& value) {
  for (const json& r : rows) {
    if (r.contains(key) && r[key] == value) return &r;
  }
  return nullptr;
}

// Every verb once, in the order an administrator would use them, with the JSON shape of
// every read command.
TEST_F(CtlTest, EveryVerbAgainstTheDaemonWithItsJsonShape) {
  // svm create / show
  const std::string created = Ok("svm create ctl1");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(created, m, std::regex("Created SVM ctl1: ([0-9a-f-]{36})")))
      << created;
  const std::string svm_uuid = m[1];
  const json svm2 = Json("svm create ctl2");
  ASSERT_TRUE(IsUuid(svm2["uuid"])) << svm2.dump();
  const json svms = Json("svm show");
  ASSERT_TRUE(svms.is_array());
  const json* row = Find(svms, "name", "ctl1");
  ASSERT_NE(row, nullptr) << svms.dump();
  EXPECT_EQ((*row)["uuid"], svm_uuid);
  EXPECT_EQ((*row)["kind"], "data");
  for (const char* k : {"name", "uuid", "kind", "key_generation"})
    EXPECT_TRUE(row->contains(k)) << k;

  // barbican create-config / show (secrets never shown)
  const json cfg = Json(CreateConfigArgs("ctl1", "c1"));
  ASSERT_TRUE(IsUuid(cfg["uuid"])) << cfg.dump();
  const std::string config_uuid = cfg["uuid"];
  const json shown = Json("barbican show --svm ctl1 --config-name c1");
  ASSERT_TRUE(shown.is_object()) << shown.dump();
  EXPECT_EQ(shown["uuid"], config_uuid);
  EXPECT_EQ(shown["name"], "c1");
  EXPECT_EQ(shown["key_id"], KmsVar("BARBICAN_KEY_ID"));
  EXPECT_EQ(shown["application_cred_id"], KmsVar("APP_CRED_ID"));
  for (const char* k : {"state", "enabled", "keystone_url", "verify", "timeout"}) {
    EXPECT_TRUE(shown.contains(k)) << k << " missing in " << shown.dump();
  }
  const std::string text = Ok("barbican show --svm ctl1 --config-name c1");
  EXPECT_EQ(text.find(KmsVar("APP_CRED_SECRET")), std::string::npos);
  EXPECT_EQ(shown.dump().find(KmsVar("APP_CRED_SECRET")), std::string::npos);
  const json listed = Json("barbican show --svm ctl1");
  ASSERT_TRUE(listed.is_array()) << listed.dump();
  EXPECT_NE(Find(listed, "uuid", config_uuid), nullptr);

  // keystore enable / show
  EXPECT_NE(Ok("keystore enable --svm ctl1 --config-name c1").find("Enabled key store"),
            std::string::npos);
  const json stores = Json("keystore show --svm ctl1");
  ASSERT_TRUE(stores.is_array());
  const json* store = Find(stores, "uuid", config_uuid);
  ASSERT_NE(store, nullptr) << stores.dump();
  EXPECT_EQ((*store)["enabled"], true);
  for (const char* k : {"svm", "name", "type", "state"}) EXPECT_TRUE(store->contains(k)) << k;

  // barbican check
  const json reach = Json("barbican check --svm ctl1");
  EXPECT_EQ(reach["reachable"], true) << reach.dump();
  EXPECT_EQ(reach["uuid"], config_uuid);

  // volume create / list
  for (int i = 0; i < 3; ++i) Ok("volume create --svm ctl1 --name v" + std::to_string(i));
  const json v = Json("volume create --svm ctl1 --name v3 --dsid 4242");
  ASSERT_TRUE(IsUuid(v["uuid"])) << v.dump();
  json vols = Json("volume list --svm ctl1");
  ASSERT_TRUE(vols.is_array());
  ASSERT_EQ(vols.size(), 4u) << vols.dump();
  for (const json& r : vols) {
    EXPECT_TRUE(IsUuid(r["uuid"])) << r.dump();
    EXPECT_EQ(r["key_generation"], 1) << r.dump();
    for (const char* k : {"name", "path", "key_manager"}) EXPECT_TRUE(r.contains(k)) << k;
  }
  EXPECT_EQ(Json("volume list --svm ctl1 --limit 2").size(), 2u);

  // barbican rekey-internal, followed to the end: the job as JSON.
  const json job = Json("barbican rekey-internal --svm ctl1");
  EXPECT_EQ(job["state"], "success") << job.dump();
  EXPECT_EQ(job["volumes_done"], 4);
  EXPECT_EQ(job["volumes_total"], 4);
  ASSERT_TRUE(IsUuid(job["uuid"])) << job.dump();
  vols = Json("volume list --svm ctl1");
  for (const json& r : vols) EXPECT_EQ(r["key_generation"], 2) << r.dump();

  // --no-wait: the 202 reply; job watch / show / list
  const std::string accepted = Ok("barbican rekey-internal --svm ctl1 --no-wait");
  ASSERT_TRUE(std::regex_search(accepted, m, std::regex("^202 Accepted: job ([0-9a-f-]{36})")))
      << accepted;
  const std::string job2 = m[1];
  const std::string watched = Ok("job watch " + job2);
  EXPECT_NE(watched.find("Job " + job2 + " succeeded"), std::string::npos) << watched;
  const json shown_job = Json("job show " + job2);
  EXPECT_EQ(shown_job["uuid"], job2);
  EXPECT_EQ(shown_job["state"], "success");
  EXPECT_EQ(shown_job["code"], 0);
  for (const char* k : {"description", "message", "phase", "start_time", "end_time"}) {
    EXPECT_TRUE(shown_job.contains(k)) << k;
  }
  const json jobs = Json("job list --svm ctl1");
  ASSERT_TRUE(jobs.is_array());
  EXPECT_NE(Find(jobs, "uuid", job2), nullptr);
  EXPECT_NE(Find(jobs, "uuid", job["uuid"].get<std::string>()), nullptr);
  const json ok_jobs = Json("job list --state success");
  for (const json& r : ok_jobs) EXPECT_EQ(r["state"], "success") << r.dump();
  const json accepted_json = Json("barbican rekey-internal --svm ctl1 --no-wait");
  EXPECT_EQ(accepted_json["status"], 202) << accepted_json.dump();
  ASSERT_TRUE(IsUuid(accepted_json["job"]["uuid"])) << accepted_json.dump();
  EXPECT_EQ(WaitJob(accepted_json["job"]["uuid"], 120s)["state"].get<std::string>(), "success");

  // volume verify, barbican restore (each a job followed to the end)
  EXPECT_NE(Ok("volume verify --svm ctl1").find("succeeded"), std::string::npos);
  EXPECT_NE(Ok("barbican restore --svm ctl1").find("succeeded"), std::string::npos);

  // barbican update-config / update-credentials
  Ok("barbican update-config --svm ctl1 --config-name c1 --timeout 33 --verify-host true");
  EXPECT_EQ(Json("barbican show --uuid " + config_uuid)["timeout"], 33);
  Ok("barbican update-credentials --uuid " + config_uuid + " --application-cred-id " +
     Quote(KmsVar("APP_CRED_ID")) + " --application-cred-secret-file " +
     Quote(SecretFile(KmsVar("APP_CRED_SECRET"))));
  EXPECT_EQ(Json("barbican check --uuid " + config_uuid)["reachable"], true);

  // keystore delete (an inactive configuration)
  const json c2 = Json(CreateConfigArgs("ctl1", "c2"));
  Ok("keystore delete --svm ctl1 --config-name c2");
  EXPECT_EQ(Find(Json("barbican show --svm ctl1"), "uuid", c2["uuid"].get<std::string>()), nullptr);

  // volume register-set: a set made by svmkey-volset, adopted by an SVM with an enabled
  // key store and no SVM-KEK yet
  Json(CreateConfigArgs("ctl2", "c1"));
  Ok("keystore enable -vserver ctl2 -config-name c1");
  const std::string set = MakeVolumeSet(svm2["uuid"], 40);
  const std::string reg = Ok("volume register-set --svm ctl2 --dir " + Quote(set) + " --kek-file " +
                             Quote(set + "/kek.bin"));
  EXPECT_NE(reg.find("Registered 40 volumes"), std::string::npos) << reg;
  // svmkeyctl (not svmkeyd) removes the caller's KEK file after a complete registration.
  EXPECT_FALSE(std::filesystem::exists(set + "/kek.bin")) << "svmkeyctl left the KEK file";
  EXPECT_EQ(Json("volume list --svm ctl2").size(), 40u);
  EXPECT_NE(Ok("volume verify --svm ctl2").find("succeeded"), std::string::npos);

  // volume repair: a deleted metadata file comes back from the table's copy (ctl1: its
  // volumes were created by the daemon, which keeps a copy of each blob from the start)
  const std::string lost = Json("volume list --svm ctl1")[0]["path"];
  ASSERT_EQ(::unlink(lost.c_str()), 0);
  const std::string dry = Ok("volume repair --svm ctl1 --dry-run");
  EXPECT_NE(dry.find("4 volumes checked, 1 to repair, 0 failed (dry run)"), std::string::npos)
      << dry;
  EXPECT_NE(::access(lost.c_str(), F_OK), 0) << "the dry run wrote";
  const std::string repaired = Ok("volume repair --svm ctl1");
  EXPECT_NE(repaired.find("4 volumes checked, 1 repaired, 0 failed"), std::string::npos)
      << repaired;
  EXPECT_EQ(::access(lost.c_str(), F_OK), 0);
  EXPECT_NE(Ok("volume verify --svm ctl1").find("succeeded"), std::string::npos);
}

// Failures exit 1 and print the daemon's own ONTAP code; usage errors exit 2.
TEST_F(CtlTest, ExitStatusesAndCodes) {
  const SvmSetup s = SetUpSvm("vs1", {.own_secret = true, .volumes = 2});

  // A duplicate SVM: the code is the one the daemon replies with on the bus.
  const BusError dup = CatchBusError([&] { km().CreateSvm("vs1", {}); });
  ASSERT_FALSE(dup.name.empty());
  CommandResult r = Ctl("svm create vs1");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_EQ(r.err.rfind("Error: " + CodeOf(dup) + ": ", 0), 0u) << r.err;

  // A malformed uuid (invalid value) and an unknown one.
  const BusError bad = CatchBusError([&] { km().RekeyInternal("not-a-uuid", 0, false); });
  r = Ctl("barbican rekey-internal --uuid not-a-uuid");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("Error: " + CodeOf(bad) + ": ", 0), 0u) << r.err;
  const BusError missing =
      CatchBusError([&] { km().RekeyInternal("0b6f7c1e-1d8c-4c55-9a3e-5d3f3b0a7e11", 0, false); });
  r = Ctl("barbican rekey-internal --uuid 0b6f7c1e-1d8c-4c55-9a3e-5d3f3b0a7e11");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("Error: " + CodeOf(missing) + ": ", 0), 0u) << r.err;
  EXPECT_NE(CodeOf(bad), CodeOf(missing));

  // return_timeout out of range (invalid value naming return_timeout).
  r = Ctl("barbican rekey-internal --svm vs1 --return-timeout 121");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("return_timeout"), std::string::npos) << r.err;

  // A job that fails (the Barbican secret is gone): exit 1, the job's code printed.
  DeleteSecret(s.key);
  r = Ctl("barbican rekey-internal --svm vs1");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("failed: code 65539834"), std::string::npos) << r.out << r.err;
  r = Ctl("--json barbican rekey-internal --svm vs1");
  EXPECT_EQ(r.status, 1);
  const json failed = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(failed.is_discarded()) << r.out;
  EXPECT_EQ(failed["state"], "failure");
  EXPECT_EQ(failed["code"], 65539834);

  // No daemon on the bus: a bus-level error, exit 1.
  r = Sh(Quote(SVMKEYCTL_PATH) + " --address unix:path=/nonexistent/bus svm show", 60s);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("Error: ", 0), 0u) << r.err;

  // Usage: exit 2, nothing sent.
  for (const char* usage :
       {"", "barbican", "volume create --name x", "svm create", "barbican rekey-internal",
        "job show", "volume list --svm vs1 --limit x", "no-such-group verb"}) {
    r = Ctl(usage);
    EXPECT_EQ(r.status, 2) << "svmkeyctl " << usage << "\n" << r.out << r.err;
  }
  // A secret never comes from the command line: there is no option for it.
  r =
      Ctl("barbican update-credentials --svm vs1 --application-cred-id x "
          "--application-cred-secret s3cr3t");
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  // Without a file and without a terminal to prompt on: a usage error, not a hang.
  // (setsid: no controlling terminal even when the test itself runs on one.)
  r = Sh("setsid -w " + Prefix() + "barbican update-credentials --svm vs1 --application-cred-id x",
         60s);
  EXPECT_EQ(r.status, 2) << r.out << r.err;
}

// --help on every verb: what it does, its options and an example; ONTAP's one-dash
// spelling of options works.
TEST_F(CtlTest, HelpOnEveryVerbAndOntapOptionSpelling) {
  const std::vector<std::string> verbs = {"barbican create-config",
                                          "barbican show",
                                          "barbican check",
                                          "barbican update-credentials",
                                          "barbican update-config",
                                          "barbican rekey-internal",
                                          "barbican restore",
                                          "keystore enable",
                                          "keystore delete",
                                          "keystore show",
                                          "svm create",
                                          "svm show",
                                          "volume create",
                                          "volume register-set",
                                          "volume list",
                                          "volume verify",
                                          "volume repair",
                                          "job show",
                                          "job list",
                                          "job watch",
                                          "job cancel",
                                          "job pause",
                                          "job resume"};
  for (const std::string& verb : verbs) {
    const CommandResult r = Sh(Quote(SVMKEYCTL_PATH) + " " + verb + " --help", 30s);
    EXPECT_EQ(r.status, 0) << verb;
    EXPECT_NE(r.out.find("Example: svmkeyctl " + verb), std::string::npos) << verb << ":\n"
                                                                           << r.out;
    EXPECT_NE(r.out.find("Usage: svmkeyctl " + verb + " [OPTIONS]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Options:\n  -h,--help"), std::string::npos) << verb << ":\n" << r.out;
  }
  SetUpSvm("vs1", {.volumes = 2});
  const std::string out = Ok("--json volume list -vserver vs1 -limit 1");
  const json j = json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << out;
  EXPECT_EQ(j.size(), 1u);
}

// job pause / resume / cancel (Job1's methods) on a running rekey, and their refusal on a
// finished job with the ONTAP code.
TEST_F(CtlTest, JobPauseResumeCancel) {
  const SvmSetup s = SetUpSvm("jc");
  ASSERT_EQ(RegisterVolumeSet("jc", MakeVolumeSet(s.svm_uuid, 6000)), 6000u);
  const json started = Json("barbican rekey-internal --svm jc --no-wait");
  const std::string job = started["job"]["uuid"].get<std::string>();
  auto wait = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    VariantMap j = km().GetJob(job);
    while (!done(j) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
      j = km().GetJob(job);
    }
    return j;
  };
  wait([](const VariantMap& j) { return j.at("volumes_done").get<uint64_t>() > 0; });
  EXPECT_NE(Ok("job pause " + job).find("pause requested"), std::string::npos);
  ASSERT_EQ(State(wait([](const VariantMap& j) { return State(j) != "running"; })), "paused")
      << DaemonLog();
  const json shown = Json("job show " + job);
  EXPECT_EQ(shown["state"], "paused");
  EXPECT_EQ(shown["cancelable"], true);
  EXPECT_EQ(shown["started_by_uid"], 0);
  Ok("job resume " + job);
  Ok("job cancel " + job);
  const VariantMap end = WaitJob(job, 120s);
  ASSERT_EQ(State(end), "failure") << Message(end) << DaemonLog();
  EXPECT_EQ(Code(end), 458762u);
  const CommandResult again = Ctl("job cancel " + job);
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.err.find("Error: 262185: "), std::string::npos) << again.err;
  // The rerun completes the rotation.
  EXPECT_EQ(Json("barbican rekey-internal --svm jc")["state"], "success");
}

// On a terminal, rekey-internal redraws one progress line in place (\r ... ESC[K) with
// done/total, and ends with the result; through a pipe it prints plain lines instead.
TEST_F(CtlTest, ProgressBarOnATerminal) {
  const SvmSetup s = SetUpSvm("big");
  ASSERT_EQ(RegisterVolumeSet("big", MakeVolumeSet(s.svm_uuid, 6000)), 6000u);
  const CommandResult tty = OnTerminal(Prefix() + "barbican rekey-internal --svm big", 300s);
  EXPECT_EQ(tty.status, 0) << tty.out;
  // 24 batches with a 40 ms pause: at least ~1 s of rewrap, five redraws a second.
  EXPECT_GE(Count(tty.out, "\r["), 3u) << tty.out;
  EXPECT_GE(Count(tty.out, "\033[K"), 3u);
  EXPECT_NE(tty.out.find("/6000 volumes"), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("100%  6000/6000 volumes"), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("succeeded"), std::string::npos) << tty.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(tty.out, m, std::regex("Job ([0-9a-f-]{36}) started \\(202\\)")))
      << tty.out;
  EXPECT_EQ(Code(km().GetJob(m[1])), 0u);

  // Not a terminal: no control characters, whole lines only.
  const CommandResult piped = Ctl("barbican rekey-internal --svm big");
  EXPECT_EQ(piped.status, 0) << piped.out << piped.err;
  EXPECT_EQ(piped.out.find('\r'), std::string::npos);
  EXPECT_EQ(piped.out.find('\033'), std::string::npos);
  EXPECT_NE(piped.out.find("100%  6000/6000 volumes"), std::string::npos) << piped.out;
}

}  // namespace
}  // namespace svmkey::integration
