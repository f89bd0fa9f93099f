#include "daemon/barbican/barbican_client.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "daemon/barbican/https_exchange.h"
#include "daemon/barbican/keystone_protocol.h"

namespace svmkey::barbican {
namespace {

// Reuse a token until this long before Keystone says it expires: a request that starts
// just before the deadline still reaches Barbican (and Barbican reaches Keystone) in time.
constexpr std::chrono::seconds kTokenMargin{60};

Status Unparsable(std::string message) {
  return Status(ErrorCode::kKeyValueStoreResponseUnparsable, std::move(message));
}

Result<SecureBuffer> Copy(const SecureBuffer& from) {
  auto out = SecureBuffer::Allocate(from.size());
  if (!out.ok()) return out.status();
  if (!from.empty()) std::memcpy(out->data(), from.data(), from.size());
  return std::move(out).value();
}

}  // namespace

Result<std::unique_ptr<BarbicanClient>> BarbicanClient::Create(BarbicanConfig config) {
  SVMKEY_RETURN_IF_ERROR(GlobalCurlInit());
  SVMKEY_RETURN_IF_ERROR(ValidateConfig(config));
  auto token_url = KeystoneTokenUrl(config.keystone_url);
  if (!token_url.ok()) return token_url.status();
  auto secret_url = SecretUrl(config.key_id);
  if (!secret_url.ok()) return secret_url.status();
  return std::unique_ptr<BarbicanClient>(new BarbicanClient(
      std::move(config), std::move(token_url).value(), std::move(secret_url).value()));
}

BarbicanClient::BarbicanClient(BarbicanConfig config, std::string token_url, std::string secret_url)
    : config_(std::move(config)),
      token_url_(std::move(token_url)),
      secret_url_(std::move(secret_url)),
      payload_url_(secret_url_ + "/payload") {}

Status BarbicanClient::IssueTokenLocked() {
  HttpsExchange ex(config_, "Keystone");
  SVMKEY_RETURN_IF_ERROR(ex.Init());
  SVMKEY_RETURN_IF_ERROR(ex.AddHeader("Content-Type: application/json"));
  SVMKEY_RETURN_IF_ERROR(ex.AddHeader("Accept: application/json"));
  auto body = BuildAppCredAuthBody(config_.application_cred_id, config_.application_cred_secret);
  if (!body.ok()) return body.status();
  ex.SetPostBody(*body);
  ex.CaptureHeaderSecurely("X-Subject-Token");
  token_requests_.fetch_add(1);
  SVMKEY_RETURN_IF_ERROR(ex.Perform(token_url_));
  const std::string where = token_url_;
  if (ex.http_status() != 201) return MapKeystoneStatus(ex.http_status(), where);

  SecureBuffer token = ex.TakeCapturedHeader();
  if (token.empty()) {
    return Unparsable("Keystone " + where + " answered HTTP 201 without an X-Subject-Token header");
  }
  // Only the expiry is read from the body; the catalog and roles are not needed.
  auto expires = ParseTokenResponse(ex.body(), where);
  if (!expires.ok()) return expires.status();
  token_ = std::move(token);
  token_deadline_ = TokenReuseDeadline(expires.value(), std::chrono::system_clock::now(),
                                       std::chrono::steady_clock::now(), kTokenMargin);
  ++generation_;
  return Status::Ok();
}

Result<BarbicanClient::Token> BarbicanClient::GetToken() {
  std::lock_guard<std::mutex> lock(mu_);
  bool fresh = false;
  if (token_.empty() || std::chrono::steady_clock::now() >= token_deadline_) {
    token_ = SecureBuffer();
    SVMKEY_RETURN_IF_ERROR(IssueTokenLocked());
    fresh = true;
  }
  // A copy, so the request runs without the lock and a concurrent refresh cannot free
  // the bytes under it.
  auto copy = Copy(token_);
  if (!copy.ok()) return copy.status();
  Token out;
  out.value = std::move(copy).value();
  out.generation = generation_;
  out.fresh = fresh;
  return out;
}

void BarbicanClient::InvalidateIfGeneration(uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  // Another thread may already have replaced the token that failed; keep its new one.
  if (generation_ == generation) token_ = SecureBuffer();
}

void BarbicanClient::InvalidateToken() {
  std::lock_guard<std::mutex> lock(mu_);
  token_ = SecureBuffer();
}

Status BarbicanClient::Authenticate() {
  auto token = GetToken();
  return token.ok() ? Status::Ok() : token.status();
}

Status BarbicanClient::AuthenticatedGet(const std::string& url, const char* accept,
                                        SecureBuffer* secure_sink, std::string* text_body,
                                        size_t* secure_size) {
  for (int attempt = 0;; ++attempt) {
    auto token = GetToken();
    if (!token.ok()) return token.status();
    HttpsExchange ex(config_, "Barbican");
    SVMKEY_RETURN_IF_ERROR(ex.Init());
    SVMKEY_RETURN_IF_ERROR(ex.AddHeader(accept));
    SVMKEY_RETURN_IF_ERROR(ex.AddSecretHeader("X-Auth-Token", token->value));
    if (secure_sink != nullptr) ex.SetSecureBodySink(secure_sink);
    SVMKEY_RETURN_IF_ERROR(ex.Perform(url));
    const long status = ex.http_status();
    // A cached token can be expired or revoked early (Keystone restarted with new
    // fernet keys, the token was revoked): get a new one, once. A token issued for this
    // very call that is refused is the credential's problem, not the cache's.
    if (status == 401 && !token->fresh && attempt == 0) {
      InvalidateIfGeneration(token->generation);
      continue;
    }
    if (status != 200) return MapBarbicanStatus(status, url);
    if (text_body != nullptr) *text_body = ex.body();
    if (secure_size != nullptr) *secure_size = ex.secure_body_size();
    return Status::Ok();
  }
}

Result<KeyHandle> BarbicanClient::FetchExternalKey(KeyTable& table) {
  auto key = SecureBuffer::Allocate(kKeyBytes);
  if (!key.ok()) return key.status();
  size_t received = 0;
  Status s =
      AuthenticatedGet(payload_url_, "Accept: application/octet-stream", &*key, nullptr, &received);
  if (!s.ok()) {
    key->Wipe();  // a partial or over-long payload may have left bytes behind
    return s;
  }
  if (received != kKeyBytes) {
    key->Wipe();
    return Unparsable("Barbican " + payload_url_ + " answered HTTP 200 with a " +
                      std::to_string(received) + "-byte payload; a 256-bit key is " +
                      std::to_string(kKeyBytes) + " bytes");
  }
  auto handle = table.Import(*key);
  key->Wipe();
  return handle;
}

Reachability BarbicanClient::CheckReachability() {
  Reachability out;
  std::string text;
  Status s = AuthenticatedGet(secret_url_, "Accept: application/json", nullptr, &text, nullptr);
  if (s.ok()) s = CheckSecretMetadata(text, secret_url_);
  out.reachable = s.ok();
  out.code = s.code();
  out.message =
      s.ok() ? "Barbican secret " + secret_url_ + " is reachable and ACTIVE" : s.ToString();
  return out;
}

}  // namespace svmkey::barbican
