// Uuid: 16 bytes, parsed from and printed as the canonical 8-4-4-4-12 lower-case form.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace svmkey {

struct Uuid {
  std::array<uint8_t, 16> bytes{};

  // Accepts exactly 36 characters, hex digits in either case, hyphens at 8/13/18/23.
  static std::optional<Uuid> Parse(std::string_view text);
  // A random version-4 UUID (libsodium randombytes).
  static Uuid Random();
  std::string ToString() const;
  bool IsNil() const;
  friend bool operator==(const Uuid&, const Uuid&) = default;
};

}  // namespace svmkey
