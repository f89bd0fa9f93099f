#include "daemon/service/job_launcher.h"

#include "daemon/core/log.h"
#include "daemon/service/prechecks.h"
#include "daemon/service/rekey_job.h"
#include "daemon/service/svm_service.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/states.h"

namespace svmkey::daemon {

void JobLauncher::Run(const Uuid& job, const JobRequest& request) {
  KeyService& keys = keys_;
  const JobSettings settings = settings_;
  JobFailer fail;
  if (request.kind == JobKind::kRekeyInternal) {
    fail = [request](JobContext& ctx, const Status& failure) {
      return RecordUnrecordedRekeyFailure(ctx, request, failure);
    };
  }
  jobs_.Start(
      job,
      [&keys, settings, request](JobContext& ctx) { return RunJob(ctx, keys, settings, request); },
      std::move(fail));
}

Result<Uuid> JobLauncher::Queue(table::Rdb& rdb, const JobRequest& request) {
  table::NewJob job;
  job.uuid = Uuid::Random();
  job.description = Describe(request, SvmName(rdb, request.svm));
  job.svm = request.svm;
  job.config = request.config;
  job.parameters_json = EncodeJobRequest(request);
  SVMKEY_RETURN_IF_ERROR(table::JobTable(rdb).CreateExclusive(job));
  LogInfo("job " + job.uuid.ToString() + " queued: " + job.description);
  Run(job.uuid, request);
  return job.uuid;
}

size_t JobLauncher::ResumeUnfinished(table::Rdb& rdb) {
  jobs_.PublishAll();
  table::JobTable jobs(rdb);
  auto unfinished = jobs.ListUnfinished();
  if (!unfinished.ok()) {
    LogErr("cannot list unfinished jobs: " + unfinished.status().ToString());
    return 0;
  }
  for (const auto& row : *unfinished) {
    auto request = DecodeJobRequest(row.parameters_json);
    if (!request.ok()) {
      Status s =
          jobs.Finish(row.uuid, request.status().numeric_code(), request.status().ToString());
      LogErr("job " + row.uuid.ToString() + " cannot be resumed: " + request.status().ToString() +
             (s.ok() ? "" : " (" + s.ToString() + ")"));
      continue;
    }
    LogNotice("resuming job " + row.uuid.ToString() + " (" + row.description + ") at phase " +
              std::string(table::PhaseName(row.phase)));
    Run(row.uuid, *request);
  }
  return unfinished->size();
}

Result<JobRequest> RekeyInternalRequest(table::Rdb& rdb, const Uuid& config) {
  Uuid svm;
  Status pre = RekeyPrechecks(rdb, config, /*resuming=*/false, &svm);
  if (pre.code() == ErrorCode::kResourceInUse) {
    auto running = table::JobTable(rdb).FindUnfinishedForSvm(svm);
    if (running.ok() && running->has_value()) {
      pre = Status(ErrorCode::kResourceInUse, "a rekey of SVM " + svm.ToString() +
                                                  " is already running: job " +
                                                  (*running)->uuid.ToString());
    }
  }
  if (!pre.ok()) return pre;
  return JobRequest{JobKind::kRekeyInternal, svm, config};
}

Result<JobRequest> RestoreRequest(table::Rdb& rdb, const Uuid& config) {
  auto row = table::KeyStoreTable(rdb).GetBarbicanConfig(config);
  if (!row.ok()) {
    return Status(ErrorCode::kEntryNotFound, "no Barbican configuration " + config.ToString());
  }
  if (!row->key_store.enabled) {
    return Status(ErrorCode::kBarbicanNotConfigured,
                  "configuration " + config.ToString() + " is not enabled for its SVM");
  }
  return JobRequest{JobKind::kRestore, row->key_store.svm, config};
}

Result<JobRequest> VerifyRequest(table::Rdb& rdb, const Uuid& svm) {
  auto enabled = EnabledKeyStore(rdb, svm);
  if (!enabled.ok()) return enabled.status();
  return JobRequest{JobKind::kVerify, svm, enabled->uuid};
}

Result<std::vector<table::JobRow>> ListJobsNewestFirst(table::Rdb& rdb,
                                                       const table::JobFilter& filter,
                                                       size_t limit) {
  // The table lists oldest first; jobs are few (pruned after the retention period), so
  // take them all and answer the newest `limit`.
  auto rows = table::JobTable(rdb).List(filter);
  if (!rows.ok()) return rows.status();
  std::vector<table::JobRow> out;
  for (auto it = rows->rbegin(); it != rows->rend() && out.size() < limit; ++it) {
    out.push_back(std::move(*it));
  }
  return out;
}

}  // namespace svmkey::daemon
