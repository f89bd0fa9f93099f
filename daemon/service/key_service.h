// KeyService: svmkeyd's view of the key hierarchy of every SVM.
//
//   Barbican secret (per configuration) ──▶ SVM-KEK (per SVM and generation) ──▶ VDEKs
//
// It owns the engine's KeyTable (key bytes in locked, non-dumpable memory), an
// ExternalKeySource per configuration (made by a factory: Barbican clients with their
// token caches in the daemon, an in-memory key in tests), and the "installed" SVM-KEKs: the active
// generation of each SVM kept in the key table once opened (restore-style: after a
// restart a key is opened again from the table on first use). The external key is held
// only for the duration of one wrap or unwrap and released right after.
//
// Threads: every method may be called from any thread (bus worker, job threads); the
// caller passes the Rdb connection of its own thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "daemon/service/external_key_source.h"
#include "daemon/table/rdb.h"
#include "daemon/table/svm_kek_table.h"
#include "engine/key_table.h"
#include "engine/status.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

struct InstalledKek {
  uint64_t generation = 0;
  KeyHandle handle;
};

// Keys held at once in the key table's locked memory, unless svmkeyd is told otherwise.
inline constexpr size_t kDefaultKeyTableCapacity = 1024;

class KeyService {
 public:
  // `sources` builds the external key source of a configuration; empty means Barbican
  // (BarbicanSources()).
  static Result<std::unique_ptr<KeyService>> Create(
      size_t key_table_capacity = kDefaultKeyTableCapacity, ExternalKeySourceFactory sources = {});
  // The daemon's factory: a barbican::BarbicanClient built from the configuration's
  // table row and its unsealed secrets.
  static ExternalKeySourceFactory BarbicanSources();

  KeyTable& key_table() { return *table_; }

  // The external key source of configuration `config`, made by the factory on first
  // use and cached until Forget(config).
  Result<std::shared_ptr<ExternalKeySource>> Client(table::Rdb& rdb, const Uuid& config);
  // Drops the cached client (after its credentials or settings changed).
  void Forget(const Uuid& config);

  // Opens a wrapped SVM-KEK row with the Barbican key of `config`. The caller releases
  // the handle. Errors: Barbican codes, DecryptFailed, SvmKekUnwrapFailed.
  Result<KeyHandle> OpenSvmKek(table::Rdb& rdb, const Uuid& config, const table::SvmKekRow& row);
  // Wraps a key-table SVM-KEK under the Barbican key of `config`.
  Result<table::WrappedSvmKek> WrapSvmKek(table::Rdb& rdb, const Uuid& config, const Uuid& svm,
                                           uint64_t generation, KeyHandle svm_kek,
                                           std::string* key_id);

  // The SVM's active SVM-KEK, installed in the key table: opened from the table on first
  // use, or created as generation 1 when the SVM has none yet (ONTAP makes it lazily
  // with the first encrypted volume). Errors: NoKeyManagerConfigured (no enabled key
  // store), Barbican and unwrap codes.
  Result<InstalledKek> ActiveSvmKek(table::Rdb& rdb, const Uuid& svm);

  // Authenticates with `config`'s settings and a new credential, without storing it
  // (the health check of update-credentials).
  Status CheckCredentials(table::Rdb& rdb, const Uuid& config, const std::string& cred_id,
                          const SecureBuffer& secret);


  // Installs `handle` as the SVM's active generation, releasing the one it replaces.
  void Install(const Uuid& svm, uint64_t generation, KeyHandle handle);
  std::optional<InstalledKek> Installed(const Uuid& svm);

 private:
  KeyService(std::unique_ptr<KeyTable> table, ExternalKeySourceFactory sources)
      : table_(std::move(table)), sources_(std::move(sources)) {}

  std::unique_ptr<KeyTable> table_;
  const ExternalKeySourceFactory sources_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<ExternalKeySource>> clients_;
  std::map<std::string, InstalledKek> installed_;
  std::mutex create_mu_;  // serializes lazy creation of generation 1
};

}  // namespace svmkey::daemon
