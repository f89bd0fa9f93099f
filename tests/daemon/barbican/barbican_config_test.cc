// Unit tests of barbican_config.{h,cc}: URL forms and field validation. No services.
#include "daemon/barbican/barbican_config.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "daemon/barbican/barbican_client.h"

namespace svmkey::barbican {
namespace {

constexpr char kSecret[] = "sEcReT-that-must-not-leak-9f8e7d";

BarbicanConfig Valid() {
  BarbicanConfig c;
  c.keystone_url = "https://ks.example:5000/v3";
  c.key_id = "https://kms.example:9311/v1/secrets/5e2052f7-24cc-4b11-80d2-9284ef937630";
  c.application_cred_id = "de8ee160584e4ca7812d4205164acb2e";
  c.application_cred_secret = SecretFromString(kSecret).value();
  return c;
}

TEST(KeystoneTokenUrl, AcceptsBaseFullAndRootForms) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"https://ks:5000/v3", "https://ks:5000/v3/auth/tokens"},
      {"https://ks:5000/v3/", "https://ks:5000/v3/auth/tokens"},
      {"https://ks:5000/v3/auth/tokens", "https://ks:5000/v3/auth/tokens"},
      {"https://ks:5000/v3/auth/tokens/", "https://ks:5000/v3/auth/tokens"},
      {"https://ks:5000", "https://ks:5000/v3/auth/tokens"},
      {"https://ks:5000/", "https://ks:5000/v3/auth/tokens"},
      {"https://ks/identity/v3", "https://ks/identity/v3/auth/tokens"},
      {"https://127.0.0.1:5000/v3", "https://127.0.0.1:5000/v3/auth/tokens"},
      {"https://[::1]:5000/v3", "https://[::1]:5000/v3/auth/tokens"},
  };
  for (const auto& c : cases) {
    auto r = KeystoneTokenUrl(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    EXPECT_EQ(*r, c.out) << c.in;
  }
}

TEST(KeystoneTokenUrl, RefusesWhatIsNotAnHttpsV3Endpoint) {
  for (const char* in :
       {"", "http://ks:5000/v3", "ks:5000/v3", "https:///v3", "https://ks:5000/v2.0",
        "https://ks:5000/v3/auth", "https://u:p@ks:5000/v3", "https://ks:5000/v3?x=1",
        "https://ks:5000/v3#f", "https://ks :5000/v3", "ftp://ks/v3"}) {
    auto r = KeystoneTokenUrl(in);
    ASSERT_FALSE(r.ok()) << in;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidKeystoneUrl) << in;
  }
}

TEST(SecretUrl, NormalisesAndRefuses) {
  EXPECT_EQ(SecretUrl("https://kms:9311/v1/secrets/abc/").value(),
            "https://kms:9311/v1/secrets/abc");
  EXPECT_EQ(SecretUrl("https://kms/v1/secrets/abc").value(), "https://kms/v1/secrets/abc");
  for (const char* in : {"", "http://kms:9311/v1/secrets/abc", "https://kms:9311/v1/secrets/",
                         "https://kms:9311/v1/secrets", "https://kms:9311/v1/orders/abc",
                         "https://kms:9311/v1/secrets/abc/payload", "https://a:b@kms/v1/secrets/x",
                         "https://kms/v1/secrets/x?y", "https://kms/v1/secrets/x#y"}) {
    auto r = SecretUrl(in);
    ASSERT_FALSE(r.ok()) << in;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidKeyId) << in;
  }
}

TEST(UrlOrigin, SchemeHostPort) {
  EXPECT_EQ(UrlOrigin("https://h:9311/v1/secrets/x"), "https://h:9311");
  EXPECT_EQ(UrlOrigin("https://h/v1"), "https://h");
}

TEST(ValidateConfig, AcceptsAValidConfig) {
  BarbicanConfig c = Valid();
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
  c.proxy_host = "proxy.example";
  c.proxy_port = 3128;
  c.proxy_type = ProxyType::kHttp;
  c.proxy_username = "u";
  c.proxy_password = SecretFromString("pw").value();
  c.resolve = {"kms.example:9311:127.0.0.1"};
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
}

TEST(ValidateConfig, RefusesEachBadFieldWithItsCode) {
  struct Case {
    const char* name;
    std::function<void(BarbicanConfig&)> mutate;
    ErrorCode code;
  } cases[] = {
      {"keystone http", [](BarbicanConfig& c) { c.keystone_url = "http://ks:5000/v3"; },
       ErrorCode::kInvalidKeystoneUrl},
      {"keystone empty", [](BarbicanConfig& c) { c.keystone_url.clear(); },
       ErrorCode::kInvalidKeystoneUrl},
      {"key_id http", [](BarbicanConfig& c) { c.key_id = "http://kms/v1/secrets/x"; },
       ErrorCode::kInvalidKeyId},
      {"key_id empty", [](BarbicanConfig& c) { c.key_id.clear(); }, ErrorCode::kInvalidKeyId},
      {"cred id empty", [](BarbicanConfig& c) { c.application_cred_id.clear(); },
       ErrorCode::kEmptyCredentialId},
      {"cred id quote", [](BarbicanConfig& c) { c.application_cred_id = "a\"b"; },
       ErrorCode::kEmptyCredentialId},
      {"secret empty", [](BarbicanConfig& c) { c.application_cred_secret = SecureBuffer(); },
       ErrorCode::kInvalidCredentialSecret},
      {"timeout 0", [](BarbicanConfig& c) { c.timeout_seconds = 0; }, ErrorCode::kInvalidValue},
      {"timeout huge", [](BarbicanConfig& c) { c.timeout_seconds = 601; },
       ErrorCode::kInvalidValue},
      {"proxy port 0", [](BarbicanConfig& c) { c.proxy_host = "p"; }, ErrorCode::kInvalidValue},
      {"proxy port big",
       [](BarbicanConfig& c) {
         c.proxy_host = "p";
         c.proxy_port = 70000;
       },
       ErrorCode::kInvalidValue},
      {"proxy scheme",
       [](BarbicanConfig& c) {
         c.proxy_host = "http://p";
         c.proxy_port = 1;
       },
       ErrorCode::kInvalidValue},
      {"proxy user no host", [](BarbicanConfig& c) { c.proxy_username = "u"; },
       ErrorCode::kInvalidValue},
      {"proxy port no host", [](BarbicanConfig& c) { c.proxy_port = 8080; },
       ErrorCode::kInvalidValue},
      {"resolve bad", [](BarbicanConfig& c) { c.resolve = {"kms.example"}; },
       ErrorCode::kInvalidValue},
      {"resolve removal", [](BarbicanConfig& c) { c.resolve = {"-kms:1:1.2.3.4"}; },
       ErrorCode::kInvalidValue},
  };
  for (auto& tc : cases) {
    BarbicanConfig c = Valid();
    tc.mutate(c);
    Status s = ValidateConfig(c);
    EXPECT_EQ(s.code(), tc.code) << tc.name << ": " << s.ToString();
    EXPECT_EQ(s.ToString().find(kSecret), std::string::npos) << tc.name;
    // Create() refuses the same config, before any I/O.
    auto client = BarbicanClient::Create(std::move(c));
    ASSERT_FALSE(client.ok()) << tc.name;
    EXPECT_EQ(client.status().code(), tc.code) << tc.name;
  }
}

TEST(BarbicanClient, CreateKeepsTheNormalisedKeyId) {
  BarbicanConfig c = Valid();
  c.key_id += "/";
  auto client = BarbicanClient::Create(std::move(c));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->key_id(),
            "https://kms.example:9311/v1/secrets/5e2052f7-24cc-4b11-80d2-9284ef937630");
  EXPECT_EQ((*client)->token_requests(), 0u);  // Create does no I/O
}

TEST(SecretFromString, CopiesIntoSecureMemory) {
  auto b = SecretFromString("abc");
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 3u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b->data()), 3), "abc");
  EXPECT_TRUE(SecretFromString("").value().empty());
}

}  // namespace
}  // namespace svmkey::barbican
