// RepairVolumes (docs/ARCHITECTURE.md §7): 1 % of 10^4 volumes damaged in every way the
// metadata format can be damaged are rewritten from the table's copy, after which every
// volume opens under the active generation with its original VDEK; an undamaged set
// repairs nothing; a repair is refused with 8 while a rekey of the SVM runs.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

constexpr uint64_t kVolumes = 10000;

std::vector<uint8_t> Bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void Put(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> Paths(const std::string& table_path, const std::string& svm) {
  TableFile t(table_path);
  std::vector<std::string> out;
  for (const auto& r :
       t.QueryRows("SELECT metadata_path FROM volumes WHERE svm_uuid = ?1 ORDER BY id", {svm})) {
    out.push_back(r[0]);
  }
  return out;
}

class RepairTest : public DaemonTest {
 protected:
  // Starts a repair (return_timeout 0) and waits for its end.
  VariantMap Repair(const std::string& svm, bool dry_run = false) {
    VariantMap options{{"return_timeout", sdbus::Variant(uint32_t{0})}};
    if (dry_run) options["dry_run"] = sdbus::Variant(true);
    auto [status, job] = km().RepairVolumes(svm, options);
    EXPECT_EQ(status, 202u);
    return WaitJob(job, 600s);
  }
};

// The damages, one per volume in turn (index i of the damaged volumes uses kind i % n).
// The set has been rekeyed once: slot B (sequence 2, generation 2) is current, slot A
// (generation 1) is the older one.
enum Kind {
  kHeaderBit,         // a random bit of the header sector
  kCurrentSlotBit,    // a random bit of slot B
  kOlderSlotBit,      // a random bit of slot A: the current slot still opens (healthy)
  kBothSlotsBits,     // no valid slot left
  kTruncated,         // a random length 0..4095
  kPadded,            // longer than 4096
  kDeleted,
  kSlotFromOther,     // slot B of another volume (valid checksum, foreign AAD)
  kFileFromOther,     // another volume's whole file
  kDirectory,         // an empty directory in the file's place
  kFifo,
  kKinds
};

TEST_F(RepairTest, OnePercentOfTenThousandDamagedEveryWayThenRepaired) {
  // Wall time of each step, for choosing the suite (printed, not asserted).
  auto last = std::chrono::steady_clock::now();
  auto lap = [&](const char* step) {
    const auto now = std::chrono::steady_clock::now();
    std::cout << step << ": " << std::chrono::duration<double>(now - last).count() << " s\n";
    last = now;
  };
  const SvmSetup s = SetUpSvm("vs1");
  ASSERT_EQ(RegisterVolumeSet("vs1", MakeVolumeSet(s.svm_uuid, kVolumes)), kVolumes);
  lap("make and register");
  auto [rs, rj] = km().RekeyInternalWithin(s.config_uuid, 120, 300s);
  ASSERT_EQ(rs, 201u) << Message(km().GetJob(rj)) << DaemonLog();
  lap("rekey");

  std::array<uint8_t, 32> fp_key{};
  randombytes_buf(fp_key.data(), fp_key.size());
  std::string error;
  const VolumeFingerprints before =
      FingerprintVolumes(daemon().table_path(), s.svm_uuid, 2, 2, s.key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(before.opened, kVolumes);
  lap("fingerprint");

  // An undamaged set: nothing to repair (through busctl, the documented signature).
  auto r = Busctl(address(),
                  "--timeout=300 call org.svmkey.KeyManager1 /org/svmkey/KeyManager1 "
                  "org.svmkey.KeyManager1 RepairVolumes 'sa{sv}' vs1 1 return_timeout u 120");
  ASSERT_EQ(r.out.rfind("us 201 \"", 0), 0u) << r.out << r.err;
  const std::string clean_job = r.out.substr(8, 36);
  EXPECT_EQ(Message(km().GetJob(clean_job)),
            std::to_string(kVolumes) + " volumes checked, 0 repaired, 0 failed");
  lap("repair of the undamaged set");

  // Damage 1 %: every 100th volume, the kinds in turn.
  const auto paths = Paths(daemon().table_path(), s.svm_uuid);
  ASSERT_EQ(paths.size(), kVolumes);
  std::mt19937_64 rng(20261203);
  auto flip = [&](const std::string& path, size_t from) {
    auto b = Bytes(path);
    ASSERT_EQ(b.size(), 4096u);
    const size_t bit = std::uniform_int_distribution<size_t>(0, 512 * 8 - 1)(rng);
    b[from + bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    Put(path, b);
  };
  std::vector<size_t> damaged;
  uint64_t expect_repaired = 0;
  for (size_t v = 37, k = 0; v < kVolumes; v += 100, ++k) {
    const std::string& p = paths[v];
    const std::string& other = paths[(v + 1) % kVolumes];
    switch (static_cast<Kind>(k % kKinds)) {
      case kHeaderBit: flip(p, 0); break;
      case kCurrentSlotBit: flip(p, 1024); break;
      case kOlderSlotBit: flip(p, 512); break;
      case kBothSlotsBits:
        flip(p, 512);
        flip(p, 1024);
        break;
      case kTruncated:
        ASSERT_EQ(::truncate(p.c_str(), std::uniform_int_distribution<off_t>(0, 4095)(rng)), 0);
        break;
      case kPadded: ASSERT_EQ(::truncate(p.c_str(), 8192), 0); break;
      case kDeleted: ASSERT_EQ(::unlink(p.c_str()), 0); break;
      case kSlotFromOther: {
        auto b = Bytes(p);
        const auto o = Bytes(other);
        std::memcpy(b.data() + 1024, o.data() + 1024, 512);
        Put(p, b);
        break;
      }
      case kFileFromOther: Put(p, Bytes(other)); break;
      case kDirectory:
        ASSERT_EQ(::unlink(p.c_str()), 0);
        ASSERT_EQ(::mkdir(p.c_str(), 0700), 0);
        break;
      case kFifo:
        ASSERT_EQ(::unlink(p.c_str()), 0);
        ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
        break;
      case kKinds: break;
    }
    damaged.push_back(v);
    expect_repaired += (k % kKinds) != kOlderSlotBit;
  }
  ASSERT_EQ(damaged.size(), kVolumes / 100);
  lap("damage");

  // A dry run reports them and writes nothing.
  VariantMap dry = Repair("vs1", /*dry_run=*/true);
  EXPECT_EQ(State(dry), "success") << Message(dry) << DaemonLog();
  EXPECT_EQ(Message(dry), std::to_string(kVolumes) + " volumes checked, " +
                              std::to_string(expect_repaired) + " to repair, 0 failed (dry run)");
  struct stat st;
  EXPECT_EQ(::lstat(paths[damaged[kDeleted]].c_str(), &st), -1) << "the dry run wrote";
  lap("dry run");

  VariantMap job = Repair("vs1");
  lap("repair");
  EXPECT_EQ(State(job), "success") << Message(job) << DaemonLog();
  EXPECT_EQ(Message(job), std::to_string(kVolumes) + " volumes checked, " +
                              std::to_string(expect_repaired) + " repaired, 0 failed");
  // Each repaired volume is logged with what was wrong.
  const std::string log = daemon().LogTail(1 << 20);
  EXPECT_NE(log.find(before.uuids[damaged[kDeleted]] + " (" + paths[damaged[kDeleted]] +
                     ") repaired: missing"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("repaired: not a regular file (fifo)"), std::string::npos);
  EXPECT_NE(log.find("repaired: not a regular file (directory)"), std::string::npos);
  for (size_t v : damaged) {
    ASSERT_EQ(::lstat(paths[v].c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode)) << paths[v];
  }

  // The daemon's own verify agrees, and every VDEK is the original one, at generation 2.
  auto [vs, vj] = km().VerifyVolumesWithin("vs1", 120, 300s);
  EXPECT_EQ(vs, 201u) << Message(km().GetJob(vj));
  EXPECT_EQ(Message(km().GetJob(vj)), std::to_string(kVolumes) + " volumes verified, 0 failed");
  const VolumeFingerprints after =
      FingerprintVolumes(daemon().table_path(), s.svm_uuid, 2, 2, s.key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(after.opened, kVolumes);
  EXPECT_EQ(after.uuids, before.uuids);
  size_t changed = 0, wrong_generation = 0;
  for (size_t i = 0; i < kVolumes; ++i) {
    changed += after.fingerprints[i] != before.fingerprints[i];
    wrong_generation += after.generations[i] != 2;
  }
  EXPECT_EQ(changed, 0u) << "VDEKs changed";
  EXPECT_EQ(wrong_generation, 0u);
  lap("verify and fingerprint");

  // Nothing left to do; and a later rekey rewraps the repaired volumes like the others.
  EXPECT_EQ(Message(Repair("vs1")), std::to_string(kVolumes) + " volumes checked, 0 repaired, 0 failed");
  auto [r2, j2] = km().RekeyInternalWithin(s.config_uuid, 120, 300s);
  EXPECT_EQ(r2, 201u) << Message(km().GetJob(j2)) << DaemonLog();
  const VolumeFingerprints third =
      FingerprintVolumes(daemon().table_path(), s.svm_uuid, 3, 3, s.key.key_file, fp_key, &error);
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(third.opened, kVolumes);
  EXPECT_EQ(third.fingerprints, before.fingerprints);
  lap("repair again, rekey, fingerprint");
}

class RepairBusyTest : public RepairTest {
 protected:
  // 2000 volumes in batches of 16 with a 5 ms pause after each: the rekey runs >= 0.6 s.
  DaemonOptions Options() override { return DaemonOptions::ThrottledRewrap(16, 5); }
};

TEST_F(RepairBusyTest, RefusedWhileARekeyRunsAndBadOptionsRefused) {
  const SvmSetup s = SetUpSvm("vs1");
  ASSERT_EQ(RegisterVolumeSet("vs1", MakeVolumeSet(s.svm_uuid, 2000)), 2000u);
  VariantMap zero{{"return_timeout", sdbus::Variant(uint32_t{0})}};

  BusError e = CatchBusError([&] {
    km().RepairVolumes("vs1", {{"return_timeout", sdbus::Variant(uint32_t{121})}});
  });
  EXPECT_EQ(e.name, "org.svmkey.Error.InvalidValue") << e.message;
  EXPECT_NE(e.message.find("return_timeout"), std::string::npos) << e.message;
  e = CatchBusError([&] { km().RepairVolumes("vs1", {{"force", sdbus::Variant(true)}}); });
  EXPECT_EQ(e.name, "org.svmkey.Error.UnexpectedArgument") << e.message;
  e = CatchBusError([&] { km().RepairVolumes("no-such-svm", zero); });
  EXPECT_FALSE(e.name.empty());

  auto [status, rekey] = km().RekeyInternalWithin(s.config_uuid, 0, 30s);
  ASSERT_EQ(status, 202u);
  e = CatchBusError([&] { km().RepairVolumes("vs1", zero); });
  EXPECT_EQ(e.name, "org.svmkey.Error.ResourceInUse") << e.message;
  EXPECT_EQ(e.message.rfind("8: ", 0), 0u) << e.message;
  const std::string rekey_state = State(km().GetJob(rekey));
  EXPECT_TRUE(rekey_state == "queued" || rekey_state == "running")
      << "the rekey ended before the check: " << rekey_state;
  EXPECT_EQ(State(WaitJob(rekey)), "success");
  // Once the rekey is over the repair runs.
  VariantMap job = Repair("vs1");
  EXPECT_EQ(Message(job), "2000 volumes checked, 0 repaired, 0 failed") << DaemonLog();
}

}  // namespace
}  // namespace svmkey::integration
