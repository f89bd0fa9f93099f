#include "tools/bench/bench_report.h"

#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

namespace svmkey::bench {
namespace {

std::string Fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

// CSV field: quoted when it holds a comma or a quote.
std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// One colour per mode, in kAllModes order (warm solid, cold dashed).
constexpr const char* kModeColors[] = {"#7b1fa2", "#ad1457", "#2e7d32", "#1565c0", "#ef6c00",
                                       "#c62828"};
constexpr int kColorCount = sizeof kModeColors / sizeof kModeColors[0];

int ModeRank(const std::string& mode) {
  const auto it = std::find(kAllModes.begin(), kAllModes.end(), mode);
  return static_cast<int>(it - kAllModes.begin());
}

}  // namespace

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

BenchCell& BenchReport::Cell(const std::string& mode, uint64_t n, const std::string& cache) {
  return cells_[{mode, n, cache}];
}

CellSummary BenchReport::Summary(const std::string& mode, uint64_t n,
                                 const std::string& cache) const {
  CellSummary out;
  const auto it = cells_.find({mode, n, cache});
  if (it == cells_.end() || it->second.volumes_per_s.empty()) return out;
  const BenchCell& cell = it->second;
  out.has_data = true;
  out.median = Median(cell.volumes_per_s);
  out.min = *std::min_element(cell.volumes_per_s.begin(), cell.volumes_per_s.end());
  out.max = *std::max_element(cell.volumes_per_s.begin(), cell.volumes_per_s.end());
  out.cpu_us_per_volume = Median(cell.cpu_us_per_volume);
  return out;
}

std::string BenchReport::Ratio(const std::string& mode, uint64_t n, const std::string& cache,
                               const std::string& baseline) const {
  const CellSummary a = Summary(mode, n, cache);
  const CellSummary b = Summary(baseline, n, cache);
  if (!a.has_data || !b.has_data || b.median <= 0) return "";
  return Fixed(a.median / b.median, 2);
}

std::vector<std::tuple<std::string, uint64_t, std::string>> BenchReport::OrderedKeys() const {
  std::vector<std::tuple<std::string, uint64_t, std::string>> keys;
  for (const auto& [key, cell] : cells_) keys.push_back(key);
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    const auto& [ma, na, ca] = a;
    const auto& [mb, nb, cb] = b;
    // By cache (warm first), then N, then mode order.
    if (ca != cb) return ca == "warm";
    if (na != nb) return na < nb;
    return ModeRank(ma) < ModeRank(mb);
  });
  return keys;
}

void BenchReport::PrintTable(FILE* out) const {
  std::fprintf(out, "%-13s %8s %-5s %4s %11s %-21s %8s %7s %7s %8s %8s  %s\n", "mode", "N", "cache",
               "reps", "vol/s med", "spread (min-max)", "x io-only", "x fio", "x naive",
               "RSS MiB", "CPU us/v", "note");
  for (const auto& key : OrderedKeys()) {
    const auto& [mode, n, cache] = key;
    const BenchCell& cell = cells_.at(key);
    const CellSummary s = Summary(mode, n, cache);
    auto or_na = [](const std::string& text) { return text.empty() ? std::string("n/a") : text; };
    if (!s.has_data) {
      std::fprintf(out, "%-13s %8llu %-5s %4zu %11s %-21s %8s %7s %7s %8s %8s  %s\n",
                   mode.c_str(), static_cast<unsigned long long>(n), cache.c_str(),
                   cell.volumes_per_s.size(), "n/a", "", "", "", "", "", "", cell.note.c_str());
      continue;
    }
    const std::string spread = Fixed(s.min, 0) + "-" + Fixed(s.max, 0);
    std::fprintf(out, "%-13s %8llu %-5s %4zu %11.0f %-21s %8s %7s %7s %8.1f %8.2f  %s\n",
                 mode.c_str(), static_cast<unsigned long long>(n), cache.c_str(),
                 cell.volumes_per_s.size(), s.median, spread.c_str(),
                 or_na(Ratio(mode, n, cache, kModeIoOnly)).c_str(),
                 or_na(Ratio(mode, n, cache, kModeFio)).c_str(),
                 or_na(Ratio(mode, n, cache, kModeNaive)).c_str(), cell.peak_rss_kib / 1024.0,
                 s.cpu_us_per_volume, cell.note.c_str());
  }
}

Status BenchReport::WriteCsv(const std::string& path) const {
  FILE* f = std::fopen(path.c_str(), "we");
  if (f == nullptr) {
    return Status(ErrorCode::kUnexpectedException, "create " + path + ": " + std::strerror(errno));
  }
  std::fprintf(f, "%s\n", kCsvHeader);
  for (const auto& key : OrderedKeys()) {
    const auto& [mode, n, cache] = key;
    const BenchCell& cell = cells_.at(key);
    const CellSummary s = Summary(mode, n, cache);
    std::fprintf(f, "%s,%llu,%s,%zu,%s,%s,%s,%s,%s,%s,%s,%s,%llu,%s\n", mode.c_str(),
                 static_cast<unsigned long long>(n), cache.c_str(), cell.volumes_per_s.size(),
                 s.has_data ? Fixed(s.median, 1).c_str() : "",
                 s.has_data ? Fixed(s.min, 1).c_str() : "",
                 s.has_data ? Fixed(s.max, 1).c_str() : "",
                 Ratio(mode, n, cache, kModeIoOnly).c_str(), Ratio(mode, n, cache, kModeFio).c_str(),
                 Ratio(mode, n, cache, kModeNaive).c_str(),
                 s.has_data ? Fixed(cell.peak_rss_kib / 1024.0, 1).c_str() : "",
                 s.has_data ? Fixed(s.cpu_us_per_volume, 2).c_str() : "",
                 static_cast<unsigned long long>(cell.volumes_per_run), CsvField(cell.note).c_str());
  }
  if (std::fclose(f) != 0) {
    return Status(ErrorCode::kUnexpectedException, "write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status BenchReport::WritePlot(const std::string& png_path, const std::string& data_path,
                              const std::string& gnuplot_binary) const {
  FILE* data = std::fopen(data_path.c_str(), "we");
  if (data == nullptr) {
    return Status(ErrorCode::kUnexpectedException, "create " + data_path + ": " + std::strerror(errno));
  }
  // One gnuplot data block per (mode, cache) series with data: "N median min max".
  struct Series {
    std::string mode, cache;
  };
  std::vector<Series> series;
  std::set<uint64_t> sizes;
  for (const auto& [key, cell] : cells_) sizes.insert(std::get<1>(key));
  for (const char* cache : {"warm", "cold"}) {
    for (const std::string& mode : kAllModes) {
      bool any = false;
      for (uint64_t n : sizes) {
        const CellSummary s = Summary(mode, n, cache);
        if (!s.has_data) continue;
        if (!any) std::fprintf(data, "# %s %s\n", mode.c_str(), cache);
        any = true;
        std::fprintf(data, "%llu %.1f %.1f %.1f\n", static_cast<unsigned long long>(n), s.median,
                     s.min, s.max);
      }
      if (any) {
        std::fprintf(data, "\n\n");
        series.push_back({mode, cache});
      }
    }
  }
  std::fclose(data);
  if (series.empty()) return Status(ErrorCode::kInvalidArgument, "nothing to plot");

  const std::string script_path = data_path + ".gp";
  FILE* gp = std::fopen(script_path.c_str(), "we");
  if (gp == nullptr) {
    return Status(ErrorCode::kUnexpectedException, "create " + script_path + ": " + std::strerror(errno));
  }
  std::fprintf(gp,
               "set terminal pngcairo size 1100,700 noenhanced font 'sans,10'\n"
               "set output '%s'\n"
               "set title 'svmkey-bench: rekey rate vs number of volumes (median, bars = min-max over reps)'\n"
               "set xlabel 'volumes (N)'\n"
               "set ylabel 'volumes / s'\n"
               "set logscale xy\n"
               "set grid\n"
               "set key outside right top\n"
               "set offsets graph 0.05, graph 0.05, 0, 0\n",
               png_path.c_str());
  std::fprintf(gp, "plot ");
  for (size_t i = 0; i < series.size(); ++i) {
    const int rank = ModeRank(series[i].mode);
    const bool warm = series[i].cache == "warm";
    std::fprintf(gp,
                 "%s'%s' index %zu using 1:2:3:4 with yerrorlines lw 2 lc rgb '%s' dt %d pt %d "
                 "title '%s, %s'",
                 i ? ", \\\n     " : "", data_path.c_str(), i, kModeColors[rank % kColorCount], warm ? 1 : 2,
                 warm ? 7 : 6, series[i].mode.c_str(), series[i].cache.c_str());
  }
  std::fprintf(gp, "\n");
  std::fclose(gp);
  const std::string command = "'" + gnuplot_binary + "' '" + script_path + "'";
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    return Status(ErrorCode::kUnexpectedException,
                  "gnuplot failed (status " + std::to_string(rc) + "): " + command);
  }
  return Status::Ok();
}

}  // namespace svmkey::bench
