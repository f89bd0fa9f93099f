#include "daemon/service/job_launcher.h"

#include "daemon/core/log.h"
#include "daemon/service/prechecks.h"
#include "daemon/service/rekey_job.h"
#include "daemon/service/svm_service.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/states.h"

namespace svmkey::daemon {

JobLauncher::Runnable JobLauncher::RunnableFor(const JobRequest& request) const {
  Runnable r;
  r.body = [&keys = keys_, settings = settings_, request](JobContext& ctx) {
    return RunJob(ctx, keys, settings, request);
  };
  if (request.kind == JobKind::kRekeyInternal) {
    r.fail = [request](JobContext& ctx, const Status& failure) {
      return RecordUnrecordedRekeyFailure(ctx, request, failure);
    };
  }
  return r;
}

void JobLauncher::Run(const Uuid& job, const JobRequest& request) {
  Runnable r = RunnableFor(request);
  jobs_.Start(job, std::move(r.body), std::move(r.fail));
}

Result<Uuid> JobLauncher::Queue(table::Rdb& rdb, const JobRequest& request,
                                uint32_t started_by_uid) {
  table::NewJob job;
  job.started_by_uid = started_by_uid;
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

namespace {

const char* ActionName(JobLauncher::Action action) {
  switch (action) {
    case JobLauncher::Action::kPause: return "pause";
    case JobLauncher::Action::kResume: return "resume";
    case JobLauncher::Action::kCancel: return "cancel";
  }
  return "?";
}

}  // namespace

Status JobLauncher::Control(table::Rdb& rdb, const Uuid& uuid, Action action, uint32_t uid) {
  const std::string what = "job " + uuid.ToString();
  table::JobTable jobs(rdb);
  auto row = jobs.Get(uuid);
  if (!row.ok()) return row.status();
  auto request = DecodeJobRequest(row->parameters_json);
  if (!request.ok()) return request.status();
  const std::string name = ActionName(action);
  if (table::IsTerminal(row->state)) {
    return Status(ErrorCode::kInvalidValue, what + " has already ended (" +
                                                std::string(table::ToString(row->state)) +
                                                "); there is nothing to " + name);
  }
  if (!IsControllable(request->kind)) {
    return Status(ErrorCode::kNotSupported,
                  what + " (" + row->description + ") cannot be paused, resumed or canceled");
  }
  LogNotice(what + " (" + row->description + "): " + name + " asked by uid " +
            std::to_string(uid));
  const bool paused = row->state == table::JobState::kPaused;
  const Runnable runnable = RunnableFor(*request);
  const Status stopping(ErrorCode::kResourceInUse,
                        what + " is still stopping; ask again once it is paused or ended");
  JobManager::StopRequest asked = JobManager::StopRequest::kNotRunning;
  switch (action) {
    case Action::kResume:
      if (!paused) {
        return Status(ErrorCode::kInvalidValue, what + " is " +
                                                    std::string(table::ToString(row->state)) +
                                                    ", not paused; only a paused job resumes");
      }
      if (jobs_.Alive(uuid)) return stopping;
      // Running before the reply, so no caller sees it paused after a Resume succeeded.
      SVMKEY_RETURN_IF_ERROR(jobs.Start(uuid));
      jobs_.Republish(uuid);
      jobs_.StartStopped(uuid, runnable.body, StopReason::kNone, runnable.fail);
      return Status::Ok();
    case Action::kPause:
      if (paused) return Status(ErrorCode::kInvalidValue, what + " is already paused");
      asked = jobs_.RequestStop(uuid, StopReason::kPause);
      if (asked == JobManager::StopRequest::kNotRunning) {
        // No thread runs it (queued behind others, or its thread ended): paused at once,
        // and out of the queue until Resume queues it again.
        SVMKEY_RETURN_IF_ERROR(jobs.Pause(uuid));
        jobs_.Unqueue(uuid);
        jobs_.Republish(uuid);
        return Status::Ok();
      }
      break;
    case Action::kCancel:
      if (!paused) asked = jobs_.RequestStop(uuid, StopReason::kCancel);
      if (asked == JobManager::StopRequest::kNotRunning) {
        // Paused, or no thread runs it: the body runs to record the cancel its own way.
        if (jobs_.Alive(uuid)) return stopping;
        jobs_.Unqueue(uuid);
        jobs_.StartStopped(uuid, runnable.body, StopReason::kCancel, runnable.fail);
        return Status::Ok();
      }
      break;
  }
  if (asked == JobManager::StopRequest::kStopping) return stopping;
  if (asked == JobManager::StopRequest::kUnstoppable) {
    return Status(ErrorCode::kResourceInUse,
                  what + " has begun its commit; it can no longer be paused or canceled");
  }
  return Status::Ok();
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

Result<JobRequest> RepairRequest(table::Rdb& rdb, const Uuid& svm, bool dry_run) {
  auto enabled = EnabledKeyStore(rdb, svm);
  if (!enabled.ok()) return enabled.status();
  SVMKEY_RETURN_IF_ERROR(RequireActiveKeyStore(*enabled));
  JobRequest request{JobKind::kRepair, svm, enabled->uuid};
  request.dry_run = dry_run;
  return request;
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
