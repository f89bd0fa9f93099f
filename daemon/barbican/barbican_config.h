// BarbicanConfig: how svmkeyd reaches one Barbican key (ONTAP's barbican-kms semantics), and the
// URL rules every field must satisfy before a client is built from it.
//
// Ownership: a BarbicanConfig owns its strings and the two secrets (held in SecureBuffer,
// so the config is move-only). BarbicanClient::Create takes it by value and keeps it for
// the client's lifetime. The secrets are never logged, never put into a Status message
// and never returned by any accessor of the client.
//
// Thread safety: plain data; the free functions are pure and may run on any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/secure_memory.h"
#include "engine/status.h"

namespace svmkey::barbican {

enum class ProxyType { kHttp, kHttps };

struct BarbicanConfig {
  // Keystone v3. Accepted forms: "https://h:5000", "https://h:5000/v3" (the base) and
  // "https://h:5000/v3/auth/tokens" (ONTAP's documented form); a trailing '/' is fine.
  std::string keystone_url;
  // The Barbican secret URL (secret_ref), e.g. https://h:9311/v1/secrets/<uuid>.
  std::string key_id;
  std::string application_cred_id;
  SecureBuffer application_cred_secret;  // bytes of the secret, no terminator

  bool verify = true;       // verify the server certificate chain (CURLOPT_SSL_VERIFYPEER)
  bool verify_host = true;  // verify the host name (CURLOPT_SSL_VERIFYHOST)
  // Each HTTP exchange (connect, TLS handshake, request and reply) must finish within
  // this many seconds: CURLOPT_CONNECTTIMEOUT and CURLOPT_TIMEOUT. 1..600.
  int timeout_seconds = 10;
  // CA bundle (PEM) that anchors verify; empty = the system bundle.
  std::string ca_file;

  // Proxy: an empty proxy_host means no proxy at all, and the http(s)_proxy / no_proxy
  // environment variables are ignored either way (the config is honoured exactly).
  ProxyType proxy_type = ProxyType::kHttps;
  std::string proxy_host;  // host name or IP literal, no scheme, no port
  int proxy_port = 0;      // required (1..65535) when proxy_host is set
  std::string proxy_username;
  SecureBuffer proxy_password;  // bytes, no terminator; empty = none

  // CURLOPT_RESOLVE entries "host:port:address": pin a host name to an address without
  // DNS. For split-horizon setups, and for tests that present a name the server
  // certificate does not carry.
  std::vector<std::string> resolve;
};

// Copies `text` into secure memory (for tests and for callers that received a secret as
// text and wipe their copy right after).
Result<SecureBuffer> SecretFromString(std::string_view text);

// Checks every field. Codes: InvalidKeystoneUrl (65539811), InvalidKeyId (65539810),
// EmptyCredentialId (65539835), InvalidCredentialSecret (65539805), InvalidValue (262185)
// for timeout, proxy or resolve settings.
Status ValidateConfig(const BarbicanConfig& config);

// The token endpoint for keystone_url in any accepted form
// ("https://h:5000/v3" -> "https://h:5000/v3/auth/tokens"). InvalidKeystoneUrl if it is
// not an https URL with a host and one of the accepted paths, or carries user info, a
// query or a fragment.
Result<std::string> KeystoneTokenUrl(std::string_view keystone_url);

// key_id normalised (no trailing '/'). InvalidKeyId unless it is an https URL with a host
// whose path ends in /secrets/<id>, without user info, query or fragment.
Result<std::string> SecretUrl(std::string_view key_id);

// "scheme://host:port" of a URL already accepted above, for messages.
std::string UrlOrigin(std::string_view url);

}  // namespace svmkey::barbican
