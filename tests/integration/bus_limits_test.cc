// Issue-14 attacks on the bus side of svmkeyd (docs/ARCHITECTURE.md §9):
// - a listing larger than the bus's message limit (ListVolumes of 10^4 volumes with long
//   names and paths, limit 10000): pages are bounded in bytes, the daemon stays on the
//   bus, and paging with `after` (svmkeyctl volume list too) returns every row once;
// - an a{sv} of 10^6 entries, 100 times: each call is refused with 262185 naming the
//   limit before it is decoded, and the daemon's RSS stays within 32 MiB of before;
// - Job1 properties read by a user outside group svmkey: AccessDenied from the bus.
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "ipc/bus_names.h"
#include "tests/integration/local_fixture.h"

namespace svmkey::integration {
namespace {

using sdbus::Variant;

constexpr int kBigVolumes = 12000;

class BusLimitsTest : public LocalDaemonTest {
 protected:
  // An SVM with kBigVolumes volume rows of ~4 KiB each (255-byte names, ~3.8 KiB paths),
  // written into the table directly: 48 MiB of rows, more than the bus carries at once.
  std::string SvmWithLongVolumeRows() {
    const std::string svm = km().CreateSvm("bigsvm", {});
    TableFile table(daemon().table_path());
    EXPECT_TRUE(table.ok()) << table.error();
    const std::string name_tail(240, 'n');
    const std::string path_head = "/" + std::string(3800, 'p');
    EXPECT_TRUE(table.Exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
            std::to_string(kBigVolumes) +
            ") INSERT INTO volumes (uuid, svm_uuid, name, dsid, metadata_path, generation) "
            "SELECT printf('%08x-0000-4000-8000-%012x', i, i), ?, printf('v%05d-', i) || ?, "
            "i, ? || printf('/%d.meta', i), 1 FROM n",
        {svm, name_tail, path_head}))
        << table.error();
    return svm;
  }
};

TEST_F(BusLimitsTest, ListVolumesPagesAreBoundedAndPagingReturnsEveryRow) {
  const std::string svm = SvmWithLongVolumeRows();
  std::set<std::string> seen;
  std::string after;
  size_t pages = 0;
  for (;;) {
    VariantMap options{{"limit", Variant(uint32_t{10000})}};
    if (!after.empty()) options["after"] = Variant(after);
    std::vector<VariantMap> page;
    const BusError e = CatchBusError([&] { page = km().ListVolumes(svm, options); });
    ASSERT_TRUE(e.name.empty()) << e.name << ": " << e.message << DaemonLog();
    if (page.empty()) break;
    ++pages;
    // 4 MiB of ~4 KiB rows: fewer rows than asked for, and at least one.
    EXPECT_LT(page.size(), 1100u);
    for (const auto& row : page) {
      EXPECT_TRUE(seen.insert(row.at("uuid").get<std::string>()).second) << "a row came twice";
    }
    after = page.back().at("uuid").get<std::string>();
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kBigVolumes));
  EXPECT_GE(pages, 12u);
  EXPECT_TRUE(daemon().running()) << DaemonLog();
  EXPECT_EQ(km().ListSvms({}).size(), 1u);

  // svmkeyctl pages through all of them.
  const CommandResult r = Sh(Quote(SVMKEYCTL_PATH) + " --address " + Quote(address()) +
                             " --json volume list --svm bigsvm | grep -c '\"uuid\"'");
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), std::to_string(kBigVolumes)) << r.err;
}

TEST_F(BusLimitsTest, EveryListTakesAfterAndLimit) {
  for (const char* name : {"s1", "s2", "s3"}) km().CreateSvm(name, {});
  std::vector<std::string> uuids;
  std::string after;
  for (;;) {
    VariantMap filter{{"limit", Variant(uint32_t{2})}};
    if (!after.empty()) filter["after"] = Variant(after);
    const auto page = km().ListSvms(filter);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 2u);
    for (const auto& row : page) uuids.push_back(row.at("uuid").get<std::string>());
    after = uuids.back();
  }
  EXPECT_EQ(uuids.size(), 3u);
  // An `after` naming no row is 4; the other lists take the same keys.
  const std::string missing = "00000000-0000-4000-8000-000000000001";
  EXPECT_TRUE(IsSvmkeyError(CatchBusError([&] {
                              km().ListSvms({{"after", Variant(missing)}});
                            }),
                            "EntryNotFound", 4));
  EXPECT_TRUE(km().ListKeyStores({{"limit", Variant(uint32_t{1})}}).empty());
  EXPECT_TRUE(km().ListBarbicanConfigs({{"limit", Variant(uint32_t{1})}}).empty());
  EXPECT_TRUE(IsSvmkeyError(CatchBusError([&] {
                              km().ListJobs({{"after", Variant(missing)}});
                            }),
                            "EntryNotFound", 4));
}

// VmRSS of `pid` in KiB.
long RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// ListSvms with a filter of `entries` entries {"k<i>": u}, sent as built (the generated
// proxy would need a std::map of them first).
BusError ListSvmsWithEntries(sdbus::IProxy& proxy, size_t entries) {
  auto call = proxy.createMethodCall(kManagerInterface, "ListSvms");
  call.openContainer("{sv}");
  for (size_t i = 0; i < entries; ++i) {
    call.openDictEntry("sv");
    call << ("k" + std::to_string(i));
    call.openVariant("u");
    call << static_cast<uint32_t>(i);
    call.closeVariant();
    call.closeDictEntry();
  }
  call.closeContainer();
  return CatchBusError([&] { call.send(60'000'000); });
}

TEST_F(BusLimitsTest, OversizedMapsAreRefusedBeforeDecodingAndTheirMemoryReturned) {
  auto owned = sdbus::createProxy(*conn_, kBusName, kManagerPath);
  sdbus::IProxy& proxy = *owned;
  // The bound is exact: 64 entries reach the handler (which refuses the unknown keys),
  // 65 do not.
  EXPECT_TRUE(IsSvmkeyError(ListSvmsWithEntries(proxy, 64), "UnexpectedArgument", 262179));
  BusError e = ListSvmsWithEntries(proxy, 65);
  EXPECT_TRUE(IsSvmkeyError(e, "InvalidValue", 262185));
  EXPECT_NE(e.message.find("more than 64 entries"), std::string::npos) << e.message;

  const long before = RssKib(daemon().pid());
  ASSERT_GT(before, 0);
  for (int i = 0; i < 100; ++i) {
    e = ListSvmsWithEntries(proxy, 1'000'000);
    ASSERT_TRUE(IsSvmkeyError(e, "InvalidValue", 262185)) << "call " << i << DaemonLog();
    ASSERT_NE(e.message.find("more than 64 entries"), std::string::npos) << e.message;
  }
  // One more turn of the loop runs the trim posted by the last refusal.
  EXPECT_TRUE(km().ListSvms({}).empty());
  EXPECT_TRUE(km().ListSvms({}).empty());
  const long after = RssKib(daemon().pid());
  EXPECT_LT(after - before, 32 * 1024) << "RSS " << before << " KiB -> " << after << " KiB";
  std::printf("RSS before 100 oversized calls %ld KiB, after %ld KiB\n", before, after);
  EXPECT_TRUE(daemon().running()) << DaemonLog();
}

TEST_F(BusLimitsTest, JobPropertiesAreForRootAndGroupSvmkeyOnly) {
  const std::string svm = km().CreateSvm("jobsvm", {});
  const std::string job = "11111111-2222-4333-8444-555555555555";
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  {
    TableFile table(daemon().table_path());
    ASSERT_TRUE(table.ok()) << table.error();
    ASSERT_TRUE(table.Exec(
        "INSERT INTO jobs (uuid, description, state, svm_uuid, queued_time, start_time, "
        "end_time, updated_time) VALUES (?1, 'rekey-internal of jobsvm', 'success', ?2, "
        "CAST(?3 AS INTEGER), CAST(?3 AS INTEGER), CAST(?3 AS INTEGER), CAST(?3 AS INTEGER))",
        {job, svm, std::to_string(now_ms)}))
        << table.error();
  }
  // The daemon publishes every job row at start.
  ASSERT_EQ(daemon().Stop(SIGTERM), 0);
  ASSERT_TRUE(daemon().Start()) << DaemonLog();
  const std::string path = ipc::JobObjectPath(job);
  const std::string get = "get-property org.svmkey.KeyManager1 " + path + " org.svmkey.Job1 Svm";
  auto r = Busctl(address(), get);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(svm), std::string::npos) << r.out;
  r = Busctl(address(), get, kOperatorUser);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(svm), std::string::npos) << r.out;
  r = Gdbus(address(), "org.freedesktop.DBus.Properties.Get", "org.svmkey.Job1 Svm", kUnprivUser,
            path);
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_EQ(GdbusErrorName(r.err), "org.freedesktop.DBus.Error.AccessDenied") << r.err;
  EXPECT_EQ(r.out.find(svm), std::string::npos) << r.out;
  r = Gdbus(address(), "org.freedesktop.DBus.Properties.GetAll", "org.svmkey.Job1", kUnprivUser,
            path);
  EXPECT_EQ(GdbusErrorName(r.err), "org.freedesktop.DBus.Error.AccessDenied") << r.err;
  // The manager's own properties stay readable by everyone.
  r = Busctl(address(),
             "get-property org.svmkey.KeyManager1 /org/svmkey/KeyManager1 "
             "org.svmkey.KeyManager1 Version",
             kUnprivUser);
  EXPECT_EQ(r.status, 0) << r.err;
}

}  // namespace
}  // namespace svmkey::integration
