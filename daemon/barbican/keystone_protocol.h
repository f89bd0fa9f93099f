// The pure parts of the Keystone v3 / Barbican v1 protocol as svmkey speaks it: the
// application-credential request body, the token expiry, and how HTTP statuses map onto
// the error table (docs/ARCHITECTURE.md §8). No I/O here, so all of it is unit-tested.
//
// Thread safety: pure functions; any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "engine/secure_memory.h"
#include "engine/status.h"

namespace svmkey::barbican {

// The body of POST /v3/auth/tokens with method application_credential, built in secure
// memory because it carries the secret. The JSON skeleton comes from nlohmann::json; only
// the secret's string escaping is done here, so the secret never enters a std::string.
// The id must already have passed ValidateConfig.
Result<SecureBuffer> BuildAppCredAuthBody(std::string_view app_cred_id,
                                          const SecureBuffer& app_cred_secret);

// Keystone's token.expires_at ("2024-05-01T12:00:00.000000Z", also without fraction, or
// with +00:00). nullopt if it is not that shape.
std::optional<std::chrono::system_clock::time_point> ParseKeystoneTime(std::string_view text);

// How long a token may be reused: until `margin` before it expires. A token with less
// than `margin` left is used once and not cached (returns `now`).
std::chrono::steady_clock::time_point TokenReuseDeadline(
    std::chrono::system_clock::time_point expires_at, std::chrono::system_clock::time_point now,
    std::chrono::steady_clock::time_point steady_now, std::chrono::seconds margin);

// A non-201 answer of Keystone to the credential. `where` names the URL for the message.
//   400, 401, 403, 404 -> KeyManagerBlocked (the credential is refused or unknown;
//                         Keystone says 404 for an unknown application-credential id)
//   anything else      -> KeyValueStoreResponseUnparsable (not what the protocol promises)
Status MapKeystoneStatus(long http_status, std::string_view where);

// A non-200 answer of Barbican for the secret (metadata or payload), after the one token
// refresh a 401 earns.
//   401, 403 -> KeyManagerBlocked;  404 -> KeyIdNotFound;  else -> KeyValueStoreResponseUnparsable
Status MapBarbicanStatus(long http_status, std::string_view where);

// The body of Keystone's 201 to POST /v3/auth/tokens: token.expires_at. Anything else
// (not JSON, no token object, no or unreadable expires_at) is
// KeyValueStoreResponseUnparsable naming `where`.
Result<std::chrono::system_clock::time_point> ParseTokenResponse(std::string_view body,
                                                                 std::string_view where);

// Barbican's 200 to GET {key_id} (the secret's metadata): OK when "status" is "ACTIVE";
// KeyManagerBlocked when it is another state (disabled, error); unparsable otherwise.
Status CheckSecretMetadata(std::string_view body, std::string_view where);

}  // namespace svmkey::barbican
