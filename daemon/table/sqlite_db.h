// Thin RAII wrappers over the SQLite C API: Db (a connection), Statement (a prepared
// statement), Transaction (BEGIN IMMEDIATE ... COMMIT, rolled back unless committed).
//
// Every fallible call returns a Status or Result<T>; SQLite result codes are mapped to
// the error table by SqliteStatus() (constraint violations → DuplicateEntry, busy and
// locked → ResourceInUse, disk full → ResourceLimit, everything else →
// UnexpectedException with the SQLite text). Callers remap to domain codes where a
// table has one (the job table reports 196608088, for example).
//
// Threads: a Db is one SQLite connection opened with SQLITE_OPEN_NOMUTEX, so it must be
// used by one thread at a time. The Rdb class (rdb.h) serializes access with a mutex;
// nothing else should hold a Db. Statements borrow their Db and must not outlive it.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace svmkey::table {

// Maps a SQLite result code (extended codes enabled) to a Status. `what` names the
// operation for the message; `db` (may be null) supplies sqlite3_errmsg.
Status SqliteStatus(sqlite3* db, int rc, std::string_view what);

class Db;

// A prepared statement. Either owned (finalized on destruction) or borrowed from the
// Db's statement cache (reset and unbound on destruction, so the next user of the
// cached statement starts clean). Move-only.
//
// Bind*() never fails loudly: the first bind error is remembered and returned by the
// next Step(), so call sites can chain binds without checking each one.
class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based, as in SQLite.
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);  // copied (SQLITE_TRANSIENT)
  Statement& Bind(int index, std::span<const uint8_t> blob);  // copied
  Statement& BindNull(int index);
  Statement& Bind(int index, bool value) { return Bind(index, int64_t{value ? 1 : 0}); }
  Statement& Bind(int index, int value) { return Bind(index, int64_t{value}); }
  Statement& Bind(int index, uint32_t value) { return Bind(index, int64_t{value}); }
  Statement& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Statement& Bind(int index, const std::string& text) { return Bind(index, std::string_view(text)); }
  // Binds NULL when empty.
  template <typename T>
  Statement& Bind(int index, const std::optional<T>& value) {
    return value ? Bind(index, *value) : BindNull(index);
  }

  // Steps once. true: a row is available through Column*(); false: done.
  Result<bool> Step();
  // Steps until done; for statements that return no rows (INSERT, UPDATE, DDL).
  Status Run();
  // Makes the statement runnable again with new bindings (keeps the prepared plan).
  void Reset();

  // Columns are 0-based, as in SQLite; valid only after Step() returned true.
  int64_t ColumnInt(int col) const;
  std::string ColumnText(int col) const;
  // Valid until the next Step(), Reset() or destruction.
  std::span<const uint8_t> ColumnBlob(int col) const;
  bool ColumnIsNull(int col) const;

  sqlite3_stmt* raw() const { return stmt_; }

 private:
  friend class Db;
  Statement(Db* db, sqlite3_stmt* stmt, bool owned) : db_(db), stmt_(stmt), owned_(owned) {}
  void Release();
  void NoteBindError(int rc, int index);

  Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  bool owned_ = true;
  int bind_rc_ = SQLITE_OK;
  int bind_index_ = 0;
};

struct DbOptions {
  std::chrono::milliseconds busy_timeout{5000};
  // Page cache per connection, in KiB (PRAGMA cache_size = -N). Bulk inserts into the
  // volume table's indexes touch random pages; a larger cache keeps them in memory.
  int64_t cache_kib = 64 * 1024;
  bool create = true;  // create the file (mode 0600) if it does not exist
};

// One SQLite connection in WAL mode with synchronous=FULL and foreign keys on.
// Move-only; closes on destruction (any open transaction is rolled back by SQLite).
class Db {
 public:
  static Result<Db> Open(const std::string& path, const DbOptions& options = {});
  Db() = default;
  ~Db();
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that return no rows (DDL, PRAGMA, BEGIN/COMMIT).
  Status Exec(std::string_view sql);
  // Compiles a statement owned by the caller.
  Result<Statement> Prepare(std::string_view sql);
  // Returns the cached compiled statement for `sql` (compiled on first use, kept for
  // the life of the connection). Only one borrower of the same SQL at a time.
  Result<Statement> Cached(const char* sql);

  // Runs a query that returns one integer in one row (PRAGMA user_version, COUNT(*)).
  Result<int64_t> QueryInt(std::string_view sql);

  int64_t changes() const { return sqlite3_changes64(db_); }
  int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  bool in_transaction() const { return db_ != nullptr && sqlite3_get_autocommit(db_) == 0; }
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  void Close();
  sqlite3* db_ = nullptr;
  std::string path_;
  // Keyed by the SQL text's address: callers pass string literals, which live for the
  // life of the program, so the pointer is a stable and cheap key.
  std::map<const char*, sqlite3_stmt*> cache_;
};

// BEGIN IMMEDIATE on construction (takes the write lock up front, so a transaction
// never fails half-way with SQLITE_BUSY on its first write); ROLLBACK on destruction
// unless Commit() succeeded. Not nestable: Begin fails if a transaction is open.
class Transaction {
 public:
  static Result<Transaction> Begin(Db& db);
  ~Transaction();
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // COMMIT POINT for whatever the transaction wrote. After an error the transaction
  // is rolled back when this object is destroyed.
  Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_ = nullptr;
  bool done_ = false;
};

}  // namespace svmkey::table
