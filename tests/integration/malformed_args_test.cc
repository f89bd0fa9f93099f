// Scenario 3 (arguments): malformed UUIDs, return_timeout out of range, unknown option
// keys, wrong variant types, wrong method signatures and megabyte strings get clear
// errors ("<code>: ..." with a bounded, printable message), and the daemon stays up and
// answers a normal call afterwards.
#include <unistd.h>

#include "tests/integration/local_fixture.h"

namespace svmkey::integration {
namespace {

using sdbus::Variant;

class MalformedArgsTest : public LocalDaemonTest {
 protected:
  void ExpectStillServing() {
    ASSERT_TRUE(daemon().running()) << "svmkeyd died" << DaemonLog();
    static int n = 0;
    const std::string name = "alive" + std::to_string(++n);
    std::string uuid;
    EXPECT_NO_THROW(uuid = km().CreateSvm(name, {}));
    bool found = false;
    for (const auto& s : km().ListSvms({}))
      found = found || s.at("uuid").get<std::string>() == uuid;
    EXPECT_TRUE(found);
  }
};

const std::string kSomeUuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

TEST_F(MalformedArgsTest, ReturnTimeoutOutOfRangeNamesTheArgument) {
  for (uint32_t t : {121u, 1000u, 0xffffffffu}) {
    const BusError e = CatchBusError([&] { km().RekeyInternal(kSomeUuid, t, false); });
    EXPECT_TRUE(IsSvmkeyError(e, "InvalidValue", 262185));
    EXPECT_NE(e.message.find("return_timeout"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find(std::to_string(t)), std::string::npos) << e.message;
  }
  // The same through gdbus (the name as a real client sees it) and for the other jobs.
  auto r = Gdbus(address(), "org.svmkey.KeyManager1.RekeyInternal",
                 Quote("'" + kSomeUuid + "'") + " 121 false");
  EXPECT_EQ(GdbusErrorName(r.err), ErrorName("InvalidValue")) << r.err;
  EXPECT_EQ(GdbusErrorMessage(r.err).rfind("262185: ", 0), 0u) << r.err;
  EXPECT_TRUE(
      IsSvmkeyError(CatchBusError([&] { km().Restore(kSomeUuid, 121); }), "InvalidValue", 262185));
  km().CreateSvm("vs1", {});
  const BusError v = CatchBusError([&] { km().VerifyVolumes("vs1", 500); });
  EXPECT_TRUE(IsSvmkeyError(v, "InvalidValue", 262185));
  EXPECT_NE(v.message.find("return_timeout"), std::string::npos) << v.message;
  ExpectStillServing();
}

TEST_F(MalformedArgsTest, MalformedUuidsAreInvalidValue) {
  for (const std::string& bad :
       {std::string(""), std::string("not-a-uuid"),
        std::string("00000000-0000-0000-0000-000000000000"), kSomeUuid + "0", kSomeUuid.substr(1),
        std::string("1b4e28ba2fa111d2883f0016d3cca427"),
        std::string("1b4e28ba-2fa1-11d2-883f-0016d3cca42g"),
        std::string("1b4e28ba-2fa1-11d2-883f\n0016d3cca427")}) {
    SCOPED_TRACE(bad);
    const BusError e = CatchBusError([&] { km().RekeyInternal(bad, 0, false); });
    EXPECT_TRUE(IsSvmkeyError(e, "InvalidValue", 262185));
    EXPECT_NE(e.message.find("uuid"), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << "unprintable input echoed: " << e.message;
    EXPECT_TRUE(IsSvmkeyError(CatchBusError([&] { km().GetJob(bad); }), "InvalidValue", 262185));
    EXPECT_TRUE(
        IsSvmkeyError(CatchBusError([&] { km().EnableKeyStore(bad); }), "InvalidValue", 262185));
  }
  // Well formed but unknown: 4.
  EXPECT_TRUE(IsSvmkeyError(CatchBusError([&] { km().GetJob(kSomeUuid); }), "EntryNotFound", 4));
  ExpectStillServing();
}

TEST_F(MalformedArgsTest, UnknownOptionKeysAreUnexpectedArgumentNamingTheKey) {
  VariantMap o;
  o["colour"] = Variant(std::string("blue"));
  BusError e = CatchBusError([&] { km().CreateSvm("vs1", o); });
  EXPECT_TRUE(IsSvmkeyError(e, "UnexpectedArgument", 262179));
  EXPECT_NE(e.message.find("colour"), std::string::npos) << e.message;
  EXPECT_TRUE(km().ListSvms({}).empty()) << "a refused call created the SVM";

  km().CreateSvm("vs1", {});
  VariantMap f;
  f["sort"] = Variant(std::string("name"));
  EXPECT_TRUE(
      IsSvmkeyError(CatchBusError([&] { km().ListJobs(f); }), "UnexpectedArgument", 262179));
  EXPECT_TRUE(
      IsSvmkeyError(CatchBusError([&] { km().ListSvms(f); }), "UnexpectedArgument", 262179));
  EXPECT_TRUE(IsSvmkeyError(CatchBusError([&] { km().ListVolumes("vs1", f); }),
                            "UnexpectedArgument", 262179));
  VariantMap c;
  c["svm"] = Variant(std::string("vs1"));
  c["name"] = Variant(std::string("k"));
  c["key_id"] = Variant(std::string("https://127.0.0.1:1/v1/secrets/x"));
  c["keystone_url"] = Variant(std::string("https://127.0.0.1:1/v3"));
  c["application_cred_id"] = Variant(std::string("id"));
  c["application_cred_secret_fiel"] = Variant(std::string("/nonexistent"));  // typo
  e = CatchBusError([&] { km().CreateBarbicanConfig(c); });
  EXPECT_TRUE(IsSvmkeyError(e, "UnexpectedArgument", 262179));
  EXPECT_NE(e.message.find("application_cred_secret_fiel"), std::string::npos) << e.message;
  // Through gdbus: a{sv} literal with an unknown key.
  auto r = Gdbus(address(), "org.svmkey.KeyManager1.CreateSvm", "vs2 \"{'size': <uint32 5>}\"");
  EXPECT_EQ(GdbusErrorName(r.err), ErrorName("UnexpectedArgument")) << r.out << r.err;
  EXPECT_EQ(GdbusErrorMessage(r.err).rfind("262179: ", 0), 0u) << r.err;
  ExpectStillServing();
}

TEST_F(MalformedArgsTest, WrongVariantTypesAreInvalidArgument) {
  VariantMap o;
  o["kind"] = Variant(uint32_t{1});
  BusError e = CatchBusError([&] { km().CreateSvm("vs1", o); });
  EXPECT_TRUE(IsSvmkeyError(e, "InvalidArgument", 2));
  EXPECT_NE(e.message.find("kind"), std::string::npos) << e.message;
  km().CreateSvm("vs1", {});
  VariantMap l;
  l["limit"] = Variant(std::string("10"));
  e = CatchBusError([&] { km().ListJobs(l); });
  EXPECT_TRUE(IsSvmkeyError(e, "InvalidArgument", 2));
  EXPECT_NE(e.message.find("limit"), std::string::npos) << e.message;
  VariantMap fd;
  fd["svm"] = Variant(std::string("vs1"));
  fd["name"] = Variant(std::string("k"));
  fd["key_id"] = Variant(std::string("https://127.0.0.1:1/v1/secrets/x"));
  fd["keystone_url"] = Variant(std::string("https://127.0.0.1:1/v3"));
  fd["application_cred_id"] = Variant(std::string("id"));
  fd["application_cred_secret_fd"] = Variant(int32_t{0});  // an int, not a file descriptor (h)
  EXPECT_TRUE(
      IsSvmkeyError(CatchBusError([&] { km().CreateBarbicanConfig(fd); }), "InvalidArgument", 2));
  // gdbus: a boolean where a string is expected inside the options.
  auto r = Gdbus(address(), "org.svmkey.KeyManager1.CreateSvm", "vs3 \"{'kind': <true>}\"");
  EXPECT_EQ(GdbusErrorName(r.err), ErrorName("InvalidArgument")) << r.out << r.err;
  EXPECT_EQ(GdbusErrorMessage(r.err).rfind("2: ", 0), 0u) << r.err;
  // A negative number where an unsigned one is expected: a value error.
  VariantMap neg;
  neg["limit"] = Variant(int32_t{-5});
  EXPECT_TRUE(IsSvmkeyError(CatchBusError([&] { km().ListJobs(neg); }), "InvalidValue", 262185));
  ExpectStillServing();
}

TEST_F(MalformedArgsTest, WrongMethodSignaturesAreRefusedByTheBusLayer) {
  // dbus-send does not introspect: it sends what it is told.
  auto r =
      DbusSend(address(), "/org/svmkey/KeyManager1 org.svmkey.KeyManager1.RekeyInternal uint32:5");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("Error org.freedesktop.DBus.Error.InvalidArgs"), std::string::npos)
      << r.out << r.err;
  r = DbusSend(address(), "/org/svmkey/KeyManager1 org.svmkey.KeyManager1.GetJob int32:7 string:x");
  EXPECT_NE(r.err.find("org.freedesktop.DBus.Error.InvalidArgs"), std::string::npos) << r.err;
  r = DbusSend(address(), "/org/svmkey/KeyManager1 org.svmkey.KeyManager1.NoSuchMethod");
  EXPECT_NE(r.err.find("org.freedesktop.DBus.Error.UnknownMethod"), std::string::npos) << r.err;
  r = Busctl(address(),
             "call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 org.svmkey.KeyManager1 "
             "RekeyInternal s " +
                 kSomeUuid);
  EXPECT_NE(r.status, 0);
  ExpectStillServing();
}

TEST_F(MalformedArgsTest, MegabyteStringsGetBoundedErrors) {
  const std::string mb(1 << 20, 'a');
  const std::string mb_junk = std::string(1 << 20, '\x7f') + "\x1b[2J";
  struct Case {
    const char* what;
    std::function<void()> call;
    const char* name;
    uint32_t code;
  };
  VariantMap big_key;
  big_key[mb] = Variant(std::string("x"));
  VariantMap big_value;
  big_value["proxy_username"] = Variant(mb);
  VariantMap kek;  // a valid kek_fd, so that the directory is what is judged
  kek["kek_fd"] = Variant(PipeHolding(std::string(32, 'k')));
  std::vector<Case> cases = {
      {"uuid", [&] { km().RekeyInternal(mb, 0, false); }, "InvalidValue", 262185},
      {"uuid junk", [&] { km().GetJob(mb_junk); }, "InvalidValue", 262185},
      // A megabyte string is within the call bound (daemon/bus/call_bounds.h, sized for a
      // 1 MiB CA bundle): the handler's own bounds answer, without echoing it.
      {"svm name", [&] { km().CreateSvm(mb, {}); }, "InvalidSvmName", 2621471},
      {"volume's svm", [&] { km().CreateVolume(mb, "v", {}); }, "InvalidSvmName", 2621471},
      {"option key", [&] { km().CreateSvm("vs-big", big_key); }, "UnexpectedArgument", 262179},
      {"option value", [&] { km().UpdateBarbicanConfig(kSomeUuid, big_value); }, "InvalidValue",
       262185},
      {"directory", [&] { km().RegisterVolumeSet("vs1", "/" + mb, kek); }, "InvalidValue", 262185},
  };
  km().CreateSvm("vs1", {});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const BusError e = CatchBusError(c.call);
    EXPECT_TRUE(IsSvmkeyError(e, c.name, c.code));
    EXPECT_LT(e.message.size(), 1024u) << "the error echoes the megabyte";
    for (char ch : e.message)
      EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << "unprintable byte in the message";
  }
  // busctl with a megabyte argument (command line) works the same.
  auto r = Busctl(address(),
                  "call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 org.svmkey.KeyManager1 "
                  "CreateSvm 'sa{sv}' " +
                      std::string(100000, 'b') + " 0");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("2621471: "), std::string::npos) << r.err.substr(0, 300);
  ExpectStillServing();
}

TEST_F(MalformedArgsTest, SecretsInTheClearAreRefused) {
  km().CreateSvm("vs1", {});
  VariantMap c;
  c["svm"] = Variant(std::string("vs1"));
  c["name"] = Variant(std::string("k"));
  c["key_id"] = Variant(std::string("https://127.0.0.1:1/v1/secrets/x"));
  c["keystone_url"] = Variant(std::string("https://127.0.0.1:1/v3"));
  c["application_cred_id"] = Variant(std::string("id"));
  c["application_cred_secret"] = Variant(std::string("hunter2-in-the-clear"));
  const BusError e = CatchBusError([&] { km().CreateBarbicanConfig(c); });
  EXPECT_TRUE(IsSvmkeyError(e, "InvalidValue", 262185));
  EXPECT_EQ(e.message.find("hunter2"), std::string::npos) << e.message;
  // A path to a secret file is refused too (and not read): svmkeyd opens no file.
  const std::string path = dir_->path() + "/open-secret";
  WriteFile(path, "hunter2-world-readable\n", 0644);
  c.erase("application_cred_secret");
  c["application_cred_secret_file"] = Variant(path);
  const BusError e2 = CatchBusError([&] { km().CreateBarbicanConfig(c); });
  EXPECT_TRUE(IsSvmkeyError(e2, "InvalidValue", 262185));
  EXPECT_EQ(e2.message.find("hunter2"), std::string::npos) << e2.message;
  ExpectStillServing();
}

}  // namespace
}  // namespace svmkey::integration
