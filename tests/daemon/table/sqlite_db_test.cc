#include "daemon/table/sqlite_db.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/daemon/table/table_test_util.h"

namespace svmkey::table {
namespace {

using testing::TempDir;

Db OpenOrDie(const std::string& path, DbOptions o = {}) {
  Result<Db> db = Db::Open(path, o);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return std::move(db).value();
}

TEST(SqliteDbTest, OpenSetsWalFullSyncForeignKeysAndOwnerOnlyMode) {
  TempDir dir;
  Db db = OpenOrDie(dir / "t.sqlite");
  Result<Statement> jm = db.Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(jm.ok());
  ASSERT_TRUE(jm->Step().value());
  EXPECT_EQ(jm->ColumnText(0), "wal");
  EXPECT_EQ(db.QueryInt("PRAGMA synchronous").value(), 2);  // FULL
  EXPECT_EQ(db.QueryInt("PRAGMA foreign_keys").value(), 1);
  EXPECT_EQ(db.QueryInt("PRAGMA busy_timeout").value(), 5000);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "t.sqlite").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SqliteDbTest, OpenWithoutCreateFailsOnMissingFile) {
  TempDir dir;
  DbOptions o;
  o.create = false;
  Result<Db> db = Db::Open(dir / "missing.sqlite", o);
  EXPECT_FALSE(db.ok());
}

TEST(SqliteDbTest, TransactionRollsBackUnlessCommitted) {
  TempDir dir;
  Db db = OpenOrDie(dir / "t.sqlite");
  ASSERT_OK(db.Exec("CREATE TABLE t (x INTEGER)"));
  {
    Result<Transaction> txn = Transaction::Begin(db);
    ASSERT_TRUE(txn.ok());
    ASSERT_OK(db.Exec("INSERT INTO t VALUES (1)"));
    EXPECT_TRUE(db.in_transaction());
  }  // destroyed without Commit
  EXPECT_FALSE(db.in_transaction());
  EXPECT_EQ(db.QueryInt("SELECT count(*) FROM t").value(), 0);
  {
    Result<Transaction> txn = Transaction::Begin(db);
    ASSERT_TRUE(txn.ok());
    ASSERT_OK(db.Exec("INSERT INTO t VALUES (2)"));
    ASSERT_OK(txn->Commit());
    EXPECT_FALSE(txn->Commit().ok());  // a second commit is refused
  }
  EXPECT_EQ(db.QueryInt("SELECT count(*) FROM t").value(), 1);
}

TEST(SqliteDbTest, TransactionsDoNotNest) {
  TempDir dir;
  Db db = OpenOrDie(dir / "t.sqlite");
  Result<Transaction> outer = Transaction::Begin(db);
  ASSERT_TRUE(outer.ok());
  Result<Transaction> inner = Transaction::Begin(db);
  EXPECT_FALSE(inner.ok());
}

TEST(SqliteDbTest, BeginImmediateWaitsThenReportsBusyAsResourceInUse) {
  TempDir dir;
  Db a = OpenOrDie(dir / "t.sqlite");
  DbOptions quick;
  quick.busy_timeout = std::chrono::milliseconds(50);
  Db b = OpenOrDie(dir / "t.sqlite", quick);
  ASSERT_OK(a.Exec("CREATE TABLE t (x INTEGER)"));
  Result<Transaction> holder = Transaction::Begin(a);
  ASSERT_TRUE(holder.ok());
  Result<Transaction> blocked = Transaction::Begin(b);
  ASSERT_FALSE(blocked.ok());
  EXPECT_CODE(blocked.status(), kResourceInUse);
  // Readers are not blocked by the writer (WAL).
  EXPECT_EQ(b.QueryInt("SELECT count(*) FROM t").value(), 0);
  ASSERT_OK(holder->Commit());
  Result<Transaction> now_free = Transaction::Begin(b);
  EXPECT_TRUE(now_free.ok());
}

TEST(SqliteDbTest, CachedStatementIsResetAndUnboundForTheNextBorrower) {
  TempDir dir;
  Db db = OpenOrDie(dir / "t.sqlite");
  ASSERT_OK(db.Exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);"));
  static const char* kSql = "SELECT x FROM t WHERE x >= ?1 ORDER BY x";
  {
    Result<Statement> st = db.Cached(kSql);
    ASSERT_TRUE(st.ok());
    st->Bind(1, int64_t{2});
    ASSERT_TRUE(st->Step().value());
    EXPECT_EQ(st->ColumnInt(0), 2);
  }  // returned mid-scan
  Result<Statement> again = db.Cached(kSql);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->raw(), db.Cached(kSql)->raw());  // the same compiled statement
  // Unbound parameter is NULL: x >= NULL matches nothing, proving the old binding is gone.
  EXPECT_FALSE(again->Step().value());
}

TEST(SqliteDbTest, BindErrorSurfacesAtStep) {
  TempDir dir;
  Db db = OpenOrDie(dir / "t.sqlite");
  Result<Statement> st = db.Prepare("SELECT ?1");
  ASSERT_TRUE(st.ok());
  st->Bind(7, int64_t{1});  // no parameter 7
  Result<bool> r = st->Step();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bind parameter 7"), std::string::npos);
}

TEST(SqliteDbTest, EmptyBlobBindsAsBlobNotNull) {
  TempDir dir;
  Db db = OpenOrDie(dir / "t.sqlite");
  Result<Statement> st = db.Prepare("SELECT typeof(?1)");
  ASSERT_TRUE(st.ok());
  st->Bind(1, std::span<const uint8_t>());
  ASSERT_TRUE(st->Step().value());
  EXPECT_EQ(st->ColumnText(0), "blob");
}

struct StatusCase {
  int rc;
  ErrorCode expected;
};

TEST(SqliteDbTest, SqliteStatusMapsResultCodesToTheErrorTable) {
  const StatusCase cases[] = {
      {SQLITE_CONSTRAINT_UNIQUE, ErrorCode::kDuplicateEntry},
      {SQLITE_CONSTRAINT_PRIMARYKEY, ErrorCode::kDuplicateEntry},
      {SQLITE_CONSTRAINT_CHECK, ErrorCode::kInvalidValue},
      {SQLITE_CONSTRAINT_FOREIGNKEY, ErrorCode::kInvalidValue},
      {SQLITE_CONSTRAINT_NOTNULL, ErrorCode::kInvalidValue},
      {SQLITE_BUSY, ErrorCode::kResourceInUse},
      {SQLITE_BUSY_SNAPSHOT, ErrorCode::kResourceInUse},
      {SQLITE_LOCKED, ErrorCode::kResourceInUse},
      {SQLITE_FULL, ErrorCode::kResourceLimit},
      {SQLITE_NOMEM, ErrorCode::kResourceLimit},
      {SQLITE_READONLY, ErrorCode::kPermissionDenied},
      {SQLITE_PERM, ErrorCode::kPermissionDenied},
      {SQLITE_IOERR_FSYNC, ErrorCode::kUnexpectedException},
      {SQLITE_CORRUPT, ErrorCode::kUnexpectedException},
  };
  for (const StatusCase& c : cases) {
    Status st = SqliteStatus(nullptr, c.rc, "op");
    EXPECT_EQ(st.code(), c.expected) << "rc " << c.rc;
    EXPECT_EQ(st.message().rfind("op: ", 0), 0u);
  }
}

TEST(SqliteDbTest, ConstraintViolationFromARealStatementIsDuplicateEntry) {
  TempDir dir;
  Db db = OpenOrDie(dir / "t.sqlite");
  ASSERT_OK(db.Exec("CREATE TABLE t (x INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);"));
  Result<Statement> st = db.Prepare("INSERT INTO t VALUES (1)");
  ASSERT_TRUE(st.ok());
  EXPECT_CODE(st->Run(), kDuplicateEntry);
}

}  // namespace
}  // namespace svmkey::table
