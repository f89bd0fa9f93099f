// VolumeBatch: which volumes take part in which phase, and that every file the batch
// opened is closed, on success and when the I/O layer breaks mid-batch.
#include "engine/volume_batch.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace svmkey {
namespace {

// Plain syscalls, with every op recorded; the Execute numbered `break_at` (0-based)
// fails as a broken I/O layer would, without running its ops.
class RecordingFileIo final : public FileIo {
 public:
  std::string_view name() const override { return "recording"; }
  Status Execute(std::span<IoOp> ops) override {
    if (executes_++ == break_at) return Status(ErrorCode::kUnexpectedException, "broken ring");
    for (const IoOp& op : ops) kinds.push_back(op.kind);
    return inner_->Execute(ops);
  }
  int SyncFs(int fd) override { return inner_->SyncFs(fd); }
  size_t Count(IoOpKind kind) const {
    size_t n = 0;
    for (IoOpKind k : kinds) n += k == kind;
    return n;
  }

  std::vector<IoOpKind> kinds;
  int break_at = -1;

 private:
  std::unique_ptr<FileIo> inner_ = MakeSyncFileIo();
  int executes_ = 0;
};

class VolumeBatchTest : public ::testing::Test {
 protected:
  // refs_[i] exists unless i is in `missing`.
  void MakeFiles(size_t n, std::vector<size_t> missing) {
    refs_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      refs_[i].path = dir_ / ("v" + std::to_string(i));
      if (std::find(missing.begin(), missing.end(), i) == missing.end()) {
        std::ofstream(refs_[i].path) << "x";
      }
    }
  }

  testing::TempDir dir_;
  std::vector<VolumeRef> refs_;
  RecordingFileIo io_;
};

TEST_F(VolumeBatchTest, PhasesRunOnlyOnVolumesStillIn) {
  MakeFiles(5, {1});
  VolumeBatch batch(8);
  batch.Begin(5);
  batch.Drop(4);  // e.g. failed its CPU work: never opened
  std::vector<int32_t> open_errors(5, 0);
  ASSERT_TRUE(batch.Open(io_, refs_, O_RDONLY, 0, [&](size_t i, int32_t err) {
                     open_errors[i] = err;
                   }).ok());
  EXPECT_EQ(open_errors[1], -ENOENT);
  EXPECT_EQ(io_.Count(IoOpKind::kOpen), 4u);
  EXPECT_EQ(batch.remaining(), 3u);
  EXPECT_FALSE(batch.in(1));
  EXPECT_EQ(batch.fd(1), -1);
  EXPECT_EQ(batch.fd(4), -1);

  uint8_t buf[8][4];
  std::vector<size_t> seen;
  ASSERT_TRUE(batch.Each(
                  io_, [&](size_t i) { return IoOp::ReadToEof(batch.fd(i), buf[i], 4, 0); },
                  [&](size_t i, int32_t got) {
                    EXPECT_EQ(got, 1);
                    seen.push_back(i);
                    return i != 2;  // volume 2 leaves the pipeline here
                  })
                  .ok());
  EXPECT_EQ(seen, (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(batch.remaining(), 2u);
  EXPECT_FALSE(batch.in(2));
  EXPECT_GE(batch.fd(2), 0);  // out of the pipeline, still open until Close

  ASSERT_TRUE(batch.Close(io_).ok());
  EXPECT_EQ(io_.Count(IoOpKind::kClose), 3u);  // 0, 2, 3: every file that opened
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(batch.fd(i), -1);
}

TEST_F(VolumeBatchTest, BrokenIoLayerClosesWhatTheBatchOpened) {
  MakeFiles(3, {});
  io_.break_at = 1;  // the read phase
  VolumeBatch batch(3);
  batch.Begin(3);
  ASSERT_TRUE(batch.Open(io_, refs_, O_RDONLY, 0, [](size_t, int32_t) { FAIL(); }).ok());
  uint8_t buf[3][4];
  const Status s = batch.Each(
      io_, [&](size_t i) { return IoOp::ReadToEof(batch.fd(i), buf[i], 4, 0); },
      [](size_t, int32_t) { return true; });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(io_.Count(IoOpKind::kClose), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(batch.fd(i), -1);
}

TEST_F(VolumeBatchTest, BeginResetsTheBatch) {
  MakeFiles(2, {});
  VolumeBatch batch(2);
  batch.Begin(2);
  batch.Drop(0);
  batch.Begin(1);
  EXPECT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch.remaining(), 1u);
  EXPECT_TRUE(batch.in(0));
  ASSERT_TRUE(batch.Close(io_).ok());
  EXPECT_EQ(io_.Count(IoOpKind::kClose), 0u);
}

TEST(PathLiesBelowTest, AcceptsOnlyNormalizedPathsStrictlyBelowARoot) {
  const std::vector<std::string> roots = {"/var/lib/svmkey/volumes", "/srv/sets"};
  const std::pair<const char*, bool> cases[] = {
      {"/var/lib/svmkey/volumes/svm/v.meta", true},
      {"/srv/sets/a/vol/00/v.meta", true},
      {"/var/lib/svmkey/volumes", false},           // the root itself
      {"/var/lib/svmkey/volumes/", false},          // trailing slash
      {"/var/lib/svmkey/volumesX/v.meta", false},   // a sibling sharing the prefix
      {"/var/lib/svmkey/volumes/../rdb.sqlite", false},
      {"/var/lib/svmkey/volumes/./v.meta", false},
      {"/var/lib/svmkey/volumes//v.meta", false},
      {"var/lib/svmkey/volumes/v.meta", false},     // relative
      {"/etc/shadow", false},
      {"", false},
  };
  for (const auto& [path, want] : cases) {
    EXPECT_EQ(PathLiesBelow(path, roots), want) << path;
  }
  EXPECT_TRUE(PathLiesBelow("/x/y", std::vector<std::string>{"/"}));
  EXPECT_FALSE(PathLiesBelow("/x/y", {}));
}

TEST_F(VolumeBatchTest, PathsOutsideTheRootsAreNotOpened) {
  MakeFiles(2, {});
  const std::vector<std::string> roots = {"/nonexistent-root"};
  VolumeBatch batch(2);
  batch.set_roots(roots);
  batch.Begin(2);
  std::vector<int32_t> errors;
  ASSERT_TRUE(batch.Open(io_, refs_, O_RDONLY, 0, [&](size_t, int32_t e) { errors.push_back(e); }).ok());
  EXPECT_EQ(errors, (std::vector<int32_t>{-kErrOutsideRoots, -kErrOutsideRoots}));
  EXPECT_EQ(io_.Count(IoOpKind::kOpen), 0u);
  EXPECT_EQ(batch.remaining(), 0u);
}

}  // namespace
}  // namespace svmkey
