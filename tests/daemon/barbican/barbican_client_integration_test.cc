// Integration tests of BarbicanClient against a real Keystone and Barbican over TLS
// (tools/barbican-up; see kms_environment.h for how they are found or started), plus a
// local TLS endpoint that answers garbage (garbage_tls_server.py) and ports where nothing
// listens. Every failure case checks the code and that the message says what failed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "daemon/barbican/barbican_client.h"
#include "daemon/barbican/testing/barbican_client_test_peer.h"
#include "engine/key_table.h"
#include "engine/testing/key_table_test_peer.h"
#include "tests/daemon/barbican/kms_environment.h"
#include "tests/support/command.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace svmkey::barbican {
namespace {

using testing::KmsEnvironment;
using ::svmkey::testing::Sh;

std::string Hex(const std::vector<uint8_t>& b) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (uint8_t x : b) {
    out += d[x >> 4];
    out += d[x & 15];
  }
  return out;
}

class BarbicanIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env().ready()) << "Keystone/Barbican not available: " << env().error();
    auto table = KeyTable::Create(8);
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    table_ = std::move(table).value();
  }

  static KmsEnvironment& env() { return KmsEnvironment::Get(); }

  std::unique_ptr<BarbicanClient> MakeClient(BarbicanConfig config) {
    auto client = BarbicanClient::Create(std::move(config));
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  // Fetches and returns the key's bytes through the engine's test-only export.
  std::vector<uint8_t> FetchBytes(BarbicanClient& client) {
    auto handle = client.FetchExternalKey(*table_);
    EXPECT_TRUE(handle.ok()) << handle.status().ToString();
    if (!handle.ok()) return {};
    std::array<uint8_t, kKeyBytes> out{};
    EXPECT_TRUE(KeyTableTestPeer::Export(*table_, *handle, &out).ok());
    EXPECT_TRUE(table_->Release(*handle).ok());
    return std::vector<uint8_t>(out.begin(), out.end());
  }

  Status FetchError(BarbicanClient& client) {
    auto handle = client.FetchExternalKey(*table_);
    EXPECT_FALSE(handle.ok()) << "fetch unexpectedly succeeded";
    if (handle.ok()) {
      table_->Release(*handle).IgnoreError();
      return Status::Ok();
    }
    EXPECT_EQ(table_->size(), 0u);  // nothing half-imported
    return handle.status();
  }

  std::unique_ptr<KeyTable> table_;
};

TEST_F(BarbicanIntegration, PayloadRoundTripMatchesTheStoredKey) {
  auto client = MakeClient(env().Config());
  ASSERT_NE(client, nullptr);
  const auto expected = testing::ReadFileBytes(env().Var("KEK_FILE"));
  ASSERT_EQ(expected.size(), 32u);
  EXPECT_EQ(FetchBytes(*client), expected);
  EXPECT_EQ(client->token_requests(), 1u);
  EXPECT_EQ(table_->size(), 0u);
}

TEST_F(BarbicanIntegration, TokenIsCachedAcrossCalls) {
  auto client = MakeClient(env().Config());
  ASSERT_NE(client, nullptr);
  const auto first = FetchBytes(*client);
  const auto second = FetchBytes(*client);
  EXPECT_EQ(first.size(), 32u);
  EXPECT_EQ(first, second);
  EXPECT_TRUE(client->CheckReachability().reachable);
  EXPECT_EQ(client->token_requests(), 1u);
  client->InvalidateToken();
  EXPECT_EQ(FetchBytes(*client), first);
  EXPECT_EQ(client->token_requests(), 2u);
}

TEST_F(BarbicanIntegration, ConcurrentCallersShareOneToken) {
  auto client = MakeClient(env().Config());
  ASSERT_NE(client, nullptr);
  const auto expected = testing::ReadFileBytes(env().Var("KEK_FILE"));
  constexpr int kThreads = 4;
  std::array<std::vector<uint8_t>, kThreads> got;
  std::array<bool, kThreads> reachable{};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      // KeyTable is thread-safe; gtest assertions from threads are too (on Linux).
      got[i] = FetchBytes(*client);
      reachable[i] = client->CheckReachability().reachable;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(got[i], expected) << "thread " << i;
    EXPECT_TRUE(reachable[i]) << "thread " << i;
  }
  // The first caller authenticates under the lock; the others wait and reuse its token.
  EXPECT_EQ(client->token_requests(), 1u);
}

TEST_F(BarbicanIntegration, EveryAcceptedKeystoneUrlFormWorks) {
  const std::string base = env().Var("KEYSTONE_URL");  // https://127.0.0.1:P/v3
  const std::string root = base.substr(0, base.size() - 3);
  for (const std::string& url : {base, base + "/", base + "/auth/tokens", root}) {
    BarbicanConfig c = env().Config();
    c.keystone_url = url;
    auto client = MakeClient(std::move(c));
    ASSERT_NE(client, nullptr);
    EXPECT_TRUE(client->Authenticate().ok()) << url;
    EXPECT_EQ(client->token_requests(), 1u) << url;
  }
}

TEST_F(BarbicanIntegration, RejectedCachedTokenIsRefreshedOnce) {
  auto client = MakeClient(env().Config());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Authenticate().ok());
  ASSERT_EQ(client->token_requests(), 1u);
  // Barbican answers 401 to a token Keystone does not know.
  ASSERT_TRUE(BarbicanClientTestPeer::ReplaceCachedToken(*client, "gAAAAAnot-a-real-token").ok());
  EXPECT_EQ(FetchBytes(*client), testing::ReadFileBytes(env().Var("KEK_FILE")));
  EXPECT_EQ(client->token_requests(), 2u);
  EXPECT_NE(BarbicanClientTestPeer::CachedToken(*client), "gAAAAAnot-a-real-token");
}

TEST_F(BarbicanIntegration, ReachabilityReadsMetadataNotPayload) {
  auto client = MakeClient(env().Config());
  ASSERT_NE(client, nullptr);
  const Reachability r = client->CheckReachability();
  EXPECT_TRUE(r.reachable) << r.message;
  EXPECT_EQ(r.code, ErrorCode::kOk);
  EXPECT_NE(r.message.find("ACTIVE"), std::string::npos) << r.message;
  EXPECT_EQ(table_->size(), 0u);
}

TEST_F(BarbicanIntegration, WrongCaFailsUnlessVerifyIsOff) {
  const ::svmkey::testing::TempDir dir({.prefix = "svmkey-otherca", .base = "/tmp"});
  ASSERT_TRUE(dir.ok());
  const std::string other_ca = dir / "ca.pem";
  const auto openssl = Sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca "
                          "-keyout " + (dir / "ca.key") + " -out " + other_ca);
  ASSERT_EQ(openssl.status, 0) << openssl.err;
  for (const std::string& ca : {other_ca, std::string()}) {  // another CA; the system bundle
    BarbicanConfig c = env().Config();
    c.ca_file = ca;
    auto client = MakeClient(std::move(c));
    ASSERT_NE(client, nullptr);
    Status s = FetchError(*client);
    EXPECT_EQ(s.code(), ErrorCode::kBarbicanUnreachable) << s.ToString();
    EXPECT_NE(s.message().find("certificate"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("Keystone at https://127.0.0.1:"), std::string::npos)
        << s.ToString();
  }
  BarbicanConfig c = env().Config();
  c.ca_file = other_ca;
  c.verify = false;
  auto unverified = MakeClient(std::move(c));
  ASSERT_NE(unverified, nullptr);
  EXPECT_EQ(FetchBytes(*unverified).size(), 32u);
}

TEST_F(BarbicanIntegration, HostNameNotInCertificateFailsOnlyWithVerifyHost) {
  // The server certificate is for IP:127.0.0.1 and DNS:localhost; reach Barbican as
  // kms.wrong.test, pinned to 127.0.0.1 without DNS.
  const std::string port = env().Var("BARBICAN_PORT");
  std::string key_id = env().Var("BARBICAN_KEY_ID");
  key_id.replace(key_id.find("127.0.0.1"), 9, "kms.wrong.test");
  for (bool verify_host : {true, false}) {
    BarbicanConfig c = env().Config();
    c.key_id = key_id;
    c.resolve = {"kms.wrong.test:" + port + ":127.0.0.1"};
    c.verify_host = verify_host;
    auto client = MakeClient(std::move(c));
    ASSERT_NE(client, nullptr);
    if (verify_host) {
      Status s = FetchError(*client);
      EXPECT_EQ(s.code(), ErrorCode::kBarbicanUnreachable) << s.ToString();
      EXPECT_NE(s.message().find("kms.wrong.test"), std::string::npos) << s.ToString();
      EXPECT_NE(s.message().find("subject name"), std::string::npos) << s.ToString();
    } else {
      EXPECT_EQ(FetchBytes(*client), testing::ReadFileBytes(env().Var("KEK_FILE")));
    }
  }
}

TEST_F(BarbicanIntegration, DeletedApplicationCredentialBlocksTheKeyManager) {
  auto cred = env().Admin({"appcred-new"});
  ASSERT_FALSE(cred["APP_CRED_ID"].empty());
  BarbicanConfig c = env().Config();
  c.application_cred_id = cred["APP_CRED_ID"];
  c.application_cred_secret = SecretFromString(cred["APP_CRED_SECRET"]).value();
  auto before = MakeClient(std::move(c));
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(FetchBytes(*before).size(), 32u);

  env().Admin({"appcred-delete", cred["APP_CRED_ID"]});
  BarbicanConfig c2 = env().Config();
  c2.application_cred_id = cred["APP_CRED_ID"];
  c2.application_cred_secret = SecretFromString(cred["APP_CRED_SECRET"]).value();
  auto after = MakeClient(std::move(c2));
  ASSERT_NE(after, nullptr);
  Status s = FetchError(*after);
  EXPECT_EQ(s.code(), ErrorCode::kKeyManagerBlocked) << s.ToString();
  EXPECT_EQ(s.numeric_code(), 65537556u);
  EXPECT_NE(s.message().find("HTTP 404"), std::string::npos)
      << s.ToString();  // Keystone: unknown id
  EXPECT_EQ(s.ToString().find(cred["APP_CRED_SECRET"]), std::string::npos);
  const Reachability r = after->CheckReachability();
  EXPECT_FALSE(r.reachable);
  EXPECT_EQ(r.code, ErrorCode::kKeyManagerBlocked);
}

TEST_F(BarbicanIntegration, WrongCredentialSecretBlocksTheKeyManager) {
  BarbicanConfig c = env().Config();
  c.application_cred_secret = SecretFromString("wrong-secret-6b2f0e").value();
  auto client = MakeClient(std::move(c));
  ASSERT_NE(client, nullptr);
  Status s = FetchError(*client);
  EXPECT_EQ(s.code(), ErrorCode::kKeyManagerBlocked) << s.ToString();
  EXPECT_NE(s.message().find("HTTP 401"), std::string::npos) << s.ToString();
  EXPECT_EQ(s.ToString().find("wrong-secret-6b2f0e"), std::string::npos);
}

TEST_F(BarbicanIntegration, DeletedSecretIsKeyIdNotFound) {
  auto secret = env().Admin({"secret-new"});
  ASSERT_FALSE(secret["SECRET_REF"].empty());
  const auto expected = testing::ReadFileBytes(secret["SECRET_FILE"]);
  ASSERT_EQ(expected.size(), 32u);
  BarbicanConfig c = env().Config();
  c.key_id = secret["SECRET_REF"];
  auto client = MakeClient(std::move(c));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(FetchBytes(*client), expected);

  env().Admin({"secret-delete", secret["SECRET_REF"]});
  Status s = FetchError(*client);
  EXPECT_EQ(s.code(), ErrorCode::kKeyIdNotFound) << s.ToString();
  EXPECT_EQ(s.numeric_code(), 65539834u);
  EXPECT_NE(s.message().find("HTTP 404"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(secret["SECRET_REF"]), std::string::npos) << s.ToString();
  const Reachability r = client->CheckReachability();
  EXPECT_FALSE(r.reachable);
  EXPECT_EQ(r.code, ErrorCode::kKeyIdNotFound) << r.message;
}

TEST_F(BarbicanIntegration, StoppedServicesAreUnreachable) {
  const int dead = testing::FreeLoopbackPort();
  ASSERT_GT(dead, 0);
  const std::string dead_host = "127.0.0.1:" + std::to_string(dead);
  {  // Keystone down
    BarbicanConfig c = env().Config();
    c.keystone_url = "https://" + dead_host + "/v3";
    auto client = MakeClient(std::move(c));
    ASSERT_NE(client, nullptr);
    const Reachability r = client->CheckReachability();
    EXPECT_FALSE(r.reachable);
    EXPECT_EQ(r.code, ErrorCode::kBarbicanUnreachable) << r.message;
    EXPECT_NE(r.message.find("65539801"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find(dead_host), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("Couldn't connect"), std::string::npos) << r.message;
  }
  {  // Barbican down, Keystone up
    BarbicanConfig c = env().Config();
    std::string key_id = env().Var("BARBICAN_KEY_ID");
    key_id.replace(key_id.find(env().Var("BARBICAN_PORT")), env().Var("BARBICAN_PORT").size(),
                   std::to_string(dead));
    c.key_id = key_id;
    auto client = MakeClient(std::move(c));
    ASSERT_NE(client, nullptr);
    Status s = FetchError(*client);
    EXPECT_EQ(s.code(), ErrorCode::kBarbicanUnreachable) << s.ToString();
    EXPECT_NE(s.message().find("Barbican at https://" + dead_host), std::string::npos)
        << s.ToString();
  }
}

TEST_F(BarbicanIntegration, ProxyThatPointsNowhereFailsClearly) {
  const int dead = testing::FreeLoopbackPort();
  for (ProxyType type : {ProxyType::kHttp, ProxyType::kHttps}) {
    BarbicanConfig c = env().Config();
    c.proxy_type = type;
    c.proxy_host = "127.0.0.1";
    c.proxy_port = dead;
    c.proxy_username = "proxyuser";
    c.proxy_password = SecretFromString("proxy-pw-3c9d").value();
    auto client = MakeClient(std::move(c));
    ASSERT_NE(client, nullptr);
    Status s = FetchError(*client);
    EXPECT_EQ(s.code(), ErrorCode::kBarbicanUnreachable) << s.ToString();
    EXPECT_NE(s.message().find("proxy 127.0.0.1:" + std::to_string(dead)), std::string::npos)
        << s.ToString();
    EXPECT_EQ(s.ToString().find("proxy-pw-3c9d"), std::string::npos);
  }
}

TEST_F(BarbicanIntegration, ProxyEnvironmentVariablesAreIgnoredWithoutAProxyConfig) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
  const char* names[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
  for (const char* n : names) setenv(n, dead.c_str(), 1);
  auto client = MakeClient(env().Config());
  std::vector<uint8_t> got = client ? FetchBytes(*client) : std::vector<uint8_t>{};
  for (const char* n : names) unsetenv(n);
  EXPECT_EQ(got, testing::ReadFileBytes(env().Var("KEK_FILE")));
}

TEST_F(BarbicanIntegration, SilentServerTimesOut) {
  // Accepts TCP (the kernel does, from the backlog) but never speaks TLS.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  BarbicanConfig c = env().Config();
  c.keystone_url = "https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/v3";
  c.timeout_seconds = 1;
  auto client = MakeClient(std::move(c));
  ASSERT_NE(client, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  Status s = FetchError(*client);
  const auto took = std::chrono::steady_clock::now() - t0;
  close(fd);
  EXPECT_EQ(s.code(), ErrorCode::kBarbicanUnreachable) << s.ToString();
  EXPECT_NE(s.message().find("Timeout"), std::string::npos) << s.ToString();
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(5));
}

// A TLS endpoint with the throwaway CA's certificate that answers like a broken
// Keystone or Barbican (garbage_tls_server.py), started once for these tests.
class GarbageEndpoint : public BarbicanIntegration {
 protected:
  static void SetUpTestSuite() {
    if (!KmsEnvironment::Get().ready()) return;
    int out[2];
    if (pipe(out) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    const std::string script =
        std::string(SVMKEY_SOURCE_ROOT) + "/tests/daemon/barbican/garbage_tls_server.py";
    std::string cert = KmsEnvironment::Get().Var("TLS_CERT");
    std::string key = KmsEnvironment::Get().Var("TLS_KEY");
    std::string py = "/usr/bin/python3";
    char* argv[] = {py.data(), const_cast<char*>(script.c_str()), cert.data(), key.data(), nullptr};
    if (posix_spawn(&pid_, py.c_str(), &fa, nullptr, argv, environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    char buf[32] = {};
    FILE* f = fdopen(out[0], "r");
    if (f != nullptr && fgets(buf, sizeof buf, f) != nullptr) port_ = std::atoi(buf);
    if (f != nullptr) fclose(f);
  }
  static void TearDownTestSuite() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  void SetUp() override {
    BarbicanIntegration::SetUp();
    ASSERT_GT(port_, 0) << "garbage_tls_server.py did not start";
  }
  std::string Base() const { return "https://127.0.0.1:" + std::to_string(port_); }

  static pid_t pid_;
  static int port_;
};
pid_t GarbageEndpoint::pid_ = -1;
int GarbageEndpoint::port_ = 0;

TEST_F(GarbageEndpoint, BrokenKeystoneRepliesAreUnparsable) {
  struct Case {
    const char* path;
    ErrorCode code;
    const char* says;
  } cases[] = {
      {"/keystone/no-token/v3", ErrorCode::kKeyValueStoreResponseUnparsable, "X-Subject-Token"},
      {"/keystone/bad-json/v3", ErrorCode::kKeyValueStoreResponseUnparsable, "not a JSON object"},
      {"/keystone/no-expiry/v3", ErrorCode::kKeyValueStoreResponseUnparsable, "expires_at"},
      {"/keystone/bad-expiry/v3", ErrorCode::kKeyValueStoreResponseUnparsable, "expires_at"},
      {"/keystone/500/v3", ErrorCode::kKeyValueStoreResponseUnparsable, "HTTP 500"},
      {"/raw/v3", ErrorCode::kKeyValueStoreResponseUnparsable, "not valid HTTP"},
      {"/keystone/401/v3", ErrorCode::kKeyManagerBlocked, "HTTP 401"},
  };
  for (const auto& tc : cases) {
    BarbicanConfig c = env().Config();
    c.keystone_url = Base() + tc.path;
    auto client = MakeClient(std::move(c));
    ASSERT_NE(client, nullptr);
    Status s = FetchError(*client);
    EXPECT_EQ(s.code(), tc.code) << tc.path << ": " << s.ToString();
    EXPECT_NE(s.message().find(tc.says), std::string::npos) << tc.path << ": " << s.ToString();
    const Reachability r = client->CheckReachability();
    EXPECT_FALSE(r.reachable) << tc.path;
    EXPECT_EQ(r.code, tc.code) << tc.path;
  }
}

TEST_F(GarbageEndpoint, BrokenBarbicanRepliesAreUnparsable) {
  struct Case {
    const char* secret;
    const char* says;
  } cases[] = {
      {"short", "31-byte payload"}, {"empty", "0-byte payload"}, {"long", "longer than 32 bytes"},
      {"500", "HTTP 500"},          {"418", "HTTP 418"},
  };
  for (const auto& tc : cases) {
    BarbicanConfig c = env().Config();  // the real Keystone gives a real token
    c.key_id = Base() + "/barbican/v1/secrets/" + tc.secret;
    auto client = MakeClient(std::move(c));
    ASSERT_NE(client, nullptr);
    Status s = FetchError(*client);
    EXPECT_EQ(s.code(), ErrorCode::kKeyValueStoreResponseUnparsable)
        << tc.secret << ": " << s.ToString();
    EXPECT_EQ(s.numeric_code(), 65539416u);
    EXPECT_NE(s.message().find(tc.says), std::string::npos) << tc.secret << ": " << s.ToString();
  }
  BarbicanConfig c = env().Config();
  c.key_id = Base() + "/barbican/v1/secrets/notjson";
  auto client = MakeClient(std::move(c));
  ASSERT_NE(client, nullptr);
  const Reachability r = client->CheckReachability();
  EXPECT_FALSE(r.reachable);
  EXPECT_EQ(r.code, ErrorCode::kKeyValueStoreResponseUnparsable) << r.message;
}

// Collects the messages of every failure this suite can provoke and checks that none
// carries the credential secret, a token or key bytes (raw, hex or base64).
TEST_F(GarbageEndpoint, SecretsTokensAndKeysNeverAppearInMessages) {
  const std::string secret = env().Var("APP_CRED_SECRET");
  const auto kek = testing::ReadFileBytes(env().Var("KEK_FILE"));
  ASSERT_EQ(kek.size(), 32u);
  const auto base64 = Sh("base64 -w0 " + ::svmkey::testing::Quote(env().Var("KEK_FILE")));
  ASSERT_EQ(base64.status, 0) << base64.err;
  const std::string b64 = base64.out;

  auto good = MakeClient(env().Config());
  ASSERT_NE(good, nullptr);
  ASSERT_EQ(FetchBytes(*good), kek);
  const std::string token = BarbicanClientTestPeer::CachedToken(*good);
  ASSERT_GT(token.size(), 20u);

  std::vector<std::string> messages;
  auto collect = [&](BarbicanConfig c) {
    auto client = MakeClient(std::move(c));
    if (!client) return;
    auto h = client->FetchExternalKey(*table_);
    if (h.ok()) {
      table_->Release(*h).IgnoreError();
      ADD_FAILURE() << "expected a failure";
    }
    messages.push_back(h.status().ToString());
    messages.push_back(client->CheckReachability().message);
  };
  {
    BarbicanConfig c = env().Config();
    c.keystone_url = Base() + "/keystone/500/v3";
    collect(std::move(c));
  }
  {
    BarbicanConfig c = env().Config();
    c.key_id = Base() + "/barbican/v1/secrets/long";
    collect(std::move(c));
  }
  {
    BarbicanConfig c = env().Config();
    c.application_cred_id = "0123456789abcdef0123456789abcdef";  // unknown id, real secret
    collect(std::move(c));
  }
  {
    BarbicanConfig c = env().Config();
    c.key_id = env().Var("BARBICAN_KEY_ID") + "0";  // no such secret
    collect(std::move(c));
  }
  {
    BarbicanConfig c = env().Config();
    c.ca_file.clear();
    collect(std::move(c));
  }
  {
    BarbicanConfig c = env().Config();
    c.proxy_host = "127.0.0.1";
    c.proxy_port = testing::FreeLoopbackPort();
    collect(std::move(c));
  }
  // The 401-refresh path with a rejected token still in hand.
  ASSERT_TRUE(BarbicanClientTestPeer::ReplaceCachedToken(*good, token + "x").ok());
  messages.push_back(good->CheckReachability().message);

  ASSERT_GE(messages.size(), 13u);
  for (const std::string& m : messages) {
    EXPECT_FALSE(m.empty());
    EXPECT_EQ(m.find(secret), std::string::npos) << "secret in: " << m.substr(0, 40);
    EXPECT_EQ(m.find(token.substr(0, 24)), std::string::npos) << "token in a message";
    EXPECT_EQ(m.find(Hex(kek).substr(0, 16)), std::string::npos) << "key hex in a message";
    EXPECT_EQ(m.find(b64.substr(0, 16)), std::string::npos) << "key base64 in a message";
    EXPECT_EQ(m.find(std::string(kek.begin(), kek.begin() + 8)), std::string::npos)
        << "key bytes in a message";
  }
}

}  // namespace
}  // namespace svmkey::barbican
