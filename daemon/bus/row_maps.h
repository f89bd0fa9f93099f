// The one mapping of each table row type to what the bus shows of it: the a{sv} maps of
// the Get*/List* replies (keys documented in ipc/org.svmkey.KeyManager1.xml) and the
// Job1 object's properties (JobFields, shared by GetJob and bus/job_object.h).
#pragma once

#include <cstdint>
#include <string>

#include "daemon/bus/options.h"
#include "daemon/service/svm_service.h"
#include "daemon/table/job_table.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/volume_table.h"

namespace svmkey::daemon {

VariantMap KeyStoreToMap(const table::KeyStoreRow& row, const std::string& svm_name);
VariantMap BarbicanConfigToMap(const table::BarbicanConfigRow& row, const std::string& svm_name);
VariantMap SvmToMap(const SvmSummary& svm);
VariantMap VolumeToMap(const table::VolumeRow& row);

// A job row as the bus shows it (times in µs since the epoch, the phase by name).
struct JobFields {
  std::string uuid, description, state, message, svm, phase;
  uint32_t code = 0;
  int64_t start_us = 0, end_us = 0;
  uint64_t done = 0, total = 0;
  bool terminal = false;
  bool cancelable = false;  // IsCancelable (job_request.h)
  uint32_t started_by_uid = 0;
};
JobFields JobFieldsFromRow(const table::JobRow& row);
// done / total, 0 when the total is not known yet.
double ProgressFraction(uint64_t done, uint64_t total);
// GetJob's map: the row's fields with the live rate (volumes/s) and expected end (µs
// since the epoch; 0 once the job ended) of its Job1 object.
VariantMap JobToMap(const JobFields& job, double rate, int64_t expected_end_us);

}  // namespace svmkey::daemon
