// Test-only access to a BarbicanClient's token cache. Never linked into svmkeyd: tests use
// it to force the 401-refresh path and to prove the token never shows up in messages.
#pragma once

#include <string>
#include <string_view>

#include "daemon/barbican/barbican_client.h"

namespace svmkey::barbican {

class BarbicanClientTestPeer {
 public:
  // Replaces the cached token with `fake`, valid (for the cache) for another hour.
  static Status ReplaceCachedToken(BarbicanClient& client, std::string_view fake);
  // The cached token as text (empty if none).
  static std::string CachedToken(BarbicanClient& client);
};

}  // namespace svmkey::barbican
