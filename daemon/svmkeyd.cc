// svmkeyd: the svmkey key manager daemon (docs/ARCHITECTURE.md §2, §9, §10).
//
// Start-up order matters for the systemd contract: open and recover the table, resume
// every unfinished job, register the manager object, own the bus name — and only then
// READY=1. SIGTERM stops jobs at a batch boundary (they stay resumable) and exits.
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <string>

#include "daemon/core/event_loop.h"
#include "daemon/core/log.h"
#include "daemon/bus/manager_object.h"
#include "daemon/service/key_service.h"
#include "daemon/table/rdb.h"
#include "ipc/bus_names.h"
#include "version.h"

namespace svmkey::daemon {
namespace {

void Harden() {
  // Key material must never reach a core file: not dumpable (also blocks ptrace by
  // non-root), and no core limit. The key table's pages are MADV_DONTDUMP as well.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);  // may be refused by the unit's syscall filter
  ::umask(0077);
}

void Notify(const std::string& state) { ::sd_notify(0, state.c_str()); }

int Main(int argc, char** argv) {
  CLI::App app{"svmkeyd: rekey-internal of SVM key hierarchies over D-Bus (org.svmkey.KeyManager1)"};
  std::string state_dir = "/var/lib/svmkey";
  std::string volume_root;
  std::string io_mode_text = "auto";
  // Every default below is the one of the struct or constant it configures.
  const JobSettings job_defaults;
  size_t batch_size = job_defaults.batch_size;
  double retention_hours =
      std::chrono::duration<double, std::ratio<3600>>(table::RdbOptions{}.job_retention).count();
  size_t key_capacity = kDefaultKeyTableCapacity;
  unsigned batch_pause_ms = static_cast<unsigned>(job_defaults.batch_pause.count());
  size_t rewrap_threads = job_defaults.rewrap_threads;
  app.add_option("--state-dir", state_dir, "Table (rdb.sqlite) and host key directory")->capture_default_str();
  app.add_option("--volume-root", volume_root, "Where new volumes' metadata files go (default STATE_DIR/volumes)");
  app.add_option("--io-mode", io_mode_text, "auto (io_uring, falling back to sync), uring or sync")->capture_default_str();
  app.add_option("--batch-size", batch_size, "Volumes per rewrap batch")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--rewrap-threads", rewrap_threads, "Rewrap batches in flight at once, one thread each")->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--job-retention-hours", retention_hours, "Keep finished jobs this long")->check(CLI::Range(0.0, 24.0 * 365))->capture_default_str();
  app.add_option("--rewrap-pause-ms", batch_pause_ms, "Pause after every rewrap batch (throttles a rekey's I/O)")->check(CLI::Range(0u, 60000u))->capture_default_str();
  app.add_option("--key-table-capacity", key_capacity, "Keys held at once in locked memory")->check(CLI::Range(16, 1 << 20))->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (std::getenv("SVMKEYD_DEBUG")) SetLogLevel(LogLevel::kDebug);
  if (volume_root.empty()) volume_root = state_dir + "/volumes";

  Harden();
  // Block the termination signals in every thread; the event loop reads them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  JobSettings job_settings;
  job_settings.batch_size = batch_size;
  job_settings.batch_pause = std::chrono::milliseconds(batch_pause_ms);
  job_settings.rewrap_threads = rewrap_threads;
  if (!ParseIoMode(io_mode_text, &job_settings.io_mode)) {
    LogErr("unknown --io-mode " + io_mode_text);
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  std::filesystem::create_directories(volume_root, ec);

  table::RdbOptions rdb_options;
  rdb_options.path = state_dir + "/rdb.sqlite";
  rdb_options.job_retention =
      std::chrono::milliseconds(static_cast<int64_t>(retention_hours * 3600 * 1000));
  if (const char* creds = std::getenv("CREDENTIALS_DIRECTORY")) {
    const std::string key = std::string(creds) + "/host-key";
    if (std::filesystem::exists(key)) {
      rdb_options.host_key_path = key;
      rdb_options.host_key_is_credential = true;
    }
  }
  Notify("STATUS=opening the table");
  auto rdb = table::Rdb::Open(rdb_options);
  if (!rdb.ok()) {
    LogErr("cannot open the table " + rdb_options.path + ": " + rdb.status().ToString());
    return 1;
  }
  if (Status s = (*rdb)->CheckIntegrity(); !s.ok()) {
    LogErr("the table failed its integrity check: " + s.ToString());
    return 1;
  }
  auto keys = KeyService::Create(key_capacity);
  if (!keys.ok()) {
    LogErr("cannot set up the key table: " + keys.status().ToString());
    return 1;
  }

  KeyManagerSettings settings;
  settings.volume_root = volume_root;
  settings.ca_dir = state_dir + "/ca";
  settings.jobs = job_settings;
  if (const group* g = ::getgrnam("svmkey")) settings.operator_gid = g->gr_gid;

  std::unique_ptr<sdbus::IConnection> connection;
  try {
    connection = sdbus::createSystemBusConnection();
  } catch (const sdbus::Error& e) {
    LogErr("cannot connect to the system bus: " + e.getMessage());
    return 1;
  }
  EventLoop loop(*connection);
  auto created = ManagerObject::Create(*connection, loop, **rdb, rdb_options, **keys, settings);
  if (!created.ok()) {
    LogErr("cannot open the table for the control worker: " + created.status().ToString());
    return 1;
  }
  std::unique_ptr<ManagerObject> manager = std::move(created).value();
  const size_t resumed = manager->ResumeUnfinishedJobs();
  manager->jobs().Prune();
  try {
    connection->requestName(ipc::kBusName);
  } catch (const sdbus::Error& e) {
    LogErr("cannot own " + std::string(ipc::kBusName) + ": " + e.getMessage());
    manager->StopWorkers();
    return 1;
  }
  LogNotice(std::string("svmkeyd ") + kVersion + " ready on " + ipc::kBusName + " (state " + state_dir +
            ", " + std::to_string(resumed) + " jobs resumed)");
  Notify("READY=1\nSTATUS=ready; " + std::to_string(resumed) + " jobs resumed");

  // Periodic work on the loop: watchdog, STATUS=, job retention.
  uint64_t watchdog_usec = 0;
  const bool watchdog = ::sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  std::function<void()> tick;
  auto last_prune = std::chrono::steady_clock::now();
  const auto period = watchdog ? std::chrono::microseconds(watchdog_usec / 2)
                               : std::chrono::microseconds(std::chrono::seconds(5));
  tick = [&] {
    const size_t running = manager->jobs().running();
    Notify(std::string(watchdog ? "WATCHDOG=1\n" : "") + "STATUS=" +
           (running ? std::to_string(running) + " job(s) running" : std::string("idle")));
    if (std::chrono::steady_clock::now() - last_prune > std::chrono::minutes(10)) {
      manager->jobs().Prune();
      last_prune = std::chrono::steady_clock::now();
    }
    loop.RunAt(EventLoop::Clock::now() + period, tick);
  };
  loop.RunAt(EventLoop::Clock::now() + period, tick);

  const int sig = loop.Run();
  LogNotice("stopping (signal " + std::to_string(sig) + "); running jobs stop at a batch boundary");
  Notify("STOPPING=1\nSTATUS=stopping");
  manager->StopWorkers();
  manager.reset();
  return 0;
}

}  // namespace
}  // namespace svmkey::daemon

int main(int argc, char** argv) {
  try {
    return svmkey::daemon::Main(argc, argv);
  } catch (const std::exception& e) {
    svmkey::daemon::LogErr(std::string("fatal: ") + e.what());
    return 1;
  }
}
