// The runs svmkey-bench times, each meant to execute inside RunMeasuredChild.
//
//   svmkey rewrap  RewrapVolumes over the set's manifest with a given FileIo (io_uring or
//                  sync), g → g+1: the same call the daemon makes.
//   I/O-only       the same RewrapVolumes path with RewrapOptions::io_only: the same
//                  reads, writes and syncs, no crypto (the set stays at g).
//   naive loop     per volume: open, read 4 KiB, decode, open under g, seal under g+1,
//                  write the other slot (512 B), fsync, close; one file at a time, plain
//                  syscalls, the engine's AeadContext (key schedule once).
//   fio            fio with the io_uring engine over the same files: a job reading 4 KiB
//                  of every file, then a job writing 512 B of zeros at offset 1536 of
//                  every file (the zero tail of the format, so the files stay
//                  byte-identical; same sector size and same page as a slot write),
//                  then one syncfs. Timed as the whole fio process plus the syncfs.
#pragma once

#include <cstdint>
#include <string>

#include "engine/key_table.h"
#include "engine/rewrap.h"
#include "engine/uring_file_io.h"
#include "tools/bench/measured_child.h"

namespace svmkey::bench {

// Rewraps (or, with options.io_only, rewrites without crypto) every volume of the set in
// `dir`. Fails unless every volume was rewrapped (or, when `allow_already_current`,
// rewrapped or already at g+1; with io_only: processed without failure).
Result<TimedWork> RunSvmkeyRewrap(const std::string& dir, IoMode io_mode, KeyTable& table,
                                  const RewrapKeys& keys, const RewrapOptions& options,
                                  bool allow_already_current);

// The naive per-file loop over the first `max_volumes` volumes of the manifest (all
// when max_volumes is 0 or ≥ N). Fails on the first volume that does not rewrap.
Result<TimedWork> RunNaiveLoop(const std::string& dir, KeyTable& table, const RewrapKeys& keys,
                               uint64_t max_volumes);

struct FioPlan {
  std::string fio_binary;     // "fio" or a path
  std::string job_path;       // where WriteFioJob put the job file
  std::string output_path;    // fio's --output
  std::string volume_dir;     // the set's vol/ directory (fio's opendir)
  uint64_t volumes = 0;       // expected files
};

// Writes the fio job file for `volumes` files under plan.volume_dir.
Status WriteFioJob(const FioPlan& plan, unsigned iodepth);

// Runs fio (posix_spawn + wait), then syncfs on the set's file system.
Result<TimedWork> RunFio(const FioPlan& plan);

// Reads the whole set once through the sync FileIo-free path (plain pread), untimed:
// brings it into the page cache. Returns the volumes read.
Result<TimedWork> WarmSet(const std::string& dir);

// Finds an executable on PATH (or checks a path with a '/'); empty when not found.
std::string FindExecutable(const std::string& name);

}  // namespace svmkey::bench
