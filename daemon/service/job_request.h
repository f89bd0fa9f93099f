// What a job is asked to do (the job row's parameters) and the settings every job body
// runs with. The request is stored in the job row as JSON, so a job found unfinished at
// start is resumed with the same request.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "engine/file_io.h"
#include "engine/rewrap.h"
#include "engine/status.h"
#include "engine/uring_file_io.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

// Jobs run at once by default (svmkeyd --max-running-jobs); the rest wait queued. Each
// rekey holds about batch_size x rewrap_threads volumes' buffers (docs/ARCHITECTURE.md
// §7 gives the memory bound this makes).
inline constexpr size_t kDefaultMaxRunningJobs = 4;

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
  // Makes the FileIo of each I/O thread of a job; empty = MakeFileIo(io_mode). Tests
  // put the fault-injecting seam here.
  std::function<Result<std::unique_ptr<FileIo>>()> make_io;
  // Jobs run at once (JobManager); more wait queued.
  size_t max_running_jobs = kDefaultMaxRunningJobs;
};

// The FileIo of one I/O thread of a job, per `settings`; `note` (may be null) receives
// why io_uring was not used.
Result<std::unique_ptr<FileIo>> MakeJobFileIo(const JobSettings& settings,
                                              std::string* note = nullptr);

enum class JobKind { kRekeyInternal, kRestore, kVerify, kKeyStoreSwitch };

struct JobRequest {
  JobKind kind = JobKind::kRekeyInternal;
  Uuid svm;
  Uuid config;  // the Barbican configuration (rekey-internal, restore, the switch's target)
};

// The job row's parameters (JSON) and back. Decode errors: EncryptionStatusUnavailable.
std::string EncodeJobRequest(const JobRequest& request);
Result<JobRequest> DecodeJobRequest(const std::string& json);
// The job row's description, e.g. "rekey-internal of SVM vs1".
std::string Describe(const JobRequest& request, const std::string& svm_name);

}  // namespace svmkey::daemon
