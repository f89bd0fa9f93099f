// GoogleMock matchers for Status and Result<T> (engine/status.h); a failure prints the
// status's ToString().
//
//   EXPECT_THAT(table.Create(row), IsOk());
//   EXPECT_THAT(Rdb::Open(options), HasCode(ErrorCode::kEntryNotFound));
//   ASSERT_OK(expr); EXPECT_OK(expr); EXPECT_CODE(expr, kEntryNotFound) << context;
#pragma once

#include <gmock/gmock.h>

#include <ostream>

#include "engine/status.h"

namespace svmkey {

// How gtest prints a Status in its messages.
inline void PrintTo(const Status& status, std::ostream* os) { *os << status.ToString(); }

namespace testing {

inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const Status& status = ::svmkey::testing::StatusOf(arg);
  if (!status.ok()) *result_listener << "status " << status.ToString();
  return status.ok();
}

MATCHER_P(HasCode, code,
          std::string(negation ? "does not have" : "has") + " error code " +
              std::to_string(static_cast<uint32_t>(code))) {
  const Status& status = ::svmkey::testing::StatusOf(arg);
  *result_listener << "status " << status.ToString();
  return status.code() == code;
}

}  // namespace testing
}  // namespace svmkey

// Statements (safe as the body of an unbraced if or for).
#define ASSERT_OK(expr) \
  do {                  \
    ASSERT_THAT((expr), ::svmkey::testing::IsOk()); \
  } while (0)
#define EXPECT_OK(expr) \
  do {                  \
    EXPECT_THAT((expr), ::svmkey::testing::IsOk()); \
  } while (0)
// An expectation that takes `<<` context; `ec` is an ErrorCode enumerator without its
// prefix: EXPECT_CODE(s, kEntryNotFound) << row.
#define EXPECT_CODE(expr, ec) \
  EXPECT_THAT((expr), ::svmkey::testing::HasCode(::svmkey::ErrorCode::ec))
