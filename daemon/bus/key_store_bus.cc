// EnableKeyStore, DeleteKeyStore, ListKeyStores. A switch to another configuration runs
// as a job (keystore_switch_job.h), visible as a Job1 object with progress.
#include <chrono>
#include <memory>

#include "daemon/bus/handlers.h"
#include "daemon/bus/reply_page.h"
#include "daemon/bus/row_maps.h"
#include "daemon/service/ca_store.h"
#include "daemon/service/config_service.h"
#include "daemon/service/keystore_switch_job.h"
#include "daemon/table/key_store_table.h"

namespace svmkey::daemon::key_store_bus {

namespace {

// How long EnableKeyStore waits for its switch job before it answers; a switch makes
// 2G+1 Barbican requests for G generations, seconds in practice. Past it the job goes
// on and the caller is told to follow it.
constexpr std::chrono::seconds kSwitchReplyTimeout{120};

// Loop thread: queues the switch job the enable asked for and replies when it ends.
void QueueSwitch(BusContext& bus, std::shared_ptr<sdbus::Result<>> reply,
                 const JobRequest& request, uint32_t started_by_uid) {
  auto job = bus.launcher.Queue(bus.rdb, request, started_by_uid);
  if (!job.ok()) return ReplyError(*reply, job.status());
  bus.jobs.Wait(*job, kSwitchReplyTimeout,
                [reply](uint32_t http_status, const std::string& uuid, const Status& failure) {
                  if (!failure.ok()) return ReplyError(*reply, failure);
                  if (http_status == 201) return reply->returnResults();
                  ReplyError(*reply, Status(ErrorCode::kResourceInUse,
                                            "the key-store switch is still running: job " + uuid));
                });
}

}  // namespace

void Enable(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid) {
  const uint32_t uid = bus.Authorize().uid;
  const Uuid config = RequireUuid(uuid, "uuid");
  auto reply = std::make_shared<sdbus::Result<>>(std::move(result));
  bus.worker.Submit([&bus, reply, config, uid](table::Rdb& rdb) {
    auto request = EnableKeyStore(rdb, bus.keys, config);
    bus.loop.Post([&bus, reply, uid, request = std::move(request)] {
      if (!request.ok()) return ReplyError(*reply, request.status());
      if (!request->has_value()) return reply->returnResults();
      QueueSwitch(bus, reply, **request, uid);
    });
  });
}

void Delete(BusContext& bus, sdbus::Result<>&& result, const std::string& uuid) {
  bus.Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  bus.Defer(std::move(result), [&keys = bus.keys, config, ca_dir = bus.settings.ca_dir](
                                   table::Rdb& rdb) {
    Status deleted = DeleteKeyStore(rdb, keys, config);
    if (deleted.ok()) RemoveCaBundle(ca_dir, config);  // the daemon's copy (ca_store.h)
    return deleted;
  });
}

KeyStoreFilter ReadFilter(BusContext& bus, const VariantMap& filter) {
  OptionReader o(filter);
  KeyStoreFilter f;
  if (auto s = o.String("svm", 255)) f.svm = bus.ResolveSvm(*s);
  if (auto a = o.String("after", 64)) f.after = RequireUuid(*a, "after").ToString();
  f.limit = o.Unsigned("limit", 1, 10000).value_or(f.limit);
  o.Finish();
  return f;
}

std::vector<VariantMap> List(BusContext& bus, const VariantMap& filter) {
  const KeyStoreFilter f = ReadFilter(bus, filter);
  const auto rows = Check(table::KeyStoreTable(bus.rdb).ListKeyStores(f.svm));
  return PageOf(
      rows, f.after, f.limit, [](const table::KeyStoreRow& row) { return row.uuid.ToString(); },
      [&](const table::KeyStoreRow& row) {
        return KeyStoreToMap(row, SvmName(bus.rdb, row.svm));
      });
}

}  // namespace svmkey::daemon::key_store_bus
