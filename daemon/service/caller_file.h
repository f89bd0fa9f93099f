// CallerFile: a file a bus caller names by path, opened by the daemon (which runs as
// root) only when the caller could have handed it over itself.
//
// The daemon's rights are not the caller's: a member of the operator group must not
// make svmkeyd read (and send elsewhere) or delete a file it does not own. So a path is
// accepted only when it names, without a symlink in any component, a regular file owned
// by the caller's uid (a root caller: owned by root) with no group or other permission
// bits. The file is first opened with O_PATH (which opens nothing, so a FIFO or device
// cannot block or react), checked through that descriptor, and only then reopened for
// reading through /proc/self/fd, so the file read is the file checked
// (docs/ARCHITECTURE.md §9).
//
// Every refusal is InvalidValue naming the option (`what`); no message carries file
// contents. Plain POSIX, no sdbus: any thread may call; an object is owned by one thread.
#pragma once

#include <sys/types.h>

#include <string>

#include "engine/status.h"

namespace svmkey::daemon {

class CallerFile {
 public:
  // Opens `path` for reading on behalf of the caller `owner` (see above). `what` names
  // the option in error messages.
  static Result<CallerFile> Open(const std::string& path, uid_t owner, const std::string& what);

  CallerFile(CallerFile&& other) noexcept;
  CallerFile& operator=(CallerFile&& other) noexcept;
  CallerFile(const CallerFile&) = delete;
  CallerFile& operator=(const CallerFile&) = delete;
  ~CallerFile();

  // A read-only descriptor of the checked file; owned by this object.
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Unlinks the file, but only if its path still names the file that was opened (same
  // device and inode), resolved again without symlinks; otherwise leaves the path alone
  // and fails. A name swapped between the check and the unlink can only be one the
  // caller may remove itself (protected_hardlinks, sticky directories).
  Status Remove() const;

 private:
  CallerFile() = default;
  std::string path_;
  std::string what_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace svmkey::daemon
