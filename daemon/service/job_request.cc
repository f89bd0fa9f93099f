#include "daemon/service/job_request.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace svmkey::daemon {
namespace {

const char* KindName(JobKind kind) {
  switch (kind) {
    case JobKind::kRekeyInternal: return "rekey-internal";
    case JobKind::kRestore: return "restore";
    case JobKind::kVerify: return "verify";
    case JobKind::kKeyStoreSwitch: return "key-store switch";
    case JobKind::kRepair: return "repair";
  }
  return "?";
}

}  // namespace

size_t BatchSizeWithinDescriptors(size_t batch_size, size_t rewrap_threads,
                                  uint64_t nofile_soft) {
  const uint64_t threads = rewrap_threads == 0 ? 1 : rewrap_threads;
  if (nofile_soft <= kDescriptorReserve + threads) return 1;
  const uint64_t fit = (nofile_soft - kDescriptorReserve) / threads;
  return static_cast<size_t>(std::min<uint64_t>(batch_size, fit));
}

Result<std::unique_ptr<FileIo>> MakeJobFileIo(const JobSettings& settings, std::string* note) {
  if (settings.make_io) return settings.make_io();
  return MakeFileIo(settings.io_mode, note);
}

bool IsControllable(JobKind kind) {
  return kind == JobKind::kRekeyInternal || kind == JobKind::kVerify;
}

bool IsCancelable(const table::JobRow& row) {
  if (table::IsTerminal(row.state) || row.phase >= table::kPhaseCommit) return false;
  auto request = DecodeJobRequest(row.parameters_json);
  return request.ok() && IsControllable(request->kind);
}

Status CanceledStatus(const std::string& context) {
  return Status(ErrorCode::kJobCanceled, context);
}

std::string EncodeJobRequest(const JobRequest& request) {
  nlohmann::json j;
  j["kind"] = KindName(request.kind);
  j["svm"] = request.svm.ToString();
  j["config"] = request.config.ToString();
  if (request.dry_run) j["dry_run"] = true;
  return j.dump();
}

Result<JobRequest> DecodeJobRequest(const std::string& text) {
  auto bad = [&] {
    return Status(ErrorCode::kEncryptionStatusUnavailable, "job parameters are not understood");
  };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("kind") || !j["kind"].is_string() ||
      !j.contains("svm") || !j["svm"].is_string() || !j.contains("config") || !j["config"].is_string()) {
    return bad();
  }
  JobRequest out;
  const std::string kind = j["kind"];
  if (kind == "rekey-internal") out.kind = JobKind::kRekeyInternal;
  else if (kind == "restore") out.kind = JobKind::kRestore;
  else if (kind == "verify") out.kind = JobKind::kVerify;
  else if (kind == "key-store switch") out.kind = JobKind::kKeyStoreSwitch;
  else if (kind == "repair") out.kind = JobKind::kRepair;
  else return bad();
  if (j.contains("dry_run")) {
    if (!j["dry_run"].is_boolean()) return bad();
    out.dry_run = j["dry_run"].get<bool>();
  }
  auto svm = Uuid::Parse(j["svm"].get<std::string>());
  auto config = Uuid::Parse(j["config"].get<std::string>());
  if (!svm || !config) return bad();
  out.svm = *svm;
  out.config = *config;
  return out;
}

std::string Describe(const JobRequest& request, const std::string& svm_name) {
  return std::string(KindName(request.kind)) + " of SVM " + svm_name;
}

}  // namespace svmkey::daemon
