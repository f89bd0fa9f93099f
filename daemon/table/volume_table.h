// VolumeTable: the encrypted volumes of each SVM, with a copy of each volume's current
// encryption blob (the 512-byte slot sector; ONTAP keeps one in its RDB too, and it
// lets a damaged metadata file be repaired).
//
// Built for 10^6 volumes per SVM: InsertMany and UpdateBlobs write a whole span in one
// transaction through one cached prepared statement (callers pass spans of ~50k rows so
// the WAL stays small); ListPage pages by the row id (keyset pagination: each page is
// an index range scan, so streaming every volume costs O(n) with one page in memory).
//
// New keys are refused while the SVM's enabled key store is not `active` (docs/ARCHITECTURE.md §7:
// no new keys during svm_kek_rekey), checked inside the inserting transaction so a
// rekey that starts concurrently cannot be missed.
//
// A view over an Rdb (see rdb.h for threads and ownership).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemon/table/rdb.h"
#include "daemon/table/states.h"
#include "engine/uuid.h"
#include "engine/volume.h"

namespace svmkey::table {

struct VolumeRow {
  int64_t id = 0;  // assigned by the table on insert (ignored there); the paging cursor
  Uuid uuid;
  Uuid svm;
  std::string name;  // unique per SVM
  uint64_t dsid = 0;  // > 0
  std::string metadata_path;
  uint64_t generation = 0;  // SVM-KEK generation the current blob is wrapped under
  KeyManager key_manager = KeyManager::kData;
  std::optional<SlotSector> blob;  // copy of the current slot sector
  uint32_t flags = 0;  // volume_metadata.h flags (kFlagClone)
  friend bool operator==(const VolumeRow&, const VolumeRow&) = default;
};

// One rewrapped volume: its new generation and slot sector.
struct VolumeBlobUpdate {
  Uuid volume;
  uint64_t generation = 0;
  SlotSector blob{};
};

class VolumeTable {
 public:
  explicit VolumeTable(Rdb& rdb) : rdb_(rdb) {}

  // One volume. Errors: SvmNotFound, DuplicateEntry (uuid, or name within the SVM),
  // ResourceInUse (the SVM's enabled key store is not active, e.g. svm_kek_rekey),
  // InvalidValue (a data-key-manager volume whose generation is not the SVM's active
  // SVM-KEK generation, or the SVM has no active SVM-KEK; dsid 0).
  Status Insert(const VolumeRow& volume);
  // Every row in one transaction: all or nothing. Errors as Insert; the message names
  // the first offending volume.
  Status InsertMany(std::span<const VolumeRow> volumes);

  // Errors: EntryNotFound.
  Result<VolumeRow> Get(const Uuid& volume);
  // The stored blob copy. Errors: BlobNotInTable (196608352) when the volume has no
  // row or no blob.
  Result<SlotSector> GetBlob(const Uuid& volume);

  // Up to `limit` volumes of `svm` with id > after_id, by id, into `out` (cleared
  // first; its capacity is reused). An empty page means the end. Start with
  // after_id = 0 and continue with out->back().id. Rows inserted behind the cursor
  // during a scan are not seen; rows ahead of it are.
  Status ListPage(const Uuid& svm, int64_t after_id, size_t limit, std::vector<VolumeRow>* out,
                  bool with_blobs = true);

  Result<uint64_t> Count(const Uuid& svm);
  Result<uint64_t> CountByKeyManager(const Uuid& svm, KeyManager key_manager);
  // Data-key-manager volumes of the SVM whose row is not at `generation`.
  Result<uint64_t> CountNotAtGeneration(const Uuid& svm, uint64_t generation);

  // After a rewrap batch: new generation and blob per volume, one transaction.
  // Errors: BlobNotInTable when a volume has no row (nothing is changed then).
  Status UpdateBlobs(std::span<const VolumeBlobUpdate> updates);

 private:
  Rdb& rdb_;
};

}  // namespace svmkey::table
