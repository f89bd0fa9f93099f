#include "daemon/table/key_store_table.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/daemon/table/table_test_util.h"

namespace svmkey::table {
namespace {

using testing::kKeyId;
using testing::kKeystone;
using testing::NumberedUuid;
using testing::RdbTest;

// Made-up credentials for tests; the tests never print them.
constexpr char kSecret[] = "appcred-secret-7f3a9c1e5b2d4086";
constexpr char kProxyPassword[] = "proxy-password-c0ffee42beef";

std::string AsString(const SecureBuffer& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

class KeyStoreTableTest : public RdbTest {
 protected:
  void SetUp() override {
    RdbTest::SetUp();
    ASSERT_OK(SvmTable(*rdb_).Create({svm_, "vs1", SvmKind::kData}));
    ASSERT_OK(SvmTable(*rdb_).Create({admin_, "cluster1", SvmKind::kAdmin}));
  }
  NewBarbicanConfig Config(uint64_t n, const std::string& name) {
    NewBarbicanConfig c;
    c.uuid = NumberedUuid(0xc0, n);
    c.name = name;
    c.svm = svm_;
    c.key_id = kKeyId;
    c.keystone_url = kKeystone;
    c.application_cred_id = "cred-id-" + name;
    c.settings.timeout_s = 30;
    c.settings.ca_file = "/etc/svmkey/ca.pem";
    c.settings.proxy_host = "proxy0.test";  // kProxyPassword needs a proxy
    c.settings.proxy_port = 8080;
    return c;
  }
  const Uuid svm_ = NumberedUuid(0x5f, 1);
  const Uuid admin_ = NumberedUuid(0x5f, 2);
  KeyStoreTable table() { return KeyStoreTable(*rdb_); }
};

TEST_F(KeyStoreTableTest, CreateThenReadEverythingButSecrets) {
  const NewBarbicanConfig c = Config(1, "cfg1");
  ASSERT_OK(table().CreateBarbicanConfig(c, kSecret, kProxyPassword));
  Result<BarbicanConfigRow> row = table().GetBarbicanConfig(c.uuid);
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_EQ(row->key_store.uuid, c.uuid);
  EXPECT_EQ(row->key_store.name, "cfg1");
  EXPECT_EQ(row->key_store.svm, svm_);
  EXPECT_EQ(row->key_store.type, "barbican");
  EXPECT_FALSE(row->key_store.enabled);  // create yields an inactive configuration
  EXPECT_EQ(row->key_id, kKeyId);
  EXPECT_EQ(row->keystone_url, kKeystone);
  EXPECT_EQ(row->application_cred_id, "cred-id-cfg1");
  EXPECT_EQ(row->settings, c.settings);
  EXPECT_TRUE(row->has_proxy_password);
  EXPECT_EQ(row->created_time_ms, now_ms_.load());
  EXPECT_EQ(table().GetBarbicanConfigByName(svm_, "cfg1").value().key_store.uuid, c.uuid);

  // No text field of any read carries a secret.
  const std::vector<BarbicanConfigRow> all = table().ListBarbicanConfigs().value();
  ASSERT_EQ(all.size(), 1u);
  for (const BarbicanConfigRow& r : all) {
    for (const std::string* s : {&r.key_id, &r.keystone_url, &r.application_cred_id,
                                 &r.key_store.name, &r.settings.proxy_host,
                                 &r.settings.proxy_username, &r.settings.ca_file}) {
      EXPECT_EQ(s->find(kSecret), std::string::npos);
      EXPECT_EQ(s->find(kProxyPassword), std::string::npos);
    }
  }
}

TEST_F(KeyStoreTableTest, SecretsComeBackOnlyThroughTheExplicitCalls) {
  const NewBarbicanConfig c = Config(1, "cfg1");
  ASSERT_OK(table().CreateBarbicanConfig(c, kSecret, kProxyPassword));
  Result<SecureBuffer> secret = table().GetCredentialSecret(c.uuid);
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  EXPECT_TRUE(AsString(secret.value()) == kSecret);
  Result<SecureBuffer> proxy = table().GetProxyPassword(c.uuid);
  ASSERT_TRUE(proxy.ok());
  EXPECT_TRUE(AsString(proxy.value()) == kProxyPassword);
  EXPECT_CODE(table().GetCredentialSecret(NumberedUuid(0xc0, 9)).status(), kEntryNotFound);
}

TEST_F(KeyStoreTableTest, SecretsAreNotInTheFileOrItsWalInClear) {
  const NewBarbicanConfig c = Config(1, "cfg1");
  ASSERT_OK(table().CreateBarbicanConfig(c, kSecret, kProxyPassword));
  ASSERT_OK(table().UpdateCredentials(c.uuid, "cred-id-2", kSecret));
  // While the connection is open the rows live in the WAL; look there and in the file.
  const std::string wal = testing::ReadAllBytes(dir_ / "rdb.sqlite-wal");
  ASSERT_FALSE(wal.empty());
  EXPECT_NE(wal.find("cred-id-2"), std::string::npos);  // the scan can see plain text
  for (const std::string& raw : {wal, testing::ReadAllBytes(dir_ / "rdb.sqlite")}) {
    EXPECT_EQ(raw.find(kSecret), std::string::npos);
    EXPECT_EQ(raw.find(kProxyPassword), std::string::npos);
  }
  ASSERT_OK(rdb_->Checkpoint());
  const std::string main = testing::ReadAllBytes(dir_ / "rdb.sqlite");
  EXPECT_NE(main.find("cred-id-2"), std::string::npos);
  EXPECT_EQ(main.find(kSecret), std::string::npos);
  EXPECT_EQ(main.find(kProxyPassword), std::string::npos);
}

TEST_F(KeyStoreTableTest, SecretSealedForOneRowDoesNotOpenInAnother) {
  ASSERT_OK(table().CreateBarbicanConfig(Config(1, "cfg1"), kSecret));
  ASSERT_OK(table().CreateBarbicanConfig(Config(2, "cfg2"), "another-secret"));
  {
    // Someone with write access to the file copies cfg1's sealed secret into cfg2.
    Rdb::Session s = rdb_->Lock();
    ASSERT_OK(s.db().Exec(
        "UPDATE barbican_configs SET application_cred_secret = (SELECT application_cred_secret "
        "FROM barbican_configs WHERE uuid = '" + NumberedUuid(0xc0, 1).ToString() +
        "') WHERE uuid = '" + NumberedUuid(0xc0, 2).ToString() + "'"));
  }
  EXPECT_CODE(table().GetCredentialSecret(NumberedUuid(0xc0, 2)).status(), kDecryptFailed);
}

struct CreateErrorCase {
  const char* what;
  std::function<void(NewBarbicanConfig&)> mutate;
  const char* secret;
  ErrorCode expected;
};

TEST_F(KeyStoreTableTest, CreateValidatesEveryField) {
  const CreateErrorCase cases[] = {
      {"plain http key_id", [](NewBarbicanConfig& c) { c.key_id = "http://b/v1/secrets/x"; },
       kSecret, ErrorCode::kInvalidKeyId},
      {"empty key_id", [](NewBarbicanConfig& c) { c.key_id.clear(); }, kSecret,
       ErrorCode::kInvalidKeyId},
      {"http keystone", [](NewBarbicanConfig& c) { c.keystone_url = "http://k:5000"; }, kSecret,
       ErrorCode::kInvalidKeystoneUrl},
      {"empty cred id", [](NewBarbicanConfig& c) { c.application_cred_id.clear(); }, kSecret,
       ErrorCode::kEmptyCredentialId},
      {"empty secret", [](NewBarbicanConfig&) {}, "", ErrorCode::kInvalidCredentialSecret},
      {"empty name", [](NewBarbicanConfig& c) { c.name.clear(); }, kSecret,
       ErrorCode::kMissingValue},
      {"bad proxy type", [](NewBarbicanConfig& c) { c.settings.proxy_type = "socks5"; }, kSecret,
       ErrorCode::kInvalidValue},
      {"unknown svm", [](NewBarbicanConfig& c) { c.svm = NumberedUuid(0x5f, 77); }, kSecret,
       ErrorCode::kSvmNotFound},
      {"admin svm", [this](NewBarbicanConfig& c) { c.svm = admin_; }, kSecret,
       ErrorCode::kAdminSvmNotSupported},
  };
  for (const CreateErrorCase& c : cases) {
    NewBarbicanConfig cfg = Config(5, "cfg5");
    c.mutate(cfg);
    EXPECT_EQ(table().CreateBarbicanConfig(cfg, c.secret).code(), c.expected) << c.what;
  }
  EXPECT_TRUE(table().ListKeyStores().value().empty());  // nothing half-created
}

TEST_F(KeyStoreTableTest, DuplicateNameInTheSameSvmIsRefused) {
  ASSERT_OK(table().CreateBarbicanConfig(Config(1, "cfg1"), kSecret));
  EXPECT_CODE(table().CreateBarbicanConfig(Config(2, "cfg1"), kSecret), kDuplicateConfigName);
  EXPECT_CODE(table().CreateBarbicanConfig(Config(1, "cfg9"), kSecret), kDuplicateEntry);
  // The same name in another SVM is fine.
  const Uuid vs2 = NumberedUuid(0x5f, 3);
  ASSERT_OK(SvmTable(*rdb_).Create({vs2, "vs2", SvmKind::kData}));
  NewBarbicanConfig other = Config(3, "cfg1");
  other.svm = vs2;
  EXPECT_OK(table().CreateBarbicanConfig(other, kSecret));
}

TEST_F(KeyStoreTableTest, UpdateCredentialsReplacesIdAndSecretTogether) {
  const NewBarbicanConfig c = Config(1, "cfg1");
  ASSERT_OK(table().CreateBarbicanConfig(c, kSecret));
  ASSERT_OK(table().UpdateCredentials(c.uuid, "new-id", "new-secret-value"));
  EXPECT_EQ(table().GetBarbicanConfig(c.uuid).value().application_cred_id, "new-id");
  EXPECT_TRUE(AsString(table().GetCredentialSecret(c.uuid).value()) == "new-secret-value");
  EXPECT_CODE(table().UpdateCredentials(c.uuid, "", "x"), kPatchInvalidCredentialId);
  EXPECT_CODE(table().UpdateCredentials(c.uuid, "x", ""), kPatchInvalidCredentialSecret);
  EXPECT_CODE(table().UpdateCredentials(NumberedUuid(0xc0, 9), "x", "y"), kConfigNotFound);
}

TEST_F(KeyStoreTableTest, UpdateSettingsChangesOnlyWhatThePatchNames) {
  const NewBarbicanConfig c = Config(1, "cfg1");
  ASSERT_OK(table().CreateBarbicanConfig(c, kSecret, kProxyPassword));
  BarbicanSettingsPatch patch;
  patch.verify_host = false;
  patch.proxy_host = "proxy.test";
  patch.proxy_port = 3128;
  ASSERT_OK(table().UpdateSettings(c.uuid, patch));
  BarbicanSettings expected = c.settings;
  expected.verify_host = false;
  expected.proxy_host = "proxy.test";
  expected.proxy_port = 3128;
  BarbicanConfigRow row = table().GetBarbicanConfig(c.uuid).value();
  EXPECT_EQ(row.settings, expected);
  EXPECT_TRUE(row.has_proxy_password);  // not part of the patch: kept

  ASSERT_OK(table().UpdateSettings(c.uuid, {}, "other-proxy-pw"));
  EXPECT_TRUE(AsString(table().GetProxyPassword(c.uuid).value()) == "other-proxy-pw");
  ASSERT_OK(table().UpdateSettings(c.uuid, {}, ""));  // empty removes it
  EXPECT_FALSE(table().GetBarbicanConfig(c.uuid).value().has_proxy_password);
  EXPECT_CODE(table().GetProxyPassword(c.uuid).status(), kEntryNotFound);

  EXPECT_CODE(table().UpdateSettings(c.uuid, {}), kNothingToChange);
  BarbicanSettingsPatch bad;
  bad.proxy_type = "ftp";
  EXPECT_CODE(table().UpdateSettings(c.uuid, bad), kInvalidValue);
  EXPECT_CODE(table().UpdateSettings(NumberedUuid(0xc0, 9), patch), kConfigNotFound);
}

// A proxy port, user name or password without a proxy host (or a host without a port)
// breaks every later enable and rekey of the SVM: refused on create and on update, where
// the merged result counts, and a refused update changes nothing.
TEST_F(KeyStoreTableTest, ProxySettingsWithoutAHostAreRefused) {
  NewBarbicanConfig c = Config(1, "cfg1");
  c.settings.proxy_host.clear();
  EXPECT_CODE(table().CreateBarbicanConfig(c, kSecret), kInvalidValue);  // port, no host
  c.settings.proxy_port = 0;
  EXPECT_CODE(table().CreateBarbicanConfig(c, kSecret, kProxyPassword), kInvalidValue);
  c.settings.proxy_username = "proxy-user";
  EXPECT_CODE(table().CreateBarbicanConfig(c, kSecret), kInvalidValue);
  c.settings.proxy_username.clear();
  c.settings.proxy_host = "proxy.test";
  EXPECT_CODE(table().CreateBarbicanConfig(c, kSecret), kInvalidValue);  // host, no port
  c.settings.proxy_host.clear();
  ASSERT_OK(table().CreateBarbicanConfig(c, kSecret));  // no proxy at all

  BarbicanSettingsPatch port_only;
  port_only.proxy_port = 3128;
  EXPECT_CODE(table().UpdateSettings(c.uuid, port_only), kInvalidValue);
  BarbicanSettingsPatch user_only;
  user_only.proxy_username = "proxy-user";
  EXPECT_CODE(table().UpdateSettings(c.uuid, user_only), kInvalidValue);
  EXPECT_CODE(table().UpdateSettings(c.uuid, {}, "proxy-pw"), kInvalidValue);
  EXPECT_EQ(table().GetBarbicanConfig(c.uuid).value().settings, c.settings);
  EXPECT_FALSE(table().GetBarbicanConfig(c.uuid).value().has_proxy_password);

  BarbicanSettingsPatch proxy;
  proxy.proxy_host = "proxy.test";
  proxy.proxy_port = 3128;
  ASSERT_OK(table().UpdateSettings(c.uuid, proxy, "proxy-pw"));
  BarbicanSettingsPatch drop_host;  // would leave port and password behind
  drop_host.proxy_host = "";
  EXPECT_CODE(table().UpdateSettings(c.uuid, drop_host), kInvalidValue);
  EXPECT_EQ(table().GetBarbicanConfig(c.uuid).value().settings.proxy_host, "proxy.test");
  BarbicanSettingsPatch drop_all;  // the whole proxy removed at once is fine
  drop_all.proxy_host = "";
  drop_all.proxy_port = 0;
  ASSERT_OK(table().UpdateSettings(c.uuid, drop_all, ""));
  EXPECT_EQ(table().GetBarbicanConfig(c.uuid).value().settings, c.settings);
}

TEST_F(KeyStoreTableTest, EnableFirstThenSwitchThenResume) {
  const Uuid a = NumberedUuid(0xc0, 1), b = NumberedUuid(0xc0, 2), c = NumberedUuid(0xc0, 3);
  ASSERT_OK(table().CreateBarbicanConfig(Config(1, "a"), kSecret));
  ASSERT_OK(table().CreateBarbicanConfig(Config(2, "b"), kSecret));
  ASSERT_OK(table().CreateBarbicanConfig(Config(3, "c"), kSecret));
  EXPECT_FALSE(table().GetEnabledKeyStore(svm_).value().has_value());

  Result<EnableOutcome> first = table().Enable(a);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->kind, EnableOutcome::Kind::kEnabled);
  EXPECT_EQ(first->state, KeyStoreState::kActive);
  EXPECT_EQ(table().GetEnabledKeyStore(svm_).value()->uuid, a);
  EXPECT_CODE(table().Enable(a).status(), kKeystoreAlreadyEnabled);

  Result<EnableOutcome> sw = table().Enable(b);
  ASSERT_TRUE(sw.ok());
  EXPECT_EQ(sw->kind, EnableOutcome::Kind::kSwitchStarted);
  EXPECT_EQ(sw->previous, a);
  KeyStoreRow now_b = table().GetKeyStore(b).value();
  EXPECT_TRUE(now_b.enabled);
  EXPECT_EQ(now_b.state, KeyStoreState::kSwitching);
  EXPECT_FALSE(table().GetKeyStore(a).value().enabled);

  Result<EnableOutcome> resume = table().Enable(b);  // a stuck switch is re-run
  ASSERT_TRUE(resume.ok());
  EXPECT_EQ(resume->kind, EnableOutcome::Kind::kSwitchResumed);

  ASSERT_OK(table().SetState(b, KeyStoreState::kActive));
  ASSERT_OK(table().SetState(b, KeyStoreState::kSvmKekRekey));
  EXPECT_CODE(table().Enable(c).status(), kSwitchRefused);  // no switch during a rekey
  EXPECT_CODE(table().Enable(NumberedUuid(0xc0, 9)).status(), kKeystoreUnknown);
  // Exactly one enabled key store per SVM throughout.
  int enabled = 0;
  const std::vector<KeyStoreRow> stores = table().ListKeyStores(svm_).value();
  for (const KeyStoreRow& r : stores) enabled += r.enabled;
  EXPECT_EQ(enabled, 1);
}

TEST_F(KeyStoreTableTest, SetStateFollowsTheTransitionTable) {
  const Uuid a = NumberedUuid(0xc0, 1);
  ASSERT_OK(table().CreateBarbicanConfig(Config(1, "a"), kSecret));
  ASSERT_TRUE(table().Enable(a).ok());
  // Walk every pair: force `from` with raw SQL, then ask for `to`.
  for (KeyStoreState from : kAllKeyStoreStates) {
    for (KeyStoreState to : kAllKeyStoreStates) {
      {
        Rdb::Session s = rdb_->Lock();
        ASSERT_OK(s.db().Exec("UPDATE key_stores SET state = '" + std::string(ToString(from)) +
                              "' WHERE uuid = '" + a.ToString() + "'"));
      }
      Status st = table().SetState(a, to);
      const KeyStoreState after = table().GetKeyStore(a).value().state;
      if (IsAllowedTransition(from, to)) {
        EXPECT_TRUE(st.ok()) << ToString(from) << " -> " << ToString(to);
        EXPECT_EQ(after, to);
      } else {
        EXPECT_CODE(st, kInvalidValue);
        EXPECT_EQ(after, from);
      }
    }
  }
  EXPECT_CODE(table().SetState(NumberedUuid(0xc0, 9), KeyStoreState::kActive), kKeystoreUnknown);
}

TEST_F(KeyStoreTableTest, DeleteOnlyInactiveUnusedConfigurations) {
  const Uuid a = NumberedUuid(0xc0, 1), b = NumberedUuid(0xc0, 2);
  ASSERT_OK(table().CreateBarbicanConfig(Config(1, "a"), kSecret));
  NewBarbicanConfig cb = Config(2, "b");
  cb.key_id = "https://barbican.test:9311/v1/secrets/other";
  ASSERT_OK(table().CreateBarbicanConfig(cb, kSecret));
  ASSERT_TRUE(table().Enable(a).ok());
  ASSERT_OK(SvmKekTable(*rdb_).InsertInitialActive(svm_, 1, testing::FakeWrapped(1), kKeyId));
  EXPECT_CODE(table().Delete(a), kKeystoreStillEnabled);
  ASSERT_TRUE(table().Enable(b).ok());  // switch: a is no longer enabled...
  // ...but the active SVM-KEK is still wrapped under a's key_id until the switch ends.
  EXPECT_CODE(table().Delete(a), kResourceInUse);
  EXPECT_CODE(table().Delete(NumberedUuid(0xc0, 9)), kKeystoreUnknown);
  {
    // The switch rewrapped the SVM-KEK under b's key.
    Rdb::Session s = rdb_->Lock();
    ASSERT_OK(s.db().Exec("UPDATE svm_keks SET key_id = '" + cb.key_id + "'"));
  }
  ASSERT_OK(table().Delete(a));
  EXPECT_CODE(table().GetBarbicanConfig(a).status(), kEntryNotFound);
  EXPECT_CODE(table().GetKeyStore(a).status(), kKeystoreUnknown);
  EXPECT_OK(rdb_->CheckIntegrity());
}

}  // namespace
}  // namespace svmkey::table
