// The I/O seam (docs/ARCHITECTURE.md §4): every byte the engine reads or writes goes through a
// FileIo. Three implementations share this interface:
//   - SyncFileIo      (file_io.cc): plain syscalls, one at a time. The fallback when
//                      io_uring cannot be set up (ENOSYS/EPERM under some seccomp
//                      profiles).
//   - UringFileIo     (uring_file_io.cc): io_uring with many requests in flight.
//   - FaultInjectingFileIo (fault_injecting_file_io.cc): wraps another FileIo and fails,
//                      tears or "power-cuts" at the k-th operation, for the crash tests.
//
// The API is batch-shaped like io_uring itself: the caller fills an array of IoOps and
// calls Execute; the ops of one call are independent and may run in any order and
// concurrently; Execute returns when every op has completed, with each op's outcome in
// `result`. Ordering between ops is expressed by separate Execute calls (open, then
// read, then write, then close). Per-op failures are reported in `result`, not in the
// returned Status, which fails only when the I/O layer itself breaks.
//
// Opens (docs/ARCHITECTURE.md §4): every kOpen is an openat2(2) that follows no symbolic
// link in any component of the path and no /proc magic link (RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS, plus RESOLVE_BENEATH when a directory fd is given), with
// O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC added to the caller's flags, in every
// implementation (io_uring uses IORING_OP_OPENAT2). O_NONBLOCK is what keeps a FIFO or a
// device in place of a metadata file from blocking the open; callers that read must still
// refuse anything that is not a regular file before reading it (VolumeBatch::Open does),
// because io_uring waits for data on a pipe whatever its O_NONBLOCK. A symbolic link
// fails the open with -ELOOP, an escape from the directory fd with -EXDEV.
//
// Durability: a write is durable after an fdatasync op on its fd completed, or after
// SyncFs on any fd of the same file system completed (syncfs(2)).
//
// Buffers passed in IoOps must stay valid until Execute returns. Thread safety: one
// FileIo per thread (the implementations keep per-instance rings and counters).
#pragma once

#include <linux/openat2.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "status.h"

namespace svmkey {

enum class IoOpKind : uint8_t {
  kOpen,       // openat2(dirfd, path, OpenHowFor(op)) → result = fd
  kRead,       // pread(fd, buf, len, offset)       → result = bytes read
  kWrite,      // pwrite(fd, buf, len, offset)      → result = bytes written
  kFdatasync,  // fdatasync(fd)                     → result = 0
  kClose,      // close(fd)                         → result = 0
};

struct IoOp {
  IoOpKind kind = IoOpKind::kRead;
  int fd = -1;                  // read, write, fdatasync, close; kOpen: the dirfd
  const char* path = nullptr;   // kOpen only; relative to fd (AT_FDCWD allowed)
  int open_flags = 0;           // kOpen only (see OpenHowFor for the flags always added)
  mode_t mode = 0;              // kOpen only
  uint8_t* buf = nullptr;       // read, write
  uint32_t len = 0;             // read, write
  uint64_t offset = 0;          // read, write
  // kRead only: a read that returns fewer bytes than asked means end of file (true for
  // buffered reads of regular files), so it is not resubmitted. Lets a caller read
  // len = size + slack to detect an oversized file in one request instead of two.
  // Implementations may ignore it (looping until 0 gives the same result, slower).
  bool eof_ok = false;
  int32_t result = 0;           // out: see kinds; negative = -errno

  static IoOp Open(int dirfd, const char* path, int flags, mode_t mode = 0) {
    IoOp op;
    op.kind = IoOpKind::kOpen;
    op.fd = dirfd;
    op.path = path;
    op.open_flags = flags;
    op.mode = mode;
    return op;
  }
  static IoOp Read(int fd, uint8_t* buf, uint32_t len, uint64_t offset) {
    IoOp op;
    op.kind = IoOpKind::kRead;
    op.fd = fd;
    op.buf = buf;
    op.len = len;
    op.offset = offset;
    return op;
  }
  static IoOp ReadToEof(int fd, uint8_t* buf, uint32_t len, uint64_t offset) {
    IoOp op = Read(fd, buf, len, offset);
    op.eof_ok = true;
    return op;
  }
  static IoOp Write(int fd, uint8_t* buf, uint32_t len, uint64_t offset) {
    IoOp op = Read(fd, buf, len, offset);
    op.kind = IoOpKind::kWrite;
    op.eof_ok = false;
    return op;
  }
  static IoOp Fdatasync(int fd) {
    IoOp op;
    op.kind = IoOpKind::kFdatasync;
    op.fd = fd;
    return op;
  }
  static IoOp Close(int fd) {
    IoOp op;
    op.kind = IoOpKind::kClose;
    op.fd = fd;
    return op;
  }
};

// The open_how of a kOpen op (the contract above): the caller's flags plus O_NOFOLLOW,
// O_NONBLOCK, O_NOCTTY and O_CLOEXEC; no symlink or magic link resolved anywhere in the
// path; RESOLVE_BENEATH when op.fd is a directory fd rather than AT_FDCWD.
open_how OpenHowFor(const IoOp& op);

// openat2(dirfd, path, how) with the same result where the kernel call is refused:
// returns the descriptor or -errno.
//
// Why a fallback: systemd's RestrictSUIDSGID= (set in svmkeyd's unit) installs a seccomp
// rule answering ENOSYS to every openat2, because a filter cannot read the mode inside
// struct open_how (libc then falls back to openat; a raw syscall does not). On ENOSYS
// the path is walked one component at a time, each directory opened with
// O_PATH|O_DIRECTORY|O_NOFOLLOW and the last component with how.flags (which carry
// O_NOFOLLOW), so no symbolic link is followed anywhere (RESOLVE_NO_SYMLINKS, which also
// covers /proc magic links). With RESOLVE_BENEATH an absolute path is refused with EXDEV
// and ".." goes back to the directory descriptor the walk came from (refused with EXDEV
// at `dirfd` itself), never through the file system's "..", so the walk cannot leave
// `dirfd` even while directories are renamed concurrently. A symlink met as a directory component gives ELOOP, as openat2 does. Only
// resolve sets that contain RESOLVE_NO_SYMLINKS and nothing beyond RESOLVE_BENEATH and
// RESOLVE_NO_MAGICLINKS have a fallback; others return -ENOSYS unchanged.
// io_uring's IORING_OP_OPENAT2 is not subject to seccomp and needs no fallback.
int OpenResolved(int dirfd, const char* path, const open_how& how);

class FileIo {
 public:
  virtual ~FileIo() = default;
  // "io_uring", "sync", "fault(<inner>)": for logs and benchmark tables.
  virtual std::string_view name() const = 0;
  // Runs every op (see the contract above). Short reads/writes are completed (resubmitted)
  // by the implementation; `result` is then the full length or -errno.
  virtual Status Execute(std::span<IoOp> ops) = 0;
  // syncfs(2) on the file system holding `fd`: every write issued so far there becomes
  // durable. Returns 0 or -errno.
  virtual int SyncFs(int fd) = 0;

  // Optional hint: these buffers stay valid, at the same address, until
  // UnregisterBuffers(); I/O into them may use pre-registered (pinned) buffers
  // (io_uring READ_FIXED/WRITE_FIXED). Buffers not covered still work. Returns OK when
  // registered or when the implementation has nothing to register; a failure (e.g.
  // RLIMIT_MEMLOCK) is harmless: I/O proceeds unregistered. The caller must call
  // UnregisterBuffers() before freeing them. At most one registration at a time.
  virtual Status RegisterBuffers(std::span<const iovec> buffers) {
    (void)buffers;
    return Status::Ok();
  }
  virtual void UnregisterBuffers() {}
};

// Plain syscalls, one op at a time.
std::unique_ptr<FileIo> MakeSyncFileIo();

}  // namespace svmkey
