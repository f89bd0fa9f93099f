#include "tools/ctl/ctl_output.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <iomanip>
#include <set>
#include <sstream>

namespace svmkey::ctl {

nlohmann::json ToJson(const sdbus::Variant& v) {
  const std::string t = v.peekValueType();
  if (t == "s") return v.get<std::string>();
  if (t == "o") return std::string(v.get<sdbus::ObjectPath>());
  if (t == "b") return v.get<bool>();
  if (t == "u") return v.get<uint32_t>();
  if (t == "i") return v.get<int32_t>();
  if (t == "t") return v.get<uint64_t>();
  if (t == "x") return v.get<int64_t>();
  if (t == "d") return v.get<double>();
  if (t == "q") return v.get<uint16_t>();
  if (t == "y") return v.get<uint8_t>();
  return "<" + t + ">";
}

nlohmann::json ToJson(const VariantMap& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[k] = ToJson(v);
  return j;
}

nlohmann::json ToJson(const std::vector<VariantMap>& rows) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : rows) j.push_back(ToJson(r));
  return j;
}

namespace {

std::string Plain(const sdbus::Variant& v, const std::string& key) {
  const nlohmann::json j = ToJson(v);
  if ((key.ends_with("_time")) && j.is_number()) return FormatTime(j.get<int64_t>());
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_float()) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(2) << j.get<double>();
    return os.str();
  }
  return j.dump();
}

}  // namespace

std::string FormatTime(int64_t unix_us) {
  if (unix_us <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(unix_us / 1000000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm);
  return buf;
}

std::string ToText(const VariantMap& m, const std::vector<std::string>& order) {
  std::vector<std::string> keys;
  std::set<std::string> seen;
  for (const auto& k : order) {
    if (m.count(k)) {
      keys.push_back(k);
      seen.insert(k);
    }
  }
  for (const auto& [k, v] : m) {
    if (!seen.count(k)) keys.push_back(k);
  }
  size_t width = 0;
  for (const auto& k : keys) width = std::max(width, k.size());
  std::ostringstream os;
  for (const auto& k : keys) {
    os << std::left << std::setw(static_cast<int>(width) + 2) << (k + ":") << Plain(m.at(k), k) << "\n";
  }
  return os.str();
}

std::string ToTable(const std::vector<VariantMap>& rows, const std::vector<std::string>& columns) {
  std::vector<size_t> width(columns.size());
  std::vector<std::vector<std::string>> cells;
  for (size_t c = 0; c < columns.size(); ++c) width[c] = columns[c].size();
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (size_t c = 0; c < columns.size(); ++c) {
      auto it = r.find(columns[c]);
      line.push_back(it == r.end() ? "-" : Plain(it->second, columns[c]));
      width[c] = std::max(width[c], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  std::ostringstream os;
  for (size_t c = 0; c < columns.size(); ++c) {
    os << std::left << std::setw(static_cast<int>(width[c]) + 2) << columns[c];
  }
  os << "\n";
  for (const auto& line : cells) {
    for (size_t c = 0; c < line.size(); ++c) {
      os << std::left << std::setw(static_cast<int>(width[c]) + 2) << line[c];
    }
    os << "\n";
  }
  return os.str();
}

std::string ProgressLine(const VariantMap& job, int width) {
  auto num = [&](const char* k) -> double {
    auto it = job.find(k);
    return it == job.end() ? 0.0 : ToJson(it->second).get<double>();
  };
  auto str = [&](const char* k) -> std::string {
    auto it = job.find(k);
    return it == job.end() ? "" : ToJson(it->second).get<std::string>();
  };
  const double done = num("volumes_done"), total = num("volumes_total");
  const double frac = total > 0 ? std::clamp(done / total, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(std::lround(frac * width));
  std::ostringstream os;
  os << "[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << std::setw(3)
     << static_cast<int>(std::lround(frac * 100)) << "%  " << static_cast<uint64_t>(done) << "/"
     << static_cast<uint64_t>(total) << " volumes";
  const double rate = num("rate");
  if (rate > 0) {
    os << "  " << std::fixed << std::setprecision(rate >= 1000 ? 1 : 0)
       << (rate >= 1000 ? rate / 1000 : rate) << (rate >= 1000 ? "k" : "") << " vol/s";
    const double eta_us = num("expected_end_time");
    const double now_us = static_cast<double>(std::time(nullptr)) * 1e6;
    if (eta_us > now_us) {
      const int secs = static_cast<int>((eta_us - now_us) / 1e6);
      os << "  ETA " << secs / 60 << ":" << std::setw(2) << std::setfill('0') << secs % 60
         << std::setfill(' ');
    }
  }
  os << "  " << str("phase");
  return os.str();
}

}  // namespace svmkey::ctl
