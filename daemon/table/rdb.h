// Rdb: svmkeyd's persistent table (docs/ARCHITECTURE.md §5), the stand-in for ONTAP's replicated
// database. One SQLite file (rdb.sqlite in the state directory) in WAL mode with
// synchronous=FULL, schema migrated forward at open (schema.h), secrets sealed under the
// host key (host_key.h).
//
// The tables are reached through small view classes that borrow an Rdb:
//   SvmTable       (svm_table.h)        SVMs
//   KeyStoreTable  (key_store_table.h)  key stores and their Barbican configs
//   SvmKekTable    (svm_kek_table.h)    wrapped SVM-KEKs and the rekey commit points
//   VolumeTable    (volume_table.h)     volumes and their blob copies
//   JobTable       (job_table.h)        jobs
//
// Threads: an Rdb owns one SQLite connection and a mutex; every view method takes the
// mutex for its whole duration, so one Rdb may be shared by the bus thread and job
// threads and calls are serialized. For concurrency, give a thread its own Rdb on the
// same file: WAL lets any number of readers run beside the one writer, and a writer
// waits up to busy_timeout for another writer's transaction. Every state change is one
// BEGIN IMMEDIATE transaction, so readers see either all of it or none of it.
//
// Ownership: the Rdb owns the connection and the host key; views hold a reference and
// must not outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "daemon/table/host_key.h"
#include "daemon/table/sqlite_db.h"
#include "engine/status.h"

namespace svmkey::table {

inline constexpr std::chrono::hours kDefaultJobRetention{24};
// At most this many terminal jobs are kept, whatever their age (docs/ARCHITECTURE.md §7):
// each is a Job1 object, and the job node's introspection and ListJobs grow with them.
inline constexpr uint64_t kDefaultJobRetentionCount = 1000;

struct RdbOptions {
  // The table file; docs/ARCHITECTURE.md §3 fixes it as /var/lib/svmkey/rdb.sqlite in production.
  std::string path;
  // Where the host key comes from. Empty: "<directory of path>/host.key", created on
  // first use. With host_key_is_credential, a systemd credential file that must exist
  // (HostKey::CredentialPathFromEnvironment() gives $CREDENTIALS_DIRECTORY/host-key).
  std::string host_key_path;
  bool host_key_is_credential = false;
  std::chrono::milliseconds busy_timeout{5000};
  // Terminal jobs older than this are removed by JobTable::PruneFinished.
  std::chrono::milliseconds job_retention = kDefaultJobRetention;
  // ... and beyond this many terminal jobs the oldest are removed as well.
  uint64_t job_retention_count = kDefaultJobRetentionCount;
  // Unix time in milliseconds; tests inject a fake clock. Default: system_clock.
  std::function<int64_t()> clock;
};

class Rdb {
 public:
  // Opens (creating if needed) the file, migrates it to kSchemaVersion and loads the
  // host key. The result is ready for use from any thread.
  static Result<std::unique_ptr<Rdb>> Open(RdbOptions options);

  Rdb(const Rdb&) = delete;
  Rdb& operator=(const Rdb&) = delete;

  // Exclusive use of the connection for the duration of one view call.
  class Session {
   public:
    Db& db() { return rdb_->db_; }
    const HostKey& host_key() { return rdb_->host_key_; }
    int64_t now_ms() const { return rdb_->NowMs(); }
    const RdbOptions& options() const { return rdb_->options_; }

   private:
    friend class Rdb;
    explicit Session(Rdb* rdb) : rdb_(rdb), lock_(rdb->mu_) {}
    Rdb* rdb_;
    std::unique_lock<std::mutex> lock_;
  };
  Session Lock() { return Session(this); }

  int64_t NowMs() const;
  // The schema version found in the file before Open migrated it (0 for a new file).
  int64_t opened_at_version() const { return opened_at_version_; }
  const RdbOptions& options() const { return options_; }

  // Runs SQLite's integrity_check; OK when it answers "ok".
  Status CheckIntegrity();
  // Copies the WAL into the main file (PRAGMA wal_checkpoint(TRUNCATE)).
  Status Checkpoint();

 private:
  Rdb(RdbOptions options, Db db, HostKey key)
      : options_(std::move(options)), db_(std::move(db)), host_key_(std::move(key)) {}

  RdbOptions options_;
  std::mutex mu_;
  Db db_;
  HostKey host_key_;
  int64_t opened_at_version_ = 0;
};

// UUIDs in the table are canonical text; a row that does not parse is corruption.
Result<Uuid> ParseStoredUuid(const std::string& text, std::string_view what);

}  // namespace svmkey::table
