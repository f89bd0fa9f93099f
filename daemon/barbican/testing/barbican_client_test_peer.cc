#include "daemon/barbican/testing/barbican_client_test_peer.h"

#include <chrono>

namespace svmkey::barbican {

Status BarbicanClientTestPeer::ReplaceCachedToken(BarbicanClient& client, std::string_view fake) {
  auto buf = SecretFromString(fake);
  if (!buf.ok()) return buf.status();
  std::lock_guard<std::mutex> lock(client.mu_);
  client.token_ = std::move(buf).value();
  client.token_deadline_ = std::chrono::steady_clock::now() + std::chrono::hours(1);
  ++client.generation_;
  return Status::Ok();
}

std::string BarbicanClientTestPeer::CachedToken(BarbicanClient& client) {
  std::lock_guard<std::mutex> lock(client.mu_);
  return std::string(reinterpret_cast<const char*>(client.token_.data()), client.token_.size());
}

}  // namespace svmkey::barbican
