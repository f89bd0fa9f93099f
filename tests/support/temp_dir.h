// Scratch directories for tests: one directory per TempDir, removed with everything in
// it when the TempDir goes out of scope.
#pragma once

#include <sys/types.h>

#include <string>

namespace svmkey::testing {

// Where scratch directories go: $SVMKEY_TEST_DIR, else /dev/shm when `prefer_memory`
// and it is writable, else $TMPDIR, else /tmp. The crash tests prefer memory: their
// fault injector simulates the disk, so a real flush adds only time.
std::string TempBase(bool prefer_memory = false);

struct TempDirOptions {
  std::string prefix = "svmkey-test";
  std::string base;   // empty: TempBase()
  mode_t mode = 0700;  // e.g. 0755 so that other users can reach sockets in it
};

class TempDir {
 public:
  TempDir() : TempDir(TempDirOptions{}) {}
  explicit TempDir(const TempDirOptions& options);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // False when the directory could not be created (path() is then empty).
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace svmkey::testing
