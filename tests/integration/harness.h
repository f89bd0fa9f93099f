// The integration harness of svmkeyd (docs/ARCHITECTURE.md §12).
//
// Every fixture gets its own private dbus-daemon, loaded with a system-bus-like config
// that <include>s the project's own policy file (ipc/org.svmkey.KeyManager1.conf, by
// absolute path: a typo in it makes the bus refuse to start, so every test is also a
// policy lint). svmkeyd is spawned against it through DBUS_SYSTEM_BUS_ADDRESS, with its
// own temporary --state-dir and --volume-root, a NOTIFY_SOCKET the test owns (readiness
// is READY=1, never a sleep), and stderr captured to a file that failing tests print.
// Real Keystone + Barbican come from tests/daemon/barbican/kms_environment (one per run).
//
// Threads: everything here is used from the test's main thread, except that sdbus
// signal callbacks (SignalLog) run on the client connection's event-loop thread.
#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "job1_proxy.h"
#include "keymanager1_proxy.h"
#include "tests/support/command.h"
#include "tests/support/temp_dir.h"

struct sqlite3;

namespace svmkey::integration {

using namespace std::chrono_literals;
using VariantMap = std::map<std::string, sdbus::Variant>;

inline constexpr const char* kBusName = "org.svmkey.KeyManager1";
inline constexpr const char* kManagerPath = "/org/svmkey/KeyManager1";
inline constexpr const char* kManagerInterface = "org.svmkey.KeyManager1";
inline constexpr const char* kJobInterface = "org.svmkey.Job1";

// True when CI=true (a missing facility is a failure there; we never skip anyway).
bool UnderCi();

// ---- processes and files ----

using testing::CommandResult;
using testing::Quote;
using testing::Sh;
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0600);

// A fresh directory under /tmp (short: socket paths are limited to 108 bytes), mode
// 0755 so unprivileged test users can reach sockets in it; removed with its contents.
class TempDir : public testing::TempDir {
 public:
  explicit TempDir(const std::string& prefix = "svmkey-it")
      : testing::TempDir({.prefix = prefix, .base = "/tmp", .mode = 0755}) {}
};

// A child process spawned with fork/exec: argv, extra environment, stdout+stderr to a
// file (appended). The environment is the test's, plus `env` (VAR=VALUE entries).
class Child {
 public:
  Child() = default;
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  bool Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
             const std::string& log_path, int extra_fd_to_3 = -1);
  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Sends `sig` and waits up to `timeout`; returns the wait status decoded like Run's
  // status (exit code, or 128+signal), or -1 when it did not end in time (then SIGKILL).
  int Stop(int sig, std::chrono::milliseconds timeout = 60s);
  // Waits for the child to end on its own; -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// ---- bus, notify socket, daemon ----

// A private system-like bus. `extra_policy` is inserted after the project's policy
// include (a test-only permissive policy, for instance).
class PrivateBus {
 public:
  explicit PrivateBus(const std::string& dir, const std::string& extra_policy = "");
  ~PrivateBus();
  bool ok() const { return !address_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& address() const { return address_; }
  // The socket's address without the bus's guid: valid across Restart().
  std::string socket_address() const { return "unix:path=" + socket_path_; }
  std::string log() const { return ReadFile(log_path_); }
  // Kills the dbus-daemon (SIGKILL: every connection drops) and starts a new one on the
  // same socket and configuration.
  bool Restart();

 private:
  void Spawn();
  std::string config_path_;
  std::string socket_path_;
  Child child_;
  std::string address_;
  std::string error_;
  std::string log_path_;
};

// A datagram socket playing systemd's part of sd_notify. A thread reads it all the
// time, as PID 1 would: sd_notify blocks in sendmsg once the receive queue is full
// (net.unix.max_dgram_qlen datagrams), which would stall the daemon's event loop.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  const std::string& path() const { return path_; }
  // Waits until a datagram has a line starting with `needle` (datagrams already
  // received count), or `timeout` passes.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout);
  // Every datagram received so far.
  std::vector<std::string> Messages();
  // Time (steady clock) at which the first datagram with `needle` arrived.
  std::optional<std::chrono::steady_clock::time_point> ArrivalOf(const std::string& needle);
  // Times (steady clock) at which every datagram with `needle` arrived, in order.
  std::vector<std::chrono::steady_clock::time_point> ArrivalsOf(const std::string& needle);

 private:
  void ReadLoop();
  std::string path_;
  int fd_ = -1;
  int stop_fd_ = -1;  // eventfd that ends ReadLoop
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> messages_;
};

struct DaemonOptions {
  size_t batch_size = 0;  // 0: the daemon's default
  std::string io_mode;    // empty: default
  std::vector<std::string> extra_args;
  std::vector<std::string> extra_env;  // e.g. "WATCHDOG_USEC=200000"
  std::vector<std::string> prefix;     // e.g. {"setpriv", "--reuid=..."} (exec, same pid)

  // Rewrap batches of `batch` volumes with a pause of `pause_ms` after each
  // (svmkeyd --rewrap-pause-ms): for tests that must observe or interrupt a running
  // rewrap phase on any machine, however fast.
  static DaemonOptions ThrottledRewrap(size_t batch, unsigned pause_ms) {
    DaemonOptions o;
    o.batch_size = batch;
    o.extra_args = {"--rewrap-pause-ms=" + std::to_string(pause_ms)};
    return o;
  }
};

// svmkeyd against a PrivateBus. Start() waits for READY=1 (or the process's exit).
class Daemon {
 public:
  Daemon(const PrivateBus& bus, std::string dir, DaemonOptions options = {});
  ~Daemon();
  bool Start(std::chrono::seconds ready_timeout = 120s);
  // Sends `sig` and waits up to `timeout` for the exit status. If svmkeyd does not end
  // in time, the stacks of its threads (gdb, when installed) go to its log, then SIGKILL.
  int Stop(int sig = SIGTERM, std::chrono::seconds timeout = 90s);
  void Kill9();
  bool running() { return child_.running(); }
  pid_t pid() const { return child_.pid(); }
  std::string log() const { return ReadFile(log_path_); }
  std::string state_dir() const { return dir_ + "/state"; }
  std::string volume_root() const { return dir_ + "/volumes"; }
  std::string table_path() const { return state_dir() + "/rdb.sqlite"; }
  NotifySocket& notify() { return *notify_; }
  DaemonOptions& options() { return options_; }
  // The log since the last Start() (what a failing test prints).
  std::string LogTail(size_t max_bytes = 6000) const;

 private:
  const PrivateBus& bus_;
  std::string dir_;
  DaemonOptions options_;
  std::string log_path_;
  std::unique_ptr<NotifySocket> notify_;
  Child child_;
  int starts_ = 0;
};

// ---- clients ----

// The read end of a pipe holding `bytes` (writer closed), for an `h` argument.
sdbus::UnixFd PipeHolding(const std::string& bytes);

// The generated proxy, with JobChanged recorded.
class KeyManagerProxy final : public sdbus::ProxyInterfaces<org::svmkey::KeyManager1_proxy> {
 public:
  KeyManagerProxy(sdbus::IConnection& connection);
  ~KeyManagerProxy();
  std::vector<std::pair<std::string, std::string>> job_changes();
  // Waits until JobChanged(job, state) was seen.
  bool WaitJobChanged(const std::string& job, const std::string& state,
                      std::chrono::milliseconds timeout);

  // Calls with an explicit timeout (the generated methods use sd-bus's 25 s).
  std::tuple<uint32_t, std::string> RekeyInternalWithin(const std::string& uuid,
                                                        uint32_t return_timeout,
                                                        std::chrono::seconds call_timeout);
  std::tuple<uint32_t, std::string> VerifyVolumesWithin(const std::string& svm,
                                                        uint32_t return_timeout,
                                                        std::chrono::seconds call_timeout);
  uint64_t RegisterVolumeSetWithin(const std::string& svm, const std::string& dir,
                                   const VariantMap& options, std::chrono::seconds call_timeout);

 private:
  void onJobChanged(const std::string& uuid, const std::string& state) override;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> changes_;
};

class JobProxy final : public sdbus::ProxyInterfaces<org::svmkey::Job1_proxy> {
 public:
  JobProxy(sdbus::IConnection& connection, const std::string& path);
  ~JobProxy();
};

// Every signal matching a rule, recorded (path, member, body summary).
struct RecordedSignal {
  std::string path;
  std::string interface;
  std::string member;
  std::vector<std::string> changed;           // PropertiesChanged: the property names
  std::map<std::string, std::string> values;  // PropertiesChanged: State/Phase values
};
class SignalLog {
 public:
  SignalLog(sdbus::IConnection& connection, const std::string& match);
  std::vector<RecordedSignal> signals();
  bool WaitFor(const std::function<bool(const RecordedSignal&)>& pred,
               std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RecordedSignal> signals_;
  sdbus::Slot slot_;
};

// The caught bus error of a call: name and message (empty name: no error).
struct BusError {
  std::string name;
  std::string message;
};
template <typename F>
BusError CatchBusError(F&& f) {
  try {
    f();
  } catch (const sdbus::Error& e) {
    return {e.getName(), e.getMessage()};
  }
  return {};
}

// `busctl --address=A ...` / `gdbus call --address A ...` / dbus-send.
CommandResult Busctl(const std::string& address, const std::string& args,
                     const std::string& as_user = "");
CommandResult Gdbus(const std::string& address, const std::string& method, const std::string& args,
                    const std::string& as_user = "", const std::string& object_path = kManagerPath);
CommandResult DbusSend(const std::string& address, const std::string& method_and_args,
                       const std::string& as_user = "");
// The error name in gdbus's stderr ("GDBus.Error:<name>: <msg>"), or "".
std::string GdbusErrorName(const std::string& err);
// The message after the error name in gdbus's stderr.
std::string GdbusErrorMessage(const std::string& err);

// ---- the table file (read and crafted with SQLite directly, while the daemon runs) ----

class TableFile {
 public:
  explicit TableFile(const std::string& path);
  ~TableFile();
  bool ok() const { return db_ != nullptr; }
  // Executes SQL with `?` parameters bound as text (std::string) or blob (vector).
  bool Exec(const std::string& sql, const std::vector<std::string>& text_params = {});
  std::optional<std::string> QueryText(const std::string& sql,
                                       const std::vector<std::string>& params = {});
  std::optional<int64_t> QueryInt(const std::string& sql,
                                  const std::vector<std::string>& params = {});
  std::optional<std::vector<uint8_t>> QueryBlob(const std::string& sql,
                                                const std::vector<std::string>& params = {});
  bool SetBlob(const std::string& sql, const std::vector<uint8_t>& blob,
               const std::vector<std::string>& params_after = {});
  std::vector<std::vector<std::string>> QueryRows(const std::string& sql,
                                                  const std::vector<std::string>& params = {});
  const std::string& error() const { return error_; }

 private:
  ::sqlite3* db_ = nullptr;
  std::string error_;
};

// ---- users and groups (tools/check runs as root) ----

struct TestUsers {
  gid_t svmkey_gid = 0;
  uid_t unpriv_uid = 0;  // svmkey-it-user: in no interesting group
  gid_t unpriv_gid = 0;
  uid_t operator_uid = 0;  // svmkey-it-op: member of group svmkey
  gid_t operator_gid = 0;
  std::string error;
};
inline constexpr const char* kUnprivUser = "svmkey-it-user";
inline constexpr const char* kOperatorUser = "svmkey-it-op";
// Creates group svmkey and the two users if missing (groupadd/useradd --system).
TestUsers EnsureTestUsers();

// ---- paths of built things (meson passes them as -D) ----
std::string SvmkeydPath();
std::string VolsetPath();
std::string BenchPath();
std::string SourceRoot();
std::string BuildRoot();

}  // namespace svmkey::integration
