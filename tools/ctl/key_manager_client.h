// svmkeyctl's side of the bus: the system-bus connection and the KeyManager1 proxy
// generated from ipc/org.svmkey.KeyManager1.xml (docs/ARCHITECTURE.md §9). Every call
// svmkeyctl makes goes through a generated method, so a changed method signature in the
// XML breaks this build instead of failing at run time.
//
// Both objects belong to svmkeyctl's one thread; no event loop runs on the connection.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <memory>
#include <string>

#include "job1_proxy.h"
#include "keymanager1_proxy.h"

namespace svmkey::ctl {

// Connects to the system bus, or to `address` when it is not empty. Calls through the
// connection wait up to 600 s for their reply: a job-starting method answers within its
// return_timeout (at most 120 s). Throws sdbus::Error when the bus cannot be reached.
std::unique_ptr<sdbus::IConnection> ConnectToBus(const std::string& address);

// The manager object /org/svmkey/KeyManager1 of svmkeyd. `connection` must outlive it.
class KeyManagerClient final : public sdbus::ProxyInterfaces<org::svmkey::KeyManager1_proxy> {
 public:
  explicit KeyManagerClient(sdbus::IConnection& connection);
  ~KeyManagerClient();

  KeyManagerClient(const KeyManagerClient&) = delete;
  KeyManagerClient& operator=(const KeyManagerClient&) = delete;

  // Job1.Cancel, Pause or Resume (`action`: "cancel", "pause", "resume") on the job
  // object of `job` (ipc::JobObjectPath). Throws sdbus::Error with svmkeyd's error.
  void ControlJob(const std::string& job, const std::string& action);

  // Handles the signals that arrived during earlier calls (they wait in the connection's
  // read queue, which is bounded, until something dispatches them).
  void DispatchSignals();

 private:
  // svmkeyctl follows a job by polling GetJob (the progress bar needs its numbers), so a
  // state change needs no action of its own.
  void onJobChanged(const std::string& uuid, const std::string& state) override;

  sdbus::IConnection& connection_;
};

}  // namespace svmkey::ctl
