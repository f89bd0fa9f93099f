// JobTable: the persistent job rows (ONTAP's job table, docs/ARCHITECTURE.md §7). A
// job row is the truth about a rekey: its state, phase (1..7), progress, final code and
// message survive a crash, and ListUnfinished() tells svmkeyd at start which jobs to
// resume. A paused job (Pause(), at an operator's request, docs/ARCHITECTURE.md §7) is
// not unfinished work to resume at start: it stays paused until Start() resumes it.
//
// Times are Unix milliseconds from the Rdb clock; 0 means "not yet". Terminal jobs are
// removed by PruneFinished once older than RdbOptions::job_retention (default 24 h), and
// the oldest of them once there are more than RdbOptions::job_retention_count.
//
// Errors: EntryNotFound (4) for an unknown job, InvalidValue for a state change the
// job state machine forbids (states.h), ResourceInUse from CreateExclusive; any
// failure to read or write the job table itself is EncryptionStatusUnavailable
// (196608088, "failed to get encryption operation status").
//
// A view over an Rdb (see rdb.h for threads and ownership).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/table/rdb.h"
#include "daemon/table/states.h"
#include "engine/uuid.h"

namespace svmkey::table {

inline constexpr std::string_view kJobSuccessMessage = "Complete: Successful";

struct NewJob {
  Uuid uuid;
  std::string description;
  std::optional<Uuid> svm;
  std::optional<Uuid> config;
  std::string parameters_json = "{}";  // the request, so a resumed job knows what to do
  uint32_t started_by_uid = 0;         // the caller that asked for the job
};

struct JobRow {
  Uuid uuid;
  std::string description;
  JobState state = JobState::kQueued;
  uint32_t code = 0;
  std::string message;
  std::optional<Uuid> svm;
  std::optional<Uuid> config;
  int64_t queued_time_ms = 0;
  int64_t start_time_ms = 0;
  int64_t end_time_ms = 0;
  int64_t updated_time_ms = 0;
  uint64_t progress_done = 0;
  uint64_t progress_total = 0;
  int phase = 0;  // docs/ARCHITECTURE.md §7 phase; PhaseName() in states.h
  std::string parameters_json;
  std::optional<uint64_t> new_generation;
  uint32_t started_by_uid = 0;
  friend bool operator==(const JobRow&, const JobRow&) = default;
};

struct JobFilter {
  std::optional<JobState> state;
  std::optional<Uuid> svm;
  size_t limit = 0;  // 0: no limit
};

class JobTable {
 public:
  explicit JobTable(Rdb& rdb) : rdb_(rdb) {}

  // A queued job. Errors: DuplicateEntry (uuid taken).
  Status Create(const NewJob& job);
  // As Create, but refused with ResourceInUse (the message names the other job) when
  // the job's SVM already has an unfinished (queued, running or paused) job: one rekey
  // per SVM at a time, decided in one transaction.
  Status CreateExclusive(const NewJob& job);

  Result<JobRow> Get(const Uuid& job);
  // Oldest first.
  Result<std::vector<JobRow>> List(const JobFilter& filter = {});
  // Queued and running jobs, oldest first: what svmkeyd resumes at start (paused jobs
  // wait for an operator's Resume).
  Result<std::vector<JobRow>> ListUnfinished();
  Result<std::optional<JobRow>> FindUnfinishedForSvm(const Uuid& svm);

  // queued | paused → running; the start time is set on the first start only.
  Status Start(const Uuid& job);
  // queued | running → paused (an operator's Pause, recorded once the job stopped at a
  // batch boundary, or at once when no thread runs it).
  Status Pause(const Uuid& job);
  // Records the phase about to start (and, from phase 3 on, the new generation) and a
  // progress text in `message`. Refused for terminal jobs.
  Status SetPhase(const Uuid& job, int phase, const std::string& message = {});
  Status SetProgress(const Uuid& job, uint64_t done, uint64_t total);
  // → success (code 0; message defaults to kJobSuccessMessage) or failure (code != 0).
  Status Finish(const Uuid& job, uint32_t code, const std::string& message);

  // Deletes terminal jobs whose end time is older than now - job_retention, then the
  // oldest terminal jobs (by end time) beyond the newest job_retention_count; returns
  // how many.
  Result<uint64_t> PruneFinished();
  // Only the second half of PruneFinished: the oldest terminal jobs beyond the newest
  // job_retention_count (run as each job ends; it never removes the newest job).
  Result<uint64_t> PruneBeyondCount();

 private:
  Status Transition(const Uuid& job, JobState to);
  Rdb& rdb_;
};

}  // namespace svmkey::table
