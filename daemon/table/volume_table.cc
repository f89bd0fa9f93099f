#include "daemon/table/volume_table.h"

#include <cstring>

#include "daemon/table/table_internal.h"

namespace svmkey::table {
namespace {

Status ReadVolume(const Statement& st, bool with_blob, VolumeRow* row) {
  Result<Uuid> uuid = ParseStoredUuid(st.ColumnText(1), "volume");
  if (!uuid.ok()) return uuid.status();
  Result<Uuid> svm = ParseStoredUuid(st.ColumnText(2), "svm");
  if (!svm.ok()) return svm.status();
  std::optional<KeyManager> km = KeyManagerFromString(st.ColumnText(7));
  if (!km) return Status(ErrorCode::kUnexpectedException, "malformed key_manager");
  row->id = st.ColumnInt(0);
  row->uuid = uuid.value();
  row->svm = svm.value();
  row->name = st.ColumnText(3);
  row->dsid = static_cast<uint64_t>(st.ColumnInt(4));
  row->metadata_path = st.ColumnText(5);
  row->generation = static_cast<uint64_t>(st.ColumnInt(6));
  row->key_manager = *km;
  row->flags = static_cast<uint32_t>(st.ColumnInt(8));
  row->blob.reset();
  if (with_blob && !st.ColumnIsNull(9)) {
    std::span<const uint8_t> b = st.ColumnBlob(9);
    if (b.size() != kSectorSize) {
      return Status(ErrorCode::kInvalidEncryptionBlob,
                    "blob copy of volume " + row->uuid.ToString() + " has the wrong size");
    }
    row->blob.emplace();
    std::memcpy(row->blob->data(), b.data(), kSectorSize);
  }
  return Status::Ok();
}

// Whether the SVM may get new keys now, and at which generation. Computed once per SVM
// inside the inserting transaction.
struct SvmGate {
  Uuid svm;
  std::optional<uint64_t> active_generation;
};

Result<SvmGate> LoadGate(Db& db, const Uuid& svm) {
  const std::string id = svm.ToString();
  {
    Result<Statement> st = db.Cached("SELECT 1 FROM svms WHERE uuid = ?1");
    if (!st.ok()) return st.status();
    st->Bind(1, id);
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) return Status(ErrorCode::kSvmNotFound, "svm " + id);
  }
  {
    Result<Statement> st =
        db.Cached("SELECT uuid, state FROM key_stores WHERE svm_uuid = ?1 AND enabled = 1");
    if (!st.ok()) return st.status();
    st->Bind(1, id);
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (row.value() && st->ColumnText(1) != "active") {
      return Status(ErrorCode::kResourceInUse, "svm " + id + ": key store " + st->ColumnText(0) +
                                                   " is " + st->ColumnText(1) +
                                                   "; new keys can't be created");
    }
  }
  SvmGate gate{svm, std::nullopt};
  Result<Statement> st =
      db.Cached("SELECT generation FROM svm_keks WHERE svm_uuid = ?1 AND state = 'active'");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (row.value()) gate.active_generation = static_cast<uint64_t>(st->ColumnInt(0));
  return gate;
}

Result<uint64_t> CountWith(Rdb& rdb, const char* sql, const Uuid& svm,
                           std::optional<std::string_view> arg_text,
                           std::optional<int64_t> arg_int) {
  Rdb::Session s = rdb.Lock();
  Result<Statement> st = s.db().Cached(sql);
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString());
  if (arg_text) st->Bind(2, *arg_text);
  if (arg_int) st->Bind(2, *arg_int);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  return static_cast<uint64_t>(st->ColumnInt(0));
}

}  // namespace

Status InsertVolumesLocked(Db& db, std::span<const VolumeRow> volumes) {
  std::optional<SvmGate> gate;
  Result<Statement> ins = db.Cached(
      "INSERT INTO volumes (uuid, svm_uuid, name, dsid, metadata_path, generation, flags, "
      "key_manager, encryption_blob) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (!ins.ok()) return ins.status();
  for (const VolumeRow& v : volumes) {
    if (!gate || !(gate->svm == v.svm)) {
      Result<SvmGate> g = LoadGate(db, v.svm);
      if (!g.ok()) return g.status();
      gate = std::move(g).value();
    }
    if (v.dsid == 0) {
      return Status(ErrorCode::kInvalidValue, "volume " + v.uuid.ToString() + ": DSID 0");
    }
    if (v.key_manager == KeyManager::kData && gate->active_generation != v.generation) {
      return Status(ErrorCode::kInvalidValue,
                    "volume " + v.uuid.ToString() + ": generation " +
                        std::to_string(v.generation) + " is not the active SVM-KEK generation");
    }
    ins->Reset();
    ins->Bind(1, v.uuid.ToString())
        .Bind(2, v.svm.ToString())
        .Bind(3, v.name)
        .Bind(4, static_cast<int64_t>(v.dsid))
        .Bind(5, v.metadata_path)
        .Bind(6, static_cast<int64_t>(v.generation))
        .Bind(7, v.flags)
        .Bind(8, ToString(v.key_manager));
    if (v.blob) {
      ins->Bind(9, std::span<const uint8_t>(*v.blob));
    } else {
      ins->BindNull(9);
    }
    Status st = ins->Run();
    if (!st.ok()) {
      return Status(st.code(), "volume " + v.uuid.ToString() + " (" + v.name + "): " +
                                   st.message());
    }
  }
  return Status::Ok();
}

Status ApplyBlobUpdatesLocked(Db& db, std::span<const VolumeBlobUpdate> updates) {
  Result<Statement> up = db.Cached(
      "UPDATE volumes SET generation = ?2, encryption_blob = ?3 WHERE uuid = ?1");
  if (!up.ok()) return up.status();
  for (const VolumeBlobUpdate& u : updates) {
    up->Reset();
    up->Bind(1, u.volume.ToString())
        .Bind(2, static_cast<int64_t>(u.generation))
        .Bind(3, std::span<const uint8_t>(u.blob));
    SVMKEY_RETURN_IF_ERROR(up->Run());
    if (db.changes() == 0) {
      return Status(ErrorCode::kBlobNotInTable, "volume " + u.volume.ToString());
    }
  }
  return Status::Ok();
}

Status VolumeTable::Insert(const VolumeRow& volume) {
  return InsertMany(std::span<const VolumeRow>(&volume, 1));
}

Status VolumeTable::InsertMany(std::span<const VolumeRow> volumes) {
  if (volumes.empty()) return Status::Ok();
  Rdb::Session s = rdb_.Lock();
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return txn.status();
  SVMKEY_RETURN_IF_ERROR(InsertVolumesLocked(s.db(), volumes));
  // COMMIT POINT: every row of the span exists. Before: none does.
  return txn->Commit();
}

Result<VolumeRow> VolumeTable::Get(const Uuid& volume) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT id, uuid, svm_uuid, name, dsid, metadata_path, generation, key_manager, flags, "
      "encryption_blob FROM volumes WHERE uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, volume.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return Status(ErrorCode::kEntryNotFound, "volume " + volume.ToString());
  VolumeRow out;
  SVMKEY_RETURN_IF_ERROR(ReadVolume(st.value(), true, &out));
  return out;
}

Result<SlotSector> VolumeTable::GetBlob(const Uuid& volume) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached("SELECT encryption_blob FROM volumes WHERE uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, volume.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value() || st->ColumnIsNull(0)) {
    return Status(ErrorCode::kBlobNotInTable, "volume " + volume.ToString());
  }
  std::span<const uint8_t> b = st->ColumnBlob(0);
  if (b.size() != kSectorSize) {
    return Status(ErrorCode::kInvalidEncryptionBlob, "volume " + volume.ToString());
  }
  SlotSector out;
  std::memcpy(out.data(), b.data(), kSectorSize);
  return out;
}

Status VolumeTable::ListPage(const Uuid& svm, int64_t after_id, size_t limit,
                             std::vector<VolumeRow>* out, bool with_blobs) {
  out->clear();
  if (limit == 0) return Status::Ok();
  Rdb::Session s = rdb_.Lock();
  // Two statements so a listing without blobs does not read 512 bytes per row.
  Result<Statement> st =
      with_blobs
          ? s.db().Cached(
                "SELECT id, uuid, svm_uuid, name, dsid, metadata_path, generation, key_manager, "
                "flags, encryption_blob FROM volumes WHERE svm_uuid = ?1 AND id > ?2 "
                "ORDER BY id LIMIT ?3")
          : s.db().Cached(
                "SELECT id, uuid, svm_uuid, name, dsid, metadata_path, generation, key_manager, "
                "flags, NULL FROM volumes WHERE svm_uuid = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString()).Bind(2, after_id).Bind(3, static_cast<int64_t>(limit));
  out->reserve(limit);
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    out->emplace_back();
    SVMKEY_RETURN_IF_ERROR(ReadVolume(st.value(), with_blobs, &out->back()));
  }
  return Status::Ok();
}

Result<uint64_t> VolumeTable::Count(const Uuid& svm) {
  return CountWith(rdb_, "SELECT count(*) FROM volumes WHERE svm_uuid = ?1", svm, std::nullopt,
                   std::nullopt);
}

Result<uint64_t> VolumeTable::CountByKeyManager(const Uuid& svm, KeyManager key_manager) {
  // The literal 'admin' lets SQLite use the partial index volumes_admin_keys (it cannot
  // prove a bound parameter matches the index's WHERE clause).
  if (key_manager == KeyManager::kAdmin) {
    return CountWith(rdb_,
                     "SELECT count(*) FROM volumes WHERE svm_uuid = ?1 AND key_manager = 'admin'",
                     svm, std::nullopt, std::nullopt);
  }
  return CountWith(rdb_, "SELECT count(*) FROM volumes WHERE svm_uuid = ?1 AND key_manager = 'data'",
                   svm, std::nullopt, std::nullopt);
}

Result<uint64_t> VolumeTable::CountNotAtGeneration(const Uuid& svm, uint64_t generation) {
  return CountWith(rdb_,
                   "SELECT count(*) FROM volumes WHERE svm_uuid = ?1 AND key_manager = 'data' "
                   "AND generation <> ?2",
                   svm, std::nullopt, static_cast<int64_t>(generation));
}

Status VolumeTable::UpdateBlobs(std::span<const VolumeBlobUpdate> updates) {
  if (updates.empty()) return Status::Ok();
  Rdb::Session s = rdb_.Lock();
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return txn.status();
  SVMKEY_RETURN_IF_ERROR(ApplyBlobUpdatesLocked(s.db(), updates));
  // COMMIT POINT: the table's blob copies match the rewrapped files of this batch.
  return txn->Commit();
}

}  // namespace svmkey::table
