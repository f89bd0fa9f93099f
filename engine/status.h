// Status and Result<T>: how every fallible engine call reports failure.
//
// A Status is either OK (allocates nothing) or an ErrorCode from the one error table
// (error_table.def) plus a context message. The message says what failed and where;
// it must never contain key bytes or credential secrets (callers pass identifiers,
// paths and counts only). Exceptions exist only at the sdbus-c++ boundary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace svmkey {

enum class ErrorCode : uint32_t {
  kOk = 0,
#define SVMKEY_ERROR(name, code, text) k##name = code,
#include "error_table.def"
#undef SVMKEY_ERROR
};

struct ErrorInfo {
  ErrorCode code;
  std::string_view name;  // D-Bus suffix: org.svmkey.Error.<name>
  std::string_view text;  // ONTAP's message text
};

// Looks up a code; nullptr for kOk or an unknown value.
const ErrorInfo* FindError(ErrorCode code);
// Looks up by bare name ("KeyManagerBlocked") or full D-Bus name; nullptr if unknown.
const ErrorInfo* FindErrorByName(std::string_view name);
// Every entry of the table, in table order.
std::pair<const ErrorInfo*, size_t> AllErrors();

inline constexpr std::string_view kDbusErrorPrefix = "org.svmkey.Error.";

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  uint32_t numeric_code() const { return static_cast<uint32_t>(code_); }
  // Context for this failure (may be empty); see ToString() for the full text.
  const std::string& message() const { return message_; }
  // "<code>: <table text>[ (<context>)]", the form used on the bus and in logs.
  std::string ToString() const;
  // "org.svmkey.Error.<Name>"
  std::string DbusName() const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// Either a value or a failed Status (g++ 12 has no std::expected).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must not be OK

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace svmkey

// Early return of a failed Status.
#define SVMKEY_RETURN_IF_ERROR(expr)          \
  do {                                        \
    ::svmkey::Status svmkey_status_ = (expr); \
    if (!svmkey_status_.ok()) return svmkey_status_; \
  } while (0)
