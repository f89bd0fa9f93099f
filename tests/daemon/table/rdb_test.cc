// Rdb as a whole: opening, the host key options, a process killed mid-transaction, and
// readers running beside a writer.
#include "daemon/table/rdb.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "daemon/table/schema.h"
#include "tests/daemon/table/table_test_util.h"

namespace svmkey::table {
namespace {

using testing::NumberedUuid;
using testing::RdbTest;
using testing::TempDir;

TEST(RdbOpenTest, CreatesTheFileAndAnOwnerOnlyHostKeyBesideIt) {
  TempDir dir;
  RdbOptions o;
  o.path = dir / "rdb.sqlite";
  Result<std::unique_ptr<Rdb>> rdb = Rdb::Open(o);
  ASSERT_TRUE(rdb.ok()) << rdb.status().ToString();
  EXPECT_EQ(rdb.value()->opened_at_version(), 0);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "host.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir / "rdb.sqlite").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_OK(rdb.value()->CheckIntegrity());
  rdb.value().reset();
  Result<std::unique_ptr<Rdb>> again = Rdb::Open(o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value()->opened_at_version(), kSchemaVersion);
}

TEST(RdbOpenTest, HostKeyFromASystemdCredential) {
  TempDir dir;
  const std::string cred = dir / "host-key";
  RdbOptions o;
  o.path = dir / "rdb.sqlite";
  o.host_key_path = cred;
  o.host_key_is_credential = true;
  EXPECT_CODE(Rdb::Open(o).status(), kEntryNotFound);  // never created by us
  EXPECT_FALSE(std::filesystem::exists(dir / "host.key"));
  {
    // What LoadCredential= would hand over: a fixed key, read-only.
    std::FILE* f = std::fopen(cred.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::string key(32, 'k');
    std::fwrite(key.data(), 1, key.size(), f);
    std::fclose(f);
    ASSERT_EQ(::chmod(cred.c_str(), 0400), 0);
  }
  Result<std::unique_ptr<Rdb>> rdb = Rdb::Open(o);
  ASSERT_TRUE(rdb.ok()) << rdb.status().ToString();
  Rdb& r = *rdb.value();
  ASSERT_OK(SvmTable(r).Create({NumberedUuid(1, 1), "vs1", SvmKind::kData}));
  NewBarbicanConfig c;
  c.uuid = NumberedUuid(1, 2);
  c.name = "cfg";
  c.svm = NumberedUuid(1, 1);
  c.key_id = testing::kKeyId;
  c.keystone_url = testing::kKeystone;
  c.application_cred_id = "id";
  ASSERT_OK(KeyStoreTable(r).CreateBarbicanConfig(c, "sealed-with-credential"));
  rdb.value().reset();

  // The same file opened with a different host key cannot unseal the secret.
  RdbOptions with_file_key;
  with_file_key.path = o.path;
  Result<std::unique_ptr<Rdb>> other = Rdb::Open(with_file_key);
  ASSERT_TRUE(other.ok());
  EXPECT_CODE(KeyStoreTable(*other.value()).GetCredentialSecret(c.uuid).status(), kDecryptFailed);
  other.value().reset();
  Result<std::unique_ptr<Rdb>> back = Rdb::Open(o);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(KeyStoreTable(*back.value()).GetCredentialSecret(c.uuid).ok());
}

TEST(RdbOpenTest, MissingPathIsAnError) {
  EXPECT_CODE(Rdb::Open(RdbOptions{}).status(), kInvalidArgument);
}

// ---- crash: a child process killed with SIGKILL in the middle of a transaction ----

class RdbCrashTest : public RdbTest {
 protected:
  // Runs `child` in a forked process (which must not touch the parent's connection:
  // SQLite connections do not survive fork), waits for it to write one byte per step to
  // the pipe, and kills it with SIGKILL after `steps` bytes plus `delay`.
  template <typename Fn>
  void RunAndKill(Fn child, int steps, std::chrono::microseconds delay) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      Result<std::unique_ptr<Rdb>> r = Rdb::Open(Options());
      if (!r.ok()) ::_exit(2);
      child(*r.value(), fds[1]);
      ::_exit(3);  // the child is meant to be killed before it gets here
    }
    ::close(fds[1]);
    char c;
    for (int i = 0; i < steps; ++i) ASSERT_EQ(::read(fds[0], &c, 1), 1) << "child died early";
    std::this_thread::sleep_for(delay);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    ::close(fds[0]);
  }
  static void Signal(int fd) {
    const char c = 'x';
    if (::write(fd, &c, 1) != 1) ::_exit(4);
  }
};

TEST_F(RdbCrashTest, KillBetweenStatementsOfTheCommitLeavesTheOldState) {
  const Setup s = MakeDataSvm("vs1", 0x61);
  const Uuid job = NumberedUuid(0x10b, 1);
  ASSERT_OK(VolumeTable(*rdb_).Insert(MakeVolume(s.svm, 1)));
  ASSERT_OK(JobTable(*rdb_).Create({job, "rekey-internal", s.svm, s.key_store, "{}"}));
  ASSERT_OK(JobTable(*rdb_).Start(job));
  SvmKekRow pending{s.svm, 2, testing::FakeWrapped(2), testing::kKeyId, SvmKekState::kPending, 0};
  ASSERT_OK(SvmKekTable(*rdb_).BeginRekey(pending, s.key_store, job));
  rdb_.reset();

  // The child runs the commit's statements by hand and stops half-way, inside the
  // transaction: g1 retired, g2 active, but key store and job not yet updated.
  RunAndKill(
      [&](Rdb& r, int fd) {
        Rdb::Session session = r.Lock();
        Result<Transaction> txn = Transaction::Begin(session.db());
        if (!txn.ok()) ::_exit(5);
        const std::string svm = s.svm.ToString();
        if (!session.db().Exec("UPDATE svm_keks SET state = 'retired' WHERE svm_uuid = '" + svm +
                               "' AND generation = 1").ok()) ::_exit(6);
        if (!session.db().Exec("UPDATE svm_keks SET state = 'active' WHERE svm_uuid = '" + svm +
                               "' AND generation = 2").ok()) ::_exit(7);
        if (!session.db().Exec("UPDATE volumes SET generation = 2").ok()) ::_exit(8);
        Signal(fd);
        for (;;) ::pause();
      },
      1, std::chrono::microseconds(0));

  Reopen();
  EXPECT_OK(rdb_->CheckIntegrity());
  SvmKekTable keks(*rdb_);
  EXPECT_EQ(keks.GetActive(s.svm).value().generation, 1u);
  EXPECT_EQ(keks.GetPending(s.svm).value().generation, 2u);
  EXPECT_EQ(VolumeTable(*rdb_).CountNotAtGeneration(s.svm, 1).value(), 0u);
  EXPECT_EQ(JobTable(*rdb_).Get(job).value().state, JobState::kRunning);
  EXPECT_EQ(KeyStoreTable(*rdb_).GetKeyStore(s.key_store).value().state,
            KeyStoreState::kSvmKekRekey);
  // Recovery: the job is found and the commit can run now.
  ASSERT_EQ(JobTable(*rdb_).ListUnfinished().value().size(), 1u);
  ASSERT_OK(VolumeTable(*rdb_).UpdateBlobs(
      std::vector<VolumeBlobUpdate>{{MakeVolume(s.svm, 1).uuid, 2, testing::FakeBlob(2, 1)}}));
  EXPECT_OK(keks.CommitRekey(s.svm, 2, s.key_store, job));
}

TEST_F(RdbCrashTest, KillDuringBulkRegistrationLeavesWholeBatchesOnly) {
  const Setup s = MakeDataSvm("vs1", 0x62);
  rdb_.reset();
  constexpr uint64_t kBatch = 5000;
  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < 3; ++round) {
    RunAndKill(
        [&, round](Rdb& r, int fd) {
          std::vector<VolumeRow> batch;
          for (uint64_t b = 0;; ++b) {
            batch.clear();
            for (uint64_t i = 0; i < kBatch; ++i) {
              batch.push_back(MakeVolume(s.svm, (round * 1000 + b) * kBatch + i + 1));
            }
            if (!VolumeTable(r).InsertMany(batch).ok()) ::_exit(9);
            Signal(fd);
          }
        },
        2, std::chrono::microseconds(rng() % 40000));
    Reopen();
    EXPECT_OK(rdb_->CheckIntegrity());
    const uint64_t n = VolumeTable(*rdb_).Count(s.svm).value();
    EXPECT_GE(n, 2 * kBatch * (round + 1));
    EXPECT_EQ(n % kBatch, 0u) << "a partial batch survived: " << n;
    rdb_.reset();
  }
  Reopen();
}

// ---- concurrency ----

TEST_F(RdbTest, ReaderOnAnotherConnectionIsNotBlockedByAnOpenWriteTransaction) {
  const Setup s = MakeDataSvm("vs1", 0x63);
  ASSERT_OK(VolumeTable(*rdb_).Insert(MakeVolume(s.svm, 1)));
  Result<std::unique_ptr<Rdb>> reader = Rdb::Open(Options());
  ASSERT_TRUE(reader.ok());
  {
    Rdb::Session w = rdb_->Lock();
    Result<Transaction> txn = Transaction::Begin(w.db());
    ASSERT_TRUE(txn.ok());
    ASSERT_OK(w.db().Exec("DELETE FROM volumes"));
    // The write lock is held and a row deleted; the reader sees the last commit.
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(VolumeTable(*reader.value()).Count(s.svm).value(), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));  // no busy wait
    // A second writer waits for the lock (busy_timeout) and then gets ResourceInUse.
    RdbOptions quick = Options();
    quick.busy_timeout = std::chrono::milliseconds(20);
    Result<std::unique_ptr<Rdb>> writer2 = Rdb::Open(quick);
    ASSERT_TRUE(writer2.ok());
    EXPECT_CODE(VolumeTable(*writer2.value()).Insert(MakeVolume(s.svm, 2)), kResourceInUse);
  }  // rolled back
  EXPECT_EQ(VolumeTable(*reader.value()).Count(s.svm).value(), 1u);
}

TEST_F(RdbTest, ConcurrentReadersSeeOnlyCommittedBatchesWhileAWriterRuns) {
  const Setup s = MakeDataSvm("vs1", 0x64);
  constexpr uint64_t kBatch = 1000, kBatches = 40;
  std::atomic<bool> writing{true};
  std::atomic<int> reader_errors{0};
  std::atomic<uint64_t> reads_during_write{0};

  std::thread writer([&] {
    Result<std::unique_ptr<Rdb>> w = Rdb::Open(Options());
    if (!w.ok()) {
      writing = false;
      return;
    }
    std::vector<VolumeRow> batch;
    for (uint64_t b = 0; b < kBatches; ++b) {
      batch.clear();
      for (uint64_t i = 1; i <= kBatch; ++i) batch.push_back(MakeVolume(s.svm, b * kBatch + i));
      if (!VolumeTable(*w.value()).InsertMany(batch).ok()) reader_errors++;
    }
    writing = false;
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      Result<std::unique_ptr<Rdb>> r = Rdb::Open(Options());
      if (!r.ok()) {
        reader_errors++;
        return;
      }
      uint64_t last = 0;
      std::vector<VolumeRow> page;
      while (writing) {
        Result<uint64_t> n = VolumeTable(*r.value()).Count(s.svm);
        if (!n.ok() || n.value() % kBatch != 0 || n.value() < last) reader_errors++;
        if (n.ok()) last = n.value();
        if (!VolumeTable(*r.value()).ListPage(s.svm, 0, 100, &page).ok()) reader_errors++;
        reads_during_write++;
      }
    });
  }
  writer.join();
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(reader_errors.load(), 0);
  EXPECT_GT(reads_during_write.load(), 0u);
  EXPECT_EQ(VolumeTable(*rdb_).Count(s.svm).value(), kBatch * kBatches);
}

TEST_F(RdbTest, OneRdbSharedByThreadsSerializesCalls) {
  const Uuid svm = NumberedUuid(0x65, 1);
  ASSERT_OK(SvmTable(*rdb_).Create({svm, "vs1", SvmKind::kData}));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 100; ++i) {
        const Uuid id = NumberedUuid(0x10b, t * 1000 + i);
        if (!JobTable(*rdb_).Create({id, "job", svm, std::nullopt, "{}"}).ok()) errors++;
        if (!JobTable(*rdb_).Start(id).ok()) errors++;
        if (!JobTable(*rdb_).Get(id).ok()) errors++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(JobTable(*rdb_).ListUnfinished().value().size(), 400u);
}

TEST_F(RdbTest, TwoWritersOnSeparateConnectionsBothSucceed) {
  const Setup a = MakeDataSvm("vs1", 0x66);
  const Setup b = MakeDataSvm("vs2", 0x67);
  std::atomic<int> errors{0};
  auto write = [&](const Uuid& svm, uint64_t base) {
    Result<std::unique_ptr<Rdb>> w = Rdb::Open(Options());
    if (!w.ok()) {
      errors++;
      return;
    }
    for (uint64_t round = 0; round < 20; ++round) {
      std::vector<VolumeRow> batch;
      for (uint64_t i = 1; i <= 500; ++i) batch.push_back(MakeVolume(svm, base + round * 500 + i));
      if (!VolumeTable(*w.value()).InsertMany(batch).ok()) errors++;
    }
  };
  std::thread ta(write, a.svm, 0), tb(write, b.svm, 1'000'000);
  ta.join();
  tb.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(VolumeTable(*rdb_).Count(a.svm).value(), 10'000u);
  EXPECT_EQ(VolumeTable(*rdb_).Count(b.svm).value(), 10'000u);
}

}  // namespace
}  // namespace svmkey::table
