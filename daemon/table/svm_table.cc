#include "daemon/table/svm_table.h"

namespace svmkey::table {
namespace {

Result<SvmRow> ReadSvm(const Statement& st) {
  Result<Uuid> uuid = ParseStoredUuid(st.ColumnText(0), "svm");
  if (!uuid.ok()) return uuid.status();
  std::optional<SvmKind> kind = SvmKindFromString(st.ColumnText(2));
  if (!kind) return Status(ErrorCode::kUnexpectedException, "malformed svm kind");
  return SvmRow{uuid.value(), st.ColumnText(1), *kind};
}

Result<SvmRow> GetOne(Rdb& rdb, const char* sql, const std::string& key) {
  Rdb::Session s = rdb.Lock();
  Result<Statement> st = s.db().Cached(sql);
  if (!st.ok()) return st.status();
  st->Bind(1, key);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return Status(ErrorCode::kSvmNotFound, "svm " + key);
  return ReadSvm(st.value());
}

}  // namespace

Status SvmTable::Create(const SvmRow& svm) {
  if (svm.name.empty()) return Status(ErrorCode::kInvalidSvmName, "empty SVM name");
  Rdb::Session s = rdb_.Lock();
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return txn.status();
  Result<Statement> st =
      s.db().Cached("INSERT INTO svms (uuid, name, kind) VALUES (?1, ?2, ?3)");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.uuid.ToString()).Bind(2, svm.name).Bind(3, ToString(svm.kind));
  Status run = st->Run();
  if (!run.ok()) {
    if (run.code() == ErrorCode::kDuplicateEntry) {
      // Name the SVM that is in the way (same name or same uuid), not the new row's
      // uuid, which exists nowhere.
      Result<Statement> existing = s.db().Cached(
          "SELECT uuid, name FROM svms WHERE name = ?1 OR uuid = ?2 ORDER BY name = ?1 DESC "
          "LIMIT 1");
      if (!existing.ok()) return existing.status();
      existing->Bind(1, svm.name).Bind(2, svm.uuid.ToString());
      Result<bool> found = existing->Step();
      if (!found.ok()) return found.status();
      if (!found.value()) return run;
      return Status(ErrorCode::kDuplicateEntry, "SVM " + existing->ColumnText(1) + " (" +
                                                    existing->ColumnText(0) + ") already exists");
    }
    return run;
  }
  return txn->Commit();
}

Result<SvmRow> SvmTable::Get(const Uuid& uuid) {
  return GetOne(rdb_, "SELECT uuid, name, kind FROM svms WHERE uuid = ?1", uuid.ToString());
}

Result<SvmRow> SvmTable::GetByName(const std::string& name) {
  return GetOne(rdb_, "SELECT uuid, name, kind FROM svms WHERE name = ?1", name);
}

Result<std::vector<SvmRow>> SvmTable::List() {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached("SELECT uuid, name, kind FROM svms ORDER BY name");
  if (!st.ok()) return st.status();
  std::vector<SvmRow> out;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    Result<SvmRow> svm = ReadSvm(st.value());
    if (!svm.ok()) return svm.status();
    out.push_back(std::move(svm).value());
  }
  return out;
}

}  // namespace svmkey::table
