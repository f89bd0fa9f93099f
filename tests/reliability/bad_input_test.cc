// Bad input through the bus (issue 7): malformed and unknown UUIDs for every method
// taking one, wrong argument types, unknown option keys, values out of range and
// megabyte strings for every a{sv} method (what tests/integration/malformed_args_test
// does not cover already), then a flood of thousands of concurrent calls, mixed valid
// and invalid, from several clients (threads with their own connections, and busctl
// processes). Every call gets its documented error (or its normal answer); svmkeyd
// stays up and answers a normal call afterwards; the table (a full .dump) and every
// metadata file (BLAKE2b) are unchanged.
#include <atomic>
#include <thread>

#include "tests/integration/local_fixture.h"
#include "tests/reliability/reliability_util.h"

namespace svmkey::reliability {
namespace {

using namespace std::chrono_literals;
using integration::BusError;
using integration::CatchBusError;
using integration::DaemonTest;
using integration::IsSvmkeyError;
using integration::KeyManagerProxy;
using integration::SvmSetup;
using integration::VariantMap;
using sdbus::Variant;

const std::string kUnknownUuid = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";

// One call and what it must answer: an org.svmkey.Error.<name> with "<code>: ", or
// success (name empty).
struct Case {
  std::string what;
  std::function<void(KeyManagerProxy&)> call;
  std::string name;
  uint32_t code = 0;
};

::testing::AssertionResult Answers(const Case& c, KeyManagerProxy& km) {
  const BusError e = CatchBusError([&] { c.call(km); });
  if (c.name.empty()) {
    if (e.name.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << c.what << ": expected success, got " << e.name << " " << e.message.substr(0, 200);
  }
  auto r = IsSvmkeyError(e, c.name.c_str(), c.code);
  if (!r) return r << " (" << c.what << ")";
  if (e.message.size() > 1024) return ::testing::AssertionFailure() << c.what << ": long message";
  return r;
}

class BadInputTest : public DaemonTest {
 protected:
  void Prepare() {
    svm_ = SetUpSvm("vs1", {.volumes = 20});
    auto [status, job] = km().RekeyInternalWithin(svm_.config_uuid, 120, 180s);
    ASSERT_EQ(status, 201u);
    job_ = job;
    volume_ = km().ListVolumes("vs1", {}).at(0).at("uuid").get<std::string>();
  }

  // Every kind of bad argument, one call each, with its documented answer.
  std::vector<Case> BadCases() {
    const std::string mb(1 << 20, 'x');
    const std::string cfg = svm_.config_uuid;
    auto opt = [](const std::string& k, Variant v) {
      VariantMap m;
      m[k] = std::move(v);
      return m;
    };
    std::vector<Case> c;
    // Malformed and unknown UUIDs, every method that takes one.
    for (const std::string& bad : {std::string("not-a-uuid"), std::string(""), mb,
                                   cfg.substr(0, 35) + "\x01", std::string(36, '-')}) {
      c.push_back(
          {"Restore malformed", [=](auto& k) { k.Restore(bad, 0); }, "InvalidValue", 262185});
      c.push_back({"GetBarbicanConfig malformed", [=](auto& k) { k.GetBarbicanConfig(bad, {}); },
                   "InvalidValue", 262185});
      c.push_back({"UpdateBarbicanCredentials malformed",
                   [=](auto& k) {
                     k.UpdateBarbicanCredentials(
                         bad, opt("application_cred_id", Variant(std::string("x"))));
                   },
                   "InvalidValue", 262185});
      c.push_back(
          {"UpdateBarbicanConfig malformed",
           [=](auto& k) { k.UpdateBarbicanConfig(bad, opt("timeout", Variant(uint32_t{5}))); },
           "InvalidValue", 262185});
      c.push_back({"DeleteKeyStore malformed", [=](auto& k) { k.DeleteKeyStore(bad); },
                   "InvalidValue", 262185});
      c.push_back({"ListVolumes after malformed",
                   [=](auto& k) { k.ListVolumes("vs1", opt("after", Variant(bad))); },
                   "InvalidValue", 262185});
    }
    c.push_back({"RekeyInternal unknown", [=](auto& k) { k.RekeyInternal(kUnknownUuid, 0, false); },
                 "EntryNotFound", 4});
    c.push_back(
        {"Restore unknown", [=](auto& k) { k.Restore(kUnknownUuid, 0); }, "EntryNotFound", 4});
    c.push_back({"GetBarbicanConfig unknown",
                 [=](auto& k) { k.GetBarbicanConfig(kUnknownUuid, {}); }, "EntryNotFound", 4});
    c.push_back({"UpdateBarbicanConfig unknown",
                 [=](auto& k) {
                   k.UpdateBarbicanConfig(kUnknownUuid, opt("timeout", Variant(uint32_t{5})));
                 },
                 "ConfigNotFound", 65539832});
    c.push_back({"EnableKeyStore unknown", [=](auto& k) { k.EnableKeyStore(kUnknownUuid); },
                 "KeystoreUnknown", 65538908});
    c.push_back({"DeleteKeyStore unknown", [=](auto& k) { k.DeleteKeyStore(kUnknownUuid); },
                 "KeystoreUnknown", 65538908});
    c.push_back({"GetJob unknown", [=](auto& k) { k.GetJob(kUnknownUuid); }, "EntryNotFound", 4});
    // Wrong types inside options.
    c.push_back(
        {"timeout as string",
         [=](auto& k) { k.UpdateBarbicanConfig(cfg, opt("timeout", Variant(std::string("5")))); },
         "InvalidArgument", 2});
    c.push_back({"verify as uint",
                 [=](auto& k) { k.UpdateBarbicanConfig(cfg, opt("verify", Variant(uint32_t{1}))); },
                 "InvalidArgument", 2});
    c.push_back(
        {"dsid as string",
         [=](auto& k) { k.CreateVolume("vs1", "c", opt("dsid", Variant(std::string("7")))); },
         "InvalidArgument", 2});
    c.push_back({"limit as double",
                 [=](auto& k) { k.ListVolumes("vs1", opt("limit", Variant(2.5))); },
                 "InvalidArgument", 2});
    c.push_back({"reachability as string",
                 [=](auto& k) {
                   k.GetBarbicanConfig(cfg, opt("reachability", Variant(std::string("yes"))));
                 },
                 "InvalidArgument", 2});
    c.push_back({"kek_fd as bool",
                 [=](auto& k) {
                   k.RegisterVolumeSet("vs1", "/nonexistent", opt("kek_fd", Variant(true)));
                 },
                 "InvalidArgument", 2});
    // Unknown option keys in every a{sv}.
    for (const std::string& key : {std::string("colour"), mb}) {
      c.push_back({"GetBarbicanConfig key",
                   [=](auto& k) { k.GetBarbicanConfig(cfg, opt(key, Variant(true))); },
                   "UnexpectedArgument", 262179});
      c.push_back({"UpdateBarbicanConfig key",
                   [=](auto& k) { k.UpdateBarbicanConfig(cfg, opt(key, Variant(true))); },
                   "UnexpectedArgument", 262179});
      c.push_back({"UpdateBarbicanCredentials key",
                   [=](auto& k) { k.UpdateBarbicanCredentials(cfg, opt(key, Variant(true))); },
                   "UnexpectedArgument", 262179});
      c.push_back({"CreateVolume key",
                   [=](auto& k) { k.CreateVolume("vs1", "c", opt(key, Variant(true))); },
                   "UnexpectedArgument", 262179});
      c.push_back({"ListKeyStores key", [=](auto& k) { k.ListKeyStores(opt(key, Variant(true))); },
                   "UnexpectedArgument", 262179});
      c.push_back({"ListBarbicanConfigs key",
                   [=](auto& k) { k.ListBarbicanConfigs(opt(key, Variant(true))); },
                   "UnexpectedArgument", 262179});
      c.push_back(
          {"RegisterVolumeSet key",
           [=](auto& k) { k.RegisterVolumeSet("vs1", "/nonexistent", opt(key, Variant(true))); },
           "UnexpectedArgument", 262179});
    }
    c.push_back({"key_id cannot change",
                 [=](auto& k) {
                   k.UpdateBarbicanConfig(cfg, opt("key_id", Variant(std::string("https://x/"))));
                 },
                 "UnexpectedArgument", 262179});
    // Values out of range.
    for (uint32_t t : {0u, 601u, 0xffffffffu}) {
      c.push_back({"timeout " + std::to_string(t),
                   [=](auto& k) { k.UpdateBarbicanConfig(cfg, opt("timeout", Variant(t))); },
                   "InvalidValue", 262185});
    }
    c.push_back(
        {"proxy_port 70000",
         [=](auto& k) { k.UpdateBarbicanConfig(cfg, opt("proxy_port", Variant(uint32_t{70000}))); },
         "InvalidValue", 262185});
    for (uint32_t l : {0u, 10001u}) {
      c.push_back({"ListVolumes limit " + std::to_string(l),
                   [=](auto& k) { k.ListVolumes("vs1", opt("limit", Variant(l))); }, "InvalidValue",
                   262185});
    }
    c.push_back({"dsid 0",
                 [=](auto& k) { k.CreateVolume("vs1", "c", opt("dsid", Variant(uint64_t{0}))); },
                 "InvalidValue", 262185});
    c.push_back({"negative dsid",
                 [=](auto& k) { k.CreateVolume("vs1", "c", opt("dsid", Variant(int64_t{-1}))); },
                 "InvalidValue", 262185});
    c.push_back({"proxy_type ftp",
                 [=](auto& k) {
                   k.UpdateBarbicanConfig(cfg, opt("proxy_type", Variant(std::string("ftp"))));
                 },
                 "InvalidValue", 262185});
    // Megabyte strings as values.
    c.push_back({"ca_file MB",
                 [=](auto& k) { k.UpdateBarbicanConfig(cfg, opt("ca_file", Variant(mb))); },
                 "InvalidValue", 262185});
    c.push_back({"proxy_host MB",
                 [=](auto& k) { k.UpdateBarbicanConfig(cfg, opt("proxy_host", Variant(mb))); },
                 "InvalidValue", 262185});
    c.push_back({"application_cred_id MB",
                 [=](auto& k) {
                   k.UpdateBarbicanCredentials(cfg, opt("application_cred_id", Variant(mb)));
                 },
                 "InvalidValue", 262185});
    c.push_back({"kek_file MB",
                 [=](auto& k) {
                   k.RegisterVolumeSet("vs1", "/nonexistent", opt("kek_file", Variant("/" + mb)));
                 },
                 "InvalidValue", 262185});
    c.push_back({"svm filter MB", [=](auto& k) { k.ListKeyStores(opt("svm", Variant(mb))); },
                 "InvalidValue", 262185});
    c.push_back({"VerifyVolumes svm MB", [=](auto& k) { k.VerifyVolumes(mb, 0); }, "InvalidSvmName",
                 2621471});
    c.push_back(
        {"ListVolumes svm MB", [=](auto& k) { k.ListVolumes(mb, {}); }, "InvalidSvmName", 2621471});
    return c;
  }

  SvmSetup svm_;
  std::string job_;
  std::string volume_;
};

TEST_F(BadInputTest, EveryBadArgumentGetsItsDocumentedErrorAndChangesNothing) {
  Prepare();
  ASSERT_FALSE(HasFailure());
  const std::string table_before = DumpTable(daemon().table_path());
  const auto files_before = HashTree(daemon().volume_root());
  ASSERT_EQ(files_before.size(), 20u);
  const std::vector<Case> cases = BadCases();
  for (const Case& c : cases) EXPECT_TRUE(Answers(c, km()));
  std::printf("[bad-input] %zu malformed calls, each with its documented error\n", cases.size());
  ASSERT_TRUE(daemon().running()) << DaemonLog();
  EXPECT_EQ(State(km().GetJob(job_)), "success");
  EXPECT_EQ(DumpTable(daemon().table_path()), table_before) << "a refused call changed the table";
  EXPECT_EQ(HashTree(daemon().volume_root()), files_before) << "a refused call changed a file";
}

TEST_F(BadInputTest, ThousandsOfConcurrentMixedCallsFromSeveralClients) {
  Prepare();
  ASSERT_FALSE(HasFailure());
  const std::string table_before = DumpTable(daemon().table_path());
  const auto files_before = HashTree(daemon().volume_root());
  const std::string cfg = svm_.config_uuid;
  const std::string job = job_;
  // Valid calls that change nothing, and invalid ones of every kind (including the
  // state-dependent refusals: duplicate SVM, enabled key store, already enabled).
  std::vector<Case> mix = {
      {"GetJob", [=](auto& k) { k.GetJob(job); }, ""},
      {"ListJobs", [](auto& k) { k.ListJobs({}); }, ""},
      {"ListSvms", [](auto& k) { k.ListSvms({}); }, ""},
      {"ListVolumes", [](auto& k) { k.ListVolumes("vs1", {}); }, ""},
      {"ListKeyStores", [](auto& k) { k.ListKeyStores({}); }, ""},
      {"GetBarbicanConfig", [=](auto& k) { k.GetBarbicanConfig(cfg, {}); }, ""},
      {"Version", [](auto& k) { k.Version(); }, ""},
      {"CreateSvm duplicate", [](auto& k) { k.CreateSvm("vs1", {}); }, "DuplicateEntry", 1},
      {"DeleteKeyStore enabled", [=](auto& k) { k.DeleteKeyStore(cfg); }, "KeystoreStillEnabled",
       65538905},
      {"EnableKeyStore enabled", [=](auto& k) { k.EnableKeyStore(cfg); }, "KeystoreAlreadyEnabled",
       65539218},
  };
  for (Case& c : BadCases()) {
    if (c.what.find("MB") == std::string::npos) mix.push_back(std::move(c));  // keep it quick
  }
  constexpr int kThreads = 6;
  constexpr int kCallsPerThread = 400;
  std::atomic<int> calls{0}, wrong{0};
  std::mutex mu;
  std::vector<std::string> wrong_examples;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto conn = sdbus::createSessionBusConnectionWithAddress(address());
      conn->enterEventLoopAsync();
      {
        KeyManagerProxy k(*conn);
        for (int i = 0; i < kCallsPerThread; ++i) {
          const Case& c = mix[static_cast<size_t>(t * 7919 + i * 31) % mix.size()];
          auto r = Answers(c, k);
          ++calls;
          if (!r) {
            ++wrong;
            std::lock_guard<std::mutex> lock(mu);
            if (wrong_examples.size() < 5) wrong_examples.push_back(r.message());
          }
        }
      }
      conn->leaveEventLoop();
    });
  }
  // Two more clients: busctl processes, each a loop of calls (valid and invalid).
  const std::string m = "org.svmkey.KeyManager1 /org/svmkey/KeyManager1 org.svmkey.KeyManager1";
  const std::string script =
      "ok=0; bad=0; for i in $(seq 1 150); do "
      "busctl --address=" +
      integration::Quote(address()) + " call " + m + " GetJob s " + job +
      " >/dev/null 2>&1 && ok=$((ok+1)); "
      "busctl --address=" +
      integration::Quote(address()) + " call " + m +
      " GetJob s nope 2>&1 "
      "| grep -q '262185: ' && bad=$((bad+1)); done; echo $ok $bad";
  std::vector<std::thread> procs;
  std::vector<std::string> proc_out(2);
  for (int p = 0; p < 2; ++p) {
    procs.emplace_back(
        [&, p] { proc_out[static_cast<size_t>(p)] = integration::Sh(script, 600s).out; });
  }
  for (auto& t : threads) t.join();
  for (auto& t : procs) t.join();
  for (const auto& o : proc_out) EXPECT_EQ(o, "150 150\n") << "busctl client: ok/refused counts";
  EXPECT_EQ(wrong.load(), 0) << ::testing::PrintToString(wrong_examples);
  std::printf(
      "[bad-input] %d concurrent calls from %d connections + %d from 2 busctl processes: "
      "%d wrong answers\n",
      calls.load(), kThreads, 2 * 300, wrong.load());
  ASSERT_TRUE(daemon().running()) << DaemonLog();
  EXPECT_EQ(DumpTable(daemon().table_path()), table_before) << "the flood changed the table";
  EXPECT_EQ(HashTree(daemon().volume_root()), files_before) << "the flood changed a file";
  // A normal call afterwards.
  auto [vs, vj] = km().VerifyVolumesWithin("vs1", 120, 180s);
  EXPECT_EQ(vs, 201u);
  EXPECT_EQ(Message(km().GetJob(vj)), "20 volumes verified, 0 failed");
}

}  // namespace
}  // namespace svmkey::reliability
