// FaultInjectingFileIo (engine/fault_injecting_file_io.cc): the crash suite is only as
// good as this simulation, so each fault kind is checked against the file contents.
#include "engine/fault_injecting_file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/engine/volume_set.h"

namespace svmkey {
namespace {

class FaultInjectingFileIoTest : public ::testing::Test {
 protected:
  std::string File(const std::string& name, size_t size, uint8_t fill) {
    const std::string path = dir_.path() + "/" + name;
    EXPECT_TRUE(testing::WriteWholeFile(path, std::vector<uint8_t>(size, fill)));
    return path;
  }
  int Open(FileIo& io, const std::string& path, int flags = O_RDWR) {
    IoOp op = IoOp::Open(AT_FDCWD, path.c_str(), flags, 0600);
    EXPECT_TRUE(io.Execute({&op, 1}).ok());
    return op.result;
  }

  testing::TempDir dir_;
  std::unique_ptr<FileIo> inner_ = MakeSyncFileIo();
};

TEST_F(FaultInjectingFileIoTest, CountsEveryOpInIndexOrder) {
  const std::string a = File("a", 512, 1);
  FaultInjectingFileIo io(*inner_);
  EXPECT_EQ(io.name(), "fault(sync)");
  const int fd = Open(io, a);
  ASSERT_GE(fd, 0);
  uint8_t buf[512];
  IoOp ops[2] = {IoOp::Read(fd, buf, 512, 0), IoOp::Write(fd, buf, 512, 0)};
  ASSERT_TRUE(io.Execute(ops).ok());
  EXPECT_EQ(io.SyncFs(fd), 0);
  IoOp close_op = IoOp::Close(fd);
  ASSERT_TRUE(io.Execute({&close_op, 1}).ok());
  EXPECT_EQ(io.op_count(), 5u);
  const std::vector<TracedOp> want = {TracedOp::kOpen, TracedOp::kRead, TracedOp::kWrite,
                                      TracedOp::kSyncFs, TracedOp::kClose};
  EXPECT_EQ(io.trace(), want);
  EXPECT_FALSE(io.fault_hit());
}

TEST_F(FaultInjectingFileIoTest, FailedOpHasNoEffectAndLaterOpsProceed) {
  const std::string a = File("a", 512, 1), b = File("b", 512, 1);
  FaultPlan plan;
  plan.kind = FaultKind::kFail;
  plan.op_index = 3;  // the first write
  plan.error = ENOSPC;
  FaultInjectingFileIo io(*inner_, plan);
  const int fa = Open(io, a), fb = Open(io, b);  // ops 0, 1
  uint8_t two[512];
  std::memset(two, 2, sizeof two);
  IoOp ops[3] = {IoOp::Read(fa, two + 0, 0, 0), IoOp::Write(fa, two, 512, 0),
                 IoOp::Write(fb, two, 512, 0)};  // ops 2, 3, 4
  ASSERT_TRUE(io.Execute(ops).ok());
  EXPECT_TRUE(io.fault_hit());
  EXPECT_FALSE(io.crashed());
  EXPECT_EQ(ops[1].result, -ENOSPC);
  EXPECT_EQ(ops[2].result, 512);
  EXPECT_EQ(testing::ReadWholeFile(a), std::vector<uint8_t>(512, 1));  // not written
  EXPECT_EQ(testing::ReadWholeFile(b), std::vector<uint8_t>(512, 2));
  EXPECT_EQ(io.SyncFs(fa), 0);
  IoOp closes[2] = {IoOp::Close(fa), IoOp::Close(fb)};
  ASSERT_TRUE(io.Execute(closes).ok());
  EXPECT_EQ(closes[0].result, 0);
}

TEST_F(FaultInjectingFileIoTest, FailedSyncFsAndFailedCloseStillReleaseTheFd) {
  const std::string a = File("a", 512, 1);
  FaultPlan plan;
  plan.kind = FaultKind::kFail;
  plan.op_index = 1;
  plan.error = EIO;
  FaultInjectingFileIo io(*inner_, plan);
  const int fd = Open(io, a);
  EXPECT_EQ(io.SyncFs(fd), -EIO);
  EXPECT_EQ(io.SyncFs(fd), 0);  // one fault only
  FaultPlan close_plan = plan;
  close_plan.op_index = 1;
  FaultInjectingFileIo io2(*inner_, close_plan);
  const int fd2 = Open(io2, a);
  IoOp close_op = IoOp::Close(fd2);
  ASSERT_TRUE(io2.Execute({&close_op, 1}).ok());
  EXPECT_EQ(close_op.result, -EIO);
  EXPECT_EQ(::fcntl(fd2, F_GETFD), -1);  // released anyway, like close(2)
  IoOp c = IoOp::Close(fd);
  ASSERT_TRUE(io.Execute({&c, 1}).ok());
}

TEST_F(FaultInjectingFileIoTest, TornWriteLeavesAPrefixThenEverythingFails) {
  const std::string a = File("a", 1536, 1);
  FaultPlan plan;
  plan.kind = FaultKind::kTear;
  plan.op_index = 1;
  plan.tear_bytes = 100;
  FaultInjectingFileIo io(*inner_, plan);
  const int fd = Open(io, a);
  uint8_t two[512];
  std::memset(two, 2, sizeof two);
  IoOp ops[2] = {IoOp::Write(fd, two, 512, 512), IoOp::Read(fd, two, 16, 0)};
  ASSERT_TRUE(io.Execute(ops).ok());
  EXPECT_TRUE(io.crashed());
  EXPECT_EQ(ops[0].result, -EIO);
  EXPECT_EQ(ops[1].result, -EIO);
  auto bytes = testing::ReadWholeFile(a);
  ASSERT_EQ(bytes.size(), 1536u);
  for (size_t i = 0; i < 1536; ++i) {
    const uint8_t want = (i >= 512 && i < 612) ? 2 : 1;
    ASSERT_EQ(bytes[i], want) << i;
  }
  EXPECT_EQ(io.SyncFs(fd), -EIO);
  IoOp close_op = IoOp::Close(fd);
  ASSERT_TRUE(io.Execute({&close_op, 1}).ok());
  EXPECT_EQ(close_op.result, -EIO);
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // no leak after the crash
}

// The LevelDB model: a power cut keeps exactly what fdatasync/syncfs made durable.
TEST_F(FaultInjectingFileIoTest, PowerCutDropsEverythingNotDurable) {
  const std::string synced = File("synced", 1024, 1);
  const std::string unsynced = File("unsynced", 1024, 1);
  const std::string grown = File("grown", 512, 1);
  const std::string later = File("later", 1024, 1);
  const std::string created = dir_.path() + "/created";
  FaultInjectingFileIo io(*inner_, FaultPlan{FaultKind::kPowerCut, 13, EIO, 0});
  const int fs = Open(io, synced), fu = Open(io, unsynced), fg = Open(io, grown);  // 0-2
  const int fc = Open(io, created, O_RDWR | O_CREAT | O_EXCL);                    // 3
  ASSERT_GE(fc, 0);
  uint8_t two[1024];
  std::memset(two, 2, sizeof two);
  IoOp writes[4] = {IoOp::Write(fs, two, 512, 0), IoOp::Write(fu, two, 512, 512),
                    IoOp::Write(fg, two, 1024, 256), IoOp::Write(fc, two, 100, 0)};  // 4-7
  ASSERT_TRUE(io.Execute(writes).ok());
  // Overlapping writes to one range in one batch: the cut must restore the original.
  IoOp overlap[2] = {IoOp::Write(fu, two, 64, 0), IoOp::Write(fu, two + 1, 64, 32)};  // 8-9
  ASSERT_TRUE(io.Execute(overlap).ok());
  IoOp sync = IoOp::Fdatasync(fs);  // 10
  ASSERT_TRUE(io.Execute({&sync, 1}).ok());
  EXPECT_EQ(sync.result, 0);
  EXPECT_EQ(io.unsynced_writes(), 5u);
  const int fl = Open(io, later);  // 11
  IoOp w = IoOp::Write(fl, two, 10, 0);  // 12
  ASSERT_TRUE(io.Execute({&w, 1}).ok());
  EXPECT_EQ(io.SyncFs(fl), -EIO);  // 13: the cut hits the syncfs itself
  EXPECT_TRUE(io.crashed());
  EXPECT_EQ(io.rolled_back_writes(), 6u);
  EXPECT_EQ(io.unlinked_files(), 1u);

  auto s = testing::ReadWholeFile(synced);
  EXPECT_EQ(std::vector<uint8_t>(s.begin(), s.begin() + 512), std::vector<uint8_t>(512, 2));
  EXPECT_EQ(testing::ReadWholeFile(unsynced), std::vector<uint8_t>(1024, 1));
  EXPECT_EQ(testing::ReadWholeFile(grown), std::vector<uint8_t>(512, 1));  // size too
  EXPECT_EQ(testing::ReadWholeFile(later), std::vector<uint8_t>(1024, 1));
  EXPECT_NE(::access(created.c_str(), F_OK), 0);
  IoOp closes[5] = {IoOp::Close(fs), IoOp::Close(fu), IoOp::Close(fg), IoOp::Close(fc),
                    IoOp::Close(fl)};
  ASSERT_TRUE(io.Execute(closes).ok());
  for (const auto& c : closes) {
    EXPECT_EQ(c.result, -EIO);
    EXPECT_EQ(::fcntl(c.fd, F_GETFD), -1);
  }
}

TEST_F(FaultInjectingFileIoTest, SyncFsMakesWritesDurable) {
  const std::string a = File("a", 512, 1);
  FaultInjectingFileIo io(*inner_, FaultPlan{FaultKind::kPowerCut, 4, EIO, 0});
  const int fd = Open(io, a);
  uint8_t two[512];
  std::memset(two, 2, sizeof two);
  IoOp w = IoOp::Write(fd, two, 512, 0);
  ASSERT_TRUE(io.Execute({&w, 1}).ok());
  EXPECT_EQ(io.unsynced_writes(), 1u);
  EXPECT_EQ(io.SyncFs(fd), 0);
  EXPECT_EQ(io.unsynced_writes(), 0u);
  IoOp w2 = IoOp::Write(fd, two, 512, 0);  // op 3, unsynced but same bytes
  ASSERT_TRUE(io.Execute({&w2, 1}).ok());
  IoOp r = IoOp::Read(fd, two, 512, 0);  // op 4: the cut
  ASSERT_TRUE(io.Execute({&r, 1}).ok());
  EXPECT_EQ(r.result, -EIO);
  EXPECT_EQ(testing::ReadWholeFile(a), std::vector<uint8_t>(512, 2));
  IoOp c = IoOp::Close(fd);
  ASSERT_TRUE(io.Execute({&c, 1}).ok());
}

}  // namespace
}  // namespace svmkey
