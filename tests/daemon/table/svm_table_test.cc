#include "daemon/table/svm_table.h"

#include <gtest/gtest.h>

#include "tests/daemon/table/table_test_util.h"

namespace svmkey::table {
namespace {

using testing::NumberedUuid;
using testing::RdbTest;

using SvmTableTest = RdbTest;

TEST_F(SvmTableTest, CreateGetListByName) {
  SvmTable svms(*rdb_);
  const SvmRow b{NumberedUuid(1, 1), "vs-b", SvmKind::kData};
  const SvmRow a{NumberedUuid(1, 2), "vs-a", SvmKind::kAdmin};
  ASSERT_OK(svms.Create(b));
  ASSERT_OK(svms.Create(a));
  EXPECT_EQ(svms.Get(b.uuid).value(), b);
  EXPECT_EQ(svms.GetByName("vs-a").value(), a);
  Result<std::vector<SvmRow>> all = svms.List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(all->at(0), a);  // by name
  EXPECT_EQ(all->at(1), b);
}

TEST_F(SvmTableTest, DuplicatesAndMissingAreErrors) {
  SvmTable svms(*rdb_);
  ASSERT_OK(svms.Create({NumberedUuid(1, 1), "vs1", SvmKind::kData}));
  EXPECT_CODE(svms.Create({NumberedUuid(1, 1), "other", SvmKind::kData}), kDuplicateEntry);
  EXPECT_CODE(svms.Create({NumberedUuid(1, 2), "vs1", SvmKind::kData}), kDuplicateEntry);
  // The error names the SVM in the way, never the refused row's uuid.
  const std::string existing = NumberedUuid(1, 1).ToString();
  const std::string refused = NumberedUuid(1, 2).ToString();
  const std::string by_name = svms.Create({NumberedUuid(1, 2), "vs1", SvmKind::kData}).message();
  EXPECT_NE(by_name.find("vs1 (" + existing + ")"), std::string::npos) << by_name;
  EXPECT_EQ(by_name.find(refused), std::string::npos) << by_name;
  const std::string by_uuid =
      svms.Create({NumberedUuid(1, 1), "other", SvmKind::kData}).message();
  EXPECT_NE(by_uuid.find("vs1 (" + existing + ")"), std::string::npos) << by_uuid;
  EXPECT_CODE(svms.Create({NumberedUuid(1, 3), "", SvmKind::kData}), kInvalidSvmName);
  EXPECT_CODE(svms.Get(NumberedUuid(1, 9)).status(), kSvmNotFound);
  EXPECT_CODE(svms.GetByName("nope").status(), kSvmNotFound);
}

TEST_F(SvmTableTest, RowsSurviveReopen) {
  ASSERT_OK(SvmTable(*rdb_).Create({NumberedUuid(1, 1), "vs1", SvmKind::kData}));
  Reopen();
  EXPECT_EQ(SvmTable(*rdb_).Get(NumberedUuid(1, 1)).value().name, "vs1");
}

}  // namespace
}  // namespace svmkey::table
