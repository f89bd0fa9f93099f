// Pieces of one view's writes that another view's transaction needs (the rekey commit
// points span key stores, SVM-KEKs, volumes and jobs). Private to daemon/table: each
// function expects the caller to hold the Rdb session and an open transaction on `db`.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "daemon/table/key_store_table.h"
#include "daemon/table/sqlite_db.h"
#include "daemon/table/states.h"
#include "engine/uuid.h"

namespace svmkey::table {

struct VolumeBlobUpdate;
struct VolumeRow;

// key_store_table.cc. Loads the key store; KeystoreUnknown if absent.
Result<KeyStoreRow> LoadKeyStoreLocked(Db& db, const Uuid& uuid);
// Validated transition (InvalidValue when not allowed); keeps `enabled`.
Status SetKeyStoreStateLocked(Db& db, const Uuid& uuid, KeyStoreState to);

// job_table.cc. EntryNotFound for an unknown job, InvalidValue for a terminal one.
Status SetJobPhaseLocked(Db& db, const Uuid& job, int phase,
                         std::optional<uint64_t> new_generation, int64_t now_ms);
// code 0 → success with "Complete: Successful" when `message` is empty.
Status FinishJobLocked(Db& db, const Uuid& job, uint32_t code, const std::string& message,
                       int64_t now_ms);

// volume_table.cc. BlobNotInTable when an update names no volume row.
Status ApplyBlobUpdatesLocked(Db& db, std::span<const VolumeBlobUpdate> updates);
// volume_table.cc. VolumeTable::InsertMany's checks and inserts, without the transaction.
Status InsertVolumesLocked(Db& db, std::span<const VolumeRow> volumes);

}  // namespace svmkey::table
