#include "engine/file_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "tests/support/temp_dir.h"

namespace svmkey {
namespace {

TEST(SyncFileIoTest, OpenWriteReadSyncClose) {
  testing::TempDir dir;
  auto io = MakeSyncFileIo();
  EXPECT_EQ(io->name(), "sync");
  const std::string path = dir / "f";
  IoOp open_op = IoOp::Open(AT_FDCWD, path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_TRUE(io->Execute({&open_op, 1}).ok());
  ASSERT_GE(open_op.result, 0);
  const int fd = open_op.result;
  std::vector<uint8_t> data(4096, 0x3c), back(4096);
  IoOp ops[] = {IoOp::Write(fd, data.data(), 4096, 0)};
  ASSERT_TRUE(io->Execute(ops).ok());
  EXPECT_EQ(ops[0].result, 4096);
  IoOp more[] = {IoOp::Read(fd, back.data(), 4096, 0), IoOp::Fdatasync(fd)};
  ASSERT_TRUE(io->Execute(more).ok());
  EXPECT_EQ(more[0].result, 4096);
  EXPECT_EQ(more[1].result, 0);
  EXPECT_EQ(data, back);
  EXPECT_EQ(io->SyncFs(fd), 0);
  // Reading past the end is short, not an error.
  IoOp tail = IoOp::Read(fd, back.data(), 4096, 4000);
  ASSERT_TRUE(io->Execute({&tail, 1}).ok());
  EXPECT_EQ(tail.result, 96);
  IoOp close_op = IoOp::Close(fd);
  ASSERT_TRUE(io->Execute({&close_op, 1}).ok());
  EXPECT_EQ(close_op.result, 0);
}

TEST(SyncFileIoTest, ErrorsAreNegativeErrno) {
  testing::TempDir dir;
  auto io = MakeSyncFileIo();
  const std::string missing = dir / "missing";
  IoOp ops[] = {IoOp::Open(AT_FDCWD, missing.c_str(), O_RDONLY), IoOp::Close(-1)};
  ASSERT_TRUE(io->Execute(ops).ok());
  EXPECT_EQ(ops[0].result, -ENOENT);
  EXPECT_EQ(ops[1].result, -EBADF);
  EXPECT_EQ(io->SyncFs(-1), -EBADF);
}

}  // namespace
}  // namespace svmkey
