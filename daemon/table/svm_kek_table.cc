#include "daemon/table/svm_kek_table.h"

#include <cstring>

#include "daemon/table/table_internal.h"
#include "daemon/table/volume_table.h"

namespace svmkey::table {
namespace {

#define KEK_COLUMNS "svm_uuid, generation, wrapped, key_id, state, created_time"

Result<SvmKekRow> ReadKek(const Statement& st) {
  Result<Uuid> svm = ParseStoredUuid(st.ColumnText(0), "svm");
  if (!svm.ok()) return svm.status();
  std::optional<SvmKekState> state = SvmKekStateFromString(st.ColumnText(4));
  if (!state) return Status(ErrorCode::kUnexpectedException, "malformed SVM-KEK state");
  std::span<const uint8_t> wrapped = st.ColumnBlob(2);
  if (wrapped.size() != kWrappedSvmKekBytes) {
    return Status(ErrorCode::kUnexpectedException, "wrapped SVM-KEK has the wrong size");
  }
  SvmKekRow row;
  row.svm = svm.value();
  row.generation = static_cast<uint64_t>(st.ColumnInt(1));
  std::memcpy(row.wrapped.data(), wrapped.data(), kWrappedSvmKekBytes);
  row.key_id = st.ColumnText(3);
  row.state = *state;
  row.created_time_ms = st.ColumnInt(5);
  return row;
}

// One key by SVM and state ("active" / "pending"); EntryNotFound when absent.
Result<SvmKekRow> LoadByState(Db& db, const Uuid& svm, std::string_view state) {
  Result<Statement> st =
      db.Cached("SELECT " KEK_COLUMNS " FROM svm_keks WHERE svm_uuid = ?1 AND state = ?2");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString()).Bind(2, state);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) {
    return Status(ErrorCode::kEntryNotFound,
                  "SVM " + svm.ToString() + " has no " + std::string(state) + " SVM-KEK");
  }
  return ReadKek(st.value());
}

Status InsertKek(Db& db, const Uuid& svm, uint64_t generation, const WrappedSvmKek& wrapped,
                 const std::string& key_id, SvmKekState state, int64_t now) {
  Result<Statement> st = db.Cached(
      "INSERT INTO svm_keks (svm_uuid, generation, wrapped, key_id, state, created_time) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString())
      .Bind(2, static_cast<int64_t>(generation))
      .Bind(3, std::span<const uint8_t>(wrapped))
      .Bind(4, key_id)
      .Bind(5, ToString(state))
      .Bind(6, now);
  return st->Run();
}

Status SetKekState(Db& db, const Uuid& svm, uint64_t generation, SvmKekState state) {
  Result<Statement> st =
      db.Cached("UPDATE svm_keks SET state = ?3 WHERE svm_uuid = ?1 AND generation = ?2");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString()).Bind(2, static_cast<int64_t>(generation)).Bind(3, ToString(state));
  return st->Run();
}

// The key store must be the SVM's enabled one and may enter svm_kek_rekey.
Status CheckRekeyKeyStore(Db& db, const Uuid& svm, const Uuid& key_store) {
  Result<KeyStoreRow> ks = LoadKeyStoreLocked(db, key_store);
  if (!ks.ok()) return ks.status();
  if (!(ks->svm == svm) || !ks->enabled) {
    return Status(ErrorCode::kBarbicanNotConfigured,
                  "key store " + key_store.ToString() + " is not the enabled one of SVM " +
                      svm.ToString());
  }
  if (!IsAllowedTransition(ks->state, KeyStoreState::kSvmKekRekey)) {
    return Status(ErrorCode::kInvalidValue, "key store " + key_store.ToString() + " is " +
                                                std::string(ToString(ks->state)));
  }
  return Status::Ok();
}

// The SVM exists and gets `generation` as its first, active SVM-KEK.
Status InsertInitialActiveLocked(Db& db, const Uuid& svm, uint64_t generation,
                                 const WrappedSvmKek& wrapped, const std::string& key_id,
                                 int64_t now) {
  {
    Result<Statement> st = db.Cached("SELECT 1 FROM svms WHERE uuid = ?1");
    if (!st.ok()) return st.status();
    st->Bind(1, svm.ToString());
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) return Status(ErrorCode::kSvmNotFound, "svm " + svm.ToString());
  }
  Status ins = InsertKek(db, svm, generation, wrapped, key_id, SvmKekState::kActive, now);
  if (ins.code() == ErrorCode::kDuplicateEntry) {
    return Status(ErrorCode::kDuplicateEntry, "SVM " + svm.ToString() + " already has an "
                                              "active SVM-KEK or generation " +
                                                  std::to_string(generation));
  }
  return ins;
}

}  // namespace

Status SvmKekTable::InsertInitialActive(const Uuid& svm, uint64_t generation,
                                        const WrappedSvmKek& wrapped, const std::string& key_id) {
  // No volumes: the SVM's first encrypted volume is created under the key afterwards.
  return InsertInitialActiveWithVolumes(svm, generation, wrapped, key_id,
                                        [](std::vector<VolumeRow>*) { return Status::Ok(); })
      .status();
}

Result<uint64_t> SvmKekTable::InsertInitialActiveWithVolumes(const Uuid& svm, uint64_t generation,
                                                             const WrappedSvmKek& wrapped,
                                                             const std::string& key_id,
                                                             const VolumeRowBatches& next) {
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return txn.status();
  SVMKEY_RETURN_IF_ERROR(
      InsertInitialActiveLocked(db, svm, generation, wrapped, key_id, s.now_ms()));
  std::vector<VolumeRow> rows;
  uint64_t count = 0;
  for (;;) {
    rows.clear();
    SVMKEY_RETURN_IF_ERROR(next(&rows));
    if (rows.empty()) break;
    for (const VolumeRow& row : rows) {
      if (!(row.svm == svm)) {
        return Status(ErrorCode::kInvalidValue,
                      "volume " + row.uuid.ToString() + " is not of SVM " + svm.ToString());
      }
    }
    SVMKEY_RETURN_IF_ERROR(InsertVolumesLocked(db, rows));
    count += rows.size();
  }
  // COMMIT POINT: the SVM-KEK and every volume row exist together. A crash or an error
  // before it (the transaction rolls back) leaves the SVM with neither, so the same
  // registration can simply be run again.
  SVMKEY_RETURN_IF_ERROR(txn->Commit());
  return count;
}

Result<SvmKekRow> SvmKekTable::GetActive(const Uuid& svm) {
  Rdb::Session s = rdb_.Lock();
  return LoadByState(s.db(), svm, "active");
}

Result<SvmKekRow> SvmKekTable::GetPending(const Uuid& svm) {
  Rdb::Session s = rdb_.Lock();
  return LoadByState(s.db(), svm, "pending");
}

Result<SvmKekRow> SvmKekTable::Get(const Uuid& svm, uint64_t generation) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT " KEK_COLUMNS " FROM svm_keks WHERE svm_uuid = ?1 AND generation = ?2");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString()).Bind(2, static_cast<int64_t>(generation));
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) {
    return Status(ErrorCode::kEntryNotFound, "SVM " + svm.ToString() + " SVM-KEK generation " +
                                                 std::to_string(generation));
  }
  return ReadKek(st.value());
}

Result<std::vector<SvmKekRow>> SvmKekTable::List(const Uuid& svm) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT " KEK_COLUMNS " FROM svm_keks WHERE svm_uuid = ?1 ORDER BY generation");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString());
  std::vector<SvmKekRow> out;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    Result<SvmKekRow> k = ReadKek(st.value());
    if (!k.ok()) return k.status();
    out.push_back(std::move(k).value());
  }
  return out;
}

Status SvmKekTable::BeginRekey(const SvmKekRow& pending, const Uuid& key_store, const Uuid& job) {
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return txn.status();
  SVMKEY_RETURN_IF_ERROR(CheckRekeyKeyStore(db, pending.svm, key_store));
  Result<SvmKekRow> active = LoadByState(db, pending.svm, "active");
  if (!active.ok()) return active.status();
  if (active->generation + 1 != pending.generation) {
    return Status(ErrorCode::kInvalidValue,
                  "pending generation " + std::to_string(pending.generation) +
                      " does not follow active generation " + std::to_string(active->generation));
  }
  Result<SvmKekRow> existing = LoadByState(db, pending.svm, "pending");
  if (existing.ok()) {
    return Status(ErrorCode::kDuplicateEntry,
                  "SVM " + pending.svm.ToString() + " already has pending SVM-KEK generation " +
                      std::to_string(existing->generation) + "; adopt it instead");
  }
  if (existing.status().code() != ErrorCode::kEntryNotFound) return existing.status();

  SVMKEY_RETURN_IF_ERROR(InsertKek(db, pending.svm, pending.generation, pending.wrapped,
                                   pending.key_id, SvmKekState::kPending, s.now_ms()));
  SVMKEY_RETURN_IF_ERROR(SetKeyStoreStateLocked(db, key_store, KeyStoreState::kSvmKekRekey));
  SVMKEY_RETURN_IF_ERROR(
      SetJobPhaseLocked(db, job, kPhaseStorePending, pending.generation, s.now_ms()));
  // COMMIT POINT (docs/ARCHITECTURE.md §7 phase 3): g+1 is durable, wrapped, `pending`, and new keys
  // are blocked, before any blob is written. A crash before: nothing changed, the job
  // restarts at phase 2. A crash after: blobs may be under g or g+1, both in the table.
  return txn->Commit();
}

Status SvmKekTable::AdoptPending(const Uuid& svm, const Uuid& key_store, const Uuid& job) {
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return txn.status();
  SVMKEY_RETURN_IF_ERROR(CheckRekeyKeyStore(db, svm, key_store));
  Result<SvmKekRow> pending = LoadByState(db, svm, "pending");
  if (!pending.ok()) return pending.status();
  SVMKEY_RETURN_IF_ERROR(SetKeyStoreStateLocked(db, key_store, KeyStoreState::kSvmKekRekey));
  SVMKEY_RETURN_IF_ERROR(
      SetJobPhaseLocked(db, job, kPhaseStorePending, pending->generation, s.now_ms()));
  return txn->Commit();
}

Status SvmKekTable::CommitRekey(const Uuid& svm, uint64_t new_generation, const Uuid& key_store,
                                const Uuid& job) {
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return txn.status();

  // Check everything first; the writes below cannot fail for a domain reason.
  Result<SvmKekRow> pending = LoadByState(db, svm, "pending");
  if (!pending.ok()) return pending.status();
  Result<SvmKekRow> active = LoadByState(db, svm, "active");
  if (!active.ok()) return active.status();
  if (pending->generation != new_generation || active->generation + 1 != new_generation) {
    return Status(ErrorCode::kEntryNotFound,
                  "SVM " + svm.ToString() + ": commit of generation " +
                      std::to_string(new_generation) + " but pending is " +
                      std::to_string(pending->generation) + " and active is " +
                      std::to_string(active->generation));
  }
  {
    Result<Statement> st = db.Cached(
        "SELECT count(*) FROM volumes WHERE svm_uuid = ?1 AND key_manager = 'data' "
        "AND generation <> ?2");
    if (!st.ok()) return st.status();
    st->Bind(1, svm.ToString()).Bind(2, static_cast<int64_t>(new_generation));
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    const int64_t behind = st->ColumnInt(0);
    if (behind != 0) {
      return Status(ErrorCode::kVdekBlobUpdateFailed,
                    std::to_string(behind) + " volumes of SVM " + svm.ToString() +
                        " are not at generation " + std::to_string(new_generation) +
                        " in the table");
    }
  }
  // The old key is retired before the new one is activated: the one-active index is
  // checked per statement, not at commit.
  SVMKEY_RETURN_IF_ERROR(SetKekState(db, svm, active->generation, SvmKekState::kRetired));
  SVMKEY_RETURN_IF_ERROR(SetKekState(db, svm, new_generation, SvmKekState::kActive));
  SVMKEY_RETURN_IF_ERROR(SetKeyStoreStateLocked(db, key_store, KeyStoreState::kActive));
  SVMKEY_RETURN_IF_ERROR(SetJobPhaseLocked(db, job, kPhaseCommit, std::nullopt, s.now_ms()));
  SVMKEY_RETURN_IF_ERROR(FinishJobLocked(db, job, 0, std::string(), s.now_ms()));
  // COMMIT POINT (docs/ARCHITECTURE.md §7 phase 6): g+1 is the active key, g retired (kept, so a
  // blob missed by a bug can still be opened), the key store accepts new keys, the job
  // is success. A crash before: the job resumes and re-walks the (already rewrapped,
  // hence skipped) volumes, then commits again.
  return txn->Commit();
}

Status SvmKekTable::RecordRekeyFailure(const Uuid& key_store, KeyStoreState key_store_state,
                                       const Uuid& job, uint32_t code,
                                       const std::string& message) {
  if (code == 0) return Status(ErrorCode::kInvalidArgument, "a failure needs a non-zero code");
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return txn.status();
  SVMKEY_RETURN_IF_ERROR(SetKeyStoreStateLocked(db, key_store, key_store_state));
  SVMKEY_RETURN_IF_ERROR(FinishJobLocked(db, job, code, message, s.now_ms()));
  // COMMIT POINT: the job is failure with its code; every SVM-KEK row is as it was, so
  // blobs under g and under the pending g+1 both stay openable and a rerun can finish.
  return txn->Commit();
}

Status SvmKekTable::CompleteSwitch(const Uuid& svm, std::span<const SvmKekRow> rewrapped,
                                   const Uuid& key_store) {
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return txn.status();
  {
    // Only the SVM's enabled key store, mid-switch (or re-asserting active), may finish.
    Result<KeyStoreRow> ks = LoadKeyStoreLocked(db, key_store);
    if (!ks.ok()) return ks.status();
    if (!(ks->svm == svm) || !ks->enabled ||
        (ks->state != KeyStoreState::kSwitching && ks->state != KeyStoreState::kActive)) {
      return Status(ErrorCode::kInvalidValue,
                    "key store " + key_store.ToString() + " is not the switching key store of SVM " +
                        svm.ToString());
    }
  }
  for (const SvmKekRow& row : rewrapped) {
    Result<Statement> st = db.Cached(
        "UPDATE svm_keks SET wrapped = ?3, key_id = ?4 WHERE svm_uuid = ?1 AND generation = ?2");
    if (!st.ok()) return st.status();
    st->Bind(1, svm.ToString())
        .Bind(2, static_cast<int64_t>(row.generation))
        .Bind(3, std::span<const uint8_t>(row.wrapped))
        .Bind(4, row.key_id);
    SVMKEY_RETURN_IF_ERROR(st->Run());
    if (db.changes() != 1) {
      return Status(ErrorCode::kEntryNotFound, "SVM " + svm.ToString() + " has no SVM-KEK generation " +
                                                   std::to_string(row.generation));
    }
  }
  SVMKEY_RETURN_IF_ERROR(SetKeyStoreStateLocked(db, key_store, KeyStoreState::kActive));
  // COMMIT POINT: every given generation is wrapped under the new key and the key store
  // is active. Before it the old blobs (under the old, still configured key) are intact.
  return txn->Commit();
}

}  // namespace svmkey::table
