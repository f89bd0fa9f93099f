#include "tools/ctl/key_manager_client.h"

#include <chrono>
#include <cstdlib>

#include "ipc/bus_names.h"

namespace svmkey::ctl {

std::unique_ptr<sdbus::IConnection> ConnectToBus(const std::string& address) {
  // --address names the system bus to use. It goes through DBUS_SYSTEM_BUS_ADDRESS
  // rather than sdbus-c++'s createSessionBusConnectionWithAddress, which (1.2.0) leaks
  // its sd_bus when the connection fails (LeakSanitizer in the ASan run of the
  // svmkeyctl test); libsystemd's own open cleans up after itself.
  if (!address.empty()) ::setenv("DBUS_SYSTEM_BUS_ADDRESS", address.c_str(), 1);
  auto connection = sdbus::createSystemBusConnection();
  connection->setMethodCallTimeout(std::chrono::seconds(600));
  return connection;
}

KeyManagerClient::KeyManagerClient(sdbus::IConnection& connection)
    : ProxyInterfaces(connection, ipc::kBusName, ipc::kManagerPath), connection_(connection) {
  registerProxy();
}

KeyManagerClient::~KeyManagerClient() { unregisterProxy(); }

void KeyManagerClient::DispatchSignals() {
  while (connection_.processPendingRequest()) {
  }
}

namespace {

// One org.svmkey.Job1 object, for the job control calls.
class JobClient final : public sdbus::ProxyInterfaces<org::svmkey::Job1_proxy> {
 public:
  JobClient(sdbus::IConnection& connection, const std::string& job)
      : ProxyInterfaces(connection, ipc::kBusName, ipc::JobObjectPath(job)) {
    registerProxy();
  }
  ~JobClient() { unregisterProxy(); }
};

}  // namespace

void KeyManagerClient::ControlJob(const std::string& job, const std::string& action) {
  JobClient client(connection_, job);
  if (action == "cancel") {
    client.Cancel();
  } else if (action == "pause") {
    client.Pause();
  } else {
    client.Resume();
  }
}

void KeyManagerClient::onJobChanged(const std::string& /*uuid*/, const std::string& /*state*/) {}

}  // namespace svmkey::ctl
