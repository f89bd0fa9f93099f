#include "file_io.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace svmkey {
namespace {

// Completes short transfers like the ring does; returns the byte count or -errno.
int32_t FullTransfer(bool write, int fd, uint8_t* buf, uint32_t len, uint64_t offset) {
  uint32_t done = 0;
  while (done < len) {
    const ssize_t n = write ? ::pwrite(fd, buf + done, len - done, static_cast<off_t>(offset + done))
                            : ::pread(fd, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -errno;
    }
    if (n == 0) break;  // end of file on read
    done += static_cast<uint32_t>(n);
  }
  return static_cast<int32_t>(done);
}

class SyncFileIo final : public FileIo {
 public:
  std::string_view name() const override { return "sync"; }

  Status Execute(std::span<IoOp> ops) override {
    for (IoOp& op : ops) {
      switch (op.kind) {
        case IoOpKind::kOpen: {
          open_how how = OpenHowFor(op);
          const long fd = ::syscall(SYS_openat2, op.fd, op.path, &how, sizeof how);
          op.result = fd < 0 ? -errno : static_cast<int32_t>(fd);
          break;
        }
        case IoOpKind::kRead:
          op.result = FullTransfer(false, op.fd, op.buf, op.len, op.offset);
          break;
        case IoOpKind::kWrite:
          op.result = FullTransfer(true, op.fd, op.buf, op.len, op.offset);
          break;
        case IoOpKind::kFdatasync:
          op.result = ::fdatasync(op.fd) < 0 ? -errno : 0;
          break;
        case IoOpKind::kClose:
          op.result = ::close(op.fd) < 0 ? -errno : 0;
          break;
      }
    }
    return Status::Ok();
  }

  int SyncFs(int fd) override { return ::syncfs(fd) < 0 ? -errno : 0; }
};

}  // namespace

open_how OpenHowFor(const IoOp& op) {
  open_how how{};
  how.flags = static_cast<uint64_t>(op.open_flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  // openat2 refuses a mode without O_CREAT/O_TMPFILE (EINVAL), unlike openat.
  if ((op.open_flags & O_CREAT) != 0 || (op.open_flags & O_TMPFILE) == O_TMPFILE) how.mode = op.mode;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  if (op.fd != AT_FDCWD) how.resolve |= RESOLVE_BENEATH;
  return how;
}

std::unique_ptr<FileIo> MakeSyncFileIo() { return std::make_unique<SyncFileIo>(); }

}  // namespace svmkey
