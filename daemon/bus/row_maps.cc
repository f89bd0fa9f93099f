#include "daemon/bus/row_maps.h"

#include "daemon/service/job_request.h"
#include "daemon/table/states.h"
#include "ipc/bus_names.h"

namespace svmkey::daemon {

using sdbus::Variant;

VariantMap KeyStoreToMap(const table::KeyStoreRow& row, const std::string& svm_name) {
  VariantMap m;
  m["uuid"] = Variant(row.uuid.ToString());
  m["name"] = Variant(row.name);
  m["svm"] = Variant(svm_name);
  m["svm_uuid"] = Variant(row.svm.ToString());
  m["type"] = Variant(row.type);
  m["enabled"] = Variant(row.enabled);
  m["state"] = Variant(std::string(table::ToString(row.state)));
  return m;
}

VariantMap BarbicanConfigToMap(const table::BarbicanConfigRow& row, const std::string& svm_name) {
  VariantMap m = KeyStoreToMap(row.key_store, svm_name);
  m.erase("type");
  m["key_id"] = Variant(row.key_id);
  m["keystone_url"] = Variant(row.keystone_url);
  m["application_cred_id"] = Variant(row.application_cred_id);
  m["verify"] = Variant(row.settings.verify);
  m["verify_host"] = Variant(row.settings.verify_host);
  m["timeout"] = Variant(row.settings.timeout_s);
  m["ca_file"] = Variant(row.settings.ca_file);
  m["proxy_type"] = Variant(row.settings.proxy_type);
  m["proxy_host"] = Variant(row.settings.proxy_host);
  m["proxy_port"] = Variant(static_cast<uint32_t>(row.settings.proxy_port));
  m["proxy_username"] = Variant(row.settings.proxy_username);
  m["scope"] = Variant(std::string("svm"));
  return m;
}

VariantMap SvmToMap(const SvmSummary& svm) {
  VariantMap m;
  m["uuid"] = Variant(svm.row.uuid.ToString());
  m["name"] = Variant(svm.row.name);
  m["kind"] = Variant(std::string(table::ToString(svm.row.kind)));
  m["key_generation"] = Variant(svm.key_generation);
  return m;
}

VariantMap VolumeToMap(const table::VolumeRow& row) {
  VariantMap m;
  m["uuid"] = Variant(row.uuid.ToString());
  m["name"] = Variant(row.name);
  m["dsid"] = Variant(row.dsid);
  m["path"] = Variant(row.metadata_path);
  m["key_generation"] = Variant(row.generation);
  m["key_manager"] = Variant(std::string(table::ToString(row.key_manager)));
  return m;
}

JobFields JobFieldsFromRow(const table::JobRow& row) {
  JobFields f;
  f.uuid = row.uuid.ToString();
  f.description = row.description;
  f.state = std::string(table::ToString(row.state));
  f.message = row.message;
  f.svm = row.svm ? row.svm->ToString() : std::string();
  f.phase = std::string(row.phase ? table::PhaseName(row.phase) : "queued");
  f.code = row.code;
  f.start_us = row.start_time_ms * 1000;
  f.end_us = row.end_time_ms * 1000;
  f.done = row.progress_done;
  f.total = row.progress_total;
  f.terminal = table::IsTerminal(row.state);
  f.cancelable = IsCancelable(row);
  f.started_by_uid = row.started_by_uid;
  return f;
}

double ProgressFraction(uint64_t done, uint64_t total) {
  return total ? static_cast<double>(done) / total : 0.0;
}

VariantMap JobToMap(const JobFields& job, double rate, int64_t expected_end_us) {
  VariantMap m;
  m["uuid"] = Variant(job.uuid);
  m["description"] = Variant(job.description);
  m["state"] = Variant(job.state);
  m["code"] = Variant(job.code);
  m["message"] = Variant(job.message);
  m["svm"] = Variant(job.svm);
  m["start_time"] = Variant(job.start_us);
  m["end_time"] = Variant(job.end_us);
  m["volumes_done"] = Variant(job.done);
  m["volumes_total"] = Variant(job.total);
  m["progress"] = Variant(ProgressFraction(job.done, job.total));
  m["rate"] = Variant(rate);
  m["expected_end_time"] = Variant(job.terminal ? int64_t{0} : expected_end_us);
  m["phase"] = Variant(job.phase);
  m["object_path"] = Variant(sdbus::ObjectPath(ipc::JobObjectPath(job.uuid)));
  m["cancelable"] = Variant(job.cancelable);
  m["started_by_uid"] = Variant(job.started_by_uid);
  return m;
}

}  // namespace svmkey::daemon
