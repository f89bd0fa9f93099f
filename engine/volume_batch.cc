#include "volume_batch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace svmkey {

bool PathLiesBelow(std::string_view path, std::span<const std::string> roots) {
  if (path.size() < 2 || path.front() != '/' || path.back() == '/') return false;
  for (size_t start = 1; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  for (const std::string& root : roots) {
    const std::string_view r = root == "/" ? std::string_view() : std::string_view(root);
    if (path.size() > r.size() + 1 && path.starts_with(r) && path[r.size()] == '/') return true;
  }
  return false;
}

VolumeBatch::VolumeBatch(size_t capacity)
    : ops_(capacity), index_(capacity), fds_(capacity, -1), in_(capacity, 0) {}

void VolumeBatch::Begin(size_t n) {
  n_ = n;
  remaining_ = n;
  for (size_t i = 0; i < n; ++i) {
    fds_[i] = -1;
    in_[i] = 1;
  }
}

IoOp VolumeBatch::OpenOp(const VolumeRef& ref, int flags, mode_t mode) {
  return IoOp::Open(AT_FDCWD, ref.path.c_str(), flags, mode);
}

// statx(2) on the descriptor itself, by raw syscall: under io_uring the ring opened this
// descriptor and will close it, and a libc call on it (which ThreadSanitizer intercepts)
// would be the one use of a ring-owned fd outside the ring (see rewrap.cc,
// SyncFileSystems). Asks for the type only, which the inode holds: no I/O.
bool VolumeBatch::IsRegularFile(int fd) {
  struct statx stx {};
  const long rc = ::syscall(SYS_statx, fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx);
  return rc == 0 && (stx.stx_mask & STATX_TYPE) != 0 && S_ISREG(stx.stx_mode);
}

Status VolumeBatch::Close(FileIo& io) {
  size_t m = 0;
  for (size_t i = 0; i < n_; ++i) {
    if (fds_[i] >= 0) ops_[m++] = IoOp::Close(fds_[i]);
  }
  SVMKEY_RETURN_IF_ERROR(CloseOnFailure(io, io.Execute({ops_.data(), m})));
  for (size_t i = 0; i < n_; ++i) fds_[i] = -1;
  return Status::Ok();
}

Status VolumeBatch::CloseOnFailure(FileIo& io, Status status) {
  if (status.ok()) return status;
  for (size_t i = 0; i < n_; ++i) {
    if (fds_[i] < 0) continue;
    IoOp close_op = IoOp::Close(fds_[i]);
    io.Execute({&close_op, 1}).IgnoreError();
    fds_[i] = -1;
  }
  return status;
}

}  // namespace svmkey
