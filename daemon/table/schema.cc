#include "daemon/table/schema.h"

#include <array>
#include <string>

namespace svmkey::table {
namespace {

// Times are Unix milliseconds (INTEGER). UUIDs are canonical lower-case text, so the
// file stays readable with the sqlite3 shell. Secrets are sealed BLOBs (host_key.h).
constexpr std::string_view kV1 = R"sql(
CREATE TABLE svms (
  uuid TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('admin', 'data'))
) STRICT;

-- One row per key-store configuration of an SVM. The Barbican config of the same
-- uuid (1:1) holds the connection settings; name and SVM live here only.
CREATE TABLE key_stores (
  uuid TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  svm_uuid TEXT NOT NULL REFERENCES svms (uuid),
  type TEXT NOT NULL DEFAULT 'barbican' CHECK (type IN ('barbican')),
  enabled INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
  state TEXT NOT NULL CHECK (state IN ('active', 'initializing', 'disabling', 'switching',
                                       'blocked', 'svm_kek_rekey')),
  UNIQUE (svm_uuid, name)
) STRICT;
-- At most one enabled key store per SVM, enforced by the file itself.
CREATE UNIQUE INDEX key_stores_one_enabled ON key_stores (svm_uuid) WHERE enabled = 1;

CREATE TABLE barbican_configs (
  uuid TEXT PRIMARY KEY NOT NULL REFERENCES key_stores (uuid) ON DELETE CASCADE,
  key_id TEXT NOT NULL,
  keystone_url TEXT NOT NULL,
  application_cred_id TEXT NOT NULL,
  application_cred_secret BLOB NOT NULL,  -- sealed
  verify INTEGER NOT NULL DEFAULT 1 CHECK (verify IN (0, 1)),
  verify_host INTEGER NOT NULL DEFAULT 1 CHECK (verify_host IN (0, 1)),
  timeout INTEGER NOT NULL DEFAULT 10 CHECK (timeout >= 0),
  proxy_type TEXT NOT NULL DEFAULT 'https' CHECK (proxy_type IN ('http', 'https')),
  proxy_host TEXT NOT NULL DEFAULT '',
  proxy_port INTEGER NOT NULL DEFAULT 0 CHECK (proxy_port BETWEEN 0 AND 65535),
  proxy_username TEXT NOT NULL DEFAULT '',
  proxy_password BLOB,  -- sealed; NULL when none
  ca_file TEXT NOT NULL DEFAULT '',
  created_time INTEGER NOT NULL
) STRICT;

CREATE TABLE svm_keks (
  svm_uuid TEXT NOT NULL REFERENCES svms (uuid),
  generation INTEGER NOT NULL CHECK (generation > 0),
  wrapped BLOB NOT NULL CHECK (length(wrapped) = 60),  -- nonce ‖ ciphertext ‖ tag
  key_id TEXT NOT NULL,  -- the Barbican secret it is wrapped under
  state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired')),
  created_time INTEGER NOT NULL,
  PRIMARY KEY (svm_uuid, generation)
) STRICT;
CREATE UNIQUE INDEX svm_keks_one_active ON svm_keks (svm_uuid) WHERE state = 'active';
CREATE UNIQUE INDEX svm_keks_one_pending ON svm_keks (svm_uuid) WHERE state = 'pending';

-- id is the stable cursor for keyset paging (an explicit INTEGER PRIMARY KEY is never
-- renumbered by VACUUM, unlike an implicit rowid).
CREATE TABLE volumes (
  id INTEGER PRIMARY KEY,
  uuid TEXT NOT NULL UNIQUE,
  svm_uuid TEXT NOT NULL REFERENCES svms (uuid),
  name TEXT NOT NULL,
  dsid INTEGER NOT NULL CHECK (dsid > 0),
  metadata_path TEXT NOT NULL,
  generation INTEGER NOT NULL,
  flags INTEGER NOT NULL DEFAULT 0,
  UNIQUE (svm_uuid, name)
) STRICT;
CREATE INDEX volumes_by_svm ON volumes (svm_uuid);

CREATE TABLE jobs (
  uuid TEXT PRIMARY KEY NOT NULL,
  description TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'paused', 'success', 'failure')),
  code INTEGER NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  svm_uuid TEXT,
  config_uuid TEXT,
  queued_time INTEGER NOT NULL,
  start_time INTEGER NOT NULL DEFAULT 0,
  end_time INTEGER NOT NULL DEFAULT 0,
  progress_done INTEGER NOT NULL DEFAULT 0,
  progress_total INTEGER NOT NULL DEFAULT 0
) STRICT;
)sql";

constexpr std::string_view kV2 = R"sql(
ALTER TABLE volumes ADD COLUMN key_manager TEXT NOT NULL DEFAULT 'data'
  CHECK (key_manager IN ('data', 'admin'));
ALTER TABLE volumes ADD COLUMN encryption_blob BLOB
  CHECK (encryption_blob IS NULL OR length(encryption_blob) = 512);
-- Partial: admin-managed keys are the rare exception the rekey precheck (65537547)
-- looks for, so the index stays tiny and bulk inserts of data volumes never touch it.
CREATE INDEX volumes_admin_keys ON volumes (svm_uuid) WHERE key_manager = 'admin';
)sql";

constexpr std::string_view kV3 = R"sql(
ALTER TABLE jobs ADD COLUMN phase INTEGER NOT NULL DEFAULT 0 CHECK (phase BETWEEN 0 AND 7);
ALTER TABLE jobs ADD COLUMN parameters TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN new_generation INTEGER;
ALTER TABLE jobs ADD COLUMN updated_time INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET updated_time = max(queued_time, start_time, end_time);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_svm ON jobs (svm_uuid);
)sql";

// The uid of the caller that started each job (Job1.StartedByUID, udisks2's
// Job.StartedByUID). Rows of earlier versions were started by root or a member of
// group svmkey; 0 (root) is what they show.
constexpr std::string_view kV4 = R"sql(
ALTER TABLE jobs ADD COLUMN started_by_uid INTEGER NOT NULL DEFAULT 0
  CHECK (started_by_uid BETWEEN 0 AND 4294967295);
)sql";

constexpr std::array<std::string_view, 4> kSteps = {kV1, kV2, kV3, kV4};
static_assert(kSteps.size() == kSchemaVersion);

}  // namespace

std::span<const std::string_view> SchemaMigrations() { return kSteps; }

Result<int64_t> MigrateToCurrent(Db& db) {
  Result<int64_t> found = db.QueryInt("PRAGMA user_version");
  if (!found.ok()) return found.status();
  const int64_t start = found.value();
  if (start > kSchemaVersion) {
    return Status(ErrorCode::kNotSupported,
                  db.path() + " has schema version " + std::to_string(start) +
                      ", newer than this svmkeyd understands (" +
                      std::to_string(kSchemaVersion) + ")");
  }
  if (start < 0) {
    return Status(ErrorCode::kInvalidValue, db.path() + " has a negative schema version");
  }
  for (int64_t v = start; v < kSchemaVersion; ++v) {
    Result<Transaction> txn = Transaction::Begin(db);
    if (!txn.ok()) return txn.status();
    // Re-read under the write lock: another process may have migrated meanwhile.
    Result<int64_t> now = db.QueryInt("PRAGMA user_version");
    if (!now.ok()) return now.status();
    if (now.value() > v) continue;  // the Transaction destructor rolls back (no writes)
    SVMKEY_RETURN_IF_ERROR(db.Exec(kSteps[static_cast<size_t>(v)]));
    SVMKEY_RETURN_IF_ERROR(db.Exec("PRAGMA user_version = " + std::to_string(v + 1)));
    // COMMIT POINT: the file is at version v + 1. A crash before leaves it at v, and the
    // next open repeats this step from the start.
    SVMKEY_RETURN_IF_ERROR(txn->Commit());
  }
  return start;
}

}  // namespace svmkey::table
