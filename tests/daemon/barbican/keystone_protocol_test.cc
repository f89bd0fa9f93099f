// Unit tests of keystone_protocol.{h,cc}: request body, token expiry, status mapping.
#include "daemon/barbican/keystone_protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "daemon/barbican/barbican_config.h"

namespace svmkey::barbican {
namespace {

using std::chrono::seconds;

std::string AsText(const SecureBuffer& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

TEST(BuildAppCredAuthBody, IsTheKeystoneV3ApplicationCredentialRequest) {
  // Secrets are opaque strings; quotes, backslashes and control characters must survive.
  for (std::string secret : {std::string("plain-secret_0123"), std::string("q\"uo\\te"),
                             std::string("tab\tnl\ncr\r\x01\x1f"), std::string("ünï©ode"),
                             std::string("@@svmkey-secret@@")}) {
    auto body = BuildAppCredAuthBody("0123abcd", SecretFromString(secret).value());
    ASSERT_TRUE(body.ok()) << body.status().ToString();
    const auto j = nlohmann::json::parse(AsText(*body), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON for secret #" << secret.size();
    EXPECT_EQ(j["auth"]["identity"]["methods"], nlohmann::json({"application_credential"}));
    EXPECT_EQ(j["auth"]["identity"]["application_credential"]["id"], "0123abcd");
    EXPECT_EQ(j["auth"]["identity"]["application_credential"]["secret"], secret);
    EXPECT_FALSE(j["auth"].contains("scope"));  // an app credential is already scoped
  }
}

TEST(BuildAppCredAuthBody, RefusesAnIdThatIsThePlaceholder) {
  auto body = BuildAppCredAuthBody("@@svmkey-secret@@", SecretFromString("s").value());
  EXPECT_FALSE(body.ok());
}

TEST(ParseKeystoneTime, AcceptsKeystoneForms) {
  const auto t = ParseKeystoneTime("2024-05-01T12:00:00.000000Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 1714564800);
  EXPECT_EQ(ParseKeystoneTime("2024-05-01T12:00:00Z"), t);
  EXPECT_EQ(ParseKeystoneTime("2024-05-01T12:00:00.5+00:00"), t);
  for (const char* bad :
       {"", "tomorrow", "2024-05-01 12:00:00Z", "2024-05-01T12:00:00", "2024-05-01T12:00:00.Z",
        "2024-13-01T12:00:00Z", "2024-05-01T12:00:00+02:00", "2024-05-01T25:00:00Z",
        "2024-05-01T12:00:00Zjunk"}) {
    EXPECT_FALSE(ParseKeystoneTime(bad).has_value()) << bad;
  }
}

TEST(TokenReuseDeadline, KeepsAMarginAndNeverCachesAnAlmostExpiredToken) {
  const auto now = std::chrono::system_clock::now();
  const auto steady = std::chrono::steady_clock::now();
  EXPECT_EQ(TokenReuseDeadline(now + seconds(3600), now, steady, seconds(60)) - steady,
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(seconds(3540)));
  EXPECT_EQ(TokenReuseDeadline(now + seconds(30), now, steady, seconds(60)), steady);
  EXPECT_EQ(TokenReuseDeadline(now - seconds(30), now, steady, seconds(60)), steady);
}

TEST(MapStatus, FollowsTheErrorTable) {
  struct Case {
    long http;
    ErrorCode keystone;
    ErrorCode barbican;
  } cases[] = {
      {400, ErrorCode::kKeyManagerBlocked, ErrorCode::kKeyValueStoreResponseUnparsable},
      {401, ErrorCode::kKeyManagerBlocked, ErrorCode::kKeyManagerBlocked},
      {403, ErrorCode::kKeyManagerBlocked, ErrorCode::kKeyManagerBlocked},
      {404, ErrorCode::kKeyManagerBlocked, ErrorCode::kKeyIdNotFound},
      {406, ErrorCode::kKeyValueStoreResponseUnparsable,
       ErrorCode::kKeyValueStoreResponseUnparsable},
      {200, ErrorCode::kKeyValueStoreResponseUnparsable,
       ErrorCode::kKeyValueStoreResponseUnparsable},
      {302, ErrorCode::kKeyValueStoreResponseUnparsable,
       ErrorCode::kKeyValueStoreResponseUnparsable},
      {500, ErrorCode::kKeyValueStoreResponseUnparsable,
       ErrorCode::kKeyValueStoreResponseUnparsable},
      {503, ErrorCode::kKeyValueStoreResponseUnparsable,
       ErrorCode::kKeyValueStoreResponseUnparsable},
  };
  for (const auto& c : cases) {
    Status k = MapKeystoneStatus(c.http, "https://ks:5000/v3/auth/tokens");
    Status b = MapBarbicanStatus(c.http, "https://kms:9311/v1/secrets/x/payload");
    EXPECT_EQ(k.code(), c.keystone) << c.http;
    EXPECT_EQ(b.code(), c.barbican) << c.http;
    // The message names the peer and the status.
    EXPECT_NE(k.message().find("HTTP " + std::to_string(c.http)), std::string::npos) << k.message();
    EXPECT_NE(k.message().find("ks:5000"), std::string::npos) << k.message();
    EXPECT_NE(b.message().find("HTTP " + std::to_string(c.http)), std::string::npos) << b.message();
    EXPECT_NE(b.message().find("kms:9311"), std::string::npos) << b.message();
  }
}

}  // namespace
}  // namespace svmkey::barbican

namespace svmkey::barbican {
namespace {

// Regression (found by tools/fuzz keystone_response): a year outside the 64-bit
// nanosecond range of system_clock overflowed in the conversion (UBSan).
TEST(ParseKeystoneTime, RefusesYearsOutsideTheClockRange) {
  EXPECT_FALSE(ParseKeystoneTime("1013-11-27T21:00:00.000000Z").has_value());
  EXPECT_FALSE(ParseKeystoneTime("9999-11-27T21:00:00Z").has_value());
  EXPECT_FALSE(ParseKeystoneTime("1969-12-31T23:59:59Z").has_value());
  EXPECT_TRUE(ParseKeystoneTime("2199-01-01T00:00:00Z").has_value());
  auto body = ParseTokenResponse(R"({"token":{"expires_at":"1013-11-27T21:00:00.000000Z"}})", "ks");
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), ErrorCode::kKeyValueStoreResponseUnparsable);
}

struct ResponseCase {
  const char* body;
  ErrorCode want;  // kOk: parses
};

TEST(ParseTokenResponse, TableOfBodies) {
  const ResponseCase cases[] = {
      {R"({"token":{"expires_at":"2030-01-01T00:00:00.000000Z"}})", ErrorCode::kOk},
      {R"({"token":{"expires_at":"2030-01-01T00:00:00+00:00","roles":[]}})", ErrorCode::kOk},
      {"", ErrorCode::kKeyValueStoreResponseUnparsable},
      {"[]", ErrorCode::kKeyValueStoreResponseUnparsable},
      {R"({"token":[]})", ErrorCode::kKeyValueStoreResponseUnparsable},
      {R"({"token":{}})", ErrorCode::kKeyValueStoreResponseUnparsable},
      {R"({"token":{"expires_at":5}})", ErrorCode::kKeyValueStoreResponseUnparsable},
      {R"({"token":{"expires_at":"tomorrow"}})", ErrorCode::kKeyValueStoreResponseUnparsable},
      {"{\"token\":{\"expires_at\":\"2030-01-01T00:00:00Z\"}", ErrorCode::kKeyValueStoreResponseUnparsable},
  };
  for (const auto& c : cases) {
    auto r = ParseTokenResponse(c.body, "https://ks/v3/auth/tokens");
    EXPECT_EQ(r.ok() ? ErrorCode::kOk : r.status().code(), c.want) << c.body;
  }
}

TEST(CheckSecretMetadata, TableOfBodies) {
  const ResponseCase cases[] = {
      {R"({"status":"ACTIVE","bit_length":256})", ErrorCode::kOk},
      {R"({"status":"DISABLED"})", ErrorCode::kKeyManagerBlocked},
      {R"({"status":"ERROR\u0000\u00ff"})", ErrorCode::kKeyManagerBlocked},
      {R"({"status":1})", ErrorCode::kKeyValueStoreResponseUnparsable},
      {R"({})", ErrorCode::kKeyValueStoreResponseUnparsable},
      {"<html>", ErrorCode::kKeyValueStoreResponseUnparsable},
  };
  for (const auto& c : cases) {
    Status s = CheckSecretMetadata(c.body, "https://bb/v1/secrets/x");
    EXPECT_EQ(s.code(), c.want) << c.body;
    for (unsigned char ch : s.message()) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << c.body;
  }
}

}  // namespace
}  // namespace svmkey::barbican
