// Suite 'crash': a fault at EVERY I/O operation of one rewrap run (docs/ARCHITECTURE.md §7).
//
// For a set of 200 volumes (clones sharing a VDEK, a corrupt volume in the middle,
// volumes already at g+1, volumes whose current slot is B so the rewrap writes A), and
// for every op index k of a clean rewrap run:
//   - power cut at k (everything not yet durable is rolled back),
//   - op k fails with an errno (the run goes on),
//   - a torn write at k (every write op; a prefix reaches the file, then the crash),
// then asserts the invariant at that instant (every volume opens under g or g+1 with its
// original VDEK; every volume reported rewrapped before a power cut is still at g+1),
// reruns with a clean FileIo, and asserts the rotation completed with the same VDEKs.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "engine/fault_injecting_file_io.h"
#include "tests/engine/volume_set.h"

namespace svmkey {
namespace {

using testing::VolumeSet;

constexpr size_t kVolumes = 200;
constexpr size_t kBatch = 64;  // 4 batches: 64, 64, 64, 8
constexpr size_t kCorrupt = 123;

// One FileIo per rewrap thread, all forwarding to one shared injector under a lock, so
// the injector's op indices count the operations of every thread (which operation index
// k is then depends on how the threads interleaved).
class LockedFileIo final : public FileIo {
 public:
  LockedFileIo(FileIo& shared, std::mutex& mu) : shared_(shared), mu_(mu) {}
  std::string_view name() const override { return shared_.name(); }
  Status Execute(std::span<IoOp> ops) override {
    std::lock_guard lock(mu_);
    return shared_.Execute(ops);
  }
  int SyncFs(int fd) override {
    std::lock_guard lock(mu_);
    return shared_.SyncFs(fd);
  }

 private:
  FileIo& shared_;
  std::mutex& mu_;
};

class RewrapCrashTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    set_ = new VolumeSet(/*prefer_memory=*/true);
    // 0..49: rotated once already (g-1 → g), so their current slot is B and the
    // rewrap under test writes slot A.
    set_->Add(50, {}, set_->other_kek(), VolumeSet::kOldGen - 1);
    {
      RewrapKeys k;
      k.old_kek = set_->other_kek();
      k.old_generation = VolumeSet::kOldGen - 1;
      k.new_kek = set_->old_kek();
      k.new_generation = VolumeSet::kOldGen;
      SpanVolumeSource first50(set_->volumes());
      auto io = MakeSyncFileIo();
      auto c = RewrapVolumes(*io, set_->table(), k, first50, {}, {});
      ASSERT_TRUE(c.ok());
      ASSERT_EQ(c->rewrapped, 50u);
    }
    // 50..99: fresh under g, every 7th a clone of the one before.
    std::vector<int> clones(50, -1);
    for (int i = 6; i < 50; i += 7) clones[i] = i - 1;
    set_->Add(50, clones);
    // 100..119: already at g+1 (an earlier interrupted run got this far).
    set_->Add(20, {}, set_->new_kek(), VolumeSet::kNewGen);
    // 120..199: under g, clones again; 123 gets a corrupt header.
    std::vector<int> clones80(80, -1);
    for (int i = 6; i < 80; i += 7) clones80[i] = i - 1;
    set_->Add(80, clones80);
    auto bytes = testing::ReadWholeFile(set_->volumes()[kCorrupt].path);
    bytes[20] ^= 0x5A;
    ASSERT_TRUE(testing::WriteWholeFile(set_->volumes()[kCorrupt].path, bytes));
    ASSERT_EQ(set_->volumes().size(), kVolumes);
    initial_ = new std::vector<std::vector<uint8_t>>(set_->Snapshot());
    original_ = new std::vector<OpenResult>(set_->VerifyBoth());
    for (size_t i = 0; i < kVolumes; ++i) {
      if (i == kCorrupt) continue;
      ASSERT_TRUE((*original_)[i].status.ok()) << i;
    }
    ASSERT_EQ((*original_)[kCorrupt].status.code(), ErrorCode::kInvalidEncryptionBlob);
    ASSERT_EQ((*original_)[56].fingerprint, (*original_)[55].fingerprint);  // a clone
  }
  static void TearDownTestSuite() {
    delete original_;
    delete initial_;
    delete set_;
  }

  static RewrapOptions Options(RewrapDurability d) {
    RewrapOptions o;
    o.batch_size = kBatch;
    o.durability = d;
    o.threads = 1;  // the two-thread runs set it
    return o;
  }

  // The trace of a clean run from the initial state: one entry per crash point.
  std::vector<TracedOp> CleanTrace(FileIo& inner, const RewrapOptions& o) {
    set_->Restore(*initial_);
    FaultInjectingFileIo probe(inner);
    auto c = set_->Rewrap(probe, o);
    EXPECT_TRUE(c.ok());
    EXPECT_EQ(c->failed, 1u);
    return probe.trace();
  }

  // Every non-corrupt volume opens under g or g+1 with its original VDEK. Volumes in
  // `must_be_new` must be at g+1.
  void CheckInvariant(const std::vector<bool>& must_be_new) {
    const auto now = set_->VerifyBoth();
    for (size_t i = 0; i < kVolumes; ++i) {
      if (i == kCorrupt) {
        EXPECT_EQ(now[i].status.code(), ErrorCode::kInvalidEncryptionBlob);
        continue;
      }
      ASSERT_TRUE(now[i].status.ok()) << "volume " << i << ": " << now[i].status.ToString();
      ASSERT_EQ(now[i].fingerprint, (*original_)[i].fingerprint) << "volume " << i;
      if (must_be_new[i]) {
        ASSERT_EQ(now[i].generation, VolumeSet::kNewGen)
            << "volume " << i << " was reported durable at g+1 but is not";
      }
    }
  }

  // A rerun with a clean FileIo completes the rotation.
  void RerunCompletes(FileIo& inner, const RewrapOptions& o) {
    auto c = set_->Rewrap(inner, o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_EQ(c->failed, 1u);  // the corrupt one
    ASSERT_EQ(c->rewrapped + c->already_current, kVolumes - 1);
    const auto fin = set_->Verify(set_->Ring(false, true));
    for (size_t i = 0; i < kVolumes; ++i) {
      if (i == kCorrupt) continue;
      ASSERT_TRUE(fin[i].status.ok()) << "volume " << i << ": " << fin[i].status.ToString();
      ASSERT_EQ(fin[i].generation, VolumeSet::kNewGen) << i;
      ASSERT_EQ(fin[i].fingerprint, (*original_)[i].fingerprint) << i;
    }
  }

  // One crash point: run with `plan`, check, rerun, check. Returns the failed count of
  // the faulty run.
  uint64_t RunPoint(FileIo& inner, const RewrapOptions& o, const FaultPlan& plan,
                    size_t* rolled_back) {
    set_->Restore(*initial_);
    FaultInjectingFileIo fault(inner, plan);
    // With several threads, each gets its own FileIo onto the one injector.
    std::mutex mu;
    LockedFileIo locked(fault, mu);
    RewrapOptions run = o;
    if (o.threads > 1) {
      run.make_io = [&]() -> Result<std::unique_ptr<FileIo>> {
        return std::unique_ptr<FileIo>(std::make_unique<LockedFileIo>(fault, mu));
      };
    }
    FileIo& first = o.threads > 1 ? static_cast<FileIo&>(locked) : fault;
    std::vector<bool> durable(kVolumes, false);
    auto c = set_->Rewrap(first, run, [&](const RewrapBatchReport& r) {
      for (size_t i = 0; i < r.results.size(); ++i) {
        if (r.results[i].outcome == RewrapOutcome::kRewrapped) durable[r.first_index + i] = true;
      }
      return true;
    });
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(fault.fault_hit());
    if (rolled_back != nullptr) *rolled_back += fault.rolled_back_writes();
    CheckInvariant(durable);
    if (::testing::Test::HasFatalFailure()) return 0;
    RerunCompletes(inner, o);
    return c.ok() ? c->failed : 0;
  }

  static VolumeSet* set_;
  static std::vector<std::vector<uint8_t>>* initial_;
  static std::vector<OpenResult>* original_;
};

VolumeSet* RewrapCrashTest::set_ = nullptr;
std::vector<std::vector<uint8_t>>* RewrapCrashTest::initial_ = nullptr;
std::vector<OpenResult>* RewrapCrashTest::original_ = nullptr;

// (I/O, durability, rewrap threads). With two threads (svmkeyd's default) each thread has
// its own FileIo onto the one injector, so the index counts both threads' operations and
// the cut lands wherever their interleaving put op k: between one thread's writes and its
// syncfs, after the other thread's syncfs covered them, or with a batch still in flight
// when the other thread failed. Two threads do the same operations per batch as one, so
// the one-thread trace has as many (RunPoint checks that op k was reached).
class PowerCut
    : public RewrapCrashTest,
      public ::testing::WithParamInterface<std::tuple<IoMode, RewrapDurability, size_t>> {};

TEST_P(PowerCut, AtEveryOperation) {
  auto inner = testing::MakeIo(std::get<0>(GetParam()));
  RewrapOptions o = Options(std::get<1>(GetParam()));
  const auto trace = CleanTrace(*inner, o);
  o.threads = std::get<2>(GetParam());
  ASSERT_GT(trace.size(), 4 * kVolumes - 100);
  size_t rolled_back = 0;
  for (uint64_t k = 0; k < trace.size(); ++k) {
    SCOPED_TRACE("power cut at op " + std::to_string(k));
    FaultPlan plan;
    plan.kind = FaultKind::kPowerCut;
    plan.op_index = k;
    (void)RunPoint(*inner, o, plan, &rolled_back);
    if (HasFailure()) break;
  }
  // The cuts did drop unsynced slots (else this suite would prove nothing).
  EXPECT_GT(rolled_back, 0u);
  std::printf("[ crash    ] %s, %zu thread(s): %zu power-cut points (every op), %zu writes "
              "rolled back\n",
              inner->name().data(), o.threads, trace.size(), rolled_back);
}

INSTANTIATE_TEST_SUITE_P(
    Rewrap, PowerCut,
    ::testing::Values(std::make_tuple(IoMode::kSync, RewrapDurability::kSyncFsPerBatch, 1),
                      std::make_tuple(IoMode::kSync, RewrapDurability::kFdatasyncPerFile, 1),
                      std::make_tuple(IoMode::kUring, RewrapDurability::kSyncFsPerBatch, 1),
                      std::make_tuple(IoMode::kSync, RewrapDurability::kSyncFsPerBatch, 2)),
    [](const ::testing::TestParamInfo<std::tuple<IoMode, RewrapDurability, size_t>>& p) {
      return std::string(testing::IoModeName(std::get<0>(p.param))) +
             (std::get<1>(p.param) == RewrapDurability::kSyncFsPerBatch ? "_syncfs"
                                                                         : "_fdatasync") +
             "_" + std::to_string(std::get<2>(p.param)) + "t";
    });

TEST_F(RewrapCrashTest, FailedOpAtEveryOperation) {
  auto inner = MakeSyncFileIo();
  const RewrapOptions o = Options(RewrapDurability::kSyncFsPerBatch);
  const auto trace = CleanTrace(*inner, o);
  const int errnos[] = {EIO, ENOSPC, ENOENT};
  for (uint64_t k = 0; k < trace.size(); ++k) {
    SCOPED_TRACE("op " + std::to_string(k) + " fails");
    FaultPlan plan;
    plan.kind = FaultKind::kFail;
    plan.op_index = k;
    plan.error = errnos[k % 3];
    const uint64_t failed = RunPoint(*inner, o, plan, nullptr);
    // One failing op costs at most one volume, except a syncfs: then every volume
    // written in that batch is failed (and the run still went on).
    if (trace[k] == TracedOp::kSyncFs) {
      EXPECT_GT(failed, 1u);
      EXPECT_LE(failed, 1 + kBatch);
    } else {
      EXPECT_LE(failed, 2u);
    }
    if (HasFailure()) break;
  }
  std::printf("[ crash    ] %zu failed-op points (every op)\n", trace.size());
}

TEST_F(RewrapCrashTest, TornWriteAtEveryWrite) {
  auto inner = MakeSyncFileIo();
  const RewrapOptions o = Options(RewrapDurability::kSyncFsPerBatch);
  const auto trace = CleanTrace(*inner, o);
  const uint32_t prefixes[] = {1, 256, 511};
  size_t points = 0;
  for (uint64_t k = 0; k < trace.size(); ++k) {
    if (trace[k] != TracedOp::kWrite) continue;
    SCOPED_TRACE("torn write at op " + std::to_string(k));
    FaultPlan plan;
    plan.kind = FaultKind::kTear;
    plan.op_index = k;
    plan.tear_bytes = prefixes[points % 3];
    (void)RunPoint(*inner, o, plan, nullptr);
    ++points;
    if (HasFailure()) break;
  }
  EXPECT_EQ(points, kVolumes - 1 - 20);  // every volume but the corrupt and current ones
  std::printf("[ crash    ] %zu torn-write points (every write)\n", points);
}

}  // namespace
}  // namespace svmkey
