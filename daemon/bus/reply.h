// Deferred replies: a handler that hands its work to the control worker replies from
// the loop thread when the work is done. The work returns a Status (for a method without
// out arguments) or a Result<T> (one out argument); a failure becomes the bus error
// here (bus_error.h), and an exception escaping the work UnexpectedException.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "daemon/bus/bus_error.h"
#include "daemon/core/event_loop.h"
#include "daemon/service/caller_input.h"
#include "daemon/service/control_worker.h"

namespace svmkey::daemon {

template <typename... T>
void ReplyError(sdbus::Result<T...>& result, const Status& failure) {
  result.returnError(ToBusError(failure));
}

inline void Reply(sdbus::Result<>& result, const Status& status) {
  if (!status.ok()) return ReplyError(result, status);
  result.returnResults();
}

template <typename T>
void Reply(sdbus::Result<T>& result, const Result<T>& value) {
  if (!value.ok()) return ReplyError(result, value.status());
  result.returnResults(*value);
}

// Runs `work(rdb)` on the control worker, then replies to `result` on the loop thread.
template <typename... T, typename Work>
void Defer(ControlWorker& worker, EventLoop& loop, std::shared_ptr<sdbus::Result<T...>> result,
           Work work) {
  worker.Submit([&loop, result, work = std::move(work)](table::Rdb& rdb) mutable {
    using Out = decltype(work(rdb));
    std::optional<Out> out;
    try {
      out.emplace(work(rdb));
    } catch (const std::exception& e) {
      out.emplace(Status(ErrorCode::kUnexpectedException, e.what()));
    }
    loop.Post([result, out = std::move(*out)] { Reply(*result, out); });
  });
}

// Reads the caller's descriptors `fds` on a reader thread (caller_input.h), then runs
// `work(rdb, bytes)` on the control worker with what was read (one SecureBuffer per
// descriptor, in order) and replies on the loop thread. A failed read is the reply, and
// the work does not run. Neither the loop nor the worker ever waits on a descriptor.
template <typename... T, typename Work>
void DeferAfterRead(CallerInputReader& readers, ControlWorker& worker, EventLoop& loop,
                    std::shared_ptr<sdbus::Result<T...>> result, std::vector<CallerFd> fds,
                    Work work) {
  if (fds.empty()) {  // nothing to read: no reader thread
    Defer(worker, loop, result, [work](table::Rdb& rdb) mutable {
      CallerBytes none;
      return work(rdb, none);
    });
    return;
  }
  Status started = readers.Start(
      std::move(fds), [&worker, &loop, result, work](Result<CallerBytes> read) mutable {
        if (!read.ok()) {
          loop.Post([result, failure = read.status()] { ReplyError(*result, failure); });
          return;
        }
        auto bytes = std::make_shared<CallerBytes>(std::move(read).value());
        Defer(worker, loop, result,
              [work, bytes](table::Rdb& rdb) mutable { return work(rdb, *bytes); });
      });
  if (!started.ok()) ReplyError(*result, started);
}

}  // namespace svmkey::daemon
