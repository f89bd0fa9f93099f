// Migrations: from an empty file, and from files written by hand with the DDL of every
// earlier version (frozen copies below, independent of schema.cc), checking that the
// data survives and the new columns get their defaults.
#include "daemon/table/schema.h"

#include <gtest/gtest.h>

#include "daemon/table/rdb.h"
#include "tests/daemon/table/table_test_util.h"

namespace svmkey::table {
namespace {

using testing::TempDir;

// Frozen: the DDL svmkeyd shipped as schema version 1.
constexpr char kV1Ddl[] = R"sql(
CREATE TABLE svms (uuid TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('admin', 'data'))) STRICT;
CREATE TABLE key_stores (uuid TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
  svm_uuid TEXT NOT NULL REFERENCES svms (uuid),
  type TEXT NOT NULL DEFAULT 'barbican' CHECK (type IN ('barbican')),
  enabled INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
  state TEXT NOT NULL CHECK (state IN ('active', 'initializing', 'disabling', 'switching',
                                       'blocked', 'svm_kek_rekey')),
  UNIQUE (svm_uuid, name)) STRICT;
CREATE UNIQUE INDEX key_stores_one_enabled ON key_stores (svm_uuid) WHERE enabled = 1;
CREATE TABLE barbican_configs (
  uuid TEXT PRIMARY KEY NOT NULL REFERENCES key_stores (uuid) ON DELETE CASCADE,
  key_id TEXT NOT NULL, keystone_url TEXT NOT NULL, application_cred_id TEXT NOT NULL,
  application_cred_secret BLOB NOT NULL,
  verify INTEGER NOT NULL DEFAULT 1 CHECK (verify IN (0, 1)),
  verify_host INTEGER NOT NULL DEFAULT 1 CHECK (verify_host IN (0, 1)),
  timeout INTEGER NOT NULL DEFAULT 10 CHECK (timeout >= 0),
  proxy_type TEXT NOT NULL DEFAULT 'https' CHECK (proxy_type IN ('http', 'https')),
  proxy_host TEXT NOT NULL DEFAULT '',
  proxy_port INTEGER NOT NULL DEFAULT 0 CHECK (proxy_port BETWEEN 0 AND 65535),
  proxy_username TEXT NOT NULL DEFAULT '', proxy_password BLOB,
  ca_file TEXT NOT NULL DEFAULT '', created_time INTEGER NOT NULL) STRICT;
CREATE TABLE svm_keks (svm_uuid TEXT NOT NULL REFERENCES svms (uuid),
  generation INTEGER NOT NULL CHECK (generation > 0),
  wrapped BLOB NOT NULL CHECK (length(wrapped) = 60), key_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired')),
  created_time INTEGER NOT NULL, PRIMARY KEY (svm_uuid, generation)) STRICT;
CREATE UNIQUE INDEX svm_keks_one_active ON svm_keks (svm_uuid) WHERE state = 'active';
CREATE UNIQUE INDEX svm_keks_one_pending ON svm_keks (svm_uuid) WHERE state = 'pending';
CREATE TABLE volumes (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,
  svm_uuid TEXT NOT NULL REFERENCES svms (uuid), name TEXT NOT NULL,
  dsid INTEGER NOT NULL CHECK (dsid > 0), metadata_path TEXT NOT NULL,
  generation INTEGER NOT NULL, flags INTEGER NOT NULL DEFAULT 0,
  UNIQUE (svm_uuid, name)) STRICT;
CREATE INDEX volumes_by_svm ON volumes (svm_uuid);
CREATE TABLE jobs (uuid TEXT PRIMARY KEY NOT NULL, description TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'paused', 'success', 'failure')),
  code INTEGER NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', svm_uuid TEXT,
  config_uuid TEXT, queued_time INTEGER NOT NULL, start_time INTEGER NOT NULL DEFAULT 0,
  end_time INTEGER NOT NULL DEFAULT 0, progress_done INTEGER NOT NULL DEFAULT 0,
  progress_total INTEGER NOT NULL DEFAULT 0) STRICT;
PRAGMA user_version = 1;
)sql";

// Frozen: what version 2 added.
constexpr char kV2Ddl[] = R"sql(
ALTER TABLE volumes ADD COLUMN key_manager TEXT NOT NULL DEFAULT 'data'
  CHECK (key_manager IN ('data', 'admin'));
ALTER TABLE volumes ADD COLUMN encryption_blob BLOB
  CHECK (encryption_blob IS NULL OR length(encryption_blob) = 512);
CREATE INDEX volumes_admin_keys ON volumes (svm_uuid) WHERE key_manager = 'admin';
PRAGMA user_version = 2;
)sql";

// Frozen: what version 3 added.
constexpr char kV3Ddl[] = R"sql(
ALTER TABLE jobs ADD COLUMN phase INTEGER NOT NULL DEFAULT 0 CHECK (phase BETWEEN 0 AND 7);
ALTER TABLE jobs ADD COLUMN parameters TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN new_generation INTEGER;
ALTER TABLE jobs ADD COLUMN updated_time INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET updated_time = max(queued_time, start_time, end_time);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_svm ON jobs (svm_uuid);
PRAGMA user_version = 3;
)sql";

// Rows every old file gets; valid at every version.
constexpr char kV1Data[] = R"sql(
INSERT INTO svms VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'vs1', 'data');
INSERT INTO key_stores VALUES ('aaaaaaaa-0000-4000-8000-000000000002', 'cfg1',
  'aaaaaaaa-0000-4000-8000-000000000001', 'barbican', 1, 'active');
INSERT INTO svm_keks VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 1, zeroblob(60),
  'https://b/v1/secrets/x', 'active', 5);
INSERT INTO volumes (uuid, svm_uuid, name, dsid, metadata_path, generation) VALUES
  ('aaaaaaaa-0000-4000-8000-000000000003', 'aaaaaaaa-0000-4000-8000-000000000001', 'v1', 7,
   '/m/v1', 1);
INSERT INTO jobs (uuid, description, state, code, message, svm_uuid, queued_time,
  start_time, end_time) VALUES ('aaaaaaaa-0000-4000-8000-000000000004', 'rekey', 'failure',
  65537565, 'write failed', 'aaaaaaaa-0000-4000-8000-000000000001', 100, 200, 300);
)sql";

void MakeFile(const std::string& path, int version) {
  Result<Db> db = Db::Open(path);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_OK(db->Exec(kV1Ddl));
  ASSERT_OK(db->Exec(kV1Data));
  if (version >= 2) ASSERT_OK(db->Exec(kV2Ddl));
  if (version >= 3) ASSERT_OK(db->Exec(kV3Ddl));
}

std::vector<std::string> Columns(Db& db, const std::string& table) {
  Result<Statement> st = db.Prepare("SELECT name FROM pragma_table_info('" + table + "')");
  std::vector<std::string> out;
  while (st->Step().value()) out.push_back(st->ColumnText(0));
  return out;
}

void ExpectCurrentShape(Db& db) {
  EXPECT_EQ(db.QueryInt("PRAGMA user_version").value(), kSchemaVersion);
  const std::vector<std::string> volumes = {"id", "uuid", "svm_uuid", "name", "dsid",
                                            "metadata_path", "generation", "flags",
                                            "key_manager", "encryption_blob"};
  EXPECT_EQ(Columns(db, "volumes"), volumes);
  const std::vector<std::string> jobs = {
      "uuid", "description", "state", "code", "message", "svm_uuid", "config_uuid",
      "queued_time", "start_time", "end_time", "progress_done", "progress_total", "phase",
      "parameters", "new_generation", "updated_time", "started_by_uid"};
  EXPECT_EQ(Columns(db, "jobs"), jobs);
  EXPECT_EQ(db.QueryInt("SELECT count(*) FROM sqlite_master WHERE name IN "
                        "('volumes_admin_keys', 'jobs_by_state', 'jobs_by_svm')")
                .value(),
            3);
}

TEST(SchemaTest, EmptyFileMigratesToCurrent) {
  TempDir dir;
  Result<Db> db = Db::Open(dir / "rdb.sqlite");
  ASSERT_TRUE(db.ok());
  Result<int64_t> from = MigrateToCurrent(db.value());
  ASSERT_TRUE(from.ok()) << from.status().ToString();
  EXPECT_EQ(from.value(), 0);
  ExpectCurrentShape(db.value());
  EXPECT_EQ(db->QueryInt("SELECT count(*) FROM svms").value(), 0);
}

class SchemaFromOldVersionTest : public ::testing::TestWithParam<int> {};

TEST_P(SchemaFromOldVersionTest, MigratesAndKeepsData) {
  const int version = GetParam();
  TempDir dir;
  const std::string path = dir / "rdb.sqlite";
  MakeFile(path, version);
  Result<Db> db = Db::Open(path);
  ASSERT_TRUE(db.ok());
  Result<int64_t> from = MigrateToCurrent(db.value());
  ASSERT_TRUE(from.ok()) << from.status().ToString();
  EXPECT_EQ(from.value(), version);
  ExpectCurrentShape(db.value());

  // Old rows survived, new columns carry their defaults.
  Result<Statement> vol = db->Prepare(
      "SELECT name, dsid, generation, key_manager, encryption_blob IS NULL FROM volumes");
  ASSERT_TRUE(vol->Step().value());
  EXPECT_EQ(vol->ColumnText(0), "v1");
  EXPECT_EQ(vol->ColumnInt(1), 7);
  EXPECT_EQ(vol->ColumnInt(2), 1);
  EXPECT_EQ(vol->ColumnText(3), "data");
  EXPECT_EQ(vol->ColumnInt(4), 1);
  Result<Statement> job = db->Prepare(
      "SELECT state, code, message, phase, parameters, new_generation IS NULL, updated_time, "
      "started_by_uid FROM jobs");
  ASSERT_TRUE(job->Step().value());
  EXPECT_EQ(job->ColumnText(0), "failure");
  EXPECT_EQ(job->ColumnInt(1), 65537565);
  EXPECT_EQ(job->ColumnText(2), "write failed");
  EXPECT_EQ(job->ColumnInt(3), 0);
  EXPECT_EQ(job->ColumnText(4), "{}");
  EXPECT_EQ(job->ColumnInt(5), 1);
  EXPECT_EQ(job->ColumnInt(6), 300);  // the latest of the old time stamps
  EXPECT_EQ(job->ColumnInt(7), 0);    // started before uids were recorded: shown as root
  EXPECT_EQ(db->QueryInt("SELECT count(*) FROM svm_keks WHERE state = 'active'").value(), 1);
  EXPECT_EQ(db->QueryInt("SELECT count(*) FROM key_stores WHERE enabled = 1").value(), 1);

  // A second open finds nothing to do.
  Result<int64_t> again = MigrateToCurrent(db.value());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value(), kSchemaVersion);
}

// Every version before the current one, so adding a version adds a case.
INSTANTIATE_TEST_SUITE_P(EveryEarlierVersion, SchemaFromOldVersionTest,
                         ::testing::Range(1, static_cast<int>(kSchemaVersion)));

TEST(SchemaTest, OldFileOpensThroughRdbAndReportsItsVersion) {
  TempDir dir;
  MakeFile(dir / "rdb.sqlite", 1);
  RdbOptions o;
  o.path = dir / "rdb.sqlite";
  Result<std::unique_ptr<Rdb>> rdb = Rdb::Open(o);
  ASSERT_TRUE(rdb.ok()) << rdb.status().ToString();
  EXPECT_EQ(rdb.value()->opened_at_version(), 1);
  EXPECT_OK(rdb.value()->CheckIntegrity());
}

TEST(SchemaTest, NewerFileIsRefusedUntouched) {
  TempDir dir;
  const std::string path = dir / "rdb.sqlite";
  {
    Result<Db> db = Db::Open(path);
    ASSERT_OK(db->Exec("CREATE TABLE future (x); PRAGMA user_version = 99;"));
  }
  Result<Db> db = Db::Open(path);
  Result<int64_t> r = MigrateToCurrent(db.value());
  ASSERT_FALSE(r.ok());
  EXPECT_CODE(r.status(), kNotSupported);
  EXPECT_EQ(db->QueryInt("PRAGMA user_version").value(), 99);
  EXPECT_EQ(db->QueryInt("SELECT count(*) FROM sqlite_master WHERE name = 'svms'").value(), 0);
}

TEST(SchemaTest, FailedStepLeavesThePreviousVersion) {
  TempDir dir;
  const std::string path = dir / "rdb.sqlite";
  MakeFile(path, 1);
  {
    // A v1 file that already has the index v2 creates: the v2 step fails part-way
    // (after its two ALTERs), and its transaction must take the ALTERs back too.
    Result<Db> db = Db::Open(path);
    ASSERT_OK(db->Exec("CREATE INDEX volumes_admin_keys ON volumes (svm_uuid)"));
  }
  Result<Db> db = Db::Open(path);
  Result<int64_t> r = MigrateToCurrent(db.value());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(db->QueryInt("PRAGMA user_version").value(), 1);
  EXPECT_EQ(Columns(db.value(), "volumes").size(), 8u);  // no key_manager, no blob
}

TEST(SchemaTest, StepsMatchTheVersionNumber) {
  EXPECT_EQ(static_cast<int64_t>(SchemaMigrations().size()), kSchemaVersion);
}

}  // namespace
}  // namespace svmkey::table
