// BarbicanClient: the ExternalKeySource (daemon/service/external_key_source.h) of a
// Barbican configuration. Reads svmkey's external key (the Barbican secret at key_id)
// into the engine's KeyTable, authenticating with a Keystone v3 application credential.
//
//   POST {keystone}/v3/auth/tokens   method application_credential -> 201, X-Subject-Token
//        (token cached until 60 s before token.expires_at; one refresh on a 401 from Barbican)
//   GET  {key_id}/payload            Accept: application/octet-stream -> 200, exactly 32 bytes
//   GET  {key_id}                    Accept: application/json -> 200, metadata (reachability)
//
// Errors (engine/error_table.def, docs/ARCHITECTURE.md §8):
//   KeyManagerBlocked (65537556)              Keystone refuses or does not know the
//                                             credential; Barbican says 401 / 403 for the key
//   KeyIdNotFound (65539834)                  Barbican says 404 for the key
//   KeyValueStoreResponseUnparsable (65539416) a reply the protocol does not promise: bad
//                                             JSON, no X-Subject-Token, a payload that is not
//                                             32 bytes, an unexpected status
//   BarbicanUnreachable (65539801)            connect, TLS, timeout or proxy failure; the
//                                             message carries libcurl's cause
// Messages name the URL, the HTTP status and the proxy; never the secret, the token or
// key bytes.
//
// Ownership: the client owns its BarbicanConfig (secrets included) and the cached token,
// both in secure memory. The external key is held in secure memory only between the
// reply and KeyTable::Import, then wiped; the caller owns the returned KeyHandle and
// releases it when the wrap or unwrap is done.
// Thread safety: one client per configuration; every method may be called from any
// thread at the same time. The token cache is guarded by a mutex (a thread that finds no
// valid token authenticates while holding it, so concurrent callers do not stampede
// Keystone); the HTTPS exchanges themselves run without the lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "daemon/barbican/barbican_config.h"
#include "daemon/service/external_key_source.h"
#include "engine/key_table.h"
#include "engine/secure_memory.h"
#include "engine/status.h"

namespace svmkey::barbican {

// ONTAP's barbican_reachability: reachable means the key's metadata was read with a valid
// token; otherwise code says why (one of the four above).
using Reachability = daemon::KeyReachability;

class BarbicanClientTestPeer;

class BarbicanClient final : public daemon::ExternalKeySource {
 public:
  // Validates the config (see ValidateConfig) and builds a client. Does no I/O.
  static Result<std::unique_ptr<BarbicanClient>> Create(BarbicanConfig config);

  BarbicanClient(const BarbicanClient&) = delete;
  BarbicanClient& operator=(const BarbicanClient&) = delete;

  // Reads the 32-byte external key and imports it into `table`. The caller releases the
  // handle when done with it.
  Result<KeyHandle> FetchExternalKey(KeyTable& table) override;

  // Authenticates (or reuses the cached token) and reads the key's metadata, not its
  // payload. Never fails as a call; the result says what is wrong.
  Reachability CheckReachability() override;

  // Makes sure a valid token is cached, authenticating if needed (a credential check,
  // as ONTAP's update-credentials health check does).
  Status Authenticate();

  // Drops the cached token (e.g. after the credential was rotated elsewhere).
  void InvalidateToken();

  // POST /v3/auth/tokens requests sent so far (diagnostics; tests use it to see the
  // cache and the refresh at work).
  uint64_t token_requests() const { return token_requests_.load(); }

  const std::string& key_id() const override { return secret_url_; }

 private:
  friend class BarbicanClientTestPeer;

  // The token to use and the cache generation it came from.
  struct Token {
    SecureBuffer value;
    uint64_t generation = 0;
    bool fresh = false;  // issued by this call, not taken from the cache
  };

  BarbicanClient(BarbicanConfig config, std::string token_url, std::string secret_url);

  Result<Token> GetToken();
  // Sends the credential to Keystone; caller holds mu_.
  Status IssueTokenLocked();
  // Forgets the cached token if it is still the one of `generation`.
  void InvalidateIfGeneration(uint64_t generation);

  // One authenticated GET of `url`, retried once with a new token after a 401 from a
  // cached one. `secure_sink` (may be null) receives a 200 body.
  Status AuthenticatedGet(const std::string& url, const char* accept, SecureBuffer* secure_sink,
                          std::string* text_body, size_t* secure_size);

  const BarbicanConfig config_;
  const std::string token_url_;
  const std::string secret_url_;
  const std::string payload_url_;

  std::mutex mu_;  // guards token_, token_deadline_, generation_
  SecureBuffer token_;
  std::chrono::steady_clock::time_point token_deadline_{};
  uint64_t generation_ = 0;

  std::atomic<uint64_t> token_requests_{0};
};

}  // namespace svmkey::barbican
