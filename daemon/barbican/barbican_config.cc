#include "daemon/barbican/barbican_config.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace svmkey::barbican {
namespace {

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;

struct CurlFree {
  void operator()(char* p) const { curl_free(p); }
};
using CurlString = std::unique_ptr<char, CurlFree>;

// Reads one part of a parsed URL; empty when the part is absent.
std::string Part(CURLU* u, CURLUPart part) {
  char* raw = nullptr;
  if (curl_url_get(u, part, &raw, 0) != CURLUE_OK || raw == nullptr) return "";
  CurlString owned(raw);
  return std::string(raw);
}

// Parses an absolute https URL with a host and nothing that could smuggle credentials
// (user info) or change the request (query, fragment). The path is returned without
// trailing '/'. Uses libcurl's own parser so that what we validate is what curl fetches.
Result<CurlUrl> ParseHttpsUrl(std::string_view text, ErrorCode code, std::string_view field) {
  auto fail = [&](std::string why) { return Status(code, std::string(field) + ": " + why); };
  if (text.empty()) return fail("missing");
  if (text.find_first_of(" \t\r\n") != std::string_view::npos) return fail("contains white space");
  // libcurl reads "https:///x" as host "x"; a URL without an authority is a typo here.
  if (size_t sep = text.find("://");
      sep != std::string_view::npos && text.substr(sep + 3).starts_with("/")) {
    return fail("has no host");
  }
  CurlUrl u(curl_url());
  if (!u) return Status(ErrorCode::kResourceLimit, "curl_url() failed");
  std::string copy(text);
  if (curl_url_set(u.get(), CURLUPART_URL, copy.c_str(), 0) != CURLUE_OK) {
    return fail("not an absolute URL");
  }
  if (Part(u.get(), CURLUPART_SCHEME) != "https") return fail("must be an https URL");
  if (Part(u.get(), CURLUPART_HOST).empty()) return fail("has no host");
  if (!Part(u.get(), CURLUPART_USER).empty() || !Part(u.get(), CURLUPART_PASSWORD).empty()) {
    return fail("must not carry user info");
  }
  if (!Part(u.get(), CURLUPART_QUERY).empty()) return fail("must not have a query");
  if (!Part(u.get(), CURLUPART_FRAGMENT).empty()) return fail("must not have a fragment");
  std::string path = Part(u.get(), CURLUPART_PATH);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (curl_url_set(u.get(), CURLUPART_PATH, path.empty() ? "/" : path.c_str(), 0) != CURLUE_OK) {
    return fail("bad path");
  }
  return u;
}

std::string Whole(CURLU* u) { return Part(u, CURLUPART_URL); }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Result<SecureBuffer> SecretFromString(std::string_view text) {
  auto buf = SecureBuffer::Allocate(text.size());
  if (!buf.ok()) return buf.status();
  if (!text.empty()) std::memcpy(buf->data(), text.data(), text.size());
  return std::move(buf).value();
}

Result<std::string> KeystoneTokenUrl(std::string_view keystone_url) {
  auto u = ParseHttpsUrl(keystone_url, ErrorCode::kInvalidKeystoneUrl, "keystone_url");
  if (!u.ok()) return u.status();
  std::string path = Part(u->get(), CURLUPART_PATH);
  if (path == "/") path.clear();
  // Only the forms Keystone v3 actually serves; anything else (say /v2.0) would send the
  // application credential to an endpoint that cannot accept it.
  if (EndsWith(path, "/v3/auth/tokens")) {
    // already the token endpoint
  } else if (EndsWith(path, "/v3")) {
    path += "/auth/tokens";
  } else if (path.empty()) {
    path = "/v3/auth/tokens";
  } else {
    return Status(ErrorCode::kInvalidKeystoneUrl,
                  "keystone_url: path must be empty, end in /v3 or in /v3/auth/tokens");
  }
  if (curl_url_set(u->get(), CURLUPART_PATH, path.c_str(), 0) != CURLUE_OK) {
    return Status(ErrorCode::kInvalidKeystoneUrl, "keystone_url: bad path");
  }
  return Whole(u->get());
}

Result<std::string> SecretUrl(std::string_view key_id) {
  auto u = ParseHttpsUrl(key_id, ErrorCode::kInvalidKeyId, "key_id");
  if (!u.ok()) return u.status();
  std::string path = Part(u->get(), CURLUPART_PATH);
  size_t at = path.rfind("/secrets/");
  if (at == std::string::npos || at + 9 >= path.size() ||
      path.find('/', at + 9) != std::string::npos) {
    return Status(ErrorCode::kInvalidKeyId, "key_id: path must end in /secrets/<id>");
  }
  return Whole(u->get());
}

std::string UrlOrigin(std::string_view url) {
  CurlUrl u(curl_url());
  std::string copy(url);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, copy.c_str(), 0) != CURLUE_OK) return "?";
  std::string port = Part(u.get(), CURLUPART_PORT);
  std::string out = Part(u.get(), CURLUPART_SCHEME) + "://" + Part(u.get(), CURLUPART_HOST);
  if (!port.empty()) out += ":" + port;
  return out;
}

Status ValidateConfig(const BarbicanConfig& c) {
  if (auto k = KeystoneTokenUrl(c.keystone_url); !k.ok()) return k.status();
  if (auto s = SecretUrl(c.key_id); !s.ok()) return s.status();
  if (c.application_cred_id.empty()) {
    return Status(ErrorCode::kEmptyCredentialId, "application_cred_id is empty");
  }
  // Keystone ids are hex; refusing control characters and quotes keeps the id safe to
  // put into messages and JSON without surprises.
  if (!std::all_of(c.application_cred_id.begin(), c.application_cred_id.end(),
                   [](unsigned char ch) { return ch > 0x20 && ch < 0x7f && ch != '"'; })) {
    return Status(ErrorCode::kEmptyCredentialId,
                  "application_cred_id has white space, quotes or control characters");
  }
  if (c.application_cred_secret.empty()) {
    return Status(ErrorCode::kInvalidCredentialSecret, "application_cred_secret is empty");
  }
  if (c.timeout_seconds < 1 || c.timeout_seconds > 600) {
    return Status(ErrorCode::kInvalidValue,
                  "timeout must be 1..600 seconds, got " + std::to_string(c.timeout_seconds));
  }
  if (c.proxy_host.empty()) {
    if (!c.proxy_username.empty() || !c.proxy_password.empty() || c.proxy_port != 0) {
      return Status(ErrorCode::kInvalidValue,
                    "proxy_port, proxy_username or proxy_password set without proxy_host");
    }
  } else {
    if (c.proxy_host.find("://") != std::string::npos ||
        c.proxy_host.find_first_of(" \t\r\n/@") != std::string::npos) {
      return Status(ErrorCode::kInvalidValue,
                    "proxy_host must be a bare host name or IP address (the type comes from "
                    "proxy_type)");
    }
    if (c.proxy_port < 1 || c.proxy_port > 65535) {
      return Status(ErrorCode::kInvalidValue, "proxy_port must be 1..65535 when proxy_host is set");
    }
  }
  for (const std::string& r : c.resolve) {
    // host:port:address, the CURLOPT_RESOLVE syntax; a bad entry would be ignored by
    // curl silently, so refuse it here.
    size_t first = r.find(':');
    size_t second = first == std::string::npos ? first : r.find(':', first + 1);
    if (first == 0 || second == std::string::npos || second == first + 1 ||
        second + 1 >= r.size() || r.front() == '-' || r.front() == '+') {
      return Status(ErrorCode::kInvalidValue, "resolve entry must be host:port:address");
    }
  }
  return Status::Ok();
}

}  // namespace svmkey::barbican
