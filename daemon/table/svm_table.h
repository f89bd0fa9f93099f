// SvmTable: the SVMs (storage virtual machines) known to svmkeyd.
//
// A view over an Rdb (see rdb.h for threads and ownership): cheap to construct, holds a
// reference, each call runs under the Rdb's mutex.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/table/rdb.h"
#include "daemon/table/states.h"
#include "engine/uuid.h"

namespace svmkey::table {

struct SvmRow {
  Uuid uuid;
  std::string name;
  SvmKind kind = SvmKind::kData;
  friend bool operator==(const SvmRow&, const SvmRow&) = default;
};

class SvmTable {
 public:
  explicit SvmTable(Rdb& rdb) : rdb_(rdb) {}

  // Errors: DuplicateEntry (uuid or name taken), InvalidSvmName (empty name).
  Status Create(const SvmRow& svm);
  // Errors: SvmNotFound.
  Result<SvmRow> Get(const Uuid& uuid);
  Result<SvmRow> GetByName(const std::string& name);
  // All SVMs, by name.
  Result<std::vector<SvmRow>> List();

 private:
  Rdb& rdb_;
};

}  // namespace svmkey::table
