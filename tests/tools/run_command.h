// Runs a shell command for CLI tests; returns its exit status and combined output.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace svmkey::testing_support {

struct CommandResult {
  int exit_status = -1;  // -1 when it did not exit normally
  std::string output;    // stdout and stderr
};

inline CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  return result;
}

// The path of a built tool, from the environment the meson test sets.
inline std::string ToolPath(const char* env_name) {
  const char* path = std::getenv(env_name);
  return path ? path : "";
}

}  // namespace svmkey::testing_support
