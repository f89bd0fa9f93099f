#include "daemon/service/table_volume_source.h"

#include <algorithm>

namespace svmkey::daemon {

Result<size_t> TableVolumeSource::Next(std::span<VolumeRef> out) {
  if (done_) return size_t{0};
  table::VolumeTable volumes(rdb_);
  Status s = volumes.ListPage(svm_, after_, std::min(out.size(), page_), &rows_, false);
  if (!s.ok()) {
    return Status(ErrorCode::kEncryptionStatusUnavailable,
                  "cannot read the volume table: " + s.ToString());
  }
  if (rows_.empty()) {
    done_ = true;
    return size_t{0};
  }
  for (size_t i = 0; i < rows_.size(); ++i) {
    out[i].id = VolumeIdentity{rows_[i].uuid, rows_[i].svm, rows_[i].dsid};
    out[i].path = rows_[i].metadata_path;
  }
  after_ = rows_.back().id;
  return rows_.size();
}

}  // namespace svmkey::daemon
