// RewrapVolumes (engine/rewrap.cc), run over both real FileIo implementations.
#include "engine/rewrap.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "engine/fault_injecting_file_io.h"
#include "tests/engine/volume_set.h"

namespace svmkey {
namespace {

using testing::ReadWholeFile;
using testing::TempDir;
using testing::VolumeSet;
using testing::WriteWholeFile;

class RewrapTest : public ::testing::TestWithParam<IoMode> {
 protected:
  std::unique_ptr<FileIo> io_ = testing::MakeIo(GetParam());
};

RewrapOptions Batch(size_t n, RewrapDurability d = RewrapDurability::kSyncFsPerBatch) {
  RewrapOptions o;
  o.batch_size = n;
  o.durability = d;
  return o;
}

TEST_P(RewrapTest, UsesTheRequestedFileIo) {
  EXPECT_EQ(io_->name(), GetParam() == IoMode::kSync ? "sync" : "io_uring");
}

// The core promise: same VDEKs, current slot under g+1 in the other slot with
// sequence+1, header and old slot untouched byte for byte.
TEST_P(RewrapTest, RewrapsEveryVolumeKeepingVdeks) {
  for (RewrapDurability d : {RewrapDurability::kSyncFsPerBatch,
                             RewrapDurability::kFdatasyncPerFile}) {
    SCOPED_TRACE(d == RewrapDurability::kSyncFsPerBatch ? "syncfs" : "fdatasync");
    VolumeSet set;
    std::vector<int> clones(150, -1);
    clones[10] = 3;  // clone sharing volume 3's VDEK
    clones[149] = 0;
    set.Add(150, clones);
    const auto before = set.VerifyBoth();
    const auto files_before = set.Snapshot();
    ASSERT_EQ(before[10].fingerprint, before[3].fingerprint);

    std::vector<RewrapVolumeResult> seen(150);
    size_t batches = 0;
    auto counters = set.Rewrap(*io_, Batch(64, d), [&](const RewrapBatchReport& r) {
      ++batches;
      EXPECT_EQ(r.first_index, (batches - 1) * 64);
      for (size_t i = 0; i < r.results.size(); ++i) seen[r.first_index + i] = r.results[i];
      return true;
    });
    ASSERT_TRUE(counters.ok()) << counters.status().ToString();
    EXPECT_EQ(batches, 3u);  // 64 + 64 + 22
    EXPECT_EQ(counters->total, 150u);
    EXPECT_EQ(counters->rewrapped, 150u);
    EXPECT_EQ(counters->failed, 0u);
    EXPECT_FALSE(counters->stopped);

    const auto after_new_only = set.Verify(set.Ring(false, true));
    for (size_t i = 0; i < 150; ++i) {
      SCOPED_TRACE(i);
      EXPECT_EQ(seen[i].outcome, RewrapOutcome::kRewrapped);
      EXPECT_TRUE(seen[i].status.ok());
      ASSERT_TRUE(after_new_only[i].status.ok()) << after_new_only[i].status.ToString();
      EXPECT_EQ(after_new_only[i].generation, VolumeSet::kNewGen);
      EXPECT_EQ(after_new_only[i].slot, 1);
      EXPECT_EQ(after_new_only[i].sequence, 2u);
      EXPECT_EQ(after_new_only[i].fingerprint, before[i].fingerprint);
      const auto file = testing::ReadWholeFile(set.volumes()[i].path);
      ASSERT_EQ(file.size(), kMetadataFileSize);
      // Header and slot A (the old current slot) untouched; only slot B changed.
      EXPECT_EQ(0, std::memcmp(file.data(), files_before[i].data(), 1024));
      EXPECT_NE(0, std::memcmp(file.data() + 1024, files_before[i].data() + 1024, 512));
      EXPECT_EQ(0, std::memcmp(file.data() + 1536, files_before[i].data() + 1536, 4096 - 1536));
      // The reported blob is the new current slot.
      EXPECT_EQ(0, std::memcmp(seen[i].blob.data(), file.data() + 1024, 512));
    }
    EXPECT_EQ(after_new_only[10].fingerprint, after_new_only[3].fingerprint);
    EXPECT_EQ(after_new_only[149].fingerprint, after_new_only[0].fingerprint);
  }
}

// The current slot no longer opens under g alone: a ring holding only g can open only
// the older slot (kept until the next rotation), never the current one.
TEST_P(RewrapTest, CurrentSlotOpensOnlyUnderNewKey) {
  VolumeSet set;
  set.Add(20);
  ASSERT_TRUE(set.Rewrap(*io_).ok());
  const auto old_only = set.Verify(set.Ring(true, false));
  for (const auto& r : old_only) {
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.generation, VolumeSet::kOldGen);
    EXPECT_EQ(r.slot, 0);  // the older slot; the current one (B) did not open
  }
  // A ring whose "g+1" is some other key cannot open the current slot.
  KeyRing wrong;
  wrong.Add(VolumeSet::kNewGen, set.other_kek());
  for (const auto& r : set.Verify(wrong)) EXPECT_EQ(r.status.code(), ErrorCode::kDecryptFailed);
}

TEST_P(RewrapTest, SecondRunSkipsAndChangesNothing) {
  VolumeSet set;
  set.Add(40);
  ASSERT_TRUE(set.Rewrap(*io_, Batch(16)).ok());
  const auto files = set.Snapshot();
  std::vector<RewrapVolumeResult> seen;
  auto again = set.Rewrap(*io_, Batch(16), [&](const RewrapBatchReport& r) {
    seen.insert(seen.end(), r.results.begin(), r.results.end());
    return true;
  });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->already_current, 40u);
  EXPECT_EQ(again->rewrapped, 0u);
  EXPECT_EQ(set.Snapshot(), files);
  ASSERT_EQ(seen.size(), 40u);
  for (size_t i = 0; i < 40; ++i) {
    EXPECT_EQ(seen[i].outcome, RewrapOutcome::kAlreadyCurrent);
    // The blob of a skipped volume is its current slot (B, under g+1).
    EXPECT_EQ(0, std::memcmp(seen[i].blob.data(), files[i].data() + 1024, 512));
  }
}

TEST_P(RewrapTest, MixedSetSkipsVolumesCreatedAtNewGeneration) {
  VolumeSet set;
  set.Add(10);
  set.Add(5, {}, set.new_kek(), VolumeSet::kNewGen);
  set.Add(10);
  const auto before = set.VerifyBoth();
  const auto files = set.Snapshot();
  auto c = set.Rewrap(*io_, Batch(8));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->rewrapped, 20u);
  EXPECT_EQ(c->already_current, 5u);
  const auto after = set.Verify(set.Ring(false, true));
  for (size_t i = 0; i < 25; ++i) {
    ASSERT_TRUE(after[i].status.ok());
    EXPECT_EQ(after[i].fingerprint, before[i].fingerprint);
  }
  for (size_t i = 10; i < 15; ++i) EXPECT_EQ(set.Snapshot()[i], files[i]);
}

// A second rotation (g+1 → g+2) writes slot A again: the two slots alternate.
TEST_P(RewrapTest, NextRotationAlternatesSlots) {
  VolumeSet set;
  set.Add(12);
  const auto before = set.VerifyBoth();
  ASSERT_TRUE(set.Rewrap(*io_).ok());
  RewrapKeys next;
  next.old_kek = set.new_kek();
  next.old_generation = VolumeSet::kNewGen;
  next.new_kek = set.other_kek();
  next.new_generation = VolumeSet::kNewGen + 1;
  SpanVolumeSource source(set.volumes());
  auto c = RewrapVolumes(*io_, set.table(), next, source, {}, {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->rewrapped, 12u);
  KeyRing ring;
  ring.Add(VolumeSet::kNewGen + 1, set.other_kek());
  const auto after = set.Verify(ring);
  for (size_t i = 0; i < 12; ++i) {
    ASSERT_TRUE(after[i].status.ok());
    EXPECT_EQ(after[i].slot, 0);
    EXPECT_EQ(after[i].sequence, 3u);
    EXPECT_EQ(after[i].fingerprint, before[i].fingerprint);
  }
}

// Per-volume failures are reported with their code; every other volume is rewrapped.
TEST_P(RewrapTest, PerVolumeErrorsDoNotStopTheOthers) {
  VolumeSet set;
  set.Add(30);
  auto& v = set.volumes();
  auto corrupt = testing::ReadWholeFile(v[2].path);
  corrupt[100] ^= 0xFF;  // header checksum
  ASSERT_TRUE(testing::WriteWholeFile(v[2].path, corrupt));
  // Foreign: volume 4's file replaced by volume 5's (identity mismatch).
  ASSERT_TRUE(testing::WriteWholeFile(v[4].path, testing::ReadWholeFile(v[5].path)));
  ASSERT_EQ(0, ::unlink(v[7].path.c_str()));  // missing
  auto truncated = testing::ReadWholeFile(v[9].path);
  truncated.resize(2000);
  ASSERT_TRUE(testing::WriteWholeFile(v[9].path, truncated));
  auto oversized = testing::ReadWholeFile(v[11].path);
  oversized.resize(4097, 0);
  ASSERT_TRUE(testing::WriteWholeFile(v[11].path, oversized));
  auto empty_slots = testing::ReadWholeFile(v[13].path);
  std::memset(empty_slots.data() + 512, 0, 1024);
  ASSERT_TRUE(testing::WriteWholeFile(v[13].path, empty_slots));
  auto bad_tag = testing::ReadWholeFile(v[15].path);
  {
    // Re-encode slot A with a flipped tag but a valid checksum: only the AEAD notices.
    auto meta = DecodeMetadataFile(bad_tag);
    ASSERT_TRUE(meta.ok());
    VdekSlot slot = *meta->slot[0];
    slot.tag[0] ^= 1;
    EncodeSlot(slot, 0, bad_tag.data() + 512);
  }
  ASSERT_TRUE(testing::WriteWholeFile(v[15].path, bad_tag));
  auto old_gen = testing::ReadWholeFile(v[17].path);
  {
    auto meta = DecodeMetadataFile(old_gen);
    ASSERT_TRUE(meta.ok());
    VdekSlot slot = *meta->slot[0];
    slot.generation = VolumeSet::kOldGen - 1;  // a generation the run holds no key for
    EncodeSlot(slot, 0, old_gen.data() + 512);
  }
  ASSERT_TRUE(testing::WriteWholeFile(v[17].path, old_gen));
  const auto files_before = set.Snapshot();

  std::vector<RewrapVolumeResult> seen;
  auto c = set.Rewrap(*io_, Batch(8), [&](const RewrapBatchReport& r) {
    seen.insert(seen.end(), r.results.begin(), r.results.end());
    return true;
  });
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->total, 30u);
  EXPECT_EQ(c->failed, 8u);
  EXPECT_EQ(c->rewrapped, 22u);
  ASSERT_EQ(seen.size(), 30u);
  const std::pair<size_t, ErrorCode> expected[] = {
      {2, ErrorCode::kInvalidEncryptionBlob}, {4, ErrorCode::kInvalidEncryptionBlob},
      {7, ErrorCode::kVolumeKeyMissing},      {9, ErrorCode::kInvalidEncryptionBlob},
      {11, ErrorCode::kInvalidEncryptionBlob}, {13, ErrorCode::kVolumeKeyMissing},
      {15, ErrorCode::kDecryptFailed},        {17, ErrorCode::kSvmKekUnwrapFailed},
  };
  for (const auto& [i, code] : expected) {
    SCOPED_TRACE(i);
    EXPECT_EQ(seen[i].outcome, RewrapOutcome::kFailed);
    EXPECT_EQ(seen[i].status.code(), code) << seen[i].status.ToString();
    // A failed volume's file is not changed at all.
    EXPECT_EQ(testing::ReadWholeFile(v[i].path), files_before[i]);
  }
  for (size_t i = 0; i < 30; ++i) {
    bool failed = false;
    for (const auto& e : expected) failed |= e.first == i;
    if (!failed) {
      EXPECT_EQ(seen[i].outcome, RewrapOutcome::kRewrapped) << i;
    }
  }
}

TEST_P(RewrapTest, StopsAtBatchBoundaryAndResumes) {
  VolumeSet set;
  set.Add(50);
  int calls = 0;
  auto c = set.Rewrap(*io_, Batch(20), [&](const RewrapBatchReport& r) {
    ++calls;
    EXPECT_EQ(r.counters.total, 20u);
    return false;
  });
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(c->stopped);
  EXPECT_EQ(c->total, 20u);
  EXPECT_EQ(c->rewrapped, 20u);
  const auto mid = set.VerifyBoth();
  for (size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(mid[i].generation, i < 20 ? VolumeSet::kNewGen : VolumeSet::kOldGen) << i;
  }
  auto rest = set.Rewrap(*io_, Batch(20));
  ASSERT_TRUE(rest.ok());
  EXPECT_FALSE(rest->stopped);
  EXPECT_EQ(rest->already_current, 20u);
  EXPECT_EQ(rest->rewrapped, 30u);
}

// Progress runs only after the batch's slots are durable: at each callback, the fault
// injector (which tracks unsynced writes) must see none outstanding.
TEST_P(RewrapTest, ProgressRunsAfterDurability) {
  for (RewrapDurability d : {RewrapDurability::kSyncFsPerBatch,
                             RewrapDurability::kFdatasyncPerFile}) {
    VolumeSet set;
    set.Add(33);
    FaultInjectingFileIo fault(*io_);
    int calls = 0;
    auto c = set.Rewrap(fault, Batch(10, d), [&](const RewrapBatchReport&) {
      ++calls;
      EXPECT_EQ(fault.unsynced_writes(), 0u);
      return true;
    });
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(c->rewrapped, 33u);
  }
}

// A failed syncfs fails every volume written in that batch (65537565); the run goes on
// with the next batch, and a rerun finishes the failed ones.
TEST_P(RewrapTest, FailedSyncFsFailsTheWholeBatch) {
  VolumeSet set;
  set.Add(30);
  // Find the first SyncFs op index from a clean run on a copy of the files.
  const auto files = set.Snapshot();
  FaultInjectingFileIo probe(*io_);
  ASSERT_TRUE(set.Rewrap(probe, Batch(10)).ok());
  set.Restore(files);
  uint64_t sync_index = 0;
  while (probe.trace()[sync_index] != TracedOp::kSyncFs) ++sync_index;

  FaultPlan plan;
  plan.kind = FaultKind::kFail;
  plan.op_index = sync_index;
  plan.error = EIO;
  FaultInjectingFileIo fault(*io_, plan);
  std::vector<RewrapVolumeResult> seen;
  auto c = set.Rewrap(fault, Batch(10), [&](const RewrapBatchReport& r) {
    seen.insert(seen.end(), r.results.begin(), r.results.end());
    return true;
  });
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(fault.fault_hit());
  EXPECT_EQ(c->failed, 10u);
  EXPECT_EQ(c->rewrapped, 20u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(seen[i].status.code(), ErrorCode::kVdekBlobUpdateFailed);
  }
  auto rerun = set.Rewrap(*io_, Batch(10));
  ASSERT_TRUE(rerun.ok());
  EXPECT_EQ(rerun->rewrapped + rerun->already_current, 30u);
  EXPECT_EQ(rerun->failed, 0u);
}

// A batch whose volumes live on two file systems gets a syncfs on each: after the run
// the fault injector holds no write that a power cut could still roll back. (The rewrap
// finds each volume's file system with stat on its path, not fstat on the ring's fd.)
TEST_P(RewrapTest, SyncsEveryFileSystemTheBatchTouched) {
  VolumeSet set;
  set.Add(20);
  TempDir other({.base = testing::TempBase(/*prefer_memory=*/true)});
  ASSERT_FALSE(other.path().empty());
  struct stat a, b;
  ASSERT_EQ(::stat(set.dir().c_str(), &a), 0);
  ASSERT_EQ(::stat(other.path().c_str(), &b), 0);
  ASSERT_NE(a.st_dev, b.st_dev) << set.dir() << " and " << other.path()
                                << " must be on two file systems (unset SVMKEY_TEST_DIR)";
  // Volumes 5..14 move to the other file system: the batch goes A, B, A.
  for (size_t i = 5; i < 15; ++i) {
    std::string& path = set.volumes()[i].path;
    const std::string moved = other.path() + path.substr(path.rfind('/'));
    ASSERT_TRUE(WriteWholeFile(moved, ReadWholeFile(path)));
    ASSERT_EQ(::unlink(path.c_str()), 0);
    path = moved;
  }
  const auto before = set.VerifyBoth();
  FaultInjectingFileIo traced(*io_);
  auto c = set.Rewrap(traced, Batch(20));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rewrapped, 20u);
  EXPECT_EQ(std::count(traced.trace().begin(), traced.trace().end(), TracedOp::kSyncFs), 2);
  EXPECT_EQ(traced.unsynced_writes(), 0u);
  const auto after = set.Verify(set.Ring(false, true));
  for (size_t i = 0; i < 20; ++i) {
    ASSERT_TRUE(after[i].status.ok()) << i << ": " << after[i].status.ToString();
    EXPECT_EQ(after[i].fingerprint, before[i].fingerprint) << i;
  }
}

// ---- several threads (RewrapOptions::threads) ----

RewrapOptions Threaded(size_t batch, size_t threads, IoMode mode) {
  RewrapOptions o = Batch(batch);
  o.threads = threads;
  o.make_io = [mode]() -> Result<std::unique_ptr<FileIo>> { return testing::MakeIo(mode); };
  return o;
}

// Every volume is rewrapped exactly once and reported exactly once, whatever thread ran
// its batch; clones, volumes already at g+1 and a corrupt one behave as with one thread;
// the callback is never entered by two threads at once.
TEST_P(RewrapTest, SeveralThreadsRewrapAndReportEveryVolumeOnce) {
  for (size_t threads : {2, 3}) {
    SCOPED_TRACE(threads);
    VolumeSet set;
    std::vector<int> clones(700, -1);
    clones[500] = 20;
    set.Add(700, clones);
    set.Add(50, {}, set.new_kek(), VolumeSet::kNewGen);  // already current
    auto corrupt = ReadWholeFile(set.volumes()[333].path);
    corrupt[100] ^= 0xFF;
    ASSERT_TRUE(WriteWholeFile(set.volumes()[333].path, corrupt));
    const auto before = set.VerifyBoth();

    std::vector<int> reported(750, 0);
    std::vector<RewrapOutcome> outcome(750, RewrapOutcome::kFailed);
    std::atomic<int> inside{0};
    int overlapped = 0;
    uint64_t last_total = 0;
    bool totals_grow = true;
    auto c = set.Rewrap(*io_, Threaded(32, threads, GetParam()), [&](const RewrapBatchReport& r) {
      if (inside.fetch_add(1) != 0) ++overlapped;
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // widen any overlap
      for (size_t i = 0; i < r.results.size(); ++i) {
        const size_t at = r.first_index + i;
        EXPECT_EQ(r.volumes[i].id.volume, set.volumes()[at].id.volume);
        ++reported[at];
        outcome[at] = r.results[i].outcome;
      }
      if (r.counters.total <= last_total) totals_grow = false;
      last_total = r.counters.total;
      inside.fetch_sub(1);
      return true;
    });
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(overlapped, 0);
    EXPECT_TRUE(totals_grow);
    EXPECT_EQ(c->total, 750u);
    EXPECT_EQ(c->rewrapped, 699u);
    EXPECT_EQ(c->already_current, 50u);
    EXPECT_EQ(c->failed, 1u);
    EXPECT_EQ(std::count(reported.begin(), reported.end(), 1), 750);
    EXPECT_EQ(outcome[333], RewrapOutcome::kFailed);
    const auto after = set.Verify(set.Ring(false, true));
    for (size_t i = 0; i < 750; ++i) {
      if (i == 333) continue;
      ASSERT_TRUE(after[i].status.ok()) << i << ": " << after[i].status.ToString();
      EXPECT_EQ(after[i].fingerprint, before[i].fingerprint) << i;
    }
  }
}

// A stop asked by the callback ends the run at batch boundaries: batches in flight on
// other threads finish and are reported, nothing else starts, and a rerun completes.
TEST_P(RewrapTest, SeveralThreadsStopAtBatchBoundaries) {
  VolumeSet set;
  set.Add(400);
  int calls = 0;
  uint64_t reported = 0;
  auto c = set.Rewrap(*io_, Threaded(16, 2, GetParam()), [&](const RewrapBatchReport& r) {
    reported += r.results.size();
    return ++calls < 3;
  });
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->stopped);
  EXPECT_GE(calls, 3);
  EXPECT_LE(calls, 4);  // the third asked to stop; at most one more was in flight
  EXPECT_EQ(c->total, reported);
  EXPECT_EQ(c->rewrapped, reported);
  auto rerun = set.Rewrap(*io_, Threaded(16, 2, GetParam()));
  ASSERT_TRUE(rerun.ok());
  EXPECT_EQ(rerun->already_current, reported);
  EXPECT_EQ(rerun->rewrapped, 400u - reported);
  for (const auto& r : set.Verify(set.Ring(false, true))) EXPECT_TRUE(r.status.ok());
}

// A FileIo whose Execute breaks (the I/O layer itself, not one op) after `ok_calls`.
class BreakingFileIo final : public FileIo {
 public:
  BreakingFileIo(std::unique_ptr<FileIo> inner, int ok_calls)
      : inner_(std::move(inner)), left_(ok_calls) {}
  std::string_view name() const override { return "breaking"; }
  Status Execute(std::span<IoOp> ops) override {
    if (left_-- <= 0) return Status(ErrorCode::kUnexpectedException, "ring broke");
    return inner_->Execute(ops);
  }
  int SyncFs(int fd) override { return inner_->SyncFs(fd); }

 private:
  std::unique_ptr<FileIo> inner_;
  int left_;
};

// The threads' I/O layers breaking fails the run (no hang, no lost volume); a thread's
// FileIo that cannot be made fails it before anything is written. Both threads' layers
// break after 7 calls: 300 volumes in batches of 16 need 19 batches of at least one call
// each, so the run cannot finish whatever the scheduler does (with only the worker's layer
// breaking, the calling thread could do every batch alone and the run would succeed).
TEST_P(RewrapTest, SeveralThreadsFailTogether) {
  VolumeSet set;
  set.Add(300);
  RewrapOptions o = Threaded(16, 2, GetParam());
  o.make_io = [mode = GetParam()]() -> Result<std::unique_ptr<FileIo>> {
    return std::unique_ptr<FileIo>(std::make_unique<BreakingFileIo>(testing::MakeIo(mode), 7));
  };
  BreakingFileIo first(testing::MakeIo(GetParam()), 7);
  auto c = set.Rewrap(first, o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("ring broke"), std::string::npos) << c.status().ToString();
  for (const auto& r : set.Verify(set.Ring(true, true))) EXPECT_TRUE(r.status.ok());
  auto rerun = set.Rewrap(*io_, Batch(16));
  ASSERT_TRUE(rerun.ok());
  EXPECT_EQ(rerun->rewrapped + rerun->already_current, 300u);

  VolumeSet fresh;
  fresh.Add(20);
  const auto untouched = fresh.Snapshot();
  RewrapOptions no_io = Threaded(16, 2, GetParam());
  no_io.make_io = []() -> Result<std::unique_ptr<FileIo>> {
    return Status(ErrorCode::kResourceLimit, "no ring for you");
  };
  auto d = fresh.Rewrap(*io_, no_io);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), ErrorCode::kResourceLimit);
  EXPECT_EQ(fresh.Snapshot(), untouched);
  RewrapOptions zero = Batch(16);
  zero.threads = 0;
  EXPECT_EQ(fresh.Rewrap(*io_, zero).status().code(), ErrorCode::kInvalidArgument);
}

TEST_P(RewrapTest, IoOnlyDoesTheIoButKeepsGeneration) {
  VolumeSet set;
  set.Add(25);
  const auto before = set.VerifyBoth();
  RewrapOptions o = Batch(10);
  o.io_only = true;
  auto c = set.Rewrap(*io_, o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->rewrapped, 25u);
  const auto after = set.Verify(set.Ring(true, false));
  for (size_t i = 0; i < 25; ++i) {
    ASSERT_TRUE(after[i].status.ok());
    EXPECT_EQ(after[i].fingerprint, before[i].fingerprint);
    // Slot B was written (a copy), so the file did change on disk.
    const auto meta = DecodeMetadataFile(testing::ReadWholeFile(set.volumes()[i].path));
    ASSERT_TRUE(meta.ok());
    ASSERT_TRUE(meta->slot[1].has_value());
    EXPECT_EQ(meta->slot[1]->generation, VolumeSet::kOldGen);
  }
  // A real run afterwards still works.
  auto real = set.Rewrap(*io_, Batch(10));
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(real->rewrapped, 25u);
}

TEST_P(RewrapTest, RejectsBadArguments) {
  VolumeSet set;
  set.Add(2);
  SpanVolumeSource source(set.volumes());
  RewrapKeys keys = set.Keys();
  keys.new_generation = keys.old_generation + 2;
  auto bad_gen = RewrapVolumes(*io_, set.table(), keys, source, {}, {});
  EXPECT_EQ(bad_gen.status().code(), ErrorCode::kInvalidArgument);
  RewrapOptions zero;
  zero.batch_size = 0;
  EXPECT_EQ(set.Rewrap(*io_, zero).status().code(), ErrorCode::kInvalidArgument);
  keys = set.Keys();
  ASSERT_TRUE(set.table().Release(set.new_kek()).ok());
  auto released = RewrapVolumes(*io_, set.table(), keys, source, {}, {});
  EXPECT_FALSE(released.ok());
  // Nothing was touched.
  EXPECT_EQ(set.Verify(set.Ring(true, false))[0].generation, VolumeSet::kOldGen);
}

class FailingSource final : public VolumeSource {
 public:
  explicit FailingSource(std::span<const VolumeRef> v) : inner_(v) {}
  Result<size_t> Next(std::span<VolumeRef> out) override {
    if (calls_++ == 1) return Status(ErrorCode::kUnexpectedException, "table read failed");
    return inner_.Next(out);
  }

 private:
  SpanVolumeSource inner_;
  int calls_ = 0;
};

TEST_P(RewrapTest, SourceFailureFailsTheRun) {
  VolumeSet set;
  set.Add(20);
  FailingSource source(set.volumes());
  RewrapOptions o = Batch(10);
  auto c = RewrapVolumes(*io_, set.table(), set.Keys(), source, o, {});
  EXPECT_EQ(c.status().code(), ErrorCode::kEncryptionStatusUnavailable);
  // The first batch was done (and durable) before the failure; a rerun finishes.
  auto rerun = set.Rewrap(*io_, o);
  ASSERT_TRUE(rerun.ok());
  EXPECT_EQ(rerun->already_current, 10u);
  EXPECT_EQ(rerun->rewrapped, 10u);
}

TEST_P(RewrapTest, EmptySourceIsNoWork) {
  VolumeSet set;
  auto c = set.Rewrap(*io_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->total, 0u);
}

// What a member of the volume root's group could put in place of a metadata file
// (docs/ARCHITECTURE.md §4): each fails its own volume, promptly, and nothing is
// followed, read past or changed; the other volumes are rewrapped.
TEST_P(RewrapTest, NonRegularFilesAndSymlinksFailOnlyTheirVolume) {
  VolumeSet set;
  set.Add(12);
  auto& v = set.volumes();
  // 1: a FIFO nobody writes to; 3: a FIFO with a writer that stays silent (the test
  // holds it open); 5: a symlink to a valid copy of the file; 7: a directory;
  // 9: a path through a symlinked directory.
  const std::string target = set.dir() + "/target.meta";
  ASSERT_EQ(0, ::rename(v[5].path.c_str(), target.c_str()));
  const auto target_before = ReadWholeFile(target);
  ASSERT_EQ(0, ::symlink(target.c_str(), v[5].path.c_str()));
  ASSERT_EQ(0, ::unlink(v[1].path.c_str()));
  ASSERT_EQ(0, ::mkfifo(v[1].path.c_str(), 0600));
  ASSERT_EQ(0, ::unlink(v[3].path.c_str()));
  ASSERT_EQ(0, ::mkfifo(v[3].path.c_str(), 0600));
  const int writer = ::open(v[3].path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  ASSERT_EQ(0, ::unlink(v[7].path.c_str()));
  ASSERT_EQ(0, ::mkdir(v[7].path.c_str(), 0700));
  const std::string real_dir = set.dir() + "/real";
  ASSERT_EQ(0, ::mkdir(real_dir.c_str(), 0700));
  const std::string moved = real_dir + "/v9.meta";
  ASSERT_EQ(0, ::rename(v[9].path.c_str(), moved.c_str()));
  const auto moved_before = ReadWholeFile(moved);
  ASSERT_EQ(0, ::symlink(real_dir.c_str(), (set.dir() + "/link").c_str()));
  v[9].path = set.dir() + "/link/v9.meta";

  const std::pair<size_t, const char*> expected[] = {{1, "not a regular file"},
                                                     {3, "not a regular file"},
                                                     {5, "symbolic link"},
                                                     {7, "not a regular file"},
                                                     {9, "symbolic link"}};
  // Verify and rewrap each finish within seconds (a read of a pipe would wait forever).
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<OpenResult> verified(v.size());
  ASSERT_TRUE(VerifyVolumes(*io_, set.table(), set.Ring(true, false), v, verified).ok());
  std::vector<RewrapVolumeResult> seen(v.size());
  auto c = set.Rewrap(*io_, Batch(16), [&](const RewrapBatchReport& r) {
    for (size_t k = 0; k < r.results.size(); ++k) seen[r.first_index + k] = r.results[k];
    return true;
  });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  ::close(writer);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->failed, std::size(expected));
  EXPECT_EQ(c->rewrapped, v.size() - std::size(expected));
  for (const auto& [i, why] : expected) {
    SCOPED_TRACE(i);
    EXPECT_EQ(verified[i].status.code(), ErrorCode::kInvalidEncryptionBlob);
    EXPECT_THAT(verified[i].status.message(), ::testing::HasSubstr(why));
    EXPECT_EQ(seen[i].outcome, RewrapOutcome::kFailed);
    EXPECT_EQ(seen[i].status.code(), ErrorCode::kInvalidEncryptionBlob);
    EXPECT_THAT(seen[i].status.message(), ::testing::HasSubstr(why));
  }
  // Nothing behind a symlink was touched.
  EXPECT_EQ(ReadWholeFile(target), target_before);
  EXPECT_EQ(ReadWholeFile(moved), moved_before);
}

// Out of descriptors: the volumes that could not be opened are reported as 7
// ResourceLimit with the limit in the message, never as damaged (65536889); a rerun
// with room finishes them. Runs in a forked child so the tiny limit stays there.
TEST_P(RewrapTest, DescriptorExhaustionIsAResourceErrorNotADamagedVolume) {
  VolumeSet set;
  set.Add(200);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: exit code 0 = as expected, else which check failed.
    const rlimit tiny{64, 64};
    if (::setrlimit(RLIMIT_NOFILE, &tiny) != 0) ::_exit(10);
    auto io = MakeFileIo(GetParam());
    if (!io.ok()) ::_exit(11);
    std::vector<OpenResult> verified(set.volumes().size());
    if (!VerifyVolumes(**io, set.table(), set.Ring(true, false), set.volumes(), verified).ok()) {
      ::_exit(12);
    }
    size_t resource = 0;
    for (const OpenResult& r : verified) {
      if (r.status.ok()) continue;
      if (r.status.code() != ErrorCode::kResourceLimit) ::_exit(13);
      if (r.status.message().find("RLIMIT_NOFILE soft 64") == std::string::npos) ::_exit(14);
      ++resource;
    }
    if (resource == 0) ::_exit(15);
    bool only_resource = true;
    auto c = set.Rewrap(**io, Batch(200), [&](const RewrapBatchReport& r) {
      for (const auto& res : r.results) {
        if (res.outcome == RewrapOutcome::kFailed && res.status.code() != ErrorCode::kResourceLimit) {
          only_resource = false;
        }
      }
      return true;
    });
    if (!c.ok()) ::_exit(16);
    if (!only_resource) ::_exit(17);
    if (c->failed == 0) ::_exit(18);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(pid, ::waitpid(pid, &status, 0));
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // With the normal limit a rerun finishes what the child could not open; no volume
  // was damaged on the way.
  auto c = set.Rewrap(*io_, Batch(64));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->failed, 0u);
  EXPECT_EQ(c->rewrapped + c->already_current, 200u);
  EXPECT_GT(c->rewrapped, 0u);
  for (const auto& r : set.Verify(set.Ring(false, true))) {
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(Io, RewrapTest, ::testing::Values(IoMode::kSync, IoMode::kUring),
                         [](const ::testing::TestParamInfo<IoMode>& p) {
                           return std::string(testing::IoModeName(p.param));
                         });

}  // namespace
}  // namespace svmkey
