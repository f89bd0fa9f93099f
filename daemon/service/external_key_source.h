// ExternalKeySource: what svmkeyd needs from the external key that wraps the SVM-KEKs
// (docs/ARCHITECTURE.md §6): read it into the engine's KeyTable for one wrap or unwrap,
// check that it is reachable, and name it (the key_id stored beside each wrapped
// SVM-KEK).
//
//   external key (one per configuration) ──▶ SVM-KEK (per SVM and generation) ──▶ VDEKs
//
// barbican::BarbicanClient implements it over Keystone and Barbican; tests implement it
// in memory, so the key service and the jobs run without a KMS.
//
// Ownership: FetchExternalKey returns a handle the caller releases as soon as its wrap or
// unwrap is done; the key bytes live only in the KeyTable's secure memory.
// Thread safety: every method may be called from any thread at the same time.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "engine/key_table.h"
#include "engine/status.h"
#include "engine/uuid.h"

namespace svmkey::table {
class Rdb;
}

namespace svmkey::daemon {

// ONTAP's barbican_reachability {reachable, code, message}: reachable means the key's
// metadata was read with valid credentials; otherwise `code` says why.
struct KeyReachability {
  bool reachable = false;
  ErrorCode code = ErrorCode::kOk;
  std::string message;
};

class ExternalKeySource {
 public:
  virtual ~ExternalKeySource() = default;

  // Reads the 32-byte external key and imports it into `table`. Errors (ONTAP codes):
  // KeyManagerBlocked, KeyIdNotFound, KeyValueStoreResponseUnparsable,
  // BarbicanUnreachable.
  virtual Result<KeyHandle> FetchExternalKey(KeyTable& table) = 0;

  // Checks that the key is reachable without reading it. Never fails as a call.
  virtual KeyReachability CheckReachability() = 0;

  // The key's name, bound into each SVM-KEK it wraps.
  virtual const std::string& key_id() const = 0;
};

// Builds the source of configuration `config` from its table row (read through `rdb`,
// the caller's connection). Errors: EntryNotFound, NoExternalKeyValueStore (the
// configuration is not usable).
using ExternalKeySourceFactory = std::function<Result<std::shared_ptr<ExternalKeySource>>(
    table::Rdb& rdb, const Uuid& config)>;

}  // namespace svmkey::daemon
