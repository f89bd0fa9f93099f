// svmkey-bench results: one cell per (mode, N, cache) holding every repetition, printed
// as a table, written as CSV and drawn as a PNG (gnuplot).
//
// Ratios compare medians measured in the same run (a host's speed drifts between runs):
// a mode's median volumes/s divided by the I/O-only pass's, fio's and the naive loop's,
// for the same N and cache state.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "engine/status.h"

namespace svmkey::bench {

inline constexpr const char* kModeUring = "svmkey-uring";
// The same on one thread (RewrapOptions::threads = 1): the same-run reference for what
// the extra threads of svmkey-uring buy.
inline constexpr const char* kModeUring1 = "svmkey-uring-1t";
inline constexpr const char* kModeSync = "svmkey-sync";
inline constexpr const char* kModeNaive = "naive";
inline constexpr const char* kModeIoOnly = "io-only";
inline constexpr const char* kModeFio = "fio";
// Table, CSV and plot order.
inline const std::vector<std::string> kAllModes = {kModeUring, kModeUring1, kModeSync,
                                                   kModeIoOnly, kModeFio, kModeNaive};

inline constexpr const char* kCsvHeader =
    "mode,n,cache,reps,volumes_per_s_median,volumes_per_s_min,volumes_per_s_max,"
    "ratio_to_io_only,ratio_to_fio,ratio_to_naive,peak_rss_mib,cpu_us_per_volume,"
    "volumes_per_run,note";

struct BenchCell {
  std::vector<double> volumes_per_s;       // one per successful repetition
  std::vector<double> cpu_us_per_volume;   // same order
  long peak_rss_kib = 0;                   // max over repetitions
  uint64_t volumes_per_run = 0;            // N, or the naive loop's sample size
  std::string note;                        // e.g. "sample of 20000 volumes", "n/a: ..."
};

struct CellSummary {
  bool has_data = false;
  double median = 0, min = 0, max = 0;
  double cpu_us_per_volume = 0;  // median
};

class BenchReport {
 public:
  // Creates the cell on first use.
  BenchCell& Cell(const std::string& mode, uint64_t n, const std::string& cache);
  CellSummary Summary(const std::string& mode, uint64_t n, const std::string& cache) const;

  void PrintTable(FILE* out) const;
  Status WriteCsv(const std::string& path) const;
  // Writes <data_path> (gnuplot data) and runs gnuplot to draw `png_path`.
  Status WritePlot(const std::string& png_path, const std::string& data_path,
                   const std::string& gnuplot_binary) const;

 private:
  // Returns the median ratio text ("1.23") or "" when either side has no data.
  std::string Ratio(const std::string& mode, uint64_t n, const std::string& cache,
                    const std::string& baseline) const;
  std::vector<std::tuple<std::string, uint64_t, std::string>> OrderedKeys() const;

  std::map<std::tuple<std::string, uint64_t, std::string>, BenchCell> cells_;
};

double Median(std::vector<double> values);

}  // namespace svmkey::bench
