// The bodies of svmkeyd's jobs: rekey-internal (DESIGN.md §7), restore, verify.
//
// Each body runs on its job thread with its own table connection (JobContext) and is
// idempotent, so a job found queued or running at start is resumed by running its body
// again: rekey-internal adopts the pending SVM-KEK it stored before the crash and skips
// the volumes already rewrapped.
#pragma once

#include <chrono>
#include <string>

#include "daemon/service/job_context.h"
#include "daemon/service/prechecks.h"
#include "daemon/service/key_service.h"
#include "engine/rewrap.h"
#include "engine/uring_file_io.h"

namespace svmkey::daemon {

struct JobSettings {
  IoMode io_mode = IoMode::kAuto;
  // Volumes per rewrap batch, per thread (engine/rewrap.h says why this default).
  size_t batch_size = kServiceRewrapBatch;
  // Pause after every rewrap batch: throttles a rekey's I/O on a busy system (and lets
  // tests hold a job in its rewrap phase). 0 = none.
  std::chrono::milliseconds batch_pause{0};
  // Rewrap batches in flight at once, each on its own thread and FileIo
  // (RewrapOptions::threads): one batch's syncfs overlaps the next one's I/O and crypto.
  size_t rewrap_threads = kServiceRewrapThreads;
};

enum class JobKind { kRekeyInternal, kRestore, kVerify };

struct JobRequest {
  JobKind kind = JobKind::kRekeyInternal;
  Uuid svm;
  Uuid config;  // the Barbican configuration (rekey-internal, restore)
};

// The job row's parameters (JSON) and back.
std::string EncodeJobRequest(const JobRequest& request);
Result<JobRequest> DecodeJobRequest(const std::string& json);
std::string Describe(const JobRequest& request, const std::string& svm_name);

JobOutcome RunJob(JobContext& ctx, KeyService& keys, const JobSettings& settings,
                  const JobRequest& request);

}  // namespace svmkey::daemon
