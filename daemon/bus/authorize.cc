#include "daemon/bus/authorize.h"

#include <string>

#include "daemon/bus/bus_error.h"
#include "daemon/core/log.h"

namespace svmkey::daemon {
namespace {

// sd-bus fills the primary group from the bus's credentials of the connection
// (augmented from /proc/<pid>/status); a caller whose credentials cannot be had is not
// a member by this test.
bool PrimaryGroupIs(const sdbus::Message& msg, gid_t gid) {
  try {
    return msg.getCredsGid() == gid || msg.getCredsEgid() == gid;
  } catch (const sdbus::Error&) {
    return false;
  }
}

}  // namespace

Caller Authorize(sdbus::IObject& object, gid_t operator_gid) {
  const sdbus::Message* msg = object.getCurrentlyProcessedMessage();
  Caller caller;
  // Ask the bus (GetConnectionCredentials), not /proc: the euid and groups of the
  // connection as the bus saw them when it connected.
  caller.uid = msg->getCredsEuid();
  if (caller.uid == 0) return caller;
  if (operator_gid != static_cast<gid_t>(-1)) {
    // The bus policy's group= matches the primary group as well as the supplementary
    // ones, so a process whose primary group is svmkey is a member here too.
    if (PrimaryGroupIs(*msg, operator_gid)) return caller;
    for (gid_t g : msg->getCredsSupplementaryGids()) {
      if (g == operator_gid) return caller;
    }
  }
  LogNotice("refused a call from uid " + std::to_string(caller.uid) +
            ": not root and not in group svmkey");
  Throw(ErrorCode::kPermissionDenied,
        "caller uid " + std::to_string(caller.uid) + " is neither root nor in group svmkey");
}

}  // namespace svmkey::daemon
