#include "engine/uuid.h"

#include <gtest/gtest.h>

#include <set>

namespace svmkey {
namespace {

TEST(UuidTest, ParsesAndPrintsCanonicalForm) {
  auto u = Uuid::Parse("0B5C1B0E-aaaa-4bbb-8ccc-0123456789AB");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->ToString(), "0b5c1b0e-aaaa-4bbb-8ccc-0123456789ab");
  EXPECT_FALSE(u->IsNil());
  EXPECT_TRUE(Uuid{}.IsNil());
}

TEST(UuidTest, RejectsMalformed) {
  const char* bad[] = {"",
                       "0b5c1b0e-aaaa-4bbb-8ccc-0123456789a",
                       "0b5c1b0e-aaaa-4bbb-8ccc-0123456789abc",
                       "0b5c1b0eaaaaa-4bbb-8ccc-0123456789ab",
                       "0b5c1b0e-aaaa-4bbb-8ccc_0123456789ab",
                       "0b5c1b0g-aaaa-4bbb-8ccc-0123456789ab",
                       "{b5c1b0e-aaaa-4bbb-8ccc-0123456789a}",
                       "../../../etc/passwd-aaaa-bbbb-ccccc"};
  for (const char* s : bad) EXPECT_FALSE(Uuid::Parse(s).has_value()) << s;
}

TEST(UuidTest, RandomIsVersion4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    Uuid u = Uuid::Random();
    EXPECT_EQ(u.bytes[6] >> 4, 4);
    EXPECT_EQ(u.bytes[8] >> 6, 2);
    EXPECT_TRUE(seen.insert(u.ToString()).second);
    EXPECT_EQ(Uuid::Parse(u.ToString()), u);
  }
}

}  // namespace
}  // namespace svmkey
