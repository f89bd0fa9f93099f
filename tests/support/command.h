// Shell commands for tests: run one with a timeout and capture what it prints.
#pragma once

#include <chrono>
#include <string>

namespace svmkey::testing {

struct CommandResult {
  int status = -1;  // exit status; 128+N when killed by signal N; -1 when it could not run
  std::string out;
  std::string err;
  // stdout then stderr, for checks that do not care which stream a line went to.
  std::string output() const { return out + err; }
};

// Runs `/bin/sh -c command` in its own process group, stdin from /dev/null, with stdout
// and stderr captured separately. A command still running after `timeout` is killed
// (SIGKILL to its process group) and a note is appended to `err`.
CommandResult Sh(const std::string& command,
                 std::chrono::seconds timeout = std::chrono::seconds(120));

// Single-quotes `s` for /bin/sh.
std::string Quote(const std::string& s);

// A status from waitpid() as CommandResult::status reports it.
int DecodeWaitStatus(int wait_status);

// The path of a built program that the meson test passes in environment variable
// `env_name`; "" when it is not set.
std::string ToolPath(const char* env_name);

}  // namespace svmkey::testing
