#include "engine/status.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace svmkey {
namespace {

TEST(StatusTest, OkIsOkAndCarriesNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.numeric_code(), 0u);
  EXPECT_EQ(s.ToString(), "0: OK");
}

TEST(StatusTest, ErrorFormatsCodeTextAndContext) {
  Status s(ErrorCode::kKeyManagerBlocked, "HTTP 401 from 127.0.0.1");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.numeric_code(), 65537556u);
  EXPECT_EQ(s.DbusName(), "org.svmkey.Error.KeyManagerBlocked");
  EXPECT_TRUE(s.ToString().starts_with("65537556: ONTAP is unable") ||
              s.ToString().starts_with("65537556: Unable"));
  EXPECT_TRUE(s.ToString().ends_with("(HTTP 401 from 127.0.0.1)"));
}

TEST(StatusTest, ResultHoldsValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  EXPECT_TRUE(good.status().ok());
  Result<int> bad(Status(ErrorCode::kEntryNotFound, "job"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kEntryNotFound);
}

TEST(ErrorTableTest, CodesAndNamesAreUniqueAndTwoWay) {
  auto [errors, n] = AllErrors();
  std::set<uint32_t> codes;
  std::set<std::string> names;
  const std::regex name_re("[A-Z][A-Za-z0-9]*");
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(codes.insert(static_cast<uint32_t>(errors[i].code)).second) << errors[i].name;
    EXPECT_TRUE(names.insert(std::string(errors[i].name)).second) << errors[i].name;
    EXPECT_TRUE(std::regex_match(std::string(errors[i].name), name_re)) << errors[i].name;
    EXPECT_FALSE(errors[i].text.empty());
    EXPECT_EQ(FindError(errors[i].code), &errors[i]);
    EXPECT_EQ(FindErrorByName(errors[i].name), &errors[i]);
    EXPECT_EQ(FindErrorByName("org.svmkey.Error." + std::string(errors[i].name)), &errors[i]);
  }
  EXPECT_EQ(FindErrorByName("NoSuchError"), nullptr);
  EXPECT_EQ(FindError(ErrorCode::kOk), nullptr);
}

// Every code of the endpoint's specification is in the table.
TEST(ErrorTableTest, HoldsEveryCodeOfTheEndpoint) {
  const uint32_t endpoint_codes[] = {
      65536205, 65536882, 65536883, 65536884, 65536889, 65536973, 65537533, 65537547,
      65537556, 65537565, 65537610, 65539200, 65539201, 65539202, 65539416, 65539436,
      65539437, 65539817, 65539834, 65539836, 65539844, 196608088, 196608352,
      // common codes the daemon uses
      2, 4, 6, 8, 262179, 262185};
  for (uint32_t code : endpoint_codes) {
    EXPECT_NE(FindError(static_cast<ErrorCode>(code)), nullptr) << code;
  }
}

}  // namespace
}  // namespace svmkey
