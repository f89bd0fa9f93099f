#include "daemon/service/ca_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace svmkey::daemon {
namespace {

std::string BundlePath(const std::string& ca_dir, const Uuid& config) {
  return ca_dir + "/" + config.ToString() + ".pem";
}

Status Failure(const std::string& what) {
  return Status(ErrorCode::kUnexpectedException, what + ": " + std::strerror(errno));
}

}  // namespace

bool LooksLikePem(const uint8_t* data, size_t len) {
  const std::string_view text(reinterpret_cast<const char*>(data), len);
  const size_t begin = text.find("-----BEGIN ");
  return begin != std::string_view::npos && text.find("-----END ", begin) != std::string_view::npos;
}

Result<std::string> StoreCaBundle(const std::string& ca_dir, const Uuid& config,
                                  const uint8_t* data, size_t len, const std::string& what) {
  if (!LooksLikePem(data, len)) {
    return Status(ErrorCode::kInvalidValue, what + ": not a PEM bundle (no -----BEGIN block)");
  }
  if (::mkdir(ca_dir.c_str(), 0700) != 0 && errno != EEXIST) return Failure("mkdir " + ca_dir);
  const std::string path = BundlePath(ca_dir, config);
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover of a crash; the daemon's own name
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Failure("create " + tmp);
  size_t put = 0;
  while (put < len) {
    const ssize_t n = ::write(fd, data + put, len - put);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    put += static_cast<size_t>(n);
  }
  if (put != len || ::fsync(fd) != 0) {
    Status s = Failure("write " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Failure("rename " + tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  const int dir = ::open(ca_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return path;
}

void RemoveCaBundle(const std::string& ca_dir, const Uuid& config) {
  ::unlink(BundlePath(ca_dir, config).c_str());
}

}  // namespace svmkey::daemon
