// EnableKeyStore, DeleteKeyStore, ListKeyStores.
#include "daemon/bus/handlers.h"
#include "daemon/bus/row_maps.h"
#include "daemon/service/config_service.h"
#include "daemon/table/key_store_table.h"

namespace svmkey::daemon::key_store_bus {

void Enable(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid) {
  bus.Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  bus.Defer(std::move(result), [&keys = bus.keys, config](table::Rdb& rdb) {
    return keys.EnableKeyStore(rdb, config);
  });
}

void Delete(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid) {
  bus.Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  bus.Defer(std::move(result), [&keys = bus.keys, config](table::Rdb& rdb) {
    return DeleteKeyStore(rdb, keys, config);
  });
}

std::optional<Uuid> SvmFilter(BusContext& bus, const VariantMap& filter) {
  OptionReader o(filter);
  std::optional<Uuid> svm;
  if (auto s = o.String("svm", 255)) svm = bus.ResolveSvm(*s);
  o.Finish();
  return svm;
}

std::vector<VariantMap> List(BusContext& bus, const VariantMap& filter) {
  const std::optional<Uuid> svm = SvmFilter(bus, filter);
  std::vector<VariantMap> out;
  for (const auto& row : Check(table::KeyStoreTable(bus.rdb).ListKeyStores(svm))) {
    out.push_back(KeyStoreToMap(row, SvmName(bus.rdb, row.svm)));
  }
  return out;
}

}  // namespace svmkey::daemon::key_store_bus
