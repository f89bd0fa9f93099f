#include "daemon/service/caller_file.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

namespace svmkey::daemon {
namespace {

// openat2(2) from AT_FDCWD with no symlink (and no /proc magic link) followed anywhere in
// `path`, the last component included (ELOOP).
int OpenNoSymlinks(const std::string& path, uint64_t flags) {
  struct open_how how {};
  how.flags = flags;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd;
  do {
    fd = ::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how);
  } while (fd < 0 && errno == EINTR);
  return static_cast<int>(fd);
}

// One message for every refusal, so a caller learns nothing about files it cannot see.
Status Refused(const std::string& what, const std::string& path) {
  return Status(ErrorCode::kInvalidValue,
                "option '" + what + "': " + path +
                    " cannot be used: the file must be a regular file owned by the caller "
                    "with mode 0600, named by an absolute path without symlinks");
}

}  // namespace

Result<CallerFile> CallerFile::Open(const std::string& path, uid_t owner,
                                    const std::string& what) {
  if (path.empty() || path[0] != '/' || path.size() >= PATH_MAX ||
      path.find('\0') != std::string::npos) {
    return Status(ErrorCode::kInvalidValue, "option '" + what + "' must be an absolute path");
  }
  // O_PATH opens nothing: no FIFO open blocks, no device reacts, no read permission used.
  const int path_fd = OpenNoSymlinks(path, O_PATH | O_CLOEXEC);
  if (path_fd < 0) return Refused(what, path);
  struct stat st {};
  const bool acceptable = ::fstat(path_fd, &st) == 0 && S_ISREG(st.st_mode) &&
                          st.st_uid == owner && (st.st_mode & 077) == 0;
  if (!acceptable) {
    ::close(path_fd);
    return Refused(what, path);
  }
  // Reopening the checked inode through its /proc/self/fd magic link reads exactly the
  // file checked above, whatever happens to the path meanwhile.
  const std::string proc = "/proc/self/fd/" + std::to_string(path_fd);
  const int fd = ::open(proc.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  const int open_errno = errno;
  ::close(path_fd);
  if (fd < 0) {
    return Status(ErrorCode::kInvalidValue,
                  "option '" + what + "': cannot open " + path + ": " + std::strerror(open_errno));
  }
  struct stat again {};
  if (::fstat(fd, &again) != 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
    ::close(fd);
    return Refused(what, path);
  }
  CallerFile file;
  file.path_ = path;
  file.what_ = what;
  file.fd_ = fd;
  file.dev_ = st.st_dev;
  file.ino_ = st.st_ino;
  return file;
}

CallerFile::CallerFile(CallerFile&& other) noexcept
    : path_(std::move(other.path_)),
      what_(std::move(other.what_)),
      fd_(std::exchange(other.fd_, -1)),
      dev_(other.dev_),
      ino_(other.ino_) {}

CallerFile& CallerFile::operator=(CallerFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    what_ = std::move(other.what_);
    fd_ = std::exchange(other.fd_, -1);
    dev_ = other.dev_;
    ino_ = other.ino_;
  }
  return *this;
}

CallerFile::~CallerFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status CallerFile::Remove() const {
  const size_t slash = path_.rfind('/');
  const std::string dir = slash == 0 ? "/" : path_.substr(0, slash);
  const std::string name = path_.substr(slash + 1);
  if (name.empty() || name == "." || name == "..") return Refused(what_, path_);
  const int dir_fd = OpenNoSymlinks(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    return Status(ErrorCode::kInvalidValue, "option '" + what_ + "': " + path_ +
                                                " not removed: its directory cannot be opened");
  }
  struct stat st {};
  Status result = Status::Ok();
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev_ ||
      st.st_ino != ino_) {
    result = Status(ErrorCode::kInvalidValue,
                    "option '" + what_ + "': " + path_ + " not removed: it no longer names the "
                                                         "file that was read");
  } else if (::unlinkat(dir_fd, name.c_str(), 0) != 0) {
    result = Status(ErrorCode::kInvalidValue, "option '" + what_ + "': " + path_ +
                                                  " not removed: " + std::strerror(errno));
  }
  ::close(dir_fd);
  return result;
}

}  // namespace svmkey::daemon
