#include "uring_file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace svmkey {
namespace {

// Setup flags we want, newest kernel feature last: on -EINVAL the last one still set is
// dropped and setup retried (fio's engines/io_uring.c does the same).
//   CLAMP (5.6): a too-large queue depth is clamped instead of refused.
//   SUBMIT_ALL (5.18): one bad SQE does not stop the rest of the submission.
//   COOP_TASKRUN (5.19): completions run when we enter the kernel anyway, not via IPIs
//     that interrupt us; we are the only thread touching the ring.
// Not used: SINGLE_ISSUER/DEFER_TASKRUN, because they tie the ring to the creating
// thread and the daemon may create the FileIo on one thread and run the job on another.
constexpr unsigned kWantedFlags[] = {IORING_SETUP_CLAMP, IORING_SETUP_SUBMIT_ALL,
                                     IORING_SETUP_COOP_TASKRUN};

bool Retryable(int res) { return res == -EAGAIN || res == -EINTR; }

}  // namespace

int UringFileIo::Create(const UringOptions& options, std::unique_ptr<UringFileIo>* out) {
  std::unique_ptr<UringFileIo> io(new UringFileIo());
  const unsigned depth = options.queue_depth == 0 ? 1 : options.queue_depth;
  size_t nflags = std::size(kWantedFlags);
  int rc = 0;
  for (;;) {
    unsigned flags = 0;
    for (size_t i = 0; i < nflags; ++i) flags |= kWantedFlags[i];
    io_uring_params params{};
    params.flags = flags;
    rc = io_uring_queue_init_params(depth, &io->ring_, &params);
    if (rc == 0) {
      io->setup_flags_ = flags;
      io->depth_ = params.sq_entries;
      break;
    }
    if (rc != -EINVAL || nflags == 0) return rc;
    --nflags;  // degrade: drop the newest feature and try again
  }
  io->ring_ok_ = true;
  if (options.iowq_bounded_workers != 0 || options.iowq_unbounded_workers != 0) {
    unsigned values[2] = {options.iowq_bounded_workers, options.iowq_unbounded_workers};
    // Best effort (5.15+): without it buffered fdatasync is capped by the default bound.
    (void)io_uring_register_iowq_max_workers(&io->ring_, values);
  }
  *out = std::move(io);
  return 0;
}

UringFileIo::~UringFileIo() {
  if (ring_ok_) io_uring_queue_exit(&ring_);
}

Status UringFileIo::RegisterBuffers(std::span<const iovec> buffers) {
  UnregisterBuffers();
  if (buffers.empty()) return Status::Ok();
  const int rc = io_uring_register_buffers(&ring_, buffers.data(),
                                           static_cast<unsigned>(buffers.size()));
  if (rc < 0) {
    // Typically ENOMEM from RLIMIT_MEMLOCK: I/O simply goes unregistered.
    return Status(ErrorCode::kResourceLimit,
                  std::string("io_uring_register_buffers: ") + std::strerror(-rc));
  }
  registered_.assign(buffers.begin(), buffers.end());
  return Status::Ok();
}

void UringFileIo::UnregisterBuffers() {
  if (registered_.empty()) return;
  (void)io_uring_unregister_buffers(&ring_);
  registered_.clear();
}

void UringFileIo::Prep(io_uring_sqe* sqe, const IoOp& op, uint32_t idx, uint32_t done) {
  switch (op.kind) {
    case IoOpKind::kOpen:
      // The kernel copies the open_how when the SQE is submitted; hows_ keeps it until
      // then (and for a resubmission).
      hows_[idx] = OpenHowFor(op);
      io_uring_prep_openat2(sqe, op.fd, op.path, &hows_[idx]);
      return;
    case IoOpKind::kRead:
    case IoOpKind::kWrite: {
      uint8_t* buf = op.buf + done;
      const unsigned len = op.len - done;
      const uint64_t offset = op.offset + done;
      const bool write = op.kind == IoOpKind::kWrite;
      // A registered region holding the whole remaining range → the fixed variant
      // (no per-request page pinning).
      for (size_t i = 0; i < registered_.size(); ++i) {
        const auto* base = static_cast<uint8_t*>(registered_[i].iov_base);
        if (buf >= base && buf + len <= base + registered_[i].iov_len) {
          if (write) {
            io_uring_prep_write_fixed(sqe, op.fd, buf, len, offset, static_cast<int>(i));
          } else {
            io_uring_prep_read_fixed(sqe, op.fd, buf, len, offset, static_cast<int>(i));
          }
          return;
        }
      }
      if (write) {
        io_uring_prep_write(sqe, op.fd, buf, len, offset);
      } else {
        io_uring_prep_read(sqe, op.fd, buf, len, offset);
      }
      return;
    }
    case IoOpKind::kFdatasync:
      io_uring_prep_fsync(sqe, op.fd, IORING_FSYNC_DATASYNC);
      return;
    case IoOpKind::kClose:
      io_uring_prep_close(sqe, op.fd);
      return;
  }
}

void UringFileIo::DrainAfterFailure(unsigned inflight) {
  while (inflight > 0) {
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe(&ring_, &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) return;  // the ring is unusable; nothing more we can wait for
    io_uring_cqe_seen(&ring_, cqe);
    --inflight;
  }
}

Status UringFileIo::Execute(std::span<IoOp> ops) {
  if (ops.empty()) return Status::Ok();
  if (broken_) return Status(ErrorCode::kUnexpectedException, "io_uring ring failed earlier");
  if (ops.size() > UINT32_MAX) return Status(ErrorCode::kInvalidArgument, "too many ops");
  if (done_.size() < ops.size()) done_.resize(ops.size());
  if (hows_.size() < ops.size()) hows_.resize(ops.size());
  retry_.clear();
  const uint32_t n = static_cast<uint32_t>(ops.size());
  for (uint32_t i = 0; i < n; ++i) done_[i] = 0;

  uint32_t next = 0;      // next op never submitted
  unsigned inflight = 0;  // SQEs handed to the ring and not yet completed
  while (next < n || !retry_.empty() || inflight > 0) {
    // Refill: retries first (they hold buffers already), then new ops.
    while (inflight < depth_ && (!retry_.empty() || next < n)) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) break;
      uint32_t idx;
      if (!retry_.empty()) {
        idx = retry_.back();
        retry_.pop_back();
      } else {
        idx = next++;
      }
      Prep(sqe, ops[idx], idx, done_[idx]);
      io_uring_sqe_set_data64(sqe, idx);
      ++inflight;
    }
    const int rc = io_uring_submit_and_wait(&ring_, 1);
    if (rc < 0 && !Retryable(rc) && rc != -EBUSY) {
      broken_ = true;
      DrainAfterFailure(inflight);
      return Status(ErrorCode::kUnexpectedException,
                    std::string("io_uring_submit_and_wait: ") + std::strerror(-rc));
    }
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      --inflight;
      const uint32_t idx = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
      IoOp& op = ops[idx];
      const int res = cqe->res;
      switch (op.kind) {
        case IoOpKind::kRead:
        case IoOpKind::kWrite:
          if (Retryable(res)) {
            ++resubmissions_;
            retry_.push_back(idx);
          } else if (res < 0) {
            op.result = res;
          } else {
            done_[idx] += static_cast<uint32_t>(res);
            const bool eof = res == 0 || (op.eof_ok && op.kind == IoOpKind::kRead);
            if (done_[idx] < op.len && !eof) {
              ++resubmissions_;  // short transfer: submit the rest
              retry_.push_back(idx);
            } else {
              op.result = static_cast<int32_t>(done_[idx]);
            }
          }
          break;
        case IoOpKind::kOpen:
        case IoOpKind::kFdatasync:
          if (Retryable(res)) {
            ++resubmissions_;
            retry_.push_back(idx);
          } else {
            op.result = res;
          }
          break;
        case IoOpKind::kClose:
          // Never retried: Linux releases the descriptor even when close fails.
          op.result = res;
          break;
      }
    }
    io_uring_cq_advance(&ring_, seen);
  }
  return Status::Ok();
}

int UringFileIo::SyncFs(int fd) { return ::syncfs(fd) < 0 ? -errno : 0; }

Result<std::unique_ptr<FileIo>> MakeUringFileIo(const UringOptions& options) {
  std::unique_ptr<UringFileIo> io;
  const int rc = UringFileIo::Create(options, &io);
  if (rc < 0) {
    return Status(ErrorCode::kUnexpectedException,
                  std::string("io_uring setup failed: ") + std::strerror(-rc));
  }
  return std::unique_ptr<FileIo>(std::move(io));
}

bool ParseIoMode(std::string_view text, IoMode* mode) {
  if (text == "auto") {
    *mode = IoMode::kAuto;
  } else if (text == "uring" || text == "io_uring") {
    *mode = IoMode::kUring;
  } else if (text == "sync") {
    *mode = IoMode::kSync;
  } else {
    return false;
  }
  return true;
}

Result<std::unique_ptr<FileIo>> MakeFileIo(IoMode mode, std::string* note,
                                           const UringOptions& options) {
  if (mode == IoMode::kSync) return MakeSyncFileIo();
  std::unique_ptr<UringFileIo> io;
  const int rc = UringFileIo::Create(options, &io);
  if (rc == 0) return std::unique_ptr<FileIo>(std::move(io));
  if (mode == IoMode::kUring) {
    return Status(ErrorCode::kUnexpectedException,
                  std::string("io_uring setup failed (I/O mode forced to io_uring): ") +
                      std::strerror(-rc));
  }
  std::string text = std::string("io_uring unavailable (") + std::strerror(-rc) +
                     (rc == -ENOSYS || rc == -EPERM ? ", blocked by seccomp or "
                                                      "kernel.io_uring_disabled" : "") +
                     "); using synchronous file I/O";
  if (note != nullptr) {
    *note = std::move(text);
  } else {
    // Once per process: every job would otherwise repeat the same line.
    static std::atomic<bool> logged{false};
    if (!logged.exchange(true)) std::fprintf(stderr, "<4>svmkey: %s\n", text.c_str());
  }
  return MakeSyncFileIo();
}

}  // namespace svmkey
