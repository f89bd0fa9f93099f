// Call bounds: every incoming method call is walked, and refused if too large, BEFORE
// any handler decodes it (docs/ARCHITECTURE.md §9, "Bounded calls").
//
// sdbus-c++ decodes an a{sv} argument into a std::map before the handler runs: an a{sv}
// of 10^6 entries (24 MiB on the wire, within the bus's 32 MiB message limit) cost over
// 1 GiB of heap, which glibc then kept. An sd-bus filter on the daemon's connection sees
// each method call first (sd-bus runs filters before matches and object vtables); it
// walks the body without copying it and refuses with 262185 (InvalidValue, naming the
// limit) a call with more than kMaxEntriesPerContainer entries in any array, map, struct
// or argument list, nested deeper than kMaxNesting, or with more than kMaxCallBytes of
// data. A byte array (ay, e.g. a CA bundle's ca_pem) counts by its bytes, not as entries. A refused call never reaches its handler, and the heap it cost is handed back to
// the system (malloc_trim) on the next turn of the loop.
//
// Threads: the loop thread (match callbacks run inside processPendingRequest).
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <cstddef>

#include "daemon/core/loop_tasks.h"
#include "daemon/service/caller_input.h"

namespace svmkey::daemon {

inline constexpr size_t kMaxEntriesPerContainer = 64;
// The largest argument a call may carry is a CA bundle (ca_pem, caller_input.h), plus
// room for the other options around it.
inline constexpr size_t kMaxCallBytes = kMaxCaBundleBytes + (size_t{64} << 10);
inline constexpr int kMaxNesting = 8;

// Installs the check on `connection` for every method call it receives; the returned
// slot removes it (before the connection goes). `loop` runs the malloc_trim after a
// refused call and must outlive the slot. Throws sdbus::Error.
[[nodiscard]] sdbus::Slot InstallCallBounds(sdbus::IConnection& connection, LoopTasks& loop);

}  // namespace svmkey::daemon
