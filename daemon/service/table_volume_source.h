// TableVolumeSource: the engine's VolumeSource (engine/rewrap.h) over the volume table,
// streaming one SVM's volumes in pages so a job's memory stays bounded at any volume
// count. Used by the rekey and verify jobs on their job thread's connection.
#pragma once

#include <span>
#include <vector>

#include "daemon/table/rdb.h"
#include "daemon/table/volume_table.h"
#include "engine/rewrap.h"

namespace svmkey::daemon {

class TableVolumeSource final : public VolumeSource {
 public:
  TableVolumeSource(table::Rdb& rdb, const Uuid& svm, size_t page) : rdb_(rdb), svm_(svm), page_(page) {}

  // The next page of volumes in table order. Errors: EncryptionStatusUnavailable.
  Result<size_t> Next(std::span<VolumeRef> out) override;

 private:
  table::Rdb& rdb_;
  Uuid svm_;
  size_t page_;
  int64_t after_ = 0;
  bool done_ = false;
  std::vector<table::VolumeRow> rows_;
};

}  // namespace svmkey::daemon
