#include "tests/support/temp_dir.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace svmkey::testing {

std::string TempBase(bool prefer_memory) {
  if (const char* d = std::getenv("SVMKEY_TEST_DIR"); d != nullptr && *d != '\0') return d;
  if (prefer_memory && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') return t;
  return "/tmp";
}

TempDir::TempDir(const TempDirOptions& options) {
  const std::string base = options.base.empty() ? TempBase() : options.base;
  const std::string tmpl = base + "/" + options.prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return;
  path_ = buf.data();
  if (options.mode != 0700) ::chmod(path_.c_str(), options.mode);
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  // Whatever a test left behind (read-only files included) must not stop the cleanup.
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace svmkey::testing
