// OptionReader: strict parsing of the a{sv} option maps of the bus API.
//
// Every key must be consumed: Finish() refuses leftovers with 262179 (unexpected
// argument, naming the key), a value of the wrong D-Bus type is 2 (invalid argument,
// naming key and types), a value out of range is 262185 (invalid value, naming the
// key). Strings are bounded (default 4 KiB) so a megabyte string costs nothing further.
// Integers accept any D-Bus integer type whose value fits, since busctl users type
// `u`, `i` or `t` interchangeably.
//
// Files arrive as descriptors (h) the caller opened with its own rights, or as bytes (ay);
// a path is refused, since the daemon would open it with its own (root's) rights
// (docs/ARCHITECTURE.md §9). A descriptor is only dup'ed here; it is read later, bounded,
// on a reader thread (daemon/service/caller_input.h). Secrets (application credential
// secret, proxy password) never travel in bus messages and land only in a SecureBuffer.
//
// Methods throw sdbus::Error (the bus boundary); use from a bus handler only.
#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/service/caller_input.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

using VariantMap = std::map<std::string, sdbus::Variant>;

inline constexpr size_t kMaxStringBytes = 4096;

class OptionReader {
 public:
  explicit OptionReader(const VariantMap& map) : map_(map) {}

  std::optional<std::string> String(const std::string& key, size_t max_len = kMaxStringBytes);
  std::optional<bool> Bool(const std::string& key);
  std::optional<uint64_t> Unsigned(const std::string& key, uint64_t min, uint64_t max);
  // A secret's descriptor `<base>_fd` (h), at most kMaxSecretBytes. A plain `<base>`
  // string (secrets must not travel in bus messages) and a path `<base>_file` (the
  // daemon opens no file on a caller's word) are refused with 262185.
  std::optional<CallerFd> SecretFd(const std::string& base);
  // A descriptor `key` (h) of at most `max_bytes`, dup'ed for a later bounded read.
  std::optional<CallerFd> Fd(const std::string& key, size_t max_bytes);
  // A byte array `key` (ay) of at most `max_bytes` (262185 beyond).
  std::optional<std::vector<uint8_t>> Bytes(const std::string& key, size_t max_bytes);
  // Refuses the path option `key` (262185) if given, pointing to `instead`.
  void RefusePath(const std::string& key, const std::string& instead);
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
