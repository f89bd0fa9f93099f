// HttpsExchange: one HTTPS request/response over libcurl (OpenSSL backend), with a
// BarbicanConfig's TLS, proxy and timeout settings applied exactly.
//
// Where bytes go, because some of them are secrets:
//   - request headers that carry a token are built in secure memory; libcurl keeps its
//     own copy in a curl_slist, which is wiped before it is freed;
//   - a request body (the credential JSON) is passed by pointer (CURLOPT_POSTFIELDS), not
//     copied by us;
//   - the X-Subject-Token response header can be captured straight into a SecureBuffer;
//   - a 200 body can be captured straight into a fixed-size SecureBuffer (the key); any
//     other body goes to a capped std::string (error JSON, metadata: not secret).
// libcurl's and OpenSSL's own socket buffers are outside our reach; they are reused or
// freed by the library.
//
// Ownership: the exchange borrows the config and the body buffer; both must outlive
// Perform(). One exchange per request; it is not reused (the servers close every
// connection anyway, and a fresh handle has no state to leak between requests).
// Thread safety: an exchange belongs to the thread that made it. Different exchanges may
// run on different threads at once (CURLOPT_NOSIGNAL is set).
#pragma once

#include <curl/curl.h>

#include <string>
#include <string_view>

#include "daemon/barbican/barbican_config.h"
#include "engine/secure_memory.h"
#include "engine/status.h"

namespace svmkey::barbican {

// curl_global_init, exactly once per process (thread-safe). Called by Create() of the
// client; callable early by a daemon's main before it starts threads.
Status GlobalCurlInit();

class HttpsExchange {
 public:
  // `service` names the peer in messages ("Keystone", "Barbican").
  HttpsExchange(const BarbicanConfig& config, std::string_view service);
  ~HttpsExchange();
  HttpsExchange(const HttpsExchange&) = delete;
  HttpsExchange& operator=(const HttpsExchange&) = delete;

  // Creates the handle and applies the config. Must succeed before anything else.
  Status Init();

  Status AddHeader(std::string_view header);  // not secret
  // "<name>: <value>" where value is a secret (a token).
  Status AddSecretHeader(std::string_view name, const SecureBuffer& value);
  // POST `body` (borrowed until Perform returns). Without it the request is a GET.
  void SetPostBody(const SecureBuffer& body);
  // Capture the named response header's value (trimmed) into secure memory.
  void CaptureHeaderSecurely(std::string_view name) { capture_header_ = name; }
  // With status 200, write the body into `sink` (already sized); more bytes than its
  // size abort the transfer as a protocol error.
  void SetSecureBodySink(SecureBuffer* sink) { secure_sink_ = sink; }

  // Runs the request. Transport failures (connect, TLS, timeout, proxy) give
  // BarbicanUnreachable with libcurl's cause; a reply that is not HTTP, or a body that
  // overflows its sink, gives KeyValueStoreResponseUnparsable. Any HTTP status is OK here;
  // the caller maps it.
  Status Perform(const std::string& url);

  long http_status() const { return http_status_; }
  const std::string& body() const { return body_; }  // only when not captured securely
  size_t secure_body_size() const { return secure_written_; }
  // The captured header value (empty buffer when the header was absent).
  SecureBuffer TakeCapturedHeader() { return std::move(captured_); }

 private:
  static size_t OnBody(char* data, size_t size, size_t nmemb, void* self);
  static size_t OnHeader(char* data, size_t size, size_t nmemb, void* self);
  std::string Describe(const std::string& url) const;

  const BarbicanConfig& config_;
  std::string service_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
  curl_slist* resolve_ = nullptr;
  char error_buffer_[CURL_ERROR_SIZE] = {};

  std::string capture_header_;
  SecureBuffer captured_;
  SecureBuffer* secure_sink_ = nullptr;
  size_t secure_written_ = 0;
  bool sink_overflow_ = false;
  bool body_overflow_ = false;
  std::string body_;
  long http_status_ = 0;
};

}  // namespace svmkey::barbican
