// Scenario 4: authorization and secrets.
// - The shipped bus policy: an unprivileged user gets org.freedesktop.DBus.Error.AccessDenied
//   for manager methods (introspection and property reads stay open); a member of group
//   svmkey may call.
// - Behind a bus that lets everybody call (a test-only permissive include), svmkeyd's own
//   credential check still refuses an unprivileged caller with org.svmkey.Error.PermissionDenied.
// - Secrets never come back in replies, logs or the table file in the clear.
// - svmkeyd is not dumpable: run as an unprivileged user, its /proc/<pid> files belong to
//   root and that user cannot read its environment (a dumpable control process can).
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "tests/integration/local_fixture.h"

namespace svmkey::integration {
namespace {

using sdbus::Variant;

const char* const kM = "org.svmkey.KeyManager1 /org/svmkey/KeyManager1 org.svmkey.KeyManager1 ";

class PolicyTest : public LocalDaemonTest {};

TEST_F(PolicyTest, UnprivilegedUserIsDeniedByTheBusPolicy) {
  // gdbus and dbus-send show the error name (busctl hides it).
  auto r = Gdbus(address(), "org.svmkey.KeyManager1.CreateSvm", "evil \"{}\"", kUnprivUser);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(GdbusErrorName(r.err), "org.freedesktop.DBus.Error.AccessDenied") << r.out << r.err;
  r = DbusSend(address(), "/org/svmkey/KeyManager1 org.svmkey.KeyManager1.GetJob string:x",
               kUnprivUser);
  EXPECT_NE(r.err.find("Error org.freedesktop.DBus.Error.AccessDenied: Rejected send message"),
            std::string::npos)
      << r.out << r.err;
  r = Busctl(address(), std::string("call ") + kM + "ListSvms 'a{sv}' 0", kUnprivUser);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("Access denied"), std::string::npos) << r.err;
  // The rejection is the bus's, not the daemon's: the bus logged it.
  EXPECT_NE(bus_->log().find("Rejected send message"), std::string::npos) << bus_->log();
  EXPECT_TRUE(km().ListSvms({}).empty()) << "a denied call reached the daemon";

  // Introspection, Peer and property reads are open to everyone.
  r = Busctl(address(), "introspect org.svmkey.KeyManager1 /org/svmkey/KeyManager1", kUnprivUser);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(".RekeyInternal"), std::string::npos) << r.out;
  r = Busctl(address(), std::string("get-property ") + kM + "Version", kUnprivUser);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("s \"", 0), 0u) << r.out;
  r = Busctl(address(),
             "call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 org.freedesktop.DBus.Peer Ping",
             kUnprivUser);
  EXPECT_EQ(r.status, 0) << r.err;
  // Only root may own the name.
  r = Sh("runuser -u " + std::string(kUnprivUser) + " -- env DBUS_SYSTEM_BUS_ADDRESS=" +
         Quote(address()) + " " + Quote(SvmkeydPath()) + " --state-dir=/nonexistent/x 2>&1");
  EXPECT_NE(r.status, 0);
}

TEST_F(PolicyTest, MemberOfGroupSvmkeyMayCall) {
  auto r = Gdbus(address(), "org.svmkey.KeyManager1.CreateSvm", "opsvm \"{}\"", kOperatorUser);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("('"), std::string::npos) << r.out;
  r = Busctl(address(), std::string("call ") + kM + "ListSvms 'a{sv}' 0", kOperatorUser);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("opsvm"), std::string::npos) << r.out;
  // The group counts as the kernel reports it for the caller (SO_PEERGROUPS), not
  // /etc/group: the unprivileged user with the svmkey gid added by setpriv may call ...
  r = Sh("setpriv --reuid=" + std::to_string(users_.unpriv_uid) + " --regid=" +
         std::to_string(users_.unpriv_gid) + " --groups=" + std::to_string(users_.svmkey_gid) +
         " -- busctl --address=" + Quote(address()) + " call " + kM + "ListSvms 'a{sv}' 0");
  EXPECT_EQ(r.status, 0) << r.err;
  // ... so may one whose primary group is svmkey without it as a supplementary group:
  // the bus policy lets it through, and the daemon's own check agrees (a mutating call).
  r = Sh("setpriv --reuid=" + std::to_string(users_.unpriv_uid) + " --regid=" +
         std::to_string(users_.svmkey_gid) + " --clear-groups -- busctl --address=" +
         Quote(address()) + " call " + kM + "CreateSvm sa{sv} primsvm 0");
  EXPECT_EQ(r.status, 0) << r.err;
  // ... and the operator without its groups may not.
  r = Sh("setpriv --reuid=" + std::to_string(users_.operator_uid) +
         " --regid=" + std::to_string(users_.operator_gid) +
         " --clear-groups -- busctl --address=" + Quote(address()) + " call " + kM +
         "ListSvms 'a{sv}' 0");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("Access denied"), std::string::npos) << r.err;
}

// A bus that lets everybody call everything: only svmkeyd's own check stands.
class PermissiveBusTest : public LocalDaemonTest {
 protected:
  std::string ExtraPolicy() override {
    return "  <policy context=\"mandatory\">\n"
           "    <allow send_destination=\"org.svmkey.KeyManager1\"/>\n"
           "  </policy>\n";
  }
};

TEST_F(PermissiveBusTest, DaemonRefusesUnprivilegedCallersItself) {
  for (const std::string& method_args :
       {std::string("org.svmkey.KeyManager1.CreateSvm evil \"{}\""),
        std::string("org.svmkey.KeyManager1.RekeyInternal "
                    "\"'1b4e28ba-2fa1-11d2-883f-0016d3cca427'\" 0 false"),
        std::string(
            "org.svmkey.KeyManager1.EnableKeyStore \"'1b4e28ba-2fa1-11d2-883f-0016d3cca427'\"")}) {
    SCOPED_TRACE(method_args);
    const std::string method = method_args.substr(0, method_args.find(' '));
    const std::string args = method_args.substr(method_args.find(' ') + 1);
    auto r = Gdbus(address(), method, args, kUnprivUser);
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(GdbusErrorName(r.err), "org.svmkey.Error.PermissionDenied") << r.out << r.err;
    EXPECT_EQ(GdbusErrorMessage(r.err).rfind("6: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("uid " + std::to_string(users_.unpriv_uid)), std::string::npos) << r.err;
  }
  EXPECT_TRUE(km().ListSvms({}).empty()) << "the refused call created an SVM";
  EXPECT_NE(daemon().log().find("refused a call from uid " + std::to_string(users_.unpriv_uid)),
            std::string::npos);
  // Reads are not mutating: allowed.
  auto r = Gdbus(address(), "org.svmkey.KeyManager1.ListSvms", "\"{}\"", kUnprivUser);
  EXPECT_EQ(r.status, 0) << r.err;
  // The daemon asks the bus for the caller's groups: the svmkey gid (real user or setpriv) is
  // enough.
  r = Gdbus(address(), "org.svmkey.KeyManager1.CreateSvm", "opsvm \"{}\"", kOperatorUser);
  EXPECT_EQ(r.status, 0) << r.err;
  r = Sh("setpriv --reuid=" + std::to_string(users_.unpriv_uid) + " --regid=" +
         std::to_string(users_.unpriv_gid) + " --groups=" + std::to_string(users_.svmkey_gid) +
         " -- gdbus call --address " + Quote(address()) +
         " --dest org.svmkey.KeyManager1 --object-path /org/svmkey/KeyManager1"
         " --method org.svmkey.KeyManager1.CreateSvm grpsvm \"{}\"");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(km().ListSvms({}).size(), 2u);
  // A primary group of svmkey without it among the supplementary groups: the bus policy
  // counts it, and so does the daemon.
  r = Sh("setpriv --reuid=" + std::to_string(users_.unpriv_uid) + " --regid=" +
         std::to_string(users_.svmkey_gid) +
         " --clear-groups -- gdbus call --address " + Quote(address()) +
         " --dest org.svmkey.KeyManager1 --object-path /org/svmkey/KeyManager1"
         " --method org.svmkey.KeyManager1.CreateSvm primsvm \"{}\"");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(km().ListSvms({}).size(), 3u);
}

class SecretsTest : public LocalDaemonTest {};

std::string Dump(const std::vector<VariantMap>& maps) {
  std::ostringstream out;
  for (const auto& m : maps) {
    for (const auto& [k, v] : m) {
      out << k << "=";
      const std::string t = v.peekValueType();
      if (t == "s")
        out << v.get<std::string>();
      else if (t == "b")
        out << v.get<bool>();
      else if (t == "u")
        out << v.get<uint32_t>();
      else
        out << "<" << t << ">";
      out << "\n";
    }
  }
  return out.str();
}

TEST_F(SecretsTest, SecretsNeverComeBack) {
  const std::string secret = "S3cr3t-app-cred-" + std::to_string(::getpid()) + "-zq";
  const std::string proxy_pw = "pr0xy-pw-" + std::to_string(::getpid()) + "-zq";
  km().CreateSvm("vs1", {});
  VariantMap c;
  c["svm"] = Variant(std::string("vs1"));
  c["name"] = Variant(std::string("k"));
  c["key_id"] =
      Variant(std::string("https://127.0.0.1:1/v1/secrets/0b8a3f0e-6c9b-4e54-a0c6-2a3d1f0e9b11"));
  c["keystone_url"] = Variant(std::string("https://127.0.0.1:1/v3"));
  c["application_cred_id"] = Variant(std::string("cred-id"));
  c["application_cred_secret_fd"] = Variant(PipeHolding(secret + "\n"));
  c["proxy_host"] = Variant(std::string("127.0.0.1"));
  c["proxy_port"] = Variant(uint32_t{1});
  c["proxy_username"] = Variant(std::string("proxy-user"));
  c["proxy_password_fd"] = Variant(PipeHolding(proxy_pw + "\n"));
  c["timeout"] = Variant(uint32_t{2});
  const std::string config = km().CreateBarbicanConfig(c);

  std::string all = Dump({km().GetBarbicanConfig(config, {})}) +
                    Dump(km().ListBarbicanConfigs({})) + Dump(km().ListKeyStores({}));
  EXPECT_NE(all.find("cred-id"), std::string::npos) << all;  // the dump does show fields
  EXPECT_NE(all.find("proxy-user"), std::string::npos) << all;
  // The reachability check logs in with the secret (and fails: nothing listens on port 1).
  VariantMap reach;
  reach["reachability"] = Variant(true);
  const VariantMap reached = km().GetBarbicanConfig(config, reach);
  EXPECT_FALSE(reached.at("barbican_reachability_reachable").get<bool>());
  all += Dump({reached});
  // Enabling fails the same way; its error text must not carry the secret either.
  const BusError e = CatchBusError([&] { km().EnableKeyStore(config); });
  EXPECT_FALSE(e.name.empty());
  all += e.message;
  // busctl -j of the same calls.
  auto r = Busctl(address(),
                  std::string("-j call ") + kM + "GetBarbicanConfig 'sa{sv}' " + config + " 0");
  EXPECT_EQ(r.status, 0) << r.err;
  all += r.out;
  r = Busctl(address(), std::string("-j call ") + kM + "ListBarbicanConfigs 'a{sv}' 0");
  all += r.out;
  for (const std::string& s : {secret, proxy_pw}) {
    EXPECT_EQ(all.find(s), std::string::npos) << "a secret came back in a reply";
    EXPECT_EQ(daemon().log().find(s), std::string::npos) << "a secret is in the daemon's log";
  }
  EXPECT_EQ(all.find("S3cr3t"), std::string::npos);
  // The table file (and its WAL) hold them sealed, never in the clear.
  ASSERT_EQ(daemon().Stop(SIGTERM), 0);
  for (const char* f : {"/rdb.sqlite", "/rdb.sqlite-wal"}) {
    const std::string bytes = ReadFile(daemon().state_dir() + f);
    EXPECT_EQ(bytes.find(secret), std::string::npos) << f << " holds the secret in the clear";
    EXPECT_EQ(bytes.find(proxy_pw), std::string::npos)
        << f << " holds the proxy password in the clear";
  }
  EXPECT_NE(ReadFile(daemon().state_dir() + "/rdb.sqlite").find("cred-id"), std::string::npos)
      << "the search above would not have found anything";
}

// A member of group svmkey names files by path: svmkeyd (root) opens none of them. Every
// path option is refused with 262185 before anything is read, so no byte of a root-only
// file (or the daemon's host key) can reach the keystone_url the member chose, and
// nothing is created or removed.
class PathArgumentTest : public LocalDaemonTest {
 protected:
  // CreateBarbicanConfig as the operator, with `extra` (gdbus dictionary entries).
  CommandResult CreateAsOperator(const std::string& extra) {
    const std::string dict =
        "{'svm': <'vs1'>, 'name': <'k" + std::to_string(++n_) +
        "'>, 'key_id': <'https://127.0.0.1:1/v1/secrets/0b8a3f0e-6c9b-4e54-a0c6-2a3d1f0e9b11'>, "
        "'keystone_url': <'https://127.0.0.1:1/v3'>, 'application_cred_id': <'cred-id'>, " +
        extra + "}";
    return Gdbus(address(), "org.svmkey.KeyManager1.CreateBarbicanConfig", Quote(dict),
                 kOperatorUser);
  }
  std::string RootOnly(const std::string& name, const std::string& text) {
    const std::string path = dir_->path() + "/" + name;
    WriteFile(path, text, 0600);
    return path;
  }
  void ExpectRefused(const CommandResult& r, const std::string& option) {
    EXPECT_NE(r.status, 0) << r.out;
    EXPECT_EQ(GdbusErrorName(r.err), "org.svmkey.Error.InvalidValue") << r.err;
    EXPECT_EQ(GdbusErrorMessage(r.err).rfind("262185: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("option '" + option + "' is refused: svmkeyd opens no file"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("root-only-secret"), std::string::npos) << "file contents echoed";
  }
  int n_ = 0;
};

TEST_F(PathArgumentTest, SecretAndCaPathsAreRefusedAndNothingIsRead) {
  km().CreateSvm("vs1", {});
  const std::string root_file = RootOnly("root-only", "root-only-secret\n");
  const std::string host_key = daemon().state_dir() + "/host.key";
  const std::string host_key_bytes = ReadFile(host_key);
  ASSERT_FALSE(host_key_bytes.empty());
  for (const std::string& path : {root_file, host_key, std::string("relative/secret.txt")}) {
    ExpectRefused(CreateAsOperator("'application_cred_secret_file': <'" + path + "'>"),
                  "application_cred_secret_file");
    ExpectRefused(CreateAsOperator("'ca_file': <'" + path + "'>"),
                  "ca_file");
  }
  ExpectRefused(CreateAsOperator("'application_cred_secret_file': <'" + root_file +
                                 "'>, 'proxy_host': <'127.0.0.1'>, 'proxy_port': <uint32 1>, "
                                 "'proxy_password_file': <'" + root_file + "'>"),
                "application_cred_secret_file");
  EXPECT_TRUE(km().ListBarbicanConfigs({}).empty()) << "a refused config was created";
  EXPECT_EQ(ReadFile(root_file), "root-only-secret\n");
  EXPECT_EQ(ReadFile(host_key), host_key_bytes);
  EXPECT_EQ(daemon().log().find("root-only-secret"), std::string::npos);
}

TEST_F(PathArgumentTest, KekFileIsRefusedAndNeverRemoved) {
  km().CreateSvm("vs1", {});
  const std::string root_file = RootOnly("root-only.key", std::string(32, 'k'));
  const std::string host_key = daemon().state_dir() + "/host.key";
  const std::string host_key_bytes = ReadFile(host_key);
  for (const std::string& path : {root_file, host_key}) {
    auto r = Gdbus(address(), "org.svmkey.KeyManager1.RegisterVolumeSet",
                   "vs1 " + Quote(dir_->path()) + " " + Quote("{'kek_file': <'" + path + "'>}"),
                   kOperatorUser);
    ExpectRefused(r, "kek_file");
    EXPECT_NE(r.err.find("kek_fd"), std::string::npos) << r.err;
  }
  EXPECT_EQ(ReadFile(root_file), std::string(32, 'k')) << "the root-only file was changed";
  EXPECT_EQ(ReadFile(host_key), host_key_bytes) << "the host key was changed or removed";
  // keep_kek_file is gone with the daemon's unlink.
  const BusError e = CatchBusError([&] {
    km().RegisterVolumeSetWithin("vs1", dir_->path(),
                           {{"kek_fd", Variant(PipeHolding(std::string(32, 'k')))},
                            {"keep_kek_file", Variant(true)}},
                                 10s);
  });
  EXPECT_EQ(e.name, ErrorName("UnexpectedArgument")) << e.message;
}

// svmkeyd run as an unprivileged user (this bus lets anyone own the name): with
// PR_SET_DUMPABLE 0 the kernel makes its /proc/<pid> files root's, so the user itself
// cannot read the daemon's environment or memory; a dumpable process of the same user can.
class DumpableTest : public LocalDaemonTest {
 protected:
  bool StartDaemonInSetUp() override { return false; }
  std::string ExtraPolicy() override {
    return std::string(
        "  <policy context=\"mandatory\">\n"
        "    <allow own=\"org.svmkey.KeyManager1\"/>\n"
        "  </policy>\n");
  }
};

TEST_F(DumpableTest, DaemonIsNotDumpable) {
  daemon_->options().prefix = {"/usr/bin/setpriv", "--reuid=" + std::to_string(users_.unpriv_uid),
                               "--regid=" + std::to_string(users_.unpriv_gid), "--clear-groups",
                               "--"};
  for (const auto& d : {daemon().state_dir(), daemon().volume_root()}) {
    ASSERT_EQ(::chown(d.c_str(), users_.unpriv_uid, users_.unpriv_gid), 0);
  }
  ASSERT_TRUE(daemon().Start()) << "svmkeyd did not start as " << kUnprivUser << DaemonLog();
  Connect();
  EXPECT_EQ(km().Version(), "0.1.0");
  const std::string proc = "/proc/" + std::to_string(daemon().pid());
  // It really runs as the user ...
  const std::string status = ReadFile(proc + "/status");
  EXPECT_NE(status.find("Uid:\t" + std::to_string(users_.unpriv_uid) + "\t"), std::string::npos)
      << status;
  // ... yet its /proc files are root's (task_dump_owner of a non-dumpable task).
  struct stat st {};
  ASSERT_EQ(::stat((proc + "/environ").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "svmkeyd is dumpable: /proc/<pid>/environ belongs to uid "
                           << st.st_uid;
  auto r = Sh("runuser -u " + std::string(kUnprivUser) + " -- cat " + proc + "/environ");
  EXPECT_NE(r.status, 0) << "the user could read the daemon's environment";
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
  // The control: a dumpable process of the same user.
  Child control;
  ASSERT_TRUE(control.Spawn(
      {"/usr/bin/setpriv", "--reuid=" + std::to_string(users_.unpriv_uid),
       "--regid=" + std::to_string(users_.unpriv_gid), "--clear-groups", "--", "/bin/sleep", "30"},
      {}, dir_->path() + "/control.log"));
  const std::string cproc = "/proc/" + std::to_string(control.pid());
  for (int i = 0; i < 100 && ReadFile(cproc + "/cmdline").find("sleep") == std::string::npos; ++i) {
    usleep(10000);
  }
  ASSERT_EQ(::stat((cproc + "/environ").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, users_.unpriv_uid);
  r = Sh("runuser -u " + std::string(kUnprivUser) + " -- cat " + cproc + "/environ");
  EXPECT_EQ(r.status, 0) << r.err;
  control.Stop(SIGKILL);
}

}  // namespace
}  // namespace svmkey::integration
