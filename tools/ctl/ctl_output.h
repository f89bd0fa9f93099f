// Output helpers of svmkeyctl: a{sv} maps as JSON or as aligned "key: value" text, and
// the progress bar of a job.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>

namespace svmkey::ctl {

using VariantMap = std::map<std::string, sdbus::Variant>;

nlohmann::json ToJson(const sdbus::Variant& v);
nlohmann::json ToJson(const VariantMap& m);
nlohmann::json ToJson(const std::vector<VariantMap>& rows);

// "key: value" lines, keys in `order` first, then the rest alphabetically.
std::string ToText(const VariantMap& m, const std::vector<std::string>& order = {});
// A table with the given columns, one row per map.
std::string ToTable(const std::vector<VariantMap>& rows, const std::vector<std::string>& columns);

// One line: [#######.....]  58%  5800/10000 volumes  12.4k vol/s  ETA 0:03  rewrap_volumes
std::string ProgressLine(const VariantMap& job, int width = 30);

std::string FormatTime(int64_t unix_us);

}  // namespace svmkey::ctl
