#include "daemon/bus/reply_page.h"

namespace svmkey::daemon {
namespace {

// D-Bus alignment padding is at most 7 bytes before an 8-aligned item.
constexpr size_t kPad = 7;

size_t StringBytes(size_t len) { return 4 + len + 1; }

size_t ValueBytes(const sdbus::Variant& v) {
  const std::string type = v.peekValueType();
  if (type == "s") return StringBytes(v.get<std::string>().size());
  if (type == "o") return StringBytes(v.get<sdbus::ObjectPath>().size());
  if (type == "g") return 1 + v.get<sdbus::Signature>().size() + 1;
  if (type.size() == 1) return 8;  // every other basic type
  // The row maps hold basic types only; a container is charged a bounded string's
  // worth, the most a single option value may hold (options.h).
  return StringBytes(kMaxStringBytes);
}

}  // namespace

size_t MarshalledBytes(const VariantMap& row) {
  size_t bytes = 4 + kPad;  // the a{sv}'s length, then its 8-aligned entries
  for (const auto& [key, value] : row) {
    const std::string type = value.peekValueType();
    bytes += kPad + StringBytes(key.size()) + 1 + type.size() + 1 + kPad + ValueBytes(value);
  }
  return bytes;
}

bool ReplyPage::Add(VariantMap row) {
  if (rows_.size() >= limit_) return false;
  const size_t bytes = MarshalledBytes(row);
  if (!rows_.empty() && bytes_ + bytes > max_bytes_) return false;
  bytes_ += bytes;
  rows_.push_back(std::move(row));
  return true;
}

}  // namespace svmkey::daemon
