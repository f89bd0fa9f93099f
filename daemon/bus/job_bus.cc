// GetJob, ListJobs.
#include "daemon/bus/handlers.h"
#include "daemon/bus/reply_page.h"
#include "daemon/bus/row_maps.h"
#include "daemon/table/job_table.h"
#include "daemon/table/states.h"

namespace svmkey::daemon::job_bus {
namespace {

VariantMap ToMap(BusContext& bus, const table::JobRow& row) {
  const auto [rate, eta] = bus.job_objects.LiveEstimate(row.uuid);
  return JobToMap(JobFieldsFromRow(row), rate, eta);
}

}  // namespace

VariantMap Get(BusContext& bus, const std::string& uuid) {
  const Uuid job = RequireUuid(uuid, "uuid");
  auto row = table::JobTable(bus.rdb).Get(job);
  if (!row.ok()) Throw(ErrorCode::kEntryNotFound, "no job " + job.ToString());
  return ToMap(bus, *row);
}

std::vector<VariantMap> List(BusContext& bus, const VariantMap& filter) {
  OptionReader o(filter);
  table::JobFilter f;
  if (auto s = o.String("state", 16)) {
    f.state = table::JobStateFromString(*s);
    if (!f.state) {
      Throw(ErrorCode::kInvalidValue, "state must be queued, running, paused, success or failure");
    }
  }
  if (auto s = o.String("svm", 255)) f.svm = bus.ResolveSvm(*s);
  std::optional<std::string> after;
  if (auto a = o.String("after", 64)) after = RequireUuid(*a, "after").ToString();
  const size_t limit = o.Unsigned("limit", 1, 10000).value_or(100);
  o.Finish();
  return PageOf(
      Check(ListJobsNewestFirst(bus.rdb, f, SIZE_MAX)), after, limit,
      [](const table::JobRow& row) { return row.uuid.ToString(); },
      [&](const table::JobRow& row) { return ToMap(bus, row); });
}

}  // namespace svmkey::daemon::job_bus
