// The bus side of the error table (engine/status.h): below daemon/bus/ every failure is
// a Status or a Result; here, and only here, a Status becomes org.svmkey.Error.<Name>
// with the message "<code>: <text> (<context>)", so busctl shows the number
// (docs/ARCHITECTURE.md §8). Synchronous handlers throw it (sdbus-c++ turns the
// exception into the error reply); deferred replies go through bus/reply.h.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <string>
#include <utility>

#include "engine/status.h"

namespace svmkey::daemon {

inline sdbus::Error ToBusError(const Status& status) {
  return sdbus::Error(status.DbusName(), status.ToString());
}

[[noreturn]] inline void ThrowStatus(const Status& status) { throw ToBusError(status); }

[[noreturn]] inline void Throw(ErrorCode code, std::string message) {
  ThrowStatus(Status(code, std::move(message)));
}

// The value of `r`, or its failure thrown as the bus error.
template <typename T>
T Check(Result<T> r) {
  if (!r.ok()) ThrowStatus(r.status());
  return std::move(r).value();
}

inline void Check(const Status& s) {
  if (!s.ok()) ThrowStatus(s);
}

}  // namespace svmkey::daemon
