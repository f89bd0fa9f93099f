// The bus side of the error table: a Status becomes org.svmkey.Error.<Name> with the
// message "<code>: <text> (<context>)", so busctl shows the number.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include "engine/status.h"

namespace svmkey::daemon {

inline sdbus::Error ToBusError(const Status& status) {
  return sdbus::Error(status.DbusName(), status.ToString());
}

[[noreturn]] inline void ThrowStatus(const Status& status) { throw ToBusError(status); }

// Parses "<code>: ..." from a bus error back into a Status (clients use this).
inline Status FromBusError(const sdbus::Error& error) {
  const ErrorInfo* info = FindErrorByName(error.getName());
  if (info == nullptr) return Status(ErrorCode::kUnexpectedException, error.getMessage());
  return Status(info->code, error.getMessage());
}

}  // namespace svmkey::daemon
