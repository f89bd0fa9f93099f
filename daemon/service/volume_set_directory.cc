#include "daemon/service/volume_set_directory.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "engine/file_io.h"

namespace svmkey::daemon {
namespace {

constexpr char kRootsHint[] =
    "directory must be an absolute path beneath the volume root or a configured "
    "--volume-set-root";
// One message for every failure below a root: a member learns nothing about which
// component exists or what it is.
constexpr char kOpenHint[] =
    "directory: no volume set can be opened there (it must be a directory reached without "
    "symlinks, holding a regular file volset.manifest)";

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// openat2 below `dirfd` refusing every symlink and any escape; retried on EAGAIN (a
// concurrent rename elsewhere on the system makes RESOLVE_BENEATH ask for a retry).
int OpenBeneath(int dirfd, const std::string& path, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    const int fd = OpenResolved(dirfd, path.c_str(), how);  // engine/file_io.h: ENOSYS fallback
    if (fd >= 0) return fd;
    errno = -fd;
    if (fd != -EAGAIN || attempt == 8) return -1;
  }
}

Status OpenFailure() {
  // Out of descriptors or memory is the daemon's problem, not the caller's directory.
  if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
    return Status(ErrorCode::kResourceLimit, "cannot open a volume set now: out of descriptors");
  }
  return Status(ErrorCode::kInvalidValue, kOpenHint);
}

}  // namespace

Result<VolumeSetDirectory> LocateVolumeSetDirectory(const std::string& directory,
                                                    const std::vector<std::string>& roots) {
  namespace fs = std::filesystem;
  if (directory.empty() || directory.front() != '/') {
    return Status(ErrorCode::kInvalidValue, kRootsHint);
  }
  const fs::path dir = fs::path(directory).lexically_normal();
  for (const std::string& r : roots) {
    if (r.empty() || r.front() != '/') continue;
    fs::path root = fs::path(r).lexically_normal();
    if (!root.has_filename()) root = root.parent_path();  // "/a/b/" → "/a/b"
    const fs::path rel = dir.lexically_relative(root);
    if (rel.empty()) continue;
    const auto first = rel.begin();
    if (*first == "..") continue;
    VolumeSetDirectory out;
    out.root = root.string();
    out.relative = rel.string();
    out.path = dir.string();
    if (out.path.size() > 1 && out.path.back() == '/') out.path.pop_back();
    if (out.relative.size() > 1 && out.relative.back() == '/') out.relative.pop_back();
    return out;
  }
  return Status(ErrorCode::kInvalidValue, kRootsHint);
}

Result<std::unique_ptr<volset::ManifestVolumeSource>> OpenVolumeSetManifest(
    const VolumeSetDirectory& directory) {
  Fd root(::open(directory.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) return OpenFailure();
  Fd set(OpenBeneath(root.get(), directory.relative, O_PATH | O_DIRECTORY));
  if (set.get() < 0) return OpenFailure();
  Fd manifest(OpenBeneath(set.get(), std::string(volset::kManifestFileName),
                          O_RDONLY | O_NONBLOCK));
  if (manifest.get() < 0) return OpenFailure();
  struct stat st {};
  if (::fstat(manifest.get(), &st) != 0) return OpenFailure();
  if (!S_ISREG(st.st_mode)) return Status(ErrorCode::kInvalidValue, kOpenHint);
  return volset::ManifestVolumeSource::FromFd(manifest.release(), directory.path);
}

}  // namespace svmkey::daemon
