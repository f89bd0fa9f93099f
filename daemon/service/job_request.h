// What a job is asked to do (the job row's parameters) and the settings every job body
// runs with. The request is stored in the job row as JSON, so a job found unfinished at
// start is resumed with the same request.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/table/job_table.h"
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
  // The directories volume metadata files may lie in: a volume whose table path is not
  // a normalized path strictly below one of them is failed unopened (engine
  // PathLiesBelow; docs/ARCHITECTURE.md §4). Empty = no check (engine tests only).
  std::vector<std::string> volume_roots;
  // Makes the FileIo of each I/O thread of a job; empty = MakeFileIo(io_mode). Tests
  // put the fault-injecting seam here.
  std::function<Result<std::unique_ptr<FileIo>>()> make_io;
  // Jobs run at once (JobManager); more wait queued.
  size_t max_running_jobs = kDefaultMaxRunningJobs;
};

// Descriptors svmkeyd keeps for everything but volume files in flight: the bus, the
// table's connections and their journal files, io_uring rings, signalfd, logs, and the
// handful a call or job opens besides the batch (docs/ARCHITECTURE.md §4).
inline constexpr uint64_t kDescriptorReserve = 256;

// The largest batch size, at most `batch_size`, with which a job's volume files in
// flight (batch × rewrap_threads, one descriptor per volume) plus kDescriptorReserve fit
// in `nofile_soft` descriptors; at least 1.
size_t BatchSizeWithinDescriptors(size_t batch_size, size_t rewrap_threads,
                                  uint64_t nofile_soft);

// The FileIo of one I/O thread of a job, per `settings`; `note` (may be null) receives
// why io_uring was not used.
Result<std::unique_ptr<FileIo>> MakeJobFileIo(const JobSettings& settings,
                                              std::string* note = nullptr);

enum class JobKind { kRekeyInternal, kRestore, kVerify, kKeyStoreSwitch, kRepair };

struct JobRequest {
  JobKind kind = JobKind::kRekeyInternal;
  Uuid svm;
  Uuid config;  // the Barbican configuration (rekey-internal, restore, the switch's target)
  bool dry_run = false;  // repair: diagnose only, write nothing
};

// Whether an operator may pause, resume and cancel jobs of this kind (Job1's Pause,
// Resume, Cancel): rekey-internal and verify stop at a batch boundary; a restore is one
// short step and a key-store switch must not stop between its two commits.
bool IsControllable(JobKind kind);
// Job1.Cancelable: the job is unfinished, of a controllable kind (per its parameters)
// and has not reached the rekey's commit phase. The live object also turns it off when
// the job's thread enters the commit (JobContext::BeginUnstoppable).
bool IsCancelable(const table::JobRow& row);
// The failure a canceled job records (JobCanceled); `context` says what was kept.
Status CanceledStatus(const std::string& context);

// The job row's parameters (JSON) and back. Decode errors: EncryptionStatusUnavailable.
std::string EncodeJobRequest(const JobRequest& request);
Result<JobRequest> DecodeJobRequest(const std::string& json);
// The job row's description, e.g. "rekey-internal of SVM vs1".
std::string Describe(const JobRequest& request, const std::string& svm_name);

}  // namespace svmkey::daemon
