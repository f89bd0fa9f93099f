#include "daemon/table/volume_table.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "tests/daemon/table/table_test_util.h"

namespace svmkey::table {
namespace {

using testing::FakeBlob;
using testing::NumberedUuid;
using testing::RdbTest;

class VolumeTableTest : public RdbTest {
 protected:
  void SetUp() override {
    RdbTest::SetUp();
    setup_ = MakeDataSvm("vs1", 0x71);
  }
  VolumeTable volumes() { return VolumeTable(*rdb_); }
  Setup setup_;
};

TEST_F(VolumeTableTest, InsertAndGetRoundTripsEveryField) {
  VolumeRow v = MakeVolume(setup_.svm, 1);
  v.flags = kFlagClone;
  ASSERT_OK(volumes().Insert(v));
  VolumeRow got = volumes().Get(v.uuid).value();
  EXPECT_GT(got.id, 0);
  v.id = got.id;
  EXPECT_EQ(got, v);
  EXPECT_EQ(volumes().GetBlob(v.uuid).value(), FakeBlob(1, 1));
  EXPECT_CODE(volumes().Get(NumberedUuid(1, 1)).status(), kEntryNotFound);
  EXPECT_CODE(volumes().GetBlob(NumberedUuid(1, 1)).status(), kBlobNotInTable);
}

TEST_F(VolumeTableTest, VolumeWithoutBlobCopyReportsBlobNotInTable) {
  VolumeRow v = MakeVolume(setup_.svm, 1);
  v.blob.reset();
  ASSERT_OK(volumes().Insert(v));
  EXPECT_FALSE(volumes().Get(v.uuid).value().blob.has_value());
  EXPECT_CODE(volumes().GetBlob(v.uuid).status(), kBlobNotInTable);
}

struct InsertErrorCase {
  const char* what;
  std::function<void(VolumeRow&)> mutate;
  ErrorCode expected;
};

TEST_F(VolumeTableTest, InsertRefusals) {
  ASSERT_OK(volumes().Insert(MakeVolume(setup_.svm, 1)));
  const InsertErrorCase cases[] = {
      {"same uuid", [](VolumeRow& v) { v.uuid = MakeVolume({}, 1).uuid; },
       ErrorCode::kDuplicateEntry},
      {"same name in the SVM", [](VolumeRow& v) { v.name = "vol1"; }, ErrorCode::kDuplicateEntry},
      {"unknown SVM", [](VolumeRow& v) { v.svm = NumberedUuid(3, 3); }, ErrorCode::kSvmNotFound},
      {"DSID 0", [](VolumeRow& v) { v.dsid = 0; }, ErrorCode::kInvalidValue},
      {"not the active generation", [](VolumeRow& v) { v.generation = 2; },
       ErrorCode::kInvalidValue},
  };
  for (const InsertErrorCase& c : cases) {
    VolumeRow v = MakeVolume(setup_.svm, 2);
    c.mutate(v);
    EXPECT_EQ(volumes().Insert(v).code(), c.expected) << c.what;
  }
  // An admin-key-manager volume's generation belongs to the admin SVM's key manager.
  VolumeRow admin = MakeVolume(setup_.svm, 3, 7);
  admin.key_manager = KeyManager::kAdmin;
  EXPECT_OK(volumes().Insert(admin));
  EXPECT_EQ(volumes().Count(setup_.svm).value(), 2u);
}

TEST_F(VolumeTableTest, InsertManyIsAllOrNothing) {
  std::vector<VolumeRow> batch;
  for (uint64_t i = 1; i <= 100; ++i) batch.push_back(MakeVolume(setup_.svm, i));
  batch[70].name = batch[20].name;  // duplicate name part-way through
  Status st = volumes().InsertMany(batch);
  EXPECT_CODE(st, kDuplicateEntry);
  EXPECT_NE(st.message().find(batch[70].uuid.ToString()), std::string::npos);
  EXPECT_EQ(volumes().Count(setup_.svm).value(), 0u);
}

TEST_F(VolumeTableTest, NewKeysRefusedUnlessTheKeyStoreIsActive) {
  for (KeyStoreState state : {KeyStoreState::kSvmKekRekey, KeyStoreState::kBlocked}) {
    ASSERT_OK(KeyStoreTable(*rdb_).SetState(setup_.key_store, state));
    Status st = volumes().Insert(MakeVolume(setup_.svm, 1));
    EXPECT_CODE(st, kResourceInUse);
    EXPECT_NE(st.message().find(std::string(ToString(state))), std::string::npos);
    ASSERT_OK(KeyStoreTable(*rdb_).SetState(setup_.key_store, KeyStoreState::kActive));
  }
  EXPECT_OK(volumes().Insert(MakeVolume(setup_.svm, 1)));
}

TEST_F(VolumeTableTest, KeysetPagingVisitsEveryVolumeOnceInIdOrder) {
  const Setup other = MakeDataSvm("vs2", 0x72);
  std::vector<VolumeRow> mine, theirs;
  for (uint64_t i = 1; i <= 1000; ++i) {
    mine.push_back(MakeVolume(setup_.svm, i));
    theirs.push_back(MakeVolume(other.svm, 5000 + i));
  }
  // Interleave the SVMs' rows in the id space.
  for (size_t i = 0; i < mine.size(); i += 100) {
    ASSERT_OK(volumes().InsertMany(std::span(mine).subspan(i, 100)));
    ASSERT_OK(volumes().InsertMany(std::span(theirs).subspan(i, 100)));
  }
  for (size_t page : {1u, 7u, 128u, 1000u, 5000u}) {
    std::vector<VolumeRow> buf;
    std::set<std::string> seen;
    int64_t cursor = 0;
    size_t pages = 0;
    for (;;) {
      ASSERT_OK(volumes().ListPage(setup_.svm, cursor, page, &buf));
      if (buf.empty()) break;
      ++pages;
      EXPECT_LE(buf.size(), page);
      for (const VolumeRow& v : buf) {
        EXPECT_GT(v.id, cursor);
        cursor = v.id;
        EXPECT_EQ(v.svm, setup_.svm);
        EXPECT_TRUE(v.blob.has_value());
        EXPECT_TRUE(seen.insert(v.uuid.ToString()).second);
      }
    }
    EXPECT_EQ(seen.size(), 1000u) << "page " << page;
    EXPECT_EQ(pages, (1000 + page - 1) / page);
  }
  std::vector<VolumeRow> no_blobs;
  ASSERT_OK(volumes().ListPage(setup_.svm, 0, 10, &no_blobs, /*with_blobs=*/false));
  ASSERT_EQ(no_blobs.size(), 10u);
  EXPECT_FALSE(no_blobs[0].blob.has_value());
}

TEST_F(VolumeTableTest, CountsBySvmKeyManagerAndGeneration) {
  std::vector<VolumeRow> batch;
  for (uint64_t i = 1; i <= 30; ++i) {
    VolumeRow v = MakeVolume(setup_.svm, i);
    if (i % 10 == 0) v.key_manager = KeyManager::kAdmin;
    batch.push_back(v);
  }
  ASSERT_OK(volumes().InsertMany(batch));
  EXPECT_EQ(volumes().Count(setup_.svm).value(), 30u);
  EXPECT_EQ(volumes().CountByKeyManager(setup_.svm, KeyManager::kAdmin).value(), 3u);
  EXPECT_EQ(volumes().CountByKeyManager(setup_.svm, KeyManager::kData).value(), 27u);
  EXPECT_EQ(volumes().CountNotAtGeneration(setup_.svm, 1).value(), 0u);
  EXPECT_EQ(volumes().CountNotAtGeneration(setup_.svm, 2).value(), 27u);  // admin ones excluded
  EXPECT_EQ(volumes().Count(NumberedUuid(4, 4)).value(), 0u);
}

TEST_F(VolumeTableTest, UpdateBlobsIsAllOrNothing) {
  std::vector<VolumeRow> batch;
  for (uint64_t i = 1; i <= 10; ++i) batch.push_back(MakeVolume(setup_.svm, i));
  ASSERT_OK(volumes().InsertMany(batch));
  std::vector<VolumeBlobUpdate> updates;
  for (uint64_t i = 1; i <= 10; ++i) updates.push_back({batch[i - 1].uuid, 2, FakeBlob(2, i)});
  updates[5].volume = NumberedUuid(0xbad, 1);
  Status st = volumes().UpdateBlobs(updates);
  EXPECT_CODE(st, kBlobNotInTable);
  EXPECT_EQ(volumes().CountNotAtGeneration(setup_.svm, 1).value(), 0u);
  updates[5].volume = batch[5].uuid;
  ASSERT_OK(volumes().UpdateBlobs(updates));
  EXPECT_EQ(volumes().CountNotAtGeneration(setup_.svm, 2).value(), 0u);
  EXPECT_EQ(volumes().GetBlob(batch[5].uuid).value(), FakeBlob(2, 6));
  EXPECT_EQ(volumes().Get(batch[5].uuid).value().generation, 2u);
}

// 10^5 volumes through the bulk path; prints the rates (not asserted: machines differ).
// The 10^6 numbers come from the table benchmark (volume_table_bench.cc).
TEST_F(VolumeTableTest, BulkRegisterAndUpdateOneHundredThousand) {
  constexpr uint64_t kTotal = 100'000, kBatch = 50'000;
  std::vector<VolumeRow> batch;
  batch.reserve(kBatch);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  for (uint64_t base = 0; base < kTotal; base += kBatch) {
    batch.clear();
    for (uint64_t i = base + 1; i <= base + kBatch; ++i) batch.push_back(MakeVolume(setup_.svm, i));
    ASSERT_OK(volumes().InsertMany(batch));
  }
  const auto t1 = Clock::now();
  std::vector<VolumeBlobUpdate> updates;
  updates.reserve(kBatch);
  for (uint64_t base = 0; base < kTotal; base += kBatch) {
    updates.clear();
    for (uint64_t i = base + 1; i <= base + kBatch; ++i) {
      updates.push_back({MakeVolume(setup_.svm, i).uuid, 2, FakeBlob(2, i)});
    }
    ASSERT_OK(volumes().UpdateBlobs(updates));
  }
  const auto t2 = Clock::now();
  const double reg = std::chrono::duration<double>(t1 - t0).count();
  const double upd = std::chrono::duration<double>(t2 - t1).count();
  std::printf("[ timing   ] register %lu volumes: %.2f s (%.0f/s); update %lu: %.2f s (%.0f/s)\n",
              static_cast<unsigned long>(kTotal), reg, kTotal / reg,
              static_cast<unsigned long>(kTotal), upd, kTotal / upd);
  EXPECT_EQ(volumes().Count(setup_.svm).value(), kTotal);
  EXPECT_EQ(volumes().CountNotAtGeneration(setup_.svm, 2).value(), 0u);
}

}  // namespace
}  // namespace svmkey::table
