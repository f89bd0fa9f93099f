// CreateSvm, ListSvms.
#include "daemon/bus/handlers.h"
#include "daemon/bus/reply_page.h"
#include "daemon/bus/row_maps.h"
#include "daemon/table/states.h"
#include "daemon/table/svm_table.h"

namespace svmkey::daemon::svm_bus {

void Create(BusContext& bus, sdbus::Result<std::string>&& result, const std::string& name,
            const VariantMap& options) {
  bus.Authorize();
  if (name.empty() || name.size() > 255) {
    Throw(ErrorCode::kInvalidSvmName, "name must be 1-255 characters");
  }
  table::SvmRow row;
  row.name = RequireName(name, "name");
  row.uuid = Uuid::Random();
  OptionReader o(options);
  if (auto kind = o.String("kind", 16)) {
    auto k = table::SvmKindFromString(*kind);
    if (!k) Throw(ErrorCode::kInvalidValue, "kind must be 'data' or 'admin'");
    row.kind = *k;
  }
  if (auto u = o.String("uuid", 64)) row.uuid = RequireUuid(*u, "uuid");
  o.Finish();
  bus.Defer(std::move(result), [row](table::Rdb& rdb) -> Result<std::string> {
    SVMKEY_RETURN_IF_ERROR(CreateSvm(rdb, row));
    return row.uuid.ToString();
  });
}

std::vector<VariantMap> List(BusContext& bus, const VariantMap& filter) {
  OptionReader o(filter);
  std::optional<std::string> after;
  if (auto a = o.String("after", 64)) after = RequireUuid(*a, "after").ToString();
  const size_t limit = o.Unsigned("limit", 1, 10000).value_or(10000);
  o.Finish();
  return PageOf(
      Check(ListSvms(bus.rdb)), after, limit,
      [](const SvmSummary& svm) { return svm.row.uuid.ToString(); }, SvmToMap);
}

}  // namespace svmkey::daemon::svm_bus
