// SvmKekTable: the wrapped SVM-KEKs of each SVM, one row per generation, and the two
// commit points of rekey-internal that span several tables (docs/ARCHITECTURE.md §7 phases 3 and 6).
//
// A row's `wrapped` is the SVM-KEK sealed under the Barbican key named by `key_id`
// (60 bytes: 12-byte nonce ‖ 32-byte ciphertext ‖ 16-byte tag); the table never sees
// the key itself. States: at most one `active` and one `pending` per SVM (enforced by
// unique indexes in the file); `retired` rows stay so old blobs can still be opened.
//
// Life of a generation:
//   InsertInitialActive                 g = 1 active (first encrypted volume of the SVM)
//   BeginRekey             (phase 3)    g+1 pending, key store svm_kek_rekey, job phase 3
//   CommitRekey            (phase 6)    g+1 active, g retired, key store active, job success
//   RecordRekeyFailure                  job failure; pending and active rows untouched
//
// A view over an Rdb (see rdb.h for threads and ownership).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemon/table/rdb.h"
#include "daemon/table/states.h"
#include "engine/uuid.h"

namespace svmkey::table {

inline constexpr size_t kWrappedSvmKekBytes = 60;
using WrappedSvmKek = std::array<uint8_t, kWrappedSvmKekBytes>;

struct SvmKekRow {
  Uuid svm;
  uint64_t generation = 0;
  WrappedSvmKek wrapped{};
  std::string key_id;
  SvmKekState state = SvmKekState::kActive;
  int64_t created_time_ms = 0;
  friend bool operator==(const SvmKekRow&, const SvmKekRow&) = default;
};

struct VolumeBlobUpdate;  // volume_table.h
struct VolumeRow;         // volume_table.h

class SvmKekTable {
 public:
  explicit SvmKekTable(Rdb& rdb) : rdb_(rdb) {}

  // The SVM's first SVM-KEK, stored directly as active (ONTAP creates it lazily with the
  // first encrypted volume). Errors: SvmNotFound, DuplicateEntry (the SVM already has
  // an active key or this generation).
  Status InsertInitialActive(const Uuid& svm, uint64_t generation, const WrappedSvmKek& wrapped,
                             const std::string& key_id);

  // Fills `rows` (empty on entry) with the next volumes to insert; leaving it empty
  // ends the list. A non-OK status aborts the whole call.
  using VolumeRowBatches = std::function<Status(std::vector<VolumeRow>* rows)>;
  // Registration of a volume set (docs/ARCHITECTURE.md §4.7), ONE transaction: the SVM's first
  // SVM-KEK as InsertInitialActive, then every row `next` supplies, with
  // VolumeTable::InsertMany's checks; each row must be of `svm`. All or nothing: on any
  // error (of the table or of `next`), or a crash before the commit, neither the key
  // nor any row exists. The session stays locked while `next` runs, so it must not use
  // this Rdb. Returns the number of rows. Errors: those of InsertInitialActive and
  // InsertMany, InvalidValue (a row of another SVM), any status of `next`.
  Result<uint64_t> InsertInitialActiveWithVolumes(const Uuid& svm, uint64_t generation,
                                                  const WrappedSvmKek& wrapped,
                                                  const std::string& key_id,
                                                  const VolumeRowBatches& next);

  // Errors: EntryNotFound when the SVM has no such key.
  Result<SvmKekRow> GetActive(const Uuid& svm);
  Result<SvmKekRow> GetPending(const Uuid& svm);
  Result<SvmKekRow> Get(const Uuid& svm, uint64_t generation);
  // Every generation of the SVM, oldest first.
  Result<std::vector<SvmKekRow>> List(const Uuid& svm);

  // docs/ARCHITECTURE.md §7 phase 3, one transaction: insert `pending` (its state field is ignored),
  // set the key store to svm_kek_rekey, record phase 3 and the new generation in the
  // job. Checks, in the same transaction: the key store is the SVM's enabled one and is
  // active or already svm_kek_rekey; the SVM's active key has generation
  // pending.generation - 1; there is no pending key yet (a rerun after a failure must
  // reuse the existing pending key, see AdoptPending). Errors: KeystoreUnknown,
  // BarbicanNotConfigured (not the enabled key store), InvalidValue (state or
  // generation mismatch), EntryNotFound (no active key, no such job), DuplicateEntry
  // (a pending key exists).
  Status BeginRekey(const SvmKekRow& pending, const Uuid& key_store, const Uuid& job);

  // Rerun after a failure that left a pending key: set the key store to svm_kek_rekey
  // and record phase 3 and the pending generation in the job, one transaction. The
  // caller unwraps the existing pending key (some blobs may already be sealed under
  // it) instead of generating a new one. Errors as BeginRekey; EntryNotFound when
  // there is no pending key.
  Status AdoptPending(const Uuid& svm, const Uuid& key_store, const Uuid& job);

  // docs/ARCHITECTURE.md §7 phase 6, one transaction: check every volume of the SVM
  // managed by the data key manager is at new_generation (the rewrap recorded each batch
  // with VolumeTable::UpdateBlobs), then pending → active, active → retired,
  // key store → active, job → success (code 0, "Complete: Successful", phase 6, end
  // time). Errors: EntryNotFound (no pending key at new_generation, or no active key at
  // new_generation - 1), VdekBlobUpdateFailed (65537565; volumes still below new_generation in the table),
  // InvalidValue (key store or job state). Nothing changes on error.
  Status CommitRekey(const Uuid& svm, uint64_t new_generation, const Uuid& key_store,
                     const Uuid& job);

  // The end of a key-store switch (ONTAP's barbican-kms semantics), one transaction: replace the
  // wrapped blob and key_id of each given generation of the SVM (rewrapped under the
  // new Barbican key by the caller; the state field is ignored), then move `key_store`
  // from switching to active. Errors: EntryNotFound (a generation the SVM does not
  // have), KeystoreUnknown, InvalidValue (the key store is not switching or active).
  Status CompleteSwitch(const Uuid& svm, std::span<const SvmKekRow> rewrapped,
                        const Uuid& key_store);
  // A rekey that failed before its commit, one transaction: job → failure with `code`
  // and `message`, key store → `key_store_state` (svm_kek_rekey to keep new keys
  // blocked until a rerun, active to allow them). The pending and active SVM-KEKs stay
  // (docs/ARCHITECTURE.md §7: a rerun completes the rotation). Errors: KeystoreUnknown, EntryNotFound
  // (job), InvalidValue (transition not allowed).
  Status RecordRekeyFailure(const Uuid& key_store, KeyStoreState key_store_state, const Uuid& job,
                            uint32_t code, const std::string& message);

 private:
  Rdb& rdb_;
};

}  // namespace svmkey::table
