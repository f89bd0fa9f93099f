// Who may call the mutating and secret-touching methods: root, or a member of the
// operator group "svmkey" (docs/ARCHITECTURE.md §9). The bus policy lets anyone call;
// the decision is made here, per call, from the bus's credentials of the caller.
#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <sys/types.h>

namespace svmkey::daemon {

struct Caller {
  uid_t uid = 0;
};

// The caller of the message `object` is processing now; throws PermissionDenied when it
// is neither root nor in group `operator_gid` (-1: root only).
Caller Authorize(sdbus::IObject& object, gid_t operator_gid);

}  // namespace svmkey::daemon
