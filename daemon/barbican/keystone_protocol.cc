#include "daemon/barbican/keystone_protocol.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

namespace svmkey::barbican {
namespace {

// Stands in for the secret in the skeleton; ValidateConfig keeps '"' out of the id, so
// the quoted placeholder cannot be produced by the id.
constexpr std::string_view kPlaceholder = "\"@@svmkey-secret@@\"";

// Bytes the secret takes once escaped as the inside of a JSON string (RFC 8259 §7).
size_t EscapedSize(const uint8_t* p, size_t n) {
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] == '"' || p[i] == '\\') {
      out += 2;
    } else if (p[i] < 0x20) {
      out += 6;  // \u00XX
    } else {
      out += 1;
    }
  }
  return out;
}

uint8_t* Escape(const uint8_t* p, size_t n, uint8_t* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    uint8_t ch = p[i];
    if (ch == '"' || ch == '\\') {
      *out++ = '\\';
      *out++ = ch;
    } else if (ch < 0x20) {
      *out++ = '\\';
      *out++ = 'u';
      *out++ = '0';
      *out++ = '0';
      *out++ = static_cast<uint8_t>(kHex[ch >> 4]);
      *out++ = static_cast<uint8_t>(kHex[ch & 0xf]);
    } else {
      *out++ = ch;
    }
  }
  return out;
}

std::string StatusText(long http_status) { return "HTTP " + std::to_string(http_status); }

}  // namespace

Result<SecureBuffer> BuildAppCredAuthBody(std::string_view app_cred_id,
                                          const SecureBuffer& app_cred_secret) {
  nlohmann::json skeleton = {
      {"auth",
       {{"identity",
         {{"methods", {"application_credential"}},
          {"application_credential",
           {{"id", std::string(app_cred_id)},
            {"secret", std::string(kPlaceholder.substr(1, kPlaceholder.size() - 2))}}}}}}}};
  const std::string text = skeleton.dump();
  const size_t at = text.find(kPlaceholder);
  if (at == std::string::npos || text.find(kPlaceholder, at + 1) != std::string::npos) {
    return Status(ErrorCode::kInvalidValue, "application_cred_id cannot be put into a request");
  }
  const size_t secret_size = EscapedSize(app_cred_secret.data(), app_cred_secret.size());
  const size_t total = text.size() - kPlaceholder.size() + 2 + secret_size;
  auto body = SecureBuffer::Allocate(total);
  if (!body.ok()) return body.status();
  uint8_t* out = body->data();
  std::memcpy(out, text.data(), at + 1);  // up to and including the opening quote
  out += at + 1;
  out = Escape(app_cred_secret.data(), app_cred_secret.size(), out);
  const size_t tail = at + kPlaceholder.size() - 1;  // from the closing quote on
  std::memcpy(out, text.data() + tail, text.size() - tail);
  return std::move(body).value();
}

std::optional<std::chrono::system_clock::time_point> ParseKeystoneTime(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+00:00)
  if (text.size() < 20) return std::nullopt;
  std::string s(text);
  int year, mon, day, hour, min, sec, used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec,
                  &used) != 6 ||
      used != 19) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    size_t digits = 1;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 1) return std::nullopt;
    rest.remove_prefix(digits);  // sub-second precision does not matter for a 60 s margin
  }
  if (rest != "Z" && rest != "+00:00") return std::nullopt;
  // system_clock counts nanoseconds in 64 bits (years 1678..2261): a year outside what a
  // token can carry would overflow the conversion, so it is refused (found by fuzzing).
  if (year < 1970 || year > 2200 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
      min > 59 || sec > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::chrono::steady_clock::time_point TokenReuseDeadline(
    std::chrono::system_clock::time_point expires_at, std::chrono::system_clock::time_point now,
    std::chrono::steady_clock::time_point steady_now, std::chrono::seconds margin) {
  // Measured on the steady clock from here on, so a wall-clock jump cannot make a stale
  // token look fresh.
  const auto left = expires_at - now;
  if (left <= margin) return steady_now;
  return steady_now +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(left - margin);
}

Status MapKeystoneStatus(long http_status, std::string_view where) {
  const std::string what =
      "Keystone " + std::string(where) + " answered " + StatusText(http_status);
  switch (http_status) {
    case 400:
    case 401:
    case 403:
    case 404:
      return Status(ErrorCode::kKeyManagerBlocked,
                    what + ": the application credential was refused or is unknown");
    default:
      return Status(ErrorCode::kKeyValueStoreResponseUnparsable, what + " instead of 201");
  }
}

Status MapBarbicanStatus(long http_status, std::string_view where) {
  const std::string what =
      "Barbican " + std::string(where) + " answered " + StatusText(http_status);
  switch (http_status) {
    case 401:
      return Status(ErrorCode::kKeyManagerBlocked,
                    what + " with a freshly issued token: the credential may not read the key");
    case 403:
      return Status(ErrorCode::kKeyManagerBlocked,
                    what + ": the credential lacks privileges on the key");
    case 404:
      return Status(ErrorCode::kKeyIdNotFound, what + ": the secret does not exist");
    default:
      return Status(ErrorCode::kKeyValueStoreResponseUnparsable, what + " instead of 200");
  }
}

namespace {

Status Unparsable(const std::string& what) {
  return Status(ErrorCode::kKeyValueStoreResponseUnparsable, what);
}

// At most 32 bytes of a server-supplied string, printable ASCII only (it goes into
// messages that travel on the bus, which must be valid UTF-8).
std::string Shown(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < 32; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  return out;
}

}  // namespace

Result<std::chrono::system_clock::time_point> ParseTokenResponse(std::string_view body,
                                                                 std::string_view where) {
  const std::string w(where);
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Unparsable("Keystone " + w + " answered HTTP 201 with a body that is not a JSON object");
  }
  auto t = j.find("token");
  if (t == j.end() || !t->is_object()) {
    return Unparsable("Keystone " + w + " answered HTTP 201 without a token object");
  }
  auto e = t->find("expires_at");
  if (e == t->end() || !e->is_string()) {
    return Unparsable("Keystone " + w + " answered HTTP 201 without token.expires_at");
  }
  auto expires = ParseKeystoneTime(e->get_ref<const std::string&>());
  if (!expires) {
    return Unparsable("Keystone " + w + " answered HTTP 201 with an unreadable token.expires_at");
  }
  return *expires;
}

Status CheckSecretMetadata(std::string_view body, std::string_view where) {
  const std::string w(where);
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  auto st = j.is_object() ? j.find("status") : j.end();
  if (j.is_discarded() || !j.is_object() || st == j.end() || !st->is_string()) {
    return Unparsable("Barbican " + w + " answered HTTP 200 without secret metadata");
  }
  if (st->get_ref<const std::string&>() != "ACTIVE") {
    return Status(ErrorCode::kKeyManagerBlocked, "Barbican secret " + w + " is in state " +
                                                     Shown(st->get_ref<const std::string&>()) +
                                                     ", not ACTIVE");
  }
  return Status::Ok();
}

}  // namespace svmkey::barbican
