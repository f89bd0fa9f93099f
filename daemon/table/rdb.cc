#include "daemon/table/rdb.h"

#include "daemon/table/schema.h"

namespace svmkey::table {

Result<std::unique_ptr<Rdb>> Rdb::Open(RdbOptions options) {
  if (options.path.empty()) return Status(ErrorCode::kInvalidArgument, "no table path");
  std::string key_path = options.host_key_path;
  if (key_path.empty()) {
    if (options.host_key_is_credential) {
      return Status(ErrorCode::kInvalidArgument, "host key credential path not given");
    }
    const size_t slash = options.path.rfind('/');
    key_path = (slash == std::string::npos ? std::string() : options.path.substr(0, slash + 1)) +
               "host.key";
  }
  Result<HostKey> key = options.host_key_is_credential ? HostKey::LoadCredential(key_path)
                                                       : HostKey::LoadOrCreateFile(key_path);
  if (!key.ok()) return key.status();

  DbOptions db_options;
  db_options.busy_timeout = options.busy_timeout;
  Result<Db> db = Db::Open(options.path, db_options);
  if (!db.ok()) return db.status();
  Result<int64_t> found = MigrateToCurrent(db.value());
  if (!found.ok()) return found.status();

  std::unique_ptr<Rdb> rdb(
      new Rdb(std::move(options), std::move(db).value(), std::move(key).value()));
  rdb->opened_at_version_ = found.value();
  return rdb;
}

int64_t Rdb::NowMs() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status Rdb::CheckIntegrity() {
  Session s = Lock();
  Result<Statement> st = s.db().Prepare("PRAGMA integrity_check");
  if (!st.ok()) return st.status();
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return Status(ErrorCode::kUnexpectedException, "integrity_check: no answer");
  const std::string answer = st->ColumnText(0);
  if (answer != "ok") return Status(ErrorCode::kUnexpectedException, "integrity_check: " + answer);
  Result<int64_t> fk = s.db().QueryInt("SELECT count(*) FROM pragma_foreign_key_check");
  if (!fk.ok()) return fk.status();
  if (fk.value() != 0) {
    return Status(ErrorCode::kUnexpectedException,
                  std::to_string(fk.value()) + " foreign key violations");
  }
  return Status::Ok();
}

Status Rdb::Checkpoint() {
  Session s = Lock();
  return s.db().Exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

Result<Uuid> ParseStoredUuid(const std::string& text, std::string_view what) {
  std::optional<Uuid> u = Uuid::Parse(text);
  if (!u) {
    return Status(ErrorCode::kUnexpectedException,
                  "malformed " + std::string(what) + " uuid in the table: '" + text + "'");
  }
  return *u;
}

}  // namespace svmkey::table
