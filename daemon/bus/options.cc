#include "daemon/bus/options.h"

#include <cctype>

#include "daemon/bus/bus_error.h"
#include "daemon/core/log.h"

namespace svmkey::daemon {
namespace {

std::string TypeName(const sdbus::Variant& v) { return v.peekValueType(); }

}  // namespace

const sdbus::Variant* OptionReader::Take(const std::string& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  used_.insert(key);
  return &it->second;
}

std::optional<std::string> OptionReader::String(const std::string& key, size_t max_len) {
  const sdbus::Variant* v = Take(key);
  if (v == nullptr) return std::nullopt;
  if (TypeName(*v) != "s") {
    Throw(ErrorCode::kInvalidArgument, "option '" + key + "' must be of type s, not " + TypeName(*v));
  }
  std::string s = v->get<std::string>();
  if (s.size() > max_len) {
    Throw(ErrorCode::kInvalidValue,
         "option '" + key + "' is longer than " + std::to_string(max_len) + " bytes");
  }
  return s;
}

std::optional<bool> OptionReader::Bool(const std::string& key) {
  const sdbus::Variant* v = Take(key);
  if (v == nullptr) return std::nullopt;
  if (TypeName(*v) != "b") {
    Throw(ErrorCode::kInvalidArgument, "option '" + key + "' must be of type b, not " + TypeName(*v));
  }
  return v->get<bool>();
}

std::optional<uint64_t> OptionReader::Unsigned(const std::string& key, uint64_t min, uint64_t max) {
  const sdbus::Variant* v = Take(key);
  if (v == nullptr) return std::nullopt;
  const std::string t = TypeName(*v);
  bool negative = false;
  uint64_t value = 0;
  if (t == "y") value = v->get<uint8_t>();
  else if (t == "q") value = v->get<uint16_t>();
  else if (t == "u") value = v->get<uint32_t>();
  else if (t == "t") value = v->get<uint64_t>();
  else if (t == "n" || t == "i" || t == "x") {
    const int64_t s = t == "n" ? v->get<int16_t>() : t == "i" ? v->get<int32_t>() : v->get<int64_t>();
    negative = s < 0;
    value = static_cast<uint64_t>(s);
  } else {
    Throw(ErrorCode::kInvalidArgument, "option '" + key + "' must be an integer, not " + t);
  }
  if (negative || value < min || value > max) {
    Throw(ErrorCode::kInvalidValue, "option '" + key + "' must be in " + std::to_string(min) +
                                       ".." + std::to_string(max));
  }
  return value;
}

void OptionReader::RefusePath(const std::string& key, const std::string& instead) {
  if (Take(key) != nullptr) {
    Throw(ErrorCode::kInvalidValue, "option '" + key + "' is refused: svmkeyd opens no file "
                                    "named by a caller; pass " + instead +
                                    " (svmkeyctl does it for you)");
  }
}

std::optional<CallerFd> OptionReader::SecretFd(const std::string& base) {
  if (Take(base) != nullptr) {
    Throw(ErrorCode::kInvalidValue, "option '" + base + "' is refused: secrets never travel in "
                                    "bus messages; pass '" + base + "_fd' (h)");
  }
  RefusePath(base + "_file", "'" + base + "_fd' (h)");
  return Fd(base + "_fd", kMaxSecretBytes);
}

std::optional<CallerFd> OptionReader::Fd(const std::string& key, size_t max_bytes) {
  const sdbus::Variant* v = Take(key);
  if (v == nullptr) return std::nullopt;
  if (TypeName(*v) != "h") {
    Throw(ErrorCode::kInvalidArgument, "option '" + key + "' must be of type h, not " + TypeName(*v));
  }
  // The variant's UnixFd is a dup of the message's descriptor; release it to CallerFd.
  sdbus::UnixFd fd = v->get<sdbus::UnixFd>();
  return CallerFd(key, fd.release(), max_bytes);
}

std::optional<std::vector<uint8_t>> OptionReader::Bytes(const std::string& key, size_t max_bytes) {
  const sdbus::Variant* v = Take(key);
  if (v == nullptr) return std::nullopt;
  if (TypeName(*v) != "ay") {
    Throw(ErrorCode::kInvalidArgument, "option '" + key + "' must be of type ay, not " + TypeName(*v));
  }
  std::vector<uint8_t> bytes = v->get<std::vector<uint8_t>>();
  if (bytes.size() > max_bytes) {
    Throw(ErrorCode::kInvalidValue, key + ": longer than " + std::to_string(max_bytes) + " bytes");
  }
  return bytes;
}

void OptionReader::Finish() {
  for (const auto& [key, value] : map_) {
    if (!used_.count(key)) {
      const std::string shown = Printable(key, 64);
      Throw(ErrorCode::kUnexpectedArgument, "unknown option '" + shown + "'");
    }
  }
}

Uuid RequireUuid(const std::string& text, const char* what) {
  auto u = Uuid::Parse(text);
  if (!u || u->IsNil()) {
    const std::string shown = Printable(text, 64);
    Throw(ErrorCode::kInvalidValue, std::string(what) + " '" + shown + "' is not a valid UUID");
  }
  return *u;
}

std::string RequireName(const std::string& text, const char* what) {
  bool ok = !text.empty() && text.size() <= 255;
  for (char c : text) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':' ||
                c == '-');
  }
  if (!ok) {
    const std::string shown = Printable(text, 64);
    Throw(ErrorCode::kInvalidValue, std::string(what) + " '" + shown +
                                       "' must be 1-255 characters of A-Z a-z 0-9 _ . : -");
  }
  return text;
}

}  // namespace svmkey::daemon
