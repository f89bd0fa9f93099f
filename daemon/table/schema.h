// The table's schema and its forward migrations, versioned with PRAGMA user_version.
//
//   version 0  empty file
//   version 1  svms, key_stores, barbican_configs, svm_keks, volumes (identity, path,
//              generation, flags), jobs (state, code, message, progress, times)
//   version 2  volumes gain key_manager (data | admin: whose key manager holds the
//              VDEK) and encryption_blob (copy of the current 512-byte slot sector), with a partial
//              index for the admin-SVM precheck (65537547)
//   version 3  jobs gain phase (docs/ARCHITECTURE.md §7, 1..7), parameters (JSON), new_generation and
//              updated_time, with indexes for recovery and pruning
//   version 4  jobs gain started_by_uid (the caller that asked for the job; 0 in rows
//              of earlier versions)
//
// Each step runs in its own BEGIN IMMEDIATE transaction together with its user_version
// bump (user_version lives in the database header, which SQLite writes inside the
// transaction), so a crash mid-migration leaves the file at the previous version and the
// next open simply runs the step again. Steps are frozen once released: change the
// schema only by appending a step.
//
// A file with a user_version newer than kSchemaVersion is refused untouched (a newer
// svmkeyd wrote it; an older one must not guess).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "daemon/table/sqlite_db.h"
#include "engine/status.h"

namespace svmkey::table {

inline constexpr int64_t kSchemaVersion = 4;

// Migration steps; step i (0-based) takes the file from version i to i + 1.
std::span<const std::string_view> SchemaMigrations();

// Reads user_version and applies the missing steps. Returns the version found before
// migrating. Errors: NotSupported for a newer file, the SQLite error otherwise.
Result<int64_t> MigrateToCurrent(Db& db);

}  // namespace svmkey::table
