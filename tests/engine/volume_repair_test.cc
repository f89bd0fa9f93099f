#include "engine/volume_repair.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <vector>

#include "engine/rewrap.h"
#include "engine/testing/key_table_test_peer.h"
#include "tests/support/temp_dir.h"

namespace svmkey {
namespace {

using testing::TempDir;

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void FlipBit(const std::string& path, size_t offset) {
  auto bytes = ReadFile(path);
  bytes[offset] ^= 0x10;
  WriteFile(path, bytes);
}

class VolumeRepairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = KeyTable::Create(16);
    ASSERT_TRUE(t.ok());
    table_ = std::move(t).value();
    kek1_ = *table_->Generate();
    kek2_ = *table_->Generate();
    io_ = MakeSyncFileIo();
    svm_ = Uuid::Random();
    for (size_t i = 0; i < fp_key_.size(); ++i) fp_key_[i] = static_cast<uint8_t>(i);
  }

  // n volumes at generation 1, their table copies and VDEK fingerprints.
  void Create(size_t n) {
    targets_.assign(n, {});
    std::vector<VolumeRef> refs(n);
    for (size_t i = 0; i < n; ++i) {
      refs[i].id = {Uuid::Random(), svm_, 1000 + i};
      refs[i].path = dir_ / (refs[i].id.volume.ToString() + ".meta");
      targets_[i].ref = refs[i];
    }
    std::vector<CreateResult> created(n);
    ASSERT_TRUE(CreateVolumes(*io_, *table_, kek1_, 1, refs, created).ok());
    for (size_t i = 0; i < n; ++i) {
      ASSERT_TRUE(created[i].status.ok());
      targets_[i].has_blob = true;
      targets_[i].blob = created[i].blob;
    }
    fingerprints_ = Open(1);
  }

  // Rewraps every volume to generation 2 (two valid slots) and updates the copies.
  void RewrapToTwo() {
    std::vector<VolumeRef> refs;
    for (const auto& t : targets_) refs.push_back(t.ref);
    SpanVolumeSource source(refs);
    RewrapOptions options;
    options.threads = 1;
    auto counters = RewrapVolumes(*io_, *table_, {kek1_, 1, kek2_, 2}, source, options,
                                  [&](const RewrapBatchReport& r) {
                                    for (size_t i = 0; i < r.results.size(); ++i) {
                                      targets_[r.first_index + i].blob = r.results[i].blob;
                                    }
                                    return true;
                                  });
    ASSERT_TRUE(counters.ok());
    ASSERT_EQ(counters->rewrapped, targets_.size());
  }

  // Fingerprints of every volume opened under `generation` (all-zero when it fails).
  std::vector<VdekFingerprint> Open(uint64_t generation) {
    KeyRing ring;
    ring.Add(generation, generation == 1 ? kek1_ : kek2_);
    std::vector<VolumeRef> refs;
    for (const auto& t : targets_) refs.push_back(t.ref);
    std::vector<OpenResult> results(refs.size());
    EXPECT_TRUE(VerifyVolumes(*io_, *table_, ring, refs, results, fp_key_.data()).ok());
    std::vector<VdekFingerprint> out;
    for (const auto& r : results) {
      out.push_back(r.status.ok() && r.slot == r.current_slot ? r.fingerprint : VdekFingerprint{});
    }
    return out;
  }

  std::vector<RepairVolumeResult> Repair(uint64_t generation, RepairOptions options = {}) {
    std::vector<RepairVolumeResult> results(targets_.size());
    EXPECT_TRUE(RepairVolumes(*io_, *table_, generation == 1 ? kek1_ : kek2_, generation, targets_,
                              results, options)
                    .ok());
    return results;
  }

  const std::string& Path(size_t i) const { return targets_[i].ref.path; }

  TempDir dir_;
  std::unique_ptr<KeyTable> table_;
  KeyHandle kek1_, kek2_;
  std::unique_ptr<FileIo> io_;
  Uuid svm_;
  std::array<uint8_t, 32> fp_key_{};
  std::vector<RepairTarget> targets_;
  std::vector<VdekFingerprint> fingerprints_;
};

// Every way a generation-1 file (slot A current, slot B empty) can be damaged, each
// on its own volume; volume 0 (`other`) stays healthy.
struct Damage {
  const char* name;
  std::function<void(const std::string& path, const std::string& other)> apply;
  RepairOutcome expected;
};

TEST_F(VolumeRepairTest, EveryDamageRepairedToTheOriginalVdek) {
  const std::vector<Damage> cases = {
      {"healthy", [](const std::string&, const std::string&) {}, RepairOutcome::kHealthy},
      {"deleted", [](const std::string& p, [[maybe_unused]] const std::string& other) { ::unlink(p.c_str()); },
       RepairOutcome::kRepaired},
      {"empty", [](const std::string& p, [[maybe_unused]] const std::string& other) { WriteFile(p, {}); },
       RepairOutcome::kRepaired},
      {"truncated", [](const std::string& p, [[maybe_unused]] const std::string& other) { ::truncate(p.c_str(), 1000); },
       RepairOutcome::kRepaired},
      {"truncated in slot A", [](const std::string& p, [[maybe_unused]] const std::string& other) { ::truncate(p.c_str(), 700); },
       RepairOutcome::kRepaired},
      {"oversized", [](const std::string& p, [[maybe_unused]] const std::string& other) { ::truncate(p.c_str(), 4097); },
       RepairOutcome::kRepaired},
      {"header magic bit", [](const std::string& p, [[maybe_unused]] const std::string& other) { FlipBit(p, 3); },
       RepairOutcome::kRepaired},
      {"header uuid bit", [](const std::string& p, [[maybe_unused]] const std::string& other) { FlipBit(p, 20); },
       RepairOutcome::kRepaired},
      {"header checksum bit", [](const std::string& p, [[maybe_unused]] const std::string& other) { FlipBit(p, 500); },
       RepairOutcome::kRepaired},
      {"slot A wrapped-key bit", [](const std::string& p, [[maybe_unused]] const std::string& other) { FlipBit(p, 512 + 50); },
       RepairOutcome::kRepaired},
      {"slot A sequence bit", [](const std::string& p, [[maybe_unused]] const std::string& other) { FlipBit(p, 512 + 8); },
       RepairOutcome::kRepaired},
      {"slot A from another volume",
       [](const std::string& p, [[maybe_unused]] const std::string& other) {
         auto bytes = ReadFile(p);
         const auto theirs = ReadFile(other);
         std::memcpy(bytes.data() + 512, theirs.data() + 512, 512);
         WriteFile(p, bytes);
       },
       RepairOutcome::kRepaired},
      {"another volume's whole file",
       [](const std::string& p, [[maybe_unused]] const std::string& other) { WriteFile(p, ReadFile(other)); },
       RepairOutcome::kRepaired},
      {"slot A moved to slot B",
       [](const std::string& p, [[maybe_unused]] const std::string& other) {
         auto bytes = ReadFile(p);
         std::memcpy(bytes.data() + 1024, bytes.data() + 512, 512);
         std::memset(bytes.data() + 512, 0, 512);
         WriteFile(p, bytes);
       },
       RepairOutcome::kRepaired},
      {"empty directory",
       [](const std::string& p, [[maybe_unused]] const std::string& other) {
         ::unlink(p.c_str());
         ::mkdir(p.c_str(), 0700);
       },
       RepairOutcome::kRepaired},
      {"fifo",
       [](const std::string& p, [[maybe_unused]] const std::string& other) {
         ::unlink(p.c_str());
         ::mkfifo(p.c_str(), 0600);
       },
       RepairOutcome::kRepaired},
      {"symlink to another volume",
       [](const std::string& p, [[maybe_unused]] const std::string& other) {
         ::unlink(p.c_str());
         ASSERT_EQ(::symlink(other.c_str(), p.c_str()), 0);
       },
       RepairOutcome::kRepaired},
  };
  Create(cases.size());
  const auto volume0 = ReadFile(Path(0));
  for (size_t i = 0; i < cases.size(); ++i) cases[i].apply(Path(i), Path(0));

  // Dry run: every verdict, nothing written.
  const auto dry = Repair(1, {.dry_run = true});
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(dry[i].outcome, cases[i].expected) << cases[i].name << ": " << dry[i].status.ToString();
  }
  struct stat st;
  ASSERT_EQ(::lstat(Path(1).c_str(), &st), -1) << "dry run wrote";

  const auto results = Repair(1);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(results[i].outcome, cases[i].expected)
        << cases[i].name << ": " << results[i].status.ToString();
    EXPECT_EQ(results[i].damage.empty(), cases[i].expected == RepairOutcome::kHealthy)
        << cases[i].name << ": " << results[i].damage;
  }
  // Every volume opens at its current slot with its original VDEK; the symlink's target
  // (volume 0) was not written through.
  EXPECT_EQ(Open(1), fingerprints_);
  EXPECT_EQ(ReadFile(Path(0)), volume0);
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_EQ(::lstat(Path(i).c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode)) << cases[i].name;
    EXPECT_NE(::access((Path(i) + ".repair").c_str(), F_OK), 0) << "temp file left";
  }
  // A second run finds nothing to do.
  for (const auto& r : Repair(1)) EXPECT_EQ(r.outcome, RepairOutcome::kHealthy);
}

TEST_F(VolumeRepairTest, TwoSlotFilesRepairedWithoutTouchingTheSlotThatOpens) {
  // Generation 2 in slot B (sequence 2), generation 1 still in slot A.
  Create(4);
  RewrapToTwo();
  // 1: slot B (current) corrupt → B rewritten, A kept.
  FlipBit(Path(1), 1024 + 60);
  // 2: slot B swapped in from another volume (valid checksum, foreign AAD) → B
  //    rewritten (it claims the active generation), A kept.
  {
    auto bytes = ReadFile(Path(2));
    std::memcpy(bytes.data() + 1024, ReadFile(Path(0)).data() + 1024, 512);
    WriteFile(Path(2), bytes);
  }
  // 3: slot A corrupt (the non-current slot): the current slot opens, healthy.
  FlipBit(Path(3), 512 + 60);
  const auto slot_a = [&](size_t i) {
    auto b = ReadFile(Path(i));
    return std::vector<uint8_t>(b.begin() + 512, b.begin() + 1024);
  };
  const auto a1 = slot_a(1), a2 = slot_a(2);

  const auto results = Repair(2);
  EXPECT_EQ(results[0].outcome, RepairOutcome::kHealthy);
  EXPECT_EQ(results[1].outcome, RepairOutcome::kRepaired) << results[1].status.ToString();
  EXPECT_EQ(results[2].outcome, RepairOutcome::kRepaired) << results[2].status.ToString();
  EXPECT_EQ(results[3].outcome, RepairOutcome::kHealthy);
  EXPECT_EQ(slot_a(1), a1);
  EXPECT_EQ(slot_a(2), a2);
  EXPECT_EQ(Open(2), fingerprints_);
  // The rewritten slot carries a sequence above the old one and is what the table
  // should now hold.
  for (size_t i : {1, 2}) {
    VdekSlot slot;
    ASSERT_TRUE(DecodeSlot(results[i].blob, 1, &slot).ok());
    // Above every valid slot: A (1) alone for volume 1, A (1) and B (2) for volume 2.
    EXPECT_EQ(slot.sequence, i == 1 ? 2u : 3u);
    EXPECT_EQ(slot.generation, 2u);
    auto file = ReadFile(Path(i));
    EXPECT_EQ(0, std::memcmp(file.data() + 1024, results[i].blob.data(), 512));
  }
}

TEST_F(VolumeRepairTest, BadTableCopyLeavesTheFileAlone) {
  Create(5);
  for (size_t i = 1; i < 5; ++i) FlipBit(Path(i), 512 + 50);
  targets_[1].has_blob = false;
  targets_[2].blob = targets_[0].blob;  // another volume's copy: its AAD does not match
  targets_[3].blob[100] ^= 1;           // does not decode
  const auto before = ReadFile(Path(1));
  std::vector<RepairVolumeResult> results(targets_.size());
  // Under generation 2 every copy (at generation 1) is at the wrong generation.
  ASSERT_TRUE(RepairVolumes(*io_, *table_, kek2_, 2, {&targets_[4], 1}, {&results[4], 1}).ok());
  EXPECT_EQ(results[4].outcome, RepairOutcome::kFailed);
  EXPECT_EQ(results[4].status.code(), ErrorCode::kSvmKekUnwrapFailed);

  results = Repair(1);
  EXPECT_EQ(results[0].outcome, RepairOutcome::kHealthy);
  EXPECT_EQ(results[1].status.code(), ErrorCode::kBlobNotInTable);
  EXPECT_EQ(results[2].status.code(), ErrorCode::kDecryptFailed);
  EXPECT_EQ(results[3].status.code(), ErrorCode::kInvalidEncryptionBlob);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(results[i].outcome, RepairOutcome::kFailed);
    EXPECT_FALSE(results[i].damage.empty());
  }
  EXPECT_EQ(ReadFile(Path(1)), before);
  EXPECT_EQ(results[4].outcome, RepairOutcome::kRepaired);
}

TEST_F(VolumeRepairTest, NonEmptyDirectoryIsLeftAlone) {
  Create(2);
  ::unlink(Path(1).c_str());
  ASSERT_EQ(::mkdir(Path(1).c_str(), 0700), 0);
  WriteFile(Path(1) + "/keep", {1, 2, 3});
  const auto results = Repair(1);
  EXPECT_EQ(results[1].outcome, RepairOutcome::kFailed);
  EXPECT_EQ(results[1].status.code(), ErrorCode::kVdekBlobUpdateFailed);
  EXPECT_EQ(ReadFile(Path(1) + "/keep"), (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_NE(::access((Path(1) + ".repair").c_str(), F_OK), 0);
}

TEST_F(VolumeRepairTest, ManyBatches) {
  // More than one check batch (1024 volumes).
  Create(1100);
  for (size_t i = 0; i < 1100; i += 100) ::unlink(Path(i).c_str());
  size_t repaired = 0;
  for (const auto& r : Repair(1)) repaired += r.outcome == RepairOutcome::kRepaired;
  EXPECT_EQ(repaired, 11u);
  EXPECT_EQ(Open(1), fingerprints_);
}

}  // namespace
}  // namespace svmkey
