#include "daemon/service/svm_service.h"

#include "daemon/core/log.h"
#include "daemon/table/svm_kek_table.h"

namespace svmkey::daemon {

Result<Uuid> ResolveSvm(table::Rdb& rdb, const std::string& svm_text) {
  table::SvmTable svms(rdb);
  if (auto uuid = Uuid::Parse(svm_text)) {
    auto row = svms.Get(*uuid);
    if (!row.ok()) return row.status();
    return row->uuid;
  }
  if (svm_text.empty() || svm_text.size() > 255) {
    return Status(ErrorCode::kInvalidSvmName, "svm must be an SVM name or uuid");
  }
  auto row = svms.GetByName(svm_text);
  if (!row.ok())
    return Status(ErrorCode::kSvmNotFound, "no SVM named '" + Printable(svm_text) + "'");
  return row->uuid;
}

std::string SvmName(table::Rdb& rdb, const Uuid& svm) {
  table::SvmTable svms(rdb);
  auto row = svms.Get(svm);
  return row.ok() ? row->name : svm.ToString();
}

Status CreateSvm(table::Rdb& rdb, const table::SvmRow& row) {
  table::SvmTable svms(rdb);
  SVMKEY_RETURN_IF_ERROR(svms.Create(row));
  LogInfo("created SVM " + row.name + " (" + row.uuid.ToString() + ")");
  return Status::Ok();
}

Result<std::vector<SvmSummary>> ListSvms(table::Rdb& rdb) {
  table::SvmTable svms(rdb);
  table::SvmKekTable keks(rdb);
  auto rows = svms.List();
  if (!rows.ok()) return rows.status();
  std::vector<SvmSummary> out;
  for (auto& row : *rows) {
    auto active = keks.GetActive(row.uuid);
    out.push_back(SvmSummary{std::move(row), active.ok() ? active->generation : 0});
  }
  return out;
}

}  // namespace svmkey::daemon
