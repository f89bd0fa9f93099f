// CreateVolume, RegisterVolumeSet, ListVolumes.
#include "daemon/bus/handlers.h"
#include "daemon/bus/reply_page.h"
#include "daemon/bus/row_maps.h"
#include "daemon/service/volume_service.h"
#include "daemon/table/states.h"
#include "daemon/table/volume_table.h"

namespace svmkey::daemon::volume_bus {

void Create(BusContext& bus, sdbus::Result<std::string>&& result, const std::string& svm,
            const std::string& name, const VariantMap& options) {
  bus.Authorize();
  NewVolume v;
  v.svm = bus.ResolveSvm(svm);
  v.name = RequireName(name, "name");
  OptionReader o(options);
  // The table stores a DSID as a signed 64-bit integer.
  if (auto d = o.Unsigned("dsid", 1, INT64_MAX)) v.dsid = *d;
  if (auto km = o.String("key_manager", 16)) {
    auto k = table::KeyManagerFromString(*km);
    if (!k) Throw(ErrorCode::kInvalidValue, "key_manager must be 'data' or 'admin'");
    v.key_manager = *k;
  }
  o.Finish();
  bus.Defer(std::move(result),
            [&keys = bus.keys, root = bus.settings.volume_root,
             v](table::Rdb& rdb) -> Result<std::string> {
              auto uuid = CreateVolume(rdb, keys, root, v);
              if (!uuid.ok()) return uuid.status();
              return uuid->ToString();
            });
}

void RegisterSet(BusContext& bus, sdbus::Result<uint64_t>&& result, const std::string& svm,
                 const std::string& directory, const VariantMap& options) {
  bus.Authorize();
  VolumeSetImport set;
  set.svm = bus.ResolveSvm(svm);
  OptionReader o(options);
  o.RefusePath("kek_file", "'kek_fd' (h)");
  auto kek_fd = o.Fd("kek_fd", kKekBytes);
  o.Finish();
  if (!kek_fd) Throw(ErrorCode::kMissingValue, "kek_fd is required");
  // After the options (their errors come first). Lexical only, no file is looked at on
  // the loop: beneath the volume root or a root the administrator configured.
  if (directory.size() > kMaxStringBytes) Throw(ErrorCode::kInvalidValue, "directory is too long");
  std::vector<std::string> roots = bus.settings.volume_set_roots;
  roots.push_back(bus.settings.volume_root);
  set.directory = Check(LocateVolumeSetDirectory(directory, roots));
  std::vector<CallerFd> fds;
  fds.push_back(std::move(*kek_fd));
  bus.DeferAfterRead(std::move(result), std::move(fds),
                     [&keys = bus.keys, set](table::Rdb& rdb, CallerBytes& bytes) mutable {
                       set.kek = std::make_shared<const SecureBuffer>(std::move(bytes[0]));
                       return RegisterVolumeSet(rdb, keys, set);
                     });
}

std::vector<VariantMap> List(BusContext& bus, const std::string& svm, const VariantMap& options) {
  const Uuid svm_uuid = bus.ResolveSvm(svm);
  OptionReader o(options);
  table::VolumeTable volumes(bus.rdb);
  int64_t after_id = 0;
  if (auto after = o.String("after", 64)) {
    after_id = Check(volumes.Get(RequireUuid(*after, "after"))).id;
  }
  const size_t limit = o.Unsigned("limit", 1, 10000).value_or(1000);
  o.Finish();
  std::vector<table::VolumeRow> rows;
  Check(volumes.ListPage(svm_uuid, after_id, limit, &rows, false));
  ReplyPage page(limit);
  for (const auto& row : rows) {
    if (!page.Add(VolumeToMap(row))) break;
  }
  return std::move(page).Take();
}

}  // namespace svmkey::daemon::volume_bus
