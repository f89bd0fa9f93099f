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
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/core/event_loop.h"
#include "daemon/core/log.h"
#include "daemon/bus/call_bounds.h"
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

// Raises the soft RLIMIT_NOFILE to the hard limit: every volume of a rewrap batch in
// flight holds a descriptor, and systemd's default soft limit for services (1024) is
// below what the default batches need. Returns the soft limit in force afterwards.
uint64_t RaiseDescriptorLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  const rlim_t before = lim.rlim_cur;
  if (lim.rlim_cur != lim.rlim_max) {
    rlimit raised{lim.rlim_max, lim.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  LogInfo("RLIMIT_NOFILE soft " + std::to_string(before) + " -> " + std::to_string(lim.rlim_cur) +
          ", hard " + std::to_string(lim.rlim_max));
  return lim.rlim_cur;
}

void Notify(const std::string& state) { ::sd_notify(0, state.c_str()); }

// The bus side of the daemon: one connection at a time, with its call bounds
// (call_bounds.h) and its manager object. When the loop loses the connection (the bus
// dropped it or went away), the session is retired, not destroyed, since sdbus messages
// of replies still pending refer to its connection and handlers to its object, and a
// new one is opened with backoff (0.1 s doubling to 5 s): connect, register, republish
// the jobs, own the name. Running jobs are untouched (they live in ManagerCore); the
// watchdog keeps ticking meanwhile (docs/ARCHITECTURE.md §9).
class BusSessions {
 public:
  BusSessions(EventLoop& loop, ManagerCore& core) : loop_(loop), core_(core) {}
  ~BusSessions() { loop_.SetConnection(nullptr); }

  // Connects and registers the manager object; throws sdbus::Error.
  void Open() {
    Session s;
    s.connection = sdbus::createSystemBusConnection();
    s.call_bounds = InstallCallBounds(*s.connection, loop_);
    s.manager = std::make_unique<ManagerObject>(*s.connection, core_);
    current_ = std::move(s);
    loop_.SetConnection(current_.connection.get());
  }
  // Throws sdbus::Error.
  void OwnName() { current_.connection->requestName(ipc::kBusName); }

  void ReconnectWhenLost() {
    loop_.OnConnectionLost([this](const std::string& why) {
      Notify("STATUS=reconnecting to the bus (" + why + ")");
      if (current_.manager) current_.manager->Retire();
      retired_.push_back(std::move(current_));
      current_ = Session{};
      backoff_ = kFirstBackoff;
      loop_.RunAt(EventLoop::Clock::now() + backoff_, [this] { Reconnect(); });
    });
  }

 private:
  static constexpr std::chrono::milliseconds kFirstBackoff{100};
  static constexpr std::chrono::milliseconds kMaxBackoff{5000};
  struct Session {
    // Destroyed in reverse: the object and the bounds before their connection.
    std::unique_ptr<sdbus::IConnection> connection;
    sdbus::Slot call_bounds;
    std::unique_ptr<ManagerObject> manager;
  };

  void Reconnect() {
    try {
      Open();
      OwnName();
      LogNotice(std::string("reconnected to the bus; ") + ipc::kBusName + " owned again");
      Notify("STATUS=reconnected to the bus");
    } catch (const sdbus::Error& e) {
      loop_.SetConnection(nullptr);
      current_ = Session{};
      LogWarning("cannot reconnect to the bus yet: " + e.getMessage());
      backoff_ = std::min(backoff_ * 2, kMaxBackoff);
      loop_.RunAt(EventLoop::Clock::now() + backoff_, [this] { Reconnect(); });
    }
  }

  EventLoop& loop_;
  ManagerCore& core_;
  std::chrono::milliseconds backoff_ = kFirstBackoff;
  std::vector<Session> retired_;  // destroyed after current_ (declared first)
  Session current_;
};

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
  std::vector<std::string> volume_set_roots;
  size_t max_running_jobs = job_defaults.max_running_jobs;
  uint64_t retention_count = table::RdbOptions{}.job_retention_count;
  app.add_option("--state-dir", state_dir, "Table (rdb.sqlite) and host key directory")->capture_default_str();
  app.add_option("--volume-root", volume_root, "Where new volumes' metadata files go (default STATE_DIR/volumes)");
  app.add_option("--volume-set-root", volume_set_roots,
                 "A directory volume sets may lie in besides the volume root (repeatable): "
                 "RegisterVolumeSet accepts sets beneath it, rekey and verify open no volume "
                 "file outside these roots");
  app.add_option("--io-mode", io_mode_text, "auto (io_uring, falling back to sync), uring or sync")->capture_default_str();
  app.add_option("--batch-size", batch_size, "Volumes per rewrap batch")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--rewrap-threads", rewrap_threads, "Rewrap batches in flight at once, one thread each")->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--job-retention-hours", retention_hours, "Keep finished jobs this long")->check(CLI::Range(0.0, 24.0 * 365))->capture_default_str();
  app.add_option("--job-retention-count", retention_count, "Keep at most this many finished jobs (the oldest go first)")->check(CLI::Range(uint64_t{1}, uint64_t{100000}))->capture_default_str();
  app.add_option("--max-running-jobs", max_running_jobs,
                 "Jobs run at once; more wait queued. Memory: at most about the idle RSS + "
                 "max-running-jobs x 64 MiB at the default batch size and threads (a job: "
                 "batch-size x rewrap-threads x 4.5 KiB of rewrap arenas, its table cache and "
                 "thread heaps); threads: max-running-jobs x (1 + rewrap-threads) "
                 "(docs/ARCHITECTURE.md section 7)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--rewrap-pause-ms", batch_pause_ms, "Pause after every rewrap batch (throttles a rekey's I/O)")->check(CLI::Range(0u, 60000u))->capture_default_str();
  app.add_option("--key-table-capacity", key_capacity, "Keys held at once in locked memory")->check(CLI::Range(16, 1 << 20))->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (std::getenv("SVMKEYD_DEBUG")) SetLogLevel(LogLevel::kDebug);
  if (volume_root.empty()) volume_root = state_dir + "/volumes";
  // Volume paths are built from the root and checked against it lexically, so the roots
  // are kept absolute and normalized, without a trailing slash.
  auto normalize = [](const std::string& dir) {
    std::string out = std::filesystem::absolute(dir).lexically_normal().string();
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
  };
  volume_root = normalize(volume_root);
  for (std::string& root : volume_set_roots) root = normalize(root);

  Harden();
  // Block the termination signals in every thread; the event loop reads them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  JobSettings job_settings;
  job_settings.volume_roots.push_back(volume_root);
  job_settings.volume_roots.insert(job_settings.volume_roots.end(), volume_set_roots.begin(),
                                   volume_set_roots.end());
  const uint64_t nofile = RaiseDescriptorLimit();
  if (const size_t fit = BatchSizeWithinDescriptors(batch_size, rewrap_threads, nofile); fit < batch_size) {
    LogWarning("batch size reduced from " + std::to_string(batch_size) + " to " + std::to_string(fit) +
               " so that " + std::to_string(rewrap_threads) + " rewrap threads' open volume files plus " +
               std::to_string(kDescriptorReserve) + " spare fit in RLIMIT_NOFILE " + std::to_string(nofile));
    batch_size = fit;
  }
  job_settings.batch_size = batch_size;
  job_settings.batch_pause = std::chrono::milliseconds(batch_pause_ms);
  job_settings.rewrap_threads = rewrap_threads;
  job_settings.max_running_jobs = max_running_jobs;
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
  rdb_options.job_retention_count = retention_count;
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
  settings.volume_set_roots = volume_set_roots;
  settings.ca_dir = state_dir + "/ca";
  settings.jobs = job_settings;
  if (const group* g = ::getgrnam("svmkey")) settings.operator_gid = g->gr_gid;

  EventLoop loop;
  auto core = ManagerCore::Create(loop, **rdb, rdb_options, **keys, settings);
  if (!core.ok()) {
    LogErr("cannot open the table for the control worker: " + core.status().ToString());
    return 1;
  }
  BusSessions bus(loop, **core);
  try {
    bus.Open();
  } catch (const sdbus::Error& e) {
    LogErr("cannot connect to the system bus: " + e.getMessage());
    (*core)->StopWorkers();
    return 1;
  }
  const size_t resumed = (*core)->ResumeUnfinishedJobs();
  (*core)->jobs().Prune();
  try {
    bus.OwnName();
  } catch (const sdbus::Error& e) {
    LogErr("cannot own " + std::string(ipc::kBusName) + ": " + e.getMessage());
    (*core)->StopWorkers();
    return 1;
  }
  bus.ReconnectWhenLost();
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
    const size_t running = (*core)->jobs().running();
        const size_t queued = (*core)->jobs().queued();
    Notify(std::string(watchdog ? "WATCHDOG=1\n" : "") + "STATUS=" +
           (running ? std::to_string(running) + " job(s) running" : std::string("idle")) +
           (queued ? ", " + std::to_string(queued) + " queued" : std::string()));
    if (std::chrono::steady_clock::now() - last_prune > std::chrono::minutes(10)) {
      (*core)->jobs().Prune();
      last_prune = std::chrono::steady_clock::now();
    }
    loop.RunAt(EventLoop::Clock::now() + period, tick);
  };
  loop.RunAt(EventLoop::Clock::now() + period, tick);

  const int sig = loop.Run();
  LogNotice("stopping (signal " + std::to_string(sig) + "); running jobs stop at a batch boundary");
  Notify("STOPPING=1\nSTATUS=stopping");
  (*core)->StopWorkers();
  loop.DropPending();  // before the connections go: queued replies still refer to them
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
