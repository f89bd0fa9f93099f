// UringFileIo: the io_uring implementation of the I/O seam (file_io.h), and the factory
// that picks io_uring or the sync fallback.
//
// One ring per UringFileIo, set up once. Execute keeps up to `queue_depth` requests in
// flight and refills the submission queue as completions arrive (like fio's io_uring
// engine): -EAGAIN/-EINTR completions and short transfers are resubmitted for the rest;
// every buffer and path of an Execute call is owned by the ring until its completion is
// reaped, and Execute returns only when every op has completed. Buffers registered
// with RegisterBuffers are pinned once and used with READ_FIXED/WRITE_FIXED.
//
// Setup follows fio/liburing practice: the wanted setup flags are tried together and,
// on -EINVAL (an older kernel), dropped one at a time, newest feature first. The io-wq
// worker bound is raised: io_uring punts buffered fsync/fdatasync to io-wq, and its
// default bound caps how many per-file syncs run at once.
//
// Thread safety: a UringFileIo is used by one thread at a time (one ring per thread).
// SyncFs is a plain syncfs(2): io_uring has no syncfs opcode.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "file_io.h"
#include "status.h"

namespace svmkey {

struct UringOptions {
  // Requests in flight (SQ entries). Deep enough for a whole phase of a rewrap batch to
  // overlap; shallower queues measured equal or slower (docs/BENCH.md).
  unsigned queue_depth = 256;
  // io-wq worker bounds (bounded = regular-file work such as buffered fdatasync;
  // unbounded = sockets etc.). 0 leaves the kernel default.
  unsigned iowq_bounded_workers = 64;
  unsigned iowq_unbounded_workers = 0;
};

class UringFileIo final : public FileIo {
 public:
  // Sets up the ring. On failure returns -errno (ENOSYS/EPERM when io_uring is not
  // allowed: seccomp, kernel.io_uring_disabled) and *out stays empty.
  static int Create(const UringOptions& options, std::unique_ptr<UringFileIo>* out);
  ~UringFileIo() override;
  UringFileIo(const UringFileIo&) = delete;
  UringFileIo& operator=(const UringFileIo&) = delete;

  std::string_view name() const override { return "io_uring"; }
  Status Execute(std::span<IoOp> ops) override;
  int SyncFs(int fd) override;
  Status RegisterBuffers(std::span<const iovec> buffers) override;
  void UnregisterBuffers() override;

  // The setup flags the kernel accepted (after degrading), for logs and tests.
  unsigned setup_flags() const { return setup_flags_; }
  unsigned queue_depth() const { return depth_; }
  bool buffers_registered() const { return !registered_.empty(); }
  // Ops resubmitted after -EAGAIN or a short transfer (diagnostics).
  uint64_t resubmissions() const { return resubmissions_; }

 private:
  UringFileIo() = default;
  void Prep(io_uring_sqe* sqe, const IoOp& op, uint32_t idx, uint32_t done);
  // Waits for every submitted request after the ring failed, so no buffer is still
  // owned by the kernel when Execute returns an error.
  void DrainAfterFailure(unsigned inflight);

  io_uring ring_{};
  bool ring_ok_ = false;
  bool broken_ = false;
  unsigned depth_ = 0;
  unsigned setup_flags_ = 0;
  uint64_t resubmissions_ = 0;
  std::vector<iovec> registered_;
  // Reused across Execute calls (grow only): bytes done per op, ops to resubmit.
  std::vector<uint32_t> done_;
  std::vector<uint32_t> retry_;
  std::vector<open_how> hows_;  // kOpen ops: the open_how of op i, alive until submitted
};

// The io_uring FileIo, or a failed Status (UnexpectedException, with the errno text).
Result<std::unique_ptr<FileIo>> MakeUringFileIo(const UringOptions& options = {});

enum class IoMode : uint8_t {
  kAuto,   // io_uring; the sync fallback when the ring cannot be set up
  kUring,  // io_uring or fail
  kSync,   // plain syscalls
};

// Parses "auto" | "uring" | "io_uring" | "sync"; false when unknown.
bool ParseIoMode(std::string_view text, IoMode* mode);

// Picks the FileIo for `mode`. kAuto falls back to sync I/O when io_uring setup fails
// (ENOSYS or EPERM, as under container seccomp profiles or kernel.io_uring_disabled;
// any other setup error too, so the daemon keeps working) and says so: into *note when
// given (the caller logs it), otherwise once per process on stderr as a "<4>" (warning)
// line. kUring fails instead of falling back. Never fails for kAuto or kSync.
Result<std::unique_ptr<FileIo>> MakeFileIo(IoMode mode, std::string* note = nullptr,
                                           const UringOptions& options = {});

}  // namespace svmkey
