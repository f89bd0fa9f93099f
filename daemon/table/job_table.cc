#include "daemon/table/job_table.h"

#include <algorithm>
#include <cstdint>

#include "daemon/table/table_internal.h"

namespace svmkey::table {
namespace {

#define JOB_COLUMNS                                                                     \
  "uuid, description, state, code, message, svm_uuid, config_uuid, queued_time, "       \
  "start_time, end_time, updated_time, progress_done, progress_total, phase, parameters, " \
  "new_generation, started_by_uid"

// Domain outcomes pass through; anything that is a failure of the table itself becomes
// 196608088, the code ONTAP uses when it cannot read or write an operation's status.
Status JobIo(Status st) {
  if (st.ok()) return st;
  switch (st.code()) {
    case ErrorCode::kEntryNotFound:
    case ErrorCode::kInvalidValue:
    case ErrorCode::kResourceInUse:
    case ErrorCode::kDuplicateEntry:
      return st;
    default:
      return Status(ErrorCode::kEncryptionStatusUnavailable, "job table: " + st.ToString());
  }
}

template <typename T>
Result<T> JobIo(Result<T> r) {
  if (r.ok()) return r;
  return JobIo(r.status());
}

Result<std::optional<Uuid>> OptionalUuid(const Statement& st, int col, std::string_view what) {
  if (st.ColumnIsNull(col)) return std::optional<Uuid>();
  Result<Uuid> u = ParseStoredUuid(st.ColumnText(col), what);
  if (!u.ok()) return u.status();
  return std::optional<Uuid>(u.value());
}

Result<JobRow> ReadJob(const Statement& st) {
  JobRow j;
  Result<Uuid> uuid = ParseStoredUuid(st.ColumnText(0), "job");
  if (!uuid.ok()) return uuid.status();
  std::optional<JobState> state = JobStateFromString(st.ColumnText(2));
  if (!state) return Status(ErrorCode::kUnexpectedException, "malformed job state");
  Result<std::optional<Uuid>> svm = OptionalUuid(st, 5, "svm");
  if (!svm.ok()) return svm.status();
  Result<std::optional<Uuid>> config = OptionalUuid(st, 6, "config");
  if (!config.ok()) return config.status();
  j.uuid = uuid.value();
  j.description = st.ColumnText(1);
  j.state = *state;
  j.code = static_cast<uint32_t>(st.ColumnInt(3));
  j.message = st.ColumnText(4);
  j.svm = svm.value();
  j.config = config.value();
  j.queued_time_ms = st.ColumnInt(7);
  j.start_time_ms = st.ColumnInt(8);
  j.end_time_ms = st.ColumnInt(9);
  j.updated_time_ms = st.ColumnInt(10);
  j.progress_done = static_cast<uint64_t>(st.ColumnInt(11));
  j.progress_total = static_cast<uint64_t>(st.ColumnInt(12));
  j.phase = static_cast<int>(st.ColumnInt(13));
  j.parameters_json = st.ColumnText(14);
  if (!st.ColumnIsNull(15)) j.new_generation = static_cast<uint64_t>(st.ColumnInt(15));
  j.started_by_uid = static_cast<uint32_t>(st.ColumnInt(16));
  return j;
}

Result<std::vector<JobRow>> ReadJobs(Statement& st) {
  std::vector<JobRow> out;
  for (;;) {
    Result<bool> row = st.Step();
    if (!row.ok()) return row.status();
    if (!row.value()) break;
    Result<JobRow> j = ReadJob(st);
    if (!j.ok()) return j.status();
    out.push_back(std::move(j).value());
  }
  return out;
}

Result<JobState> LoadJobState(Db& db, const Uuid& job) {
  Result<Statement> st = db.Cached("SELECT state FROM jobs WHERE uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, job.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return Status(ErrorCode::kEntryNotFound, "job " + job.ToString());
  std::optional<JobState> state = JobStateFromString(st->ColumnText(0));
  if (!state) return Status(ErrorCode::kUnexpectedException, "malformed job state");
  return *state;
}

Status RefuseTransition(const Uuid& job, JobState from, JobState to) {
  return Status(ErrorCode::kInvalidValue, "job " + job.ToString() + ": " +
                                              std::string(ToString(from)) + " -> " +
                                              std::string(ToString(to)) + " not allowed");
}

Result<std::optional<JobRow>> FindUnfinishedLocked(Db& db, const Uuid& svm) {
  Result<Statement> st = db.Cached(
      "SELECT " JOB_COLUMNS " FROM jobs WHERE svm_uuid = ?1 "
      "AND state IN ('queued', 'running', 'paused') ORDER BY rowid LIMIT 1");
  if (!st.ok()) return st.status();
  st->Bind(1, svm.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return std::optional<JobRow>();
  Result<JobRow> j = ReadJob(st.value());
  if (!j.ok()) return j.status();
  return std::optional<JobRow>(std::move(j).value());
}

Status InsertJobLocked(Db& db, const NewJob& job, int64_t now) {
  Result<Statement> st = db.Cached(
      "INSERT INTO jobs (uuid, description, state, svm_uuid, config_uuid, queued_time, "
      "updated_time, parameters, started_by_uid) VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?5, ?6, "
      "?7)");
  if (!st.ok()) return st.status();
  st->Bind(1, job.uuid.ToString())
      .Bind(2, job.description)
      .Bind(5, now)
      .Bind(6, job.parameters_json)
      .Bind(7, static_cast<int64_t>(job.started_by_uid));
  if (job.svm) {
    st->Bind(3, job.svm->ToString());
  } else {
    st->BindNull(3);
  }
  if (job.config) {
    st->Bind(4, job.config->ToString());
  } else {
    st->BindNull(4);
  }
  return st->Run();
}

Result<uint64_t> PruneBeyondCountLocked(Db& db, uint64_t keep) {
  Result<Statement> st = db.Cached(
      "DELETE FROM jobs WHERE state IN ('success', 'failure') AND rowid NOT IN "
      "(SELECT rowid FROM jobs WHERE state IN ('success', 'failure') "
      "ORDER BY end_time DESC, rowid DESC LIMIT ?1)");
  if (!st.ok()) return st.status();
  st->Bind(1, static_cast<int64_t>(std::min<uint64_t>(keep, INT64_MAX)));
  SVMKEY_RETURN_IF_ERROR(st->Run());
  return static_cast<uint64_t>(db.changes());
}

}  // namespace

Status SetJobPhaseLocked(Db& db, const Uuid& job, int phase,
                         std::optional<uint64_t> new_generation, int64_t now_ms) {
  Result<JobState> state = LoadJobState(db, job);
  if (!state.ok()) return state.status();
  if (IsTerminal(state.value())) {
    return Status(ErrorCode::kInvalidValue,
                  "job " + job.ToString() + " is " + std::string(ToString(state.value())));
  }
  Result<Statement> st = db.Cached(
      "UPDATE jobs SET phase = ?2, new_generation = COALESCE(?3, new_generation), "
      "updated_time = ?4 WHERE uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, job.ToString()).Bind(2, phase).Bind(4, now_ms);
  if (new_generation) {
    st->Bind(3, static_cast<int64_t>(*new_generation));
  } else {
    st->BindNull(3);
  }
  return st->Run();
}

Status FinishJobLocked(Db& db, const Uuid& job, uint32_t code, const std::string& message,
                       int64_t now_ms) {
  Result<JobState> state = LoadJobState(db, job);
  if (!state.ok()) return state.status();
  const JobState to = code == 0 ? JobState::kSuccess : JobState::kFailure;
  if (!IsAllowedTransition(state.value(), to)) return RefuseTransition(job, state.value(), to);
  Result<Statement> st = db.Cached(
      "UPDATE jobs SET state = ?2, code = ?3, message = ?4, end_time = ?5, updated_time = ?5, "
      "start_time = CASE WHEN start_time = 0 THEN ?5 ELSE start_time END WHERE uuid = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, job.ToString())
      .Bind(2, ToString(to))
      .Bind(3, code)
      .Bind(4, code == 0 && message.empty() ? std::string(kJobSuccessMessage) : message)
      .Bind(5, now_ms);
  return st->Run();
}

Status JobTable::Create(const NewJob& job) {
  Rdb::Session s = rdb_.Lock();
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return JobIo(txn.status());
  SVMKEY_RETURN_IF_ERROR(JobIo(InsertJobLocked(s.db(), job, s.now_ms())));
  return JobIo(txn->Commit());
}

Status JobTable::CreateExclusive(const NewJob& job) {
  if (!job.svm) return Status(ErrorCode::kInvalidArgument, "exclusive job without an SVM");
  Rdb::Session s = rdb_.Lock();
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return JobIo(txn.status());
  Result<std::optional<JobRow>> other = FindUnfinishedLocked(s.db(), *job.svm);
  if (!other.ok()) return JobIo(other.status());
  if (other.value()) {
    const JobRow& o = *other.value();
    return Status(ErrorCode::kResourceInUse, "job " + o.uuid.ToString() + " (" +
                                                 o.description + ") is " +
                                                 std::string(ToString(o.state)) + " for SVM " +
                                                 job.svm->ToString());
  }
  SVMKEY_RETURN_IF_ERROR(JobIo(InsertJobLocked(s.db(), job, s.now_ms())));
  // COMMIT POINT: the job exists and owns the SVM until it is terminal.
  return JobIo(txn->Commit());
}

Result<JobRow> JobTable::Get(const Uuid& job) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached("SELECT " JOB_COLUMNS " FROM jobs WHERE uuid = ?1");
  if (!st.ok()) return JobIo(st.status());
  st->Bind(1, job.ToString());
  Result<bool> row = st->Step();
  if (!row.ok()) return JobIo(row.status());
  if (!row.value()) return Status(ErrorCode::kEntryNotFound, "job " + job.ToString());
  return JobIo(ReadJob(st.value()));
}

Result<std::vector<JobRow>> JobTable::List(const JobFilter& filter) {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT " JOB_COLUMNS " FROM jobs WHERE (?1 IS NULL OR state = ?1) "
      "AND (?2 IS NULL OR svm_uuid = ?2) ORDER BY rowid LIMIT ?3");
  if (!st.ok()) return JobIo(st.status());
  if (filter.state) {
    st->Bind(1, ToString(*filter.state));
  } else {
    st->BindNull(1);
  }
  if (filter.svm) {
    st->Bind(2, filter.svm->ToString());
  } else {
    st->BindNull(2);
  }
  st->Bind(3, filter.limit == 0 ? int64_t{-1} : static_cast<int64_t>(filter.limit));
  return JobIo(ReadJobs(st.value()));
}

Result<std::vector<JobRow>> JobTable::ListUnfinished() {
  Rdb::Session s = rdb_.Lock();
  Result<Statement> st = s.db().Cached(
      "SELECT " JOB_COLUMNS " FROM jobs WHERE state IN ('queued', 'running') ORDER BY rowid");
  if (!st.ok()) return JobIo(st.status());
  return JobIo(ReadJobs(st.value()));
}

Result<std::optional<JobRow>> JobTable::FindUnfinishedForSvm(const Uuid& svm) {
  Rdb::Session s = rdb_.Lock();
  return JobIo(FindUnfinishedLocked(s.db(), svm));
}

Status JobTable::Transition(const Uuid& job, JobState to) {
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return JobIo(txn.status());
  Result<JobState> from = LoadJobState(db, job);
  if (!from.ok()) return JobIo(from.status());
  if (!IsAllowedTransition(from.value(), to) || IsTerminal(to)) {
    return RefuseTransition(job, from.value(), to);
  }
  Result<Statement> st = db.Cached(
      "UPDATE jobs SET state = ?2, updated_time = ?3, "
      "start_time = CASE WHEN ?2 = 'running' AND start_time = 0 THEN ?3 ELSE start_time END "
      "WHERE uuid = ?1");
  if (!st.ok()) return JobIo(st.status());
  st->Bind(1, job.ToString()).Bind(2, ToString(to)).Bind(3, s.now_ms());
  SVMKEY_RETURN_IF_ERROR(JobIo(st->Run()));
  return JobIo(txn->Commit());
}

Status JobTable::Start(const Uuid& job) { return Transition(job, JobState::kRunning); }

Status JobTable::Pause(const Uuid& job) { return Transition(job, JobState::kPaused); }

Status JobTable::SetPhase(const Uuid& job, int phase, const std::string& message) {
  if (phase < 0 || phase > kPhaseInstall) {
    return Status(ErrorCode::kInvalidValue, "phase " + std::to_string(phase));
  }
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return JobIo(txn.status());
  SVMKEY_RETURN_IF_ERROR(JobIo(SetJobPhaseLocked(db, job, phase, std::nullopt, s.now_ms())));
  Result<Statement> st = db.Cached("UPDATE jobs SET message = ?2 WHERE uuid = ?1");
  if (!st.ok()) return JobIo(st.status());
  st->Bind(1, job.ToString()).Bind(2, message);
  SVMKEY_RETURN_IF_ERROR(JobIo(st->Run()));
  return JobIo(txn->Commit());
}

Status JobTable::SetProgress(const Uuid& job, uint64_t done, uint64_t total) {
  Rdb::Session s = rdb_.Lock();
  Db& db = s.db();
  Result<Transaction> txn = Transaction::Begin(db);
  if (!txn.ok()) return JobIo(txn.status());
  Result<JobState> state = LoadJobState(db, job);
  if (!state.ok()) return JobIo(state.status());
  if (IsTerminal(state.value())) {
    return Status(ErrorCode::kInvalidValue,
                  "job " + job.ToString() + " is " + std::string(ToString(state.value())));
  }
  Result<Statement> st = db.Cached(
      "UPDATE jobs SET progress_done = ?2, progress_total = ?3, updated_time = ?4 "
      "WHERE uuid = ?1");
  if (!st.ok()) return JobIo(st.status());
  st->Bind(1, job.ToString())
      .Bind(2, static_cast<int64_t>(done))
      .Bind(3, static_cast<int64_t>(total))
      .Bind(4, s.now_ms());
  SVMKEY_RETURN_IF_ERROR(JobIo(st->Run()));
  return JobIo(txn->Commit());
}

Status JobTable::Finish(const Uuid& job, uint32_t code, const std::string& message) {
  Rdb::Session s = rdb_.Lock();
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return JobIo(txn.status());
  SVMKEY_RETURN_IF_ERROR(JobIo(FinishJobLocked(s.db(), job, code, message, s.now_ms())));
  // COMMIT POINT: the job is terminal; its result is kept for job_retention.
  return JobIo(txn->Commit());
}

Result<uint64_t> JobTable::PruneFinished() {
  Rdb::Session s = rdb_.Lock();
  const int64_t cutoff = s.now_ms() - static_cast<int64_t>(s.options().job_retention.count());
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return JobIo(txn.status());
  Result<Statement> st = s.db().Cached(
      "DELETE FROM jobs WHERE state IN ('success', 'failure') AND end_time < ?1");
  if (!st.ok()) return JobIo(st.status());
  st->Bind(1, cutoff);
  SVMKEY_RETURN_IF_ERROR(JobIo(st->Run()));
  uint64_t removed = static_cast<uint64_t>(s.db().changes());
  Result<uint64_t> over = PruneBeyondCountLocked(s.db(), s.options().job_retention_count);
  if (!over.ok()) return JobIo(over.status());
  removed += *over;
  SVMKEY_RETURN_IF_ERROR(JobIo(txn->Commit()));
  return removed;
}

Result<uint64_t> JobTable::PruneBeyondCount() {
  Rdb::Session s = rdb_.Lock();
  Result<Transaction> txn = Transaction::Begin(s.db());
  if (!txn.ok()) return JobIo(txn.status());
  Result<uint64_t> removed = PruneBeyondCountLocked(s.db(), s.options().job_retention_count);
  if (!removed.ok()) return JobIo(removed.status());
  SVMKEY_RETURN_IF_ERROR(JobIo(txn->Commit()));
  return removed;
}

}  // namespace svmkey::table
