#include "daemon/table/sqlite_db.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace svmkey::table {

Status SqliteStatus(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += (db != nullptr && sqlite3_errcode(db) == rc) ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      // UNIQUE and PRIMARY KEY violations are duplicates; CHECK, NOT NULL and FOREIGN
      // KEY violations mean the caller passed a value the schema refuses.
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return Status(ErrorCode::kDuplicateEntry, std::move(msg));
      }
      return Status(ErrorCode::kInvalidValue, std::move(msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status(ErrorCode::kResourceInUse, std::move(msg));
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return Status(ErrorCode::kResourceLimit, std::move(msg));
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return Status(ErrorCode::kPermissionDenied, std::move(msg));
    default:
      return Status(ErrorCode::kUnexpectedException, std::move(msg));
  }
}

// ---- Statement ----

Statement::~Statement() { Release(); }

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      owned_(other.owned_),
      bind_rc_(other.bind_rc_),
      bind_index_(other.bind_index_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    Release();
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    owned_ = other.owned_;
    bind_rc_ = other.bind_rc_;
    bind_index_ = other.bind_index_;
  }
  return *this;
}

void Statement::Release() {
  if (stmt_ == nullptr) return;
  if (owned_) {
    sqlite3_finalize(stmt_);
  } else {
    // A cached statement goes back clean: no open read cursor (which would pin a WAL
    // snapshot) and no bound values (which may be sealed secrets).
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  stmt_ = nullptr;
}

void Statement::NoteBindError(int rc, int index) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
    bind_index_ = index;
  }
}

Statement& Statement::Bind(int index, int64_t value) {
  NoteBindError(sqlite3_bind_int64(stmt_, index, value), index);
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  NoteBindError(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                    SQLITE_UTF8),
                index);
  return *this;
}

Statement& Statement::Bind(int index, std::span<const uint8_t> blob) {
  // A zero-length blob must still be a blob, not NULL: sqlite3_bind_blob64 with a null
  // pointer binds NULL, so point at a static byte.
  static const uint8_t kEmpty = 0;
  const void* p = blob.empty() ? &kEmpty : blob.data();
  NoteBindError(sqlite3_bind_blob64(stmt_, index, p, blob.size(), SQLITE_TRANSIENT), index);
  return *this;
}

Statement& Statement::BindNull(int index) {
  NoteBindError(sqlite3_bind_null(stmt_, index), index);
  return *this;
}

Result<bool> Statement::Step() {
  sqlite3* db = sqlite3_db_handle(stmt_);
  if (bind_rc_ != SQLITE_OK) {
    return SqliteStatus(db, bind_rc_, "bind parameter " + std::to_string(bind_index_));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status st = SqliteStatus(db, rc, "step");
  sqlite3_reset(stmt_);
  return st;
}

Status Statement::Run() {
  for (;;) {
    Result<bool> r = Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
  }
  sqlite3_reset(stmt_);
  return Status::Ok();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
  bind_index_ = 0;
}

int64_t Statement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Statement::ColumnText(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::span<const uint8_t> Statement::ColumnBlob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  const int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr || n <= 0) return {};
  return {static_cast<const uint8_t*>(p), static_cast<size_t>(n)};
}

bool Statement::ColumnIsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

// ---- Db ----

Result<Db> Db::Open(const std::string& path, const DbOptions& options) {
  if (options.create) {
    // Create the file ourselves so it is 0600 from the first byte: SQLite would use
    // 0644 minus umask, and it copies the main file's mode to -wal and -shm.
    // O_EXCL: never open and close an existing table file behind SQLite's back. close()
    // drops every POSIX lock this process holds on the file, including the SHARED lock
    // of the connections already open (one per job thread); then another process (the
    // sqlite3 shell) that closes its connection believes it is the last one, checkpoints
    // and deletes -wal and -shm under us, and our next statement fails with a disk I/O
    // error (sqlite.org/howtocorrupt.html §2.2).
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::close(fd);  // a file created just now: no connection can hold locks on it yet
    } else if (errno != EEXIST) {
      return Status(errno == EACCES ? ErrorCode::kPermissionDenied
                                    : ErrorCode::kUnexpectedException,
                    "open " + path + ": " + std::strerror(errno));
    }
  }
  Db db;
  db.path_ = path;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  int rc = sqlite3_open_v2(path.c_str(), &db.db_, flags, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db.db_, rc, "open " + path);
  sqlite3_extended_result_codes(db.db_, 1);
  rc = sqlite3_busy_timeout(db.db_, static_cast<int>(options.busy_timeout.count()));
  if (rc != SQLITE_OK) return SqliteStatus(db.db_, rc, "busy_timeout");

  // WAL lets readers run beside the one writer; synchronous=FULL fsyncs the WAL at
  // every commit, so a committed transaction survives a power cut (NORMAL would not).
  Result<Statement> wal = db.Prepare("PRAGMA journal_mode=WAL");
  if (!wal.ok()) return wal.status();
  Result<bool> row = wal->Step();
  if (!row.ok()) return row.status();
  if (!row.value() || wal->ColumnText(0) != "wal") {
    return Status(ErrorCode::kUnexpectedException, "cannot switch " + path + " to WAL mode");
  }
  wal = Statement();
  SVMKEY_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  SVMKEY_RETURN_IF_ERROR(db.Exec("PRAGMA cache_size=-" + std::to_string(options.cache_kib)));
  return db;
}

Db::~Db() { Close(); }

Db::Db(Db&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      path_(std::move(other.path_)),
      cache_(std::move(other.cache_)) {
  other.cache_.clear();
}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    Close();
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    cache_ = std::move(other.cache_);
    other.cache_.clear();
  }
  return *this;
}

void Db::Close() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  cache_.clear();
  if (db_ != nullptr) {
    // sqlite3_close_v2 defers the close until every statement is finalized, so a
    // leaked Statement cannot make this fail.
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

Status Db::Exec(std::string_view sql) {
  const std::string text(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "exec");
  return Status::Ok();
}

Result<Statement> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "prepare");
  return Statement(this, stmt, /*owned=*/true);
}

Result<Statement> Db::Cached(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "prepare");
    it = cache_.emplace(sql, stmt).first;
  }
  return Statement(this, it->second, /*owned=*/false);
}

Result<int64_t> Db::QueryInt(std::string_view sql) {
  Result<Statement> st = Prepare(sql);
  if (!st.ok()) return st.status();
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return Status(ErrorCode::kUnexpectedException, "query returned no row");
  return st->ColumnInt(0);
}

// ---- Transaction ----

Result<Transaction> Transaction::Begin(Db& db) {
  if (db.in_transaction()) {
    return Status(ErrorCode::kUnexpectedException, "transaction already open on this connection");
  }
  SVMKEY_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), done_(other.done_) {}

Transaction::~Transaction() {
  if (db_ != nullptr && !done_ && db_->in_transaction()) {
    db_->Exec("ROLLBACK").IgnoreError();  // nothing more to do if even ROLLBACK fails
  }
}

Status Transaction::Commit() {
  if (db_ == nullptr || done_) {
    return Status(ErrorCode::kUnexpectedException, "commit without an open transaction");
  }
  Status st = db_->Exec("COMMIT");
  if (st.ok()) done_ = true;
  return st;
}

}  // namespace svmkey::table
