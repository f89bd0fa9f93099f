#include "daemon/bus/call_bounds.h"

#include <malloc.h>
#include <systemd/sd-bus.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "engine/status.h"

namespace svmkey::daemon {
namespace {

// sdbus-c++ 1.2 has no filter that runs before its object vtables (its match callbacks
// cannot stop a message), but sd-bus has: sd_bus_add_filter. It keeps a Message's
// sd_bus_message in a protected member; a pointer to that member, named in a derived
// class, reads it without touching the object's layout.
struct MessageAccess : sdbus::Message {
  static sd_bus_message* Raw(const sdbus::Message& m) {
    return static_cast<sd_bus_message*>(m.*(&MessageAccess::msg_));
  }
};

// Why a call is refused; empty while it is within the bounds.
struct Verdict {
  size_t bytes = 0;
  std::string refused;
};

// Walks the values of the container the read position is in (or the body), counting
// entries and data bytes, without copying anything. Stops at the first bound passed
// (verdict->refused) or sd-bus error (negative errno).
int WalkContainer(sd_bus_message* m, int depth, Verdict* verdict) {
  if (depth > kMaxNesting) {
    verdict->refused = "nested deeper than " + std::to_string(kMaxNesting) + " containers";
    return 0;
  }
  size_t entries = 0;
  for (;;) {
    char type = 0;
    const char* contents = nullptr;
    int r = sd_bus_message_peek_type(m, &type, &contents);
    if (r <= 0) return r;  // 0: the end of this container
    if (++entries > kMaxEntriesPerContainer) {
      verdict->refused = "more than " + std::to_string(kMaxEntriesPerContainer) +
                         " entries in one array, map or argument list (the limit per container)";
      return 0;
    }
    size_t size = 8;
    if (type == SD_BUS_TYPE_ARRAY && contents != nullptr && std::strcmp(contents, "y") == 0) {
      const void* bytes = nullptr;
      size_t n = 0;
      r = sd_bus_message_read_array(m, SD_BUS_TYPE_BYTE, &bytes, &n);
      if (r < 0) return r;
      --entries;  // counted by its bytes below, not as entries
      verdict->bytes += n;
      if (verdict->bytes > kMaxCallBytes) {
        verdict->refused = "more than " + std::to_string(kMaxCallBytes) +
                           " bytes of arguments (the limit per call)";
        return 0;
      }
      continue;
    }
    switch (type) {
      case SD_BUS_TYPE_ARRAY:
      case SD_BUS_TYPE_DICT_ENTRY:
      case SD_BUS_TYPE_STRUCT:
      case SD_BUS_TYPE_VARIANT:
        r = sd_bus_message_enter_container(m, type, contents);
        if (r < 0) return r;
        r = WalkContainer(m, depth + 1, verdict);
        if (r < 0 || !verdict->refused.empty()) return r;
        r = sd_bus_message_exit_container(m);
        break;
      case SD_BUS_TYPE_STRING:
      case SD_BUS_TYPE_OBJECT_PATH:
      case SD_BUS_TYPE_SIGNATURE: {
        const char* s = nullptr;
        r = sd_bus_message_read_basic(m, type, &s);
        if (s != nullptr) size += std::strlen(s);
        break;
      }
      default: {
        const char basic[2] = {type, 0};
        r = sd_bus_message_skip(m, basic);
      }
    }
    if (r < 0) return r;
    verdict->bytes += size;
    if (verdict->bytes > kMaxCallBytes) {
      verdict->refused =
          "more than " + std::to_string(kMaxCallBytes) + " bytes of arguments (the limit per call)";
      return 0;
    }
  }
}

// Runs on the loop thread for every incoming message, before matches and objects.
int Filter(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
  if (sd_bus_message_is_method_call(m, nullptr, nullptr) <= 0) return 0;
  Verdict verdict;
  const int r = WalkContainer(m, 0, &verdict);
  sd_bus_message_rewind(m, 1);
  // A message sd-bus cannot walk is left to the handler, which refuses it the same way.
  if (r < 0 || verdict.refused.empty()) return 0;
  const Status refusal(ErrorCode::kInvalidValue, "call too large: " + verdict.refused);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_error_set(&error, refusal.DbusName().c_str(), refusal.ToString().c_str());
  sd_bus_reply_method_error(m, &error);
  sd_bus_error_free(&error);
  // The refused message is freed once processing returns; hand its heap back then.
  static_cast<LoopTasks*>(userdata)->Post([] { ::malloc_trim(0); });
  return 1;  // handled: no match, object or handler sees it
}

}  // namespace

sdbus::Slot InstallCallBounds(sdbus::IConnection& connection, LoopTasks& loop) {
  // Any message made on the connection names its sd_bus.
  auto probe = sdbus::createProxy(connection, "org.freedesktop.DBus", "/org/freedesktop/DBus");
  const sdbus::MethodCall call = probe->createMethodCall("org.freedesktop.DBus.Peer", "Ping");
  sd_bus* bus = sd_bus_message_get_bus(MessageAccess::Raw(call));
  sd_bus_slot* slot = nullptr;
  const int r = sd_bus_add_filter(bus, &slot, Filter, &loop);
  if (r < 0) {
    throw sdbus::Error("org.freedesktop.DBus.Error.Failed",
                       std::string("cannot install the call bounds: ") + std::strerror(-r));
  }
  return sdbus::Slot(slot, [](void* s) { sd_bus_slot_unref(static_cast<sd_bus_slot*>(s)); });
}

}  // namespace svmkey::daemon
