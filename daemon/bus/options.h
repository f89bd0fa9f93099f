// OptionReader: strict parsing of the a{sv} option maps of the bus API.
//
// Every key must be consumed: Finish() refuses leftovers with 262179 (unexpected
// argument, naming the key), a value of the wrong D-Bus type is 2 (invalid argument,
// naming key and types), a value out of range is 262185 (invalid value, naming the
// key). Strings are bounded (default 4 KiB) so a megabyte string costs nothing further.
// Integers accept any D-Bus integer type whose value fits, since busctl users type
// `u`, `i` or `t` interchangeably.
//
// Secrets (application credential secret, proxy password) never travel in bus messages:
// they arrive as a file descriptor (h) or a path to a private file of the caller's, and land straight in
// a SecureBuffer.
//
// Methods throw sdbus::Error (the bus boundary); use from a bus handler only.
#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "engine/secure_memory.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

using VariantMap = std::map<std::string, sdbus::Variant>;

inline constexpr size_t kMaxStringBytes = 4096;
inline constexpr size_t kMaxSecretBytes = 4096;

class OptionReader {
 public:
  explicit OptionReader(const VariantMap& map) : map_(map) {}

  std::optional<std::string> String(const std::string& key, size_t max_len = kMaxStringBytes);
  std::optional<bool> Bool(const std::string& key);
  std::optional<uint64_t> Unsigned(const std::string& key, uint64_t min, uint64_t max);
  // A secret from `<base>_fd` (h) or `<base>_file` (s: a regular file owned by
  // `caller_uid`, mode without group/other bits, no symlinks; daemon/service/caller_file.h).
  // A plain `<base>` string is refused with 262185: secrets must not travel in bus
  // messages. At most one of the forms may be given.
  std::optional<SecureBuffer> Secret(const std::string& base, uid_t caller_uid);
  // Refuses every key not consumed so far (262179).
  void Finish();

 private:
  const sdbus::Variant* Take(const std::string& key);
  const VariantMap& map_;
  std::set<std::string> used_;
};

// Canonical-UUID argument check (262185 naming `what`).
Uuid RequireUuid(const std::string& text, const char* what);
// A bounded, printable name (262185 naming `what`): 1..255 bytes of [A-Za-z0-9_.:-].
std::string RequireName(const std::string& text, const char* what);

}  // namespace svmkey::daemon
