#include "daemon/bus/options.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "daemon/bus/bus_error.h"
#include "daemon/core/log.h"
#include "daemon/service/caller_file.h"

namespace svmkey::daemon {
namespace {

// Reads at most kMaxSecretBytes from fd into secure memory; strips one trailing newline.
SecureBuffer ReadSecret(int fd, const std::string& what) {
  auto buf = SecureBuffer::Allocate(kMaxSecretBytes + 1);
  if (!buf.ok()) ThrowStatus(buf.status());
  size_t len = 0;
  while (len < buf->size()) {
    const ssize_t n = ::read(fd, buf->data() + len, buf->size() - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      Throw(ErrorCode::kInvalidValue, what + ": cannot read: " + std::strerror(errno));
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  if (len > kMaxSecretBytes) Throw(ErrorCode::kInvalidValue, what + ": longer than 4096 bytes");
  if (len > 0 && buf->data()[len - 1] == '\n') --len;
  if (len > 0 && buf->data()[len - 1] == '\r') --len;
  if (len == 0) Throw(ErrorCode::kInvalidValue, what + ": empty");
  auto out = SecureBuffer::Allocate(len);
  if (!out.ok()) ThrowStatus(out.status());
  std::memcpy(out->data(), buf->data(), len);
  buf->Wipe();
  return std::move(out).value();
}

// A secret from the file at `path`, which the caller must own (caller_file.h); `what`
// names the option in messages.
SecureBuffer ReadSecretFile(const std::string& path, const std::string& what, uid_t caller_uid) {
  if (path.size() > kMaxStringBytes) {
    Throw(ErrorCode::kInvalidValue, "option '" + what + "' must be an absolute path");
  }
  auto file = CallerFile::Open(path, caller_uid, what);
  if (!file.ok()) ThrowStatus(file.status());
  return ReadSecret(file->fd(), what);
}

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

std::optional<SecureBuffer> OptionReader::Secret(const std::string& base, uid_t caller_uid) {
  if (Take(base) != nullptr) {
    Throw(ErrorCode::kInvalidValue, "option '" + base + "' is refused: secrets never travel in "
                                   "bus messages; pass '" + base + "_fd' (h) or '" + base +
                                   "_file' (s)");
  }
  const sdbus::Variant* fd_v = Take(base + "_fd");
  const sdbus::Variant* file_v = Take(base + "_file");
  if (fd_v != nullptr && file_v != nullptr) {
    Throw(ErrorCode::kInvalidValue, "give only one of '" + base + "_fd' and '" + base + "_file'");
  }
  if (fd_v != nullptr) {
    if (TypeName(*fd_v) != "h") {
      Throw(ErrorCode::kInvalidArgument, "option '" + base + "_fd' must be of type h");
    }
    const sdbus::UnixFd fd = fd_v->get<sdbus::UnixFd>();
    return ReadSecret(fd.get(), base + "_fd");
  }
  if (file_v != nullptr) {
    if (TypeName(*file_v) != "s") {
      Throw(ErrorCode::kInvalidArgument, "option '" + base + "_file' must be of type s");
    }
    return ReadSecretFile(file_v->get<std::string>(), base + "_file", caller_uid);
  }
  return std::nullopt;
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
