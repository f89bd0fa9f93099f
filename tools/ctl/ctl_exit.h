// How a verb of svmkeyctl gives up: Run() prints "Error: <what()>" on stderr and exits
// with the status (1 the operation failed, 2 usage). Thrown, not std::exit()ed, so the
// proxy and the connection are closed on the way out.
#pragma once

#include <stdexcept>
#include <string>

namespace svmkey::ctl {

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

class CtlExit : public std::runtime_error {
 public:
  explicit CtlExit(const std::string& message, int status = kExitFailure)
      : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

}  // namespace svmkey::ctl
