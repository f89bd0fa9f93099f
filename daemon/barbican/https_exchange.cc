#include "daemon/barbican/https_exchange.h"

#include <sodium.h>
#include <strings.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace svmkey::barbican {
namespace {

// Bodies we read as text are JSON documents of a few KiB (a token with its catalog,
// secret metadata, error objects). Anything far larger is not what the protocol promises.
constexpr size_t kMaxTextBody = 1 << 20;
// Names and values of headers we capture (a fernet token is ~200 bytes; a PKI-era token
// could be a few KiB).
constexpr size_t kMaxCapturedHeader = 16 << 10;

bool IsProtocolError(CURLcode rc) {
  switch (rc) {
    case CURLE_WEIRD_SERVER_REPLY:  // not HTTP at all (e.g. garbage on the TLS stream)
    // libcurl 7.88 reports a reply without an HTTP status line ("HTTP/0.9") this way. The
    // URL's scheme cannot be the cause: both URLs were validated as https.
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:  // a content encoding it cannot decode
    case CURLE_HTTP2:                 // framing layer errors
    case CURLE_HTTP2_STREAM:
    case CURLE_PARTIAL_FILE:  // shorter than Content-Length
      return true;
    default:
      return false;
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// A NUL-terminated copy of a secret, for the curl options that take C strings.
Result<SecureBuffer> CString(const SecureBuffer& secret) {
  auto out = SecureBuffer::Allocate(secret.size() + 1);
  if (!out.ok()) return out.status();
  if (!secret.empty()) std::memcpy(out->data(), secret.data(), secret.size());
  return std::move(out).value();
}

}  // namespace

Status GlobalCurlInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) {
    return Status(ErrorCode::kNoExternalKeyValueStore,
                  std::string("curl_global_init failed: ") + curl_easy_strerror(rc));
  }
  return Status::Ok();
}

HttpsExchange::HttpsExchange(const BarbicanConfig& config, std::string_view service)
    : config_(config), service_(service) {}

HttpsExchange::~HttpsExchange() {
  if (curl_ != nullptr) curl_easy_cleanup(curl_);
  // Our copies of token headers live in the slist: wipe them before they go back to the
  // heap.
  for (curl_slist* p = headers_; p != nullptr; p = p->next) {
    if (p->data != nullptr) sodium_memzero(p->data, std::strlen(p->data));
  }
  curl_slist_free_all(headers_);
  curl_slist_free_all(resolve_);
}

Status HttpsExchange::Init() {
  SVMKEY_RETURN_IF_ERROR(GlobalCurlInit());
  curl_ = curl_easy_init();
  if (curl_ == nullptr) return Status(ErrorCode::kResourceLimit, "curl_easy_init failed");
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption opt, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(curl_, opt, value);
  };
  set(CURLOPT_ERRORBUFFER, error_buffer_);
  set(CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  set(CURLOPT_PROTOCOLS_STR, "https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "https");
  set(CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is not part of either protocol
  set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  set(CURLOPT_USERAGENT, "svmkeyd/0.1");
  set(CURLOPT_SSL_VERIFYPEER, config_.verify ? 1L : 0L);
  set(CURLOPT_SSL_VERIFYHOST, config_.verify_host ? 2L : 0L);
  if (!config_.ca_file.empty()) set(CURLOPT_CAINFO, config_.ca_file.c_str());
  set(CURLOPT_CONNECTTIMEOUT, static_cast<long>(config_.timeout_seconds));
  set(CURLOPT_TIMEOUT, static_cast<long>(config_.timeout_seconds));
  set(CURLOPT_WRITEFUNCTION, &HttpsExchange::OnBody);
  set(CURLOPT_WRITEDATA, this);
  set(CURLOPT_HEADERFUNCTION, &HttpsExchange::OnHeader);
  set(CURLOPT_HEADERDATA, this);

  if (config_.proxy_host.empty()) {
    // "" disables proxies entirely, including http(s)_proxy / all_proxy from the
    // environment: no proxy configured means none used.
    set(CURLOPT_PROXY, "");
  } else {
    const bool https = config_.proxy_type == ProxyType::kHttps;
    std::string host = config_.proxy_host;
    if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
    const std::string proxy = std::string(https ? "https://" : "http://") + host + ":" +
                              std::to_string(config_.proxy_port);
    set(CURLOPT_PROXY, proxy.c_str());  // curl copies option strings
    set(CURLOPT_PROXYTYPE, static_cast<long>(https ? CURLPROXY_HTTPS : CURLPROXY_HTTP));
    set(CURLOPT_NOPROXY, "");  // and no_proxy from the environment does not apply either
    set(CURLOPT_PROXY_SSL_VERIFYPEER, config_.verify ? 1L : 0L);
    set(CURLOPT_PROXY_SSL_VERIFYHOST, config_.verify_host ? 2L : 0L);
    if (!config_.ca_file.empty()) set(CURLOPT_PROXY_CAINFO, config_.ca_file.c_str());
    if (!config_.proxy_username.empty()) {
      set(CURLOPT_PROXYUSERNAME, config_.proxy_username.c_str());
    }
    if (!config_.proxy_password.empty()) {
      // curl keeps its own heap copy of this string for the handle's lifetime; ours is
      // wiped here when `pw` goes out of scope.
      auto pw = CString(config_.proxy_password);
      if (!pw.ok()) return pw.status();
      set(CURLOPT_PROXYPASSWORD, reinterpret_cast<const char*>(pw->data()));
    }
  }
  for (const std::string& entry : config_.resolve) {
    curl_slist* next = curl_slist_append(resolve_, entry.c_str());
    if (next == nullptr) return Status(ErrorCode::kResourceLimit, "curl_slist_append failed");
    resolve_ = next;
  }
  if (resolve_ != nullptr) set(CURLOPT_RESOLVE, resolve_);
  // No "Expect: 100-continue" round trip for our small POST bodies.
  SVMKEY_RETURN_IF_ERROR(AddHeader("Expect:"));
  if (rc != CURLE_OK) {
    return Status(ErrorCode::kNoExternalKeyValueStore,
                  std::string("libcurl refused an option: ") + curl_easy_strerror(rc));
  }
  return Status::Ok();
}

Status HttpsExchange::AddHeader(std::string_view header) {
  std::string h(header);
  curl_slist* next = curl_slist_append(headers_, h.c_str());
  if (next == nullptr) return Status(ErrorCode::kResourceLimit, "curl_slist_append failed");
  headers_ = next;
  return Status::Ok();
}

Status HttpsExchange::AddSecretHeader(std::string_view name, const SecureBuffer& value) {
  auto line = SecureBuffer::Allocate(name.size() + 2 + value.size() + 1);
  if (!line.ok()) return line.status();
  uint8_t* p = line->data();
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  *p++ = ':';
  *p++ = ' ';
  if (!value.empty()) std::memcpy(p, value.data(), value.size());
  // the terminating NUL is already there (Allocate zeroes)
  curl_slist* next = curl_slist_append(headers_, reinterpret_cast<const char*>(line->data()));
  if (next == nullptr) return Status(ErrorCode::kResourceLimit, "curl_slist_append failed");
  headers_ = next;
  return Status::Ok();
}

void HttpsExchange::SetPostBody(const SecureBuffer& body) {
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, reinterpret_cast<const char*>(body.data()));
}

size_t HttpsExchange::OnBody(char* data, size_t size, size_t nmemb, void* self_ptr) {
  auto* self = static_cast<HttpsExchange*>(self_ptr);
  const size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(self->curl_, CURLINFO_RESPONSE_CODE, &status);
  if (self->secure_sink_ != nullptr && status == 200) {
    SecureBuffer& sink = *self->secure_sink_;
    if (n > sink.size() - self->secure_written_) {
      self->sink_overflow_ = true;
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    std::memcpy(sink.data() + self->secure_written_, data, n);
    self->secure_written_ += n;
    return n;
  }
  if (n > kMaxTextBody - self->body_.size()) {
    self->body_overflow_ = true;
    return 0;
  }
  self->body_.append(data, n);
  return n;
}

size_t HttpsExchange::OnHeader(char* data, size_t size, size_t nmemb, void* self_ptr) {
  auto* self = static_cast<HttpsExchange*>(self_ptr);
  const size_t n = size * nmemb;
  if (self->capture_header_.empty()) return n;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    // A new response starts (a proxy's CONNECT reply, a 100 Continue): forget what an
    // earlier one said.
    self->captured_ = SecureBuffer();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string_view name = Trim(line.substr(0, colon));
  if (name.size() != self->capture_header_.size() ||
      strncasecmp(name.data(), self->capture_header_.data(), name.size()) != 0) {
    return n;
  }
  std::string_view value = Trim(line.substr(colon + 1));
  if (value.empty() || value.size() > kMaxCapturedHeader) return n;  // seen as absent
  auto buf = SecureBuffer::Allocate(value.size());
  if (!buf.ok()) return 0;  // aborts; reported as a transport failure
  std::memcpy(buf->data(), value.data(), value.size());
  self->captured_ = std::move(buf).value();
  return n;
}

std::string HttpsExchange::Describe(const std::string& url) const {
  std::string out = service_ + " at " + url;
  if (!config_.proxy_host.empty()) {
    out += std::string(" via ") + (config_.proxy_type == ProxyType::kHttps ? "https" : "http") +
           " proxy " + config_.proxy_host + ":" + std::to_string(config_.proxy_port);
  }
  return out;
}

Status HttpsExchange::Perform(const std::string& url) {
  if (curl_ == nullptr)
    return Status(ErrorCode::kNoExternalKeyValueStore, "exchange not initialized");
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  error_buffer_[0] = '\0';
  const CURLcode rc = curl_easy_perform(curl_);
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &http_status_);
  if (rc == CURLE_OK) return Status::Ok();

  if (sink_overflow_) {
    return Status(ErrorCode::kKeyValueStoreResponseUnparsable,
                  Describe(url) + ": HTTP 200 body is longer than " +
                      std::to_string(secure_sink_->size()) + " bytes");
  }
  if (body_overflow_) {
    return Status(
        ErrorCode::kKeyValueStoreResponseUnparsable,
        Describe(url) + ": reply body is longer than " + std::to_string(kMaxTextBody) + " bytes");
  }
  std::string cause = curl_easy_strerror(rc);
  cause += " (curl " + std::to_string(static_cast<int>(rc));
  if (error_buffer_[0] != '\0') {
    std::string_view detail = Trim(error_buffer_);
    cause += ": ";
    cause += detail;
  }
  cause += ")";
  if (IsProtocolError(rc)) {
    return Status(ErrorCode::kKeyValueStoreResponseUnparsable,
                  Describe(url) + ": reply is not valid HTTP: " + cause);
  }
  return Status(ErrorCode::kBarbicanUnreachable, "cannot reach " + Describe(url) + ": " + cause);
}

}  // namespace svmkey::barbican
