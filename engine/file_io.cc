#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <vector>

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
          op.result = OpenResolved(op.fd, op.path, OpenHowFor(op));
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

// The directories a component walk has opened, innermost last; closed on scope exit.
// The walk's current directory is the innermost, or `base` (the caller's) when empty.
class WalkStack {
 public:
  explicit WalkStack(int base) : base_(base) {}
  ~WalkStack() {
    for (int fd : fds_) ::close(fd);
  }
  WalkStack(const WalkStack&) = delete;
  WalkStack& operator=(const WalkStack&) = delete;
  int current() const { return fds_.empty() ? base_ : fds_.back(); }
  bool empty() const { return fds_.empty(); }
  void Push(int fd) { fds_.push_back(fd); }  // fails only on allocation, like the walk
  void Pop() {
    ::close(fds_.back());
    fds_.pop_back();
  }

 private:
  int base_;
  std::vector<int> fds_;
};

// The component walk of OpenResolved (see file_io.h): no component is a symlink; with
// `beneath`, ".." returns to the directory the walk came from (never the file system's
// "..", which a concurrent rename could move outside) and is refused at the start.
int OpenByComponents(int dirfd, std::string_view path, const open_how& how, bool beneath) {
  if (path.empty()) return -ENOENT;
  WalkStack walk(dirfd);
  if (path.front() == '/') {
    if (beneath) return -EXDEV;
    const int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return -errno;
    walk.Push(root);
  }
  const bool trailing_slash = path.back() == '/';
  std::string name;  // one component, NUL-terminated for openat
  size_t pos = 0;
  for (;;) {
    while (pos < path.size() && path[pos] == '/') ++pos;
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    name.assign(path.substr(pos, end - pos));
    size_t next = end;
    while (next < path.size() && path[next] == '/') ++next;
    const bool last = next >= path.size();
    if (name.empty()) name = ".";  // "/" alone, or the path was only slashes
    if (name == ".." && beneath) {
      if (walk.empty()) return -EXDEV;
      walk.Pop();
      name = ".";
    }
    if (last) {
      uint64_t flags = how.flags | O_NOFOLLOW;
      if (trailing_slash) flags |= O_DIRECTORY;
      const int fd = ::openat(walk.current(), name.c_str(), static_cast<int>(flags),
                              static_cast<mode_t>(how.mode));
      return fd < 0 ? -errno : fd;
    }
    if (name != ".") {
      const int fd =
          ::openat(walk.current(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        const int err = errno;
        struct stat st;
        if (err == ENOTDIR &&
            ::fstatat(walk.current(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode)) {
          return -ELOOP;
        }
        return -err;
      }
      walk.Push(fd);
    }
    pos = next;
  }
}

}  // namespace

int OpenResolved(int dirfd, const char* path, const open_how& how) {
  open_how copy = how;
  const long fd = ::syscall(SYS_openat2, dirfd, path, &copy, sizeof copy);
  if (fd >= 0) return static_cast<int>(fd);
  if (errno != ENOSYS) return -errno;
  constexpr uint64_t kWalkable = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  if ((how.resolve & RESOLVE_NO_SYMLINKS) == 0 || (how.resolve & ~kWalkable) != 0) return -ENOSYS;
  return OpenByComponents(dirfd, path, how, (how.resolve & RESOLVE_BENEATH) != 0);
}

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
