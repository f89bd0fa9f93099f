#include "fault_injecting_file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>

namespace svmkey {
namespace {

std::string PathOfFd(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char target[PATH_MAX];
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  if (n <= 0) return {};
  return std::string(target, static_cast<size_t>(n));
}

}  // namespace

FaultInjectingFileIo::FaultInjectingFileIo(FileIo& inner, FaultPlan plan)
    : inner_(inner), plan_(plan), name_("fault(" + std::string(inner.name()) + ")") {}

void FaultInjectingFileIo::Trace(const IoOp& op) {
  trace_.push_back(static_cast<TracedOp>(op.kind));
}

void FaultInjectingFileIo::Snapshot(const IoOp& write) {
  struct stat st;
  if (::fstat(write.fd, &st) != 0) return;  // the write will fail with EBADF anyway
  UnsyncedWrite w;
  w.dev = st.st_dev;
  w.ino = st.st_ino;
  auto it = fd_paths_.find(write.fd);
  w.path = it != fd_paths_.end() ? it->second : PathOfFd(write.fd);
  w.offset = write.offset;
  w.old_size = st.st_size;
  w.old_bytes.resize(write.len);
  const ssize_t n = ::pread(write.fd, w.old_bytes.data(), write.len,
                            static_cast<off_t>(write.offset));
  // Bytes past the old end of file are restored by truncating to old_size.
  w.old_bytes.resize(n > 0 ? static_cast<size_t>(n) : 0);
  unsynced_.push_back(std::move(w));
}

Status FaultInjectingFileIo::Forward(std::span<IoOp> ops) {
  if (ops.empty()) return Status::Ok();
  std::vector<bool> was_new(ops.size(), false);
  for (size_t i = 0; i < ops.size(); ++i) {
    const IoOp& op = ops[i];
    if (op.kind == IoOpKind::kWrite) Snapshot(op);
    if (op.kind == IoOpKind::kOpen && (op.open_flags & O_CREAT) != 0) {
      was_new[i] = ::faccessat(op.fd, op.path, F_OK, 0) != 0;
    }
  }
  SVMKEY_RETURN_IF_ERROR(inner_.Execute(ops));
  for (size_t i = 0; i < ops.size(); ++i) {
    const IoOp& op = ops[i];
    switch (op.kind) {
      case IoOpKind::kOpen:
        if (op.result >= 0) {
          std::string path = PathOfFd(op.result);
          if (was_new[i]) {
            struct stat st;
            if (::fstat(op.result, &st) == 0) created_.push_back({st.st_dev, path});
          }
          fd_paths_[op.result] = std::move(path);
        }
        break;
      case IoOpKind::kFdatasync:
        if (op.result == 0) {
          struct stat st;
          if (::fstat(op.fd, &st) == 0) {
            std::erase_if(unsynced_, [&](const UnsyncedWrite& w) {
              return w.dev == st.st_dev && w.ino == st.st_ino;
            });
          }
        }
        break;
      case IoOpKind::kClose:
        fd_paths_.erase(op.fd);
        break;
      case IoOpKind::kRead:
      case IoOpKind::kWrite:
        break;
    }
  }
  return Status::Ok();
}

void FaultInjectingFileIo::FailAfterCrash(std::span<IoOp> ops) {
  for (IoOp& op : ops) {
    if (op.kind == IoOpKind::kClose) {
      // The dead machine does not care, but the test process must not leak fds.
      IoOp real = op;
      (void)inner_.Execute({&real, 1});
      fd_paths_.erase(op.fd);
    }
    op.result = -EIO;
  }
}

void FaultInjectingFileIo::Crash(bool drop_unsynced) {
  crashed_ = true;
  if (!drop_unsynced) return;
  // Newest first, so overlapping writes end at the oldest snapshot's bytes.
  for (auto it = unsynced_.rbegin(); it != unsynced_.rend(); ++it) {
    const int fd = ::open(it->path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;  // unlinked since; nothing to restore
    if (!it->old_bytes.empty()) {
      (void)!::pwrite(fd, it->old_bytes.data(), it->old_bytes.size(),
                      static_cast<off_t>(it->offset));
    }
    (void)!::ftruncate(fd, it->old_size);
    ::close(fd);
    ++rolled_back_writes_;
  }
  unsynced_.clear();
  for (const CreatedFile& f : created_) {
    if (::unlink(f.path.c_str()) == 0) ++unlinked_files_;
  }
  created_.clear();
}

Status FaultInjectingFileIo::Inject(IoOp& op) {
  hit_ = true;
  switch (plan_.kind) {
    case FaultKind::kNone:
      break;
    case FaultKind::kFail:
      if (op.kind == IoOpKind::kClose) {
        IoOp real = op;
        SVMKEY_RETURN_IF_ERROR(Forward({&real, 1}));
      }
      op.result = -plan_.error;
      return Status::Ok();
    case FaultKind::kTear:
      if (op.kind == IoOpKind::kWrite && plan_.tear_bytes < op.len) {
        IoOp prefix = op;
        prefix.len = plan_.tear_bytes;
        SVMKEY_RETURN_IF_ERROR(Forward({&prefix, 1}));
      }
      Crash(false);
      FailAfterCrash({&op, 1});
      return Status::Ok();
    case FaultKind::kPowerCut:
      Crash(true);
      FailAfterCrash({&op, 1});
      return Status::Ok();
  }
  return Status::Ok();
}

Status FaultInjectingFileIo::Execute(std::span<IoOp> ops) {
  for (const IoOp& op : ops) Trace(op);
  const uint64_t first = count_;
  count_ += ops.size();
  if (crashed_) {
    FailAfterCrash(ops);
    return Status::Ok();
  }
  const bool armed = plan_.kind != FaultKind::kNone && !hit_;
  if (!armed || plan_.op_index < first || plan_.op_index >= count_) return Forward(ops);
  const size_t k = static_cast<size_t>(plan_.op_index - first);
  // The ops before k complete first; a real ring might have run them in any order, but
  // the outcomes that matter (written or not, synced or not) are the same.
  SVMKEY_RETURN_IF_ERROR(Forward(ops.first(k)));
  SVMKEY_RETURN_IF_ERROR(Inject(ops[k]));
  std::span<IoOp> rest = ops.subspan(k + 1);
  if (crashed_) {
    FailAfterCrash(rest);
    return Status::Ok();
  }
  return Forward(rest);
}

int FaultInjectingFileIo::SyncFs(int fd) {
  trace_.push_back(TracedOp::kSyncFs);
  const uint64_t index = count_++;
  if (crashed_) return -EIO;
  if (plan_.kind != FaultKind::kNone && !hit_ && plan_.op_index == index) {
    hit_ = true;
    if (plan_.kind == FaultKind::kFail) return -plan_.error;
    Crash(plan_.kind == FaultKind::kPowerCut);
    return -EIO;
  }
  const int rc = inner_.SyncFs(fd);
  if (rc == 0) {
    struct stat st;
    if (::fstat(fd, &st) == 0) {
      std::erase_if(unsynced_, [&](const UnsyncedWrite& w) { return w.dev == st.st_dev; });
      std::erase_if(created_, [&](const CreatedFile& f) { return f.dev == st.st_dev; });
    }
  }
  return rc;
}

}  // namespace svmkey
