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

}  // namespace svmkey::daemon
