#include "status.h"

#include <array>

namespace svmkey {
namespace {

constexpr ErrorInfo kErrors[] = {
#define SVMKEY_ERROR(name, code, text) {ErrorCode::k##name, #name, text},
#include "error_table.def"
#undef SVMKEY_ERROR
};

}  // namespace

const ErrorInfo* FindError(ErrorCode code) {
  for (const auto& e : kErrors) {
    if (e.code == code) return &e;
  }
  return nullptr;
}

const ErrorInfo* FindErrorByName(std::string_view name) {
  if (name.starts_with(kDbusErrorPrefix)) name.remove_prefix(kDbusErrorPrefix.size());
  for (const auto& e : kErrors) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::pair<const ErrorInfo*, size_t> AllErrors() { return {kErrors, std::size(kErrors)}; }

std::string Status::ToString() const {
  if (ok()) return "0: OK";
  std::string out = std::to_string(numeric_code());
  out += ": ";
  const ErrorInfo* info = FindError(code_);
  out += info ? info->text : "Unknown error.";
  if (!message_.empty()) {
    out += " (";
    out += message_;
    out += ")";
  }
  return out;
}

std::string Status::DbusName() const {
  const ErrorInfo* info = FindError(code_);
  std::string out(kDbusErrorPrefix);
  out += info ? info->name : "UnexpectedException";
  return out;
}

}  // namespace svmkey
