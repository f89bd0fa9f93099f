// svmkey-bench: rekey-internal's rewrap on volume sets of several sizes, beside its
// baselines (I/O-only pass, fio, naive per-file loop), interleaved, in one run; prints a
// table, writes CSV and draws a PNG. See bench_runs.h for what each mode does.
//
// Every run executes in a forked child (measured_child.h) so peak RSS and CPU time are
// per run. The parent keeps the set's SVM-KEKs in its KeyTable; children use them by
// handle. Each svmkey rewrap and naive run moves the whole set from generation g to
// g+1 (the naive loop on a sample is followed by an untimed catch-up rewrap of the
// rest), so every repetition does real work; the I/O-only pass and fio leave the set at
// g. After the runs for a size, the set is verified under its final generation.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/key_table.h"
#include "engine/rewrap.h"
#include "engine/secure_memory.h"
#include "engine/uring_file_io.h"
#include "engine/volset/kek_file.h"
#include "engine/volset/volume_set.h"
#include "engine/volset/volume_set_manifest.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/bench_runs.h"
#include "tools/bench/measured_child.h"

namespace svmkey::bench {
namespace {

constexpr char kDescription[] =
    "svmkey-bench: runs svmkey's batched rewrap (io_uring and sync I/O) on volume sets of "
    "several sizes beside an I/O-only pass, fio over the same files and the naive per-file "
    "loop, interleaved, warm and cold page cache; prints a table, writes CSV and a PNG.\n"
    "Sets are made with the volset library under --work-dir (PERFORMANCE SETS: their SVM-KEK "
    "is kept unwrapped in <set>/kek.bin, mode 0600) and reused by later runs.";

struct Args {
  std::string work_dir = "svmkey-bench-work";
  std::vector<uint64_t> sizes = {10000, 100000, 1000000};
  unsigned reps = 3;
  std::vector<std::string> modes = kAllModes;
  std::vector<std::string> caches = {"warm", "cold"};
  uint64_t naive_max = 20000;
  uint64_t cold_max_n = 0;
  // svmkeyd's defaults (--batch-size, --rewrap-threads).
  size_t batch_size = kServiceRewrapBatch;
  size_t threads = kServiceRewrapThreads;
  std::string fio = "fio";
  unsigned fio_iodepth = 256;
  std::string csv, png;
  bool fresh = false;
  bool remove_sets = false;
};

struct SetState {
  std::string dir;
  uint64_t n = 0;
  KeyHandle kek;
  uint64_t generation = 0;
};

std::string KekPath(const std::string& dir) { return dir + "/" + std::string(volset::kKekFileName); }
std::string NextKekPath(const std::string& dir) { return dir + "/kek.next.bin"; }

// sync, then drop the page cache, dentries and inodes. Returns "" or why it failed.
std::string DropCaches() {
  ::sync();
  const int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::string("open /proc/sys/vm/drop_caches: ") + std::strerror(errno);
  const bool ok = ::write(fd, "3\n", 2) == 2;
  const int saved = errno;
  ::close(fd);
  if (!ok) return std::string("write /proc/sys/vm/drop_caches: ") + std::strerror(saved);
  return "";
}

int Fatal(const std::string& what, const Status& status) {
  std::fprintf(stderr, "svmkey-bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 1;
}

// The rate a child measured, into the cell.
void Record(BenchCell& cell, const ChildOutcome& outcome) {
  cell.volumes_per_s.push_back(outcome.work.volumes / std::max(outcome.work.seconds, 1e-9));
  cell.cpu_us_per_volume.push_back(outcome.cpu_seconds * 1e6 /
                                   static_cast<double>(std::max<uint64_t>(outcome.work.volumes, 1)));
  cell.peak_rss_kib = std::max(cell.peak_rss_kib, outcome.peak_rss_kib);
  cell.volumes_per_run = outcome.work.volumes;
}

class Bench {
 public:
  Bench(Args args, KeyTable& table) : args_(std::move(args)), table_(table) {}

  int Run();

 private:
  Status PrepareSet(uint64_t n, SetState* set);
  Status VerifySet(const SetState& set, const char* when);
  // Moves the set to g+1 (timed run `body_mode`), recording into `cell`.
  Status RunAdvancing(SetState& set, const std::string& mode, BenchCell& cell,
                      const std::string& label);
  Status RunIoOnly(SetState& set, BenchCell& cell, const std::string& label);
  Status RunFioMode(SetState& set, BenchCell& cell, const std::string& cache, unsigned rep,
                    const std::string& label);
  Status Advance(SetState& set, KeyHandle next);
  void Report(const std::string& label, const std::string& mode, const ChildOutcome& outcome);

  Args args_;
  KeyTable& table_;
  BenchReport report_;
  std::string fio_path_;
};

void Bench::Report(const std::string& label, const std::string& mode, const ChildOutcome& o) {
  std::printf("%s %-13s %9.0f vol/s  (%llu volumes in %.3f s, peak RSS %.1f MiB, CPU %.2f us/vol)\n",
              label.c_str(), mode.c_str(), o.work.volumes / std::max(o.work.seconds, 1e-9),
              static_cast<unsigned long long>(o.work.volumes), o.work.seconds,
              o.peak_rss_kib / 1024.0,
              o.cpu_seconds * 1e6 / static_cast<double>(std::max<uint64_t>(o.work.volumes, 1)));
  std::fflush(stdout);
}

Status Bench::VerifySet(const SetState& set, const char* when) {
  KeyTable& table = table_;
  const SetState s = set;
  ChildOutcome outcome = RunMeasuredChild([&table, s]() -> Result<TimedWork> {
    auto source = volset::ManifestVolumeSource::Open(s.dir);
    if (!source.ok()) return source.status();
    auto io = MakeFileIo(IoMode::kAuto);
    if (!io.ok()) return io.status();
    auto report = volset::VerifyVolumeSet(**io, table, s.kek, s.generation, **source);
    if (!report.ok()) return report.status();
    if (report->failed != 0 || report->total != s.n) {
      return Status(ErrorCode::kInvalidEncryptionBlob,
                    std::to_string(report->failed) + " of " + std::to_string(report->total) +
                        " volumes do not open under generation " + std::to_string(s.generation) +
                        (report->failure_samples.empty() ? "" : "; first: " + report->failure_samples[0]));
    }
    return TimedWork{0, report->total};
  });
  if (!outcome.status.ok()) return outcome.status;
  std::printf("verified %s: all %llu volumes of %s open under generation %llu\n", when,
              static_cast<unsigned long long>(outcome.work.volumes), set.dir.c_str(),
              static_cast<unsigned long long>(set.generation));
  return Status::Ok();
}

Status Bench::PrepareSet(uint64_t n, SetState* set) {
  set->dir = args_.work_dir + "/set-" + std::to_string(n);
  set->n = n;
  std::error_code ec;
  std::filesystem::remove(NextKekPath(set->dir), ec);
  if (!args_.fresh) {
    auto source = volset::ManifestVolumeSource::Open(set->dir);
    if (source.ok() && (*source)->header().count == n) {
      auto kek = volset::ImportKekFile(table_, KekPath(set->dir));
      if (kek.ok()) {
        set->kek = *kek;
        set->generation = (*source)->header().generation;
        Status verified = VerifySet(*set, "existing set before reuse");
        if (verified.ok()) return Status::Ok();
        std::printf("existing set %s does not verify (%s); recreating it\n", set->dir.c_str(),
                    verified.ToString().c_str());
        table_.Release(set->kek).IgnoreError();
      }
    }
  }
  std::filesystem::remove_all(set->dir, ec);
  if (ec) return Status(ErrorCode::kUnexpectedException, "remove " + set->dir + ": " + ec.message());
  std::filesystem::create_directories(set->dir, ec);
  if (ec) return Status(ErrorCode::kUnexpectedException, "mkdir " + set->dir + ": " + ec.message());
  auto kek = volset::GenerateKekFile(table_, KekPath(set->dir), /*replace=*/false);
  if (!kek.ok()) return kek.status();
  set->kek = *kek;
  set->generation = 1;
  KeyTable& table = table_;
  const SetState s = *set;
  const Uuid svm = Uuid::Random();
  ChildOutcome outcome = RunMeasuredChild([&table, s, svm]() -> Result<TimedWork> {
    auto io = MakeFileIo(IoMode::kAuto);
    if (!io.ok()) return io.status();
    volset::CreateVolumeSetOptions options;
    options.dir = s.dir;
    options.svm = svm;
    options.count = s.n;
    options.generation = s.generation;
    const auto start = std::chrono::steady_clock::now();
    auto created = volset::CreateVolumeSet(**io, table, s.kek, options);
    if (!created.ok()) return created.status();
    return TimedWork{std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                     created->created};
  });
  if (!outcome.status.ok()) return outcome.status;
  std::printf("created set %s: %llu volumes in %.1f s (%.0f volumes/s, not part of the table)\n",
              set->dir.c_str(), static_cast<unsigned long long>(outcome.work.volumes),
              outcome.work.seconds, outcome.work.volumes / std::max(outcome.work.seconds, 1e-9));
  return Status::Ok();
}

Status Bench::Advance(SetState& set, KeyHandle next) {
  // The volumes are at g+1 and durable; make the files say so too (kek.bin is the key
  // of the manifest's generation), so a later bench run can reuse the set.
  if (std::rename(NextKekPath(set.dir).c_str(), KekPath(set.dir).c_str()) != 0) {
    return Status(ErrorCode::kUnexpectedException, "rename " + NextKekPath(set.dir) + ": " + std::strerror(errno));
  }
  SVMKEY_RETURN_IF_ERROR(volset::UpdateManifestGeneration(set.dir, set.generation + 1));
  table_.Release(set.kek).IgnoreError();
  set.kek = next;
  ++set.generation;
  return Status::Ok();
}

Status Bench::RunAdvancing(SetState& set, const std::string& mode, BenchCell& cell,
                           const std::string& label) {
  auto next = volset::GenerateKekFile(table_, NextKekPath(set.dir), /*replace=*/true);
  if (!next.ok()) return next.status();
  RewrapKeys keys;
  keys.old_kek = set.kek;
  keys.old_generation = set.generation;
  keys.new_kek = *next;
  keys.new_generation = set.generation + 1;
  RewrapOptions options;
  options.batch_size = args_.batch_size;
  options.threads = args_.threads;
  if (mode == kModeUring1) {
    // One thread with the same arena (the same volumes in flight) as all of svmkey-uring's.
    options.threads = 1;
    options.batch_size = std::min<size_t>(args_.batch_size * args_.threads, 65536);
  }
  KeyTable& table = table_;
  const std::string dir = set.dir;
  ChildOutcome outcome;
  if (mode == kModeNaive) {
    const uint64_t limit = args_.naive_max;
    outcome = RunMeasuredChild([&table, dir, keys, limit]() { return RunNaiveLoop(dir, table, keys, limit); });
  } else {
    const IoMode io_mode = mode == kModeSync ? IoMode::kSync : IoMode::kUring;
    outcome = RunMeasuredChild([&table, dir, io_mode, keys, options]() {
      return RunSvmkeyRewrap(dir, io_mode, table, keys, options, /*allow_already_current=*/false);
    });
  }
  if (!outcome.status.ok()) return outcome.status;
  Record(cell, outcome);
  Report(label, mode, outcome);
  if (mode == kModeNaive && outcome.work.volumes < set.n) {
    cell.note = "sample: first " + std::to_string(outcome.work.volumes) + " of " +
                std::to_string(set.n) + " volumes (--naive-max)";
    // Untimed: bring the rest of the set to g+1 (the sample is skipped as already current).
    ChildOutcome catch_up = RunMeasuredChild([&table, dir, keys, options]() {
      return RunSvmkeyRewrap(dir, IoMode::kAuto, table, keys, options, /*allow_already_current=*/true);
    });
    if (!catch_up.status.ok()) return catch_up.status;
  }
  return Advance(set, *next);
}

Status Bench::RunIoOnly(SetState& set, BenchCell& cell, const std::string& label) {
  // RewrapVolumes wants both keys; with io_only it uses neither for the data, and the set
  // stays at g. The g+1 key here is a throwaway.
  auto scratch = table_.Generate();
  if (!scratch.ok()) return scratch.status();
  RewrapKeys keys;
  keys.old_kek = set.kek;
  keys.old_generation = set.generation;
  keys.new_kek = *scratch;
  keys.new_generation = set.generation + 1;
  RewrapOptions options;
  options.batch_size = args_.batch_size;
  options.threads = args_.threads;  // svmkey-uring's I/O path, crypto left out
  options.io_only = true;
  KeyTable& table = table_;
  const std::string dir = set.dir;
  ChildOutcome outcome = RunMeasuredChild([&table, dir, keys, options]() {
    return RunSvmkeyRewrap(dir, IoMode::kUring, table, keys, options, false);
  });
  table_.Release(*scratch).IgnoreError();
  if (!outcome.status.ok()) return outcome.status;
  Record(cell, outcome);
  Report(label, kModeIoOnly, outcome);
  return Status::Ok();
}

Status Bench::RunFioMode(SetState& set, BenchCell& cell, const std::string& cache, unsigned rep,
                         const std::string& label) {
  if (fio_path_.empty()) {
    cell.note = "n/a: fio not found (" + args_.fio + ")";
    return Status::Ok();
  }
  FioPlan plan;
  plan.fio_binary = fio_path_;
  plan.volume_dir = set.dir + "/" + std::string(volset::kVolumeSubdir);
  plan.volumes = set.n;
  plan.job_path = args_.work_dir + "/fio-" + std::to_string(set.n) + ".fio";
  plan.output_path = args_.work_dir + "/fio-" + std::to_string(set.n) + "-" + cache + "-rep" +
                     std::to_string(rep + 1) + ".log";
  SVMKEY_RETURN_IF_ERROR(WriteFioJob(plan, args_.fio_iodepth));
  ChildOutcome outcome = RunMeasuredChild([plan]() { return RunFio(plan); });
  if (!outcome.status.ok()) return outcome.status;
  Record(cell, outcome);
  cell.note = "whole fio process + syncfs; iodepth " + std::to_string(args_.fio_iodepth);
  Report(label, kModeFio, outcome);
  return Status::Ok();
}

int Bench::Run() {
  std::error_code ec;
  std::filesystem::create_directories(args_.work_dir, ec);
  if (ec) return Fatal("mkdir " + args_.work_dir, Status(ErrorCode::kUnexpectedException, ec.message()));
  if (args_.csv.empty()) args_.csv = args_.work_dir + "/bench.csv";
  if (args_.png.empty()) args_.png = args_.work_dir + "/bench.png";
  const bool want_fio = std::find(args_.modes.begin(), args_.modes.end(), kModeFio) != args_.modes.end();
  fio_path_ = want_fio ? FindExecutable(args_.fio) : "";
  const bool want_cold = std::find(args_.caches.begin(), args_.caches.end(), "cold") != args_.caches.end();
  std::string drop_failure = want_cold ? DropCaches() : "";

  utsname uts{};
  ::uname(&uts);
  std::string io_note;
  std::string io_name = "?";
  {
    // Probe only: the parent holds no ring while children run.
    auto probe = MakeFileIo(IoMode::kAuto, &io_note);
    if (probe.ok()) io_name = std::string((*probe)->name());
  }
  std::printf("svmkey-bench on %s %s, %ld CPUs; reps %u; batch %zu; rewrap threads %zu; naive "
              "loop capped at %llu volumes%s\n",
              uts.sysname, uts.release, ::sysconf(_SC_NPROCESSORS_ONLN), args_.reps,
              args_.batch_size, args_.threads, static_cast<unsigned long long>(args_.naive_max),
              args_.naive_max == 0 ? " (uncapped)" : "");
  std::printf("I/O: %s%s%s\n", io_name.c_str(), io_note.empty() ? "" : "; ", io_note.c_str());
  if (want_cold) {
    std::printf("cold cache: %s\n", drop_failure.empty()
                                        ? "sync + echo 3 > /proc/sys/vm/drop_caches before each cold run"
                                        : ("NOT PERMITTED (" + drop_failure + "); cold rows are n/a").c_str());
  }
  if (want_fio) std::printf("fio: %s\n", fio_path_.empty() ? "not found; fio rows are n/a" : fio_path_.c_str());
  const ChildOutcome idle = RunMeasuredChild([]() -> Result<TimedWork> { return TimedWork{}; });
  std::printf("peak RSS of an idle benchmark child (the floor of every RSS figure): %.1f MiB\n",
              idle.peak_rss_kib / 1024.0);

  for (uint64_t n : args_.sizes) {
    SetState set;
    if (Status s = PrepareSet(n, &set); !s.ok()) return Fatal("prepare set of " + std::to_string(n), s);
    for (unsigned rep = 0; rep < args_.reps; ++rep) {
      for (const std::string& cache : args_.caches) {
        const bool cold = cache == "cold";
        std::string skip;
        if (cold && !drop_failure.empty()) skip = "n/a: drop_caches not permitted";
        if (cold && args_.cold_max_n != 0 && n > args_.cold_max_n) skip = "n/a: skipped (--cold-max-n)";
        if (!skip.empty()) {
          for (const std::string& mode : args_.modes) report_.Cell(mode, n, cache).note = skip;
          continue;
        }
        if (!cold) {
          // Untimed: make sure the whole set is in the page cache.
          ChildOutcome warm = RunMeasuredChild([dir = set.dir]() { return WarmSet(dir); });
          if (!warm.status.ok()) return Fatal("warm the page cache", warm.status);
        }
        // Interleave: every repetition runs every mode, starting one further along.
        for (size_t k = 0; k < args_.modes.size(); ++k) {
          const std::string& mode = args_.modes[(k + rep) % args_.modes.size()];
          const std::string label = "[N=" + std::to_string(n) + " rep " + std::to_string(rep + 1) +
                                    "/" + std::to_string(args_.reps) + " " + cache + "]";
          if (cold) {
            if (std::string why = DropCaches(); !why.empty()) {
              return Fatal("drop caches", Status(ErrorCode::kPermissionDenied, why));
            }
          }
          BenchCell& cell = report_.Cell(mode, n, cache);
          Status s;
          if (mode == kModeUring || mode == kModeUring1 || mode == kModeSync ||
              mode == kModeNaive) {
            s = RunAdvancing(set, mode, cell, label);
          } else if (mode == kModeIoOnly) {
            s = RunIoOnly(set, cell, label);
          } else {
            s = RunFioMode(set, cell, cache, rep, label);
          }
          if (!s.ok()) return Fatal(label + " " + mode, s);
        }
      }
    }
    if (Status s = VerifySet(set, "after the runs"); !s.ok()) return Fatal("final verify", s);
    if (args_.remove_sets) std::filesystem::remove_all(set.dir, ec);
    table_.Release(set.kek).IgnoreError();
  }

  std::printf("\n");
  report_.PrintTable(stdout);
  std::printf("\nratios: this mode's median / that mode's median, same N and cache, same run.\n");
  if (Status s = report_.WriteCsv(args_.csv); !s.ok()) return Fatal("write CSV", s);
  std::printf("CSV: %s\n", args_.csv.c_str());
  const std::string gnuplot = FindExecutable("gnuplot");
  if (gnuplot.empty()) {
    // The measurements are complete and in the CSV; a missing plotter is n/a, as fio is.
    std::printf("PNG: n/a: gnuplot not found (apt install gnuplot-nox)\n");
    return 0;
  }
  if (Status s = report_.WritePlot(args_.png, args_.png + ".dat", gnuplot); !s.ok()) {
    return Fatal("draw PNG", s);
  }
  std::printf("PNG: %s\n", args_.png.c_str());
  return 0;
}

int Main(int argc, char** argv) {
  Args args;
  CLI::App app(kDescription, "svmkey-bench");
  app.add_option("--work-dir", args.work_dir, "where the volume sets, fio jobs and logs live")
      ->capture_default_str();
  app.add_option("--sizes", args.sizes, "volume-set sizes, comma-separated")
      ->delimiter(',')->capture_default_str()->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
  app.add_option("--reps", args.reps, "repetitions of every (mode, size, cache)")
      ->capture_default_str()->check(CLI::Range(1u, 1000u));
  app.add_option("--modes", args.modes, "modes, comma-separated")
      ->delimiter(',')->capture_default_str()
      ->check(CLI::IsMember({kModeUring, kModeUring1, kModeSync, kModeNaive, kModeIoOnly, kModeFio}));
  app.add_option("--cache", args.caches, "page-cache states: warm, cold")
      ->delimiter(',')->capture_default_str()->check(CLI::IsMember({"warm", "cold"}));
  app.add_option("--naive-max", args.naive_max,
                 "the naive loop runs on the first K volumes only (0 = all); its rate is reported")
      ->capture_default_str();
  app.add_option("--cold-max-n", args.cold_max_n, "cold-cache runs only for N <= this (0 = all)")
      ->capture_default_str();
  app.add_option("--batch-size", args.batch_size, "RewrapOptions::batch_size")
      ->capture_default_str()->check(CLI::Range(size_t{1}, size_t{65536}));
  app.add_option("--threads", args.threads,
                 "rewrap threads of svmkey-uring, svmkey-sync and io-only (svmkey-uring-1t: 1)")
      ->capture_default_str()->check(CLI::Range(size_t{1}, size_t{16}));
  app.add_option("--fio", args.fio, "fio binary")->capture_default_str();
  app.add_option("--fio-iodepth", args.fio_iodepth, "fio iodepth (and openfiles)")
      ->capture_default_str()->check(CLI::Range(1u, 4096u));
  app.add_option("--csv", args.csv, "CSV output (default <work-dir>/bench.csv)");
  app.add_option("--png", args.png, "PNG plot output (default <work-dir>/bench.png)");
  app.add_flag("--fresh", args.fresh, "recreate the volume sets even when reusable");
  app.add_flag("--remove-sets", args.remove_sets, "delete each volume set after its runs");
  CLI11_PARSE(app, argc, argv);
  std::sort(args.sizes.begin(), args.sizes.end());
  if (Status s = EngineInit(); !s.ok()) return Fatal("init", s);
  // The set's current key, the next one, and a scratch key; a few spare.
  auto table = KeyTable::Create(16);
  if (!table.ok()) return Fatal("key table", table.status());
  Bench bench(std::move(args), **table);
  return bench.Run();
}

}  // namespace
}  // namespace svmkey::bench

int main(int argc, char** argv) { return svmkey::bench::Main(argc, argv); }
