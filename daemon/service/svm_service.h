// The SVMs: lookups by name or uuid, creation and the listing with each SVM's active key
// generation. Every function takes the table connection of the calling thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/table/rdb.h"
#include "daemon/table/svm_table.h"
#include "engine/status.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

// `svm_text` is an SVM uuid or name. Errors: the table's for an unknown uuid,
// InvalidSvmName for a malformed name, SvmNotFound for an unknown name.
Result<Uuid> ResolveSvm(table::Rdb& rdb, const std::string& svm_text);
// The SVM's name, or its uuid as text when it has no row.
std::string SvmName(table::Rdb& rdb, const Uuid& svm);

Status CreateSvm(table::Rdb& rdb, const table::SvmRow& row);

struct SvmSummary {
  table::SvmRow row;
  uint64_t key_generation = 0;  // the active SVM-KEK's generation; 0 = none yet
};
Result<std::vector<SvmSummary>> ListSvms(table::Rdb& rdb);

}  // namespace svmkey::daemon
