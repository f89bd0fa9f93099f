#include "tests/integration/harness.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace svmkey::integration {
namespace {

using ::svmkey::testing::DecodeWaitStatus;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

bool UnderCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::string SvmkeydPath() { return SVMKEYD_PATH; }
std::string VolsetPath() { return SVMKEY_VOLSET_PATH; }
std::string BenchPath() { return SVMKEY_BENCH_PATH; }
std::string SourceRoot() { return SVMKEY_SOURCE_ROOT; }
std::string BuildRoot() { return SVMKEY_BUILD_ROOT; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return;
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  ::close(fd);
}

// ---- Child ----

Child::~Child() {
  if (pid_ > 0) Stop(SIGKILL, 10s);
}

bool Child::Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  const std::string& log_path, int extra_fd_to_3) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& x : env) overridden = overridden || x.substr(0, x.find('=')) == key;
    if (!overridden) env_strings.push_back(entry);
  }
  for (const auto& x : env) env_strings.push_back(x);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return false;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (extra_fd_to_3 >= 0) {
      ::dup2(extra_fd_to_3, 3);  // dup2 clears FD_CLOEXEC on the new descriptor
    }
    // Do not outlive the test (a meson timeout kills it without running destructors).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (pid < 0) return false;
  pid_ = pid;
  status_ = -1;
  return true;
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = DecodeWaitStatus(st);
    pid_ = -1;
    return false;
  }
  return true;
}

int Child::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = DecodeWaitStatus(st);
      pid_ = -1;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(10ms);
  }
  return status_;
}

void Child::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int Child::Stop(int sig, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return status_;
  ::kill(pid_, sig);
  const int rc = Wait(timeout);
  if (rc == -1 && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    Wait(10s);
    return -1;
  }
  return rc;
}

// ---- PrivateBus ----

PrivateBus::PrivateBus(const std::string& dir, const std::string& extra_policy) {
  const std::string socket = dir + "/bus.sock";
  const std::string config = dir + "/bus.conf";
  log_path_ = dir + "/dbus-daemon.log";
  const std::string policy = SourceRoot() + "/ipc/org.svmkey.KeyManager1.conf";
  std::string xml =
      "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
      " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
      "<busconfig>\n"
      "  <type>system</type>\n"
      "  <listen>unix:path=" +
      socket +
      "</listen>\n"
      "  <auth>EXTERNAL</auth>\n"
      "  <policy context=\"default\">\n"
      "    <allow user=\"*\"/>\n"
      "    <deny own=\"*\"/>\n"
      "    <deny send_type=\"method_call\"/>\n"
      "    <allow send_type=\"signal\"/>\n"
      "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
      "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
      "    <allow receive_type=\"method_call\"/>\n"
      "    <allow receive_type=\"method_return\"/>\n"
      "    <allow receive_type=\"error\"/>\n"
      "    <allow receive_type=\"signal\"/>\n"
      "    <allow send_destination=\"org.freedesktop.DBus\" "
      "send_interface=\"org.freedesktop.DBus\"/>\n"
      "    <allow send_destination=\"org.freedesktop.DBus\" "
      "send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
      "    <allow send_destination=\"org.freedesktop.DBus\" "
      "send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
      "  </policy>\n"
      "  <policy user=\"root\">\n"
      "    <allow send_destination=\"org.freedesktop.DBus\" "
      "send_interface=\"org.freedesktop.DBus.Monitoring\"/>\n"
      "  </policy>\n"
      "  <include>" +
      policy + "</include>\n" + extra_policy + "</busconfig>\n";
  WriteFile(config, xml, 0644);
  config_path_ = config;
  socket_path_ = socket;
  Spawn();
}

bool PrivateBus::Restart() {
  child_.Stop(SIGKILL, 10s);
  address_.clear();
  error_.clear();
  Spawn();
  return ok();
}

void PrivateBus::Spawn() {
  const std::string& config = config_path_;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    error_ = "pipe failed";
    return;
  }
  const bool spawned = child_.Spawn({"/usr/bin/dbus-daemon", "--nofork", "--nopidfile",
                                     "--nosyslog", "--config-file=" + config, "--print-address=3"},
                                    {}, log_path_, pipe_fds[1]);
  ::close(pipe_fds[1]);
  if (!spawned) {
    ::close(pipe_fds[0]);
    error_ = "cannot spawn /usr/bin/dbus-daemon";
    return;
  }
  // The address is printed once the socket listens: that is the readiness signal.
  std::string line;
  pollfd p{pipe_fds[0], POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[512];
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  line = Trim(line);
  if (line.rfind("unix:", 0) != 0) {
    error_ = "dbus-daemon did not print an address; its log:\n" + log();
    child_.Stop(SIGKILL, 5s);
    return;
  }
  address_ = line;
}

PrivateBus::~PrivateBus() { child_.Stop(SIGTERM, 10s); }

// ---- NotifySocket ----

NotifySocket::NotifySocket(const std::string& path) : path_(path) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ::unlink(path.c_str());
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  ::chmod(path.c_str(), 0666);  // a daemon run as a test user may notify too
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  reader_ = std::thread([this] { ReadLoop(); });
}

NotifySocket::~NotifySocket() {
  if (reader_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof one);
    reader_.join();
  }
  if (stop_fd_ >= 0) ::close(stop_fd_);
  if (fd_ >= 0) ::close(fd_);
  ::unlink(path_.c_str());
}

void NotifySocket::ReadLoop() {
  pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents & POLLIN) return;
    if (!(fds[0].revents & POLLIN)) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    messages_.emplace_back(std::chrono::steady_clock::now(),
                           std::string(buf, static_cast<size_t>(n)));
    cv_.notify_all();
  }
}

static bool HasLine(const std::string& message, const std::string& needle) {
  std::istringstream in(message);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(needle, 0) == 0) return true;
  }
  return false;
}

bool NotifySocket::WaitFor(const std::string& needle, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    for (const auto& [t, m] : messages_) {
      if (HasLine(m, needle)) return true;
    }
    return false;
  });
}

std::vector<std::string> NotifySocket::Messages() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [t, m] : messages_) out.push_back(m);
  return out;
}

std::optional<std::chrono::steady_clock::time_point> NotifySocket::ArrivalOf(
    const std::string& needle) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [t, m] : messages_) {
    if (HasLine(m, needle)) return t;
  }
  return std::nullopt;
}

std::vector<std::chrono::steady_clock::time_point> NotifySocket::ArrivalsOf(
    const std::string& needle) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::chrono::steady_clock::time_point> out;
  for (const auto& [t, m] : messages_) {
    if (HasLine(m, needle)) out.push_back(t);
  }
  return out;
}

// ---- Daemon ----

Daemon::Daemon(const PrivateBus& bus, std::string dir, DaemonOptions options)
    : bus_(bus), dir_(std::move(dir)), options_(std::move(options)) {
  log_path_ = dir_ + "/svmkeyd.log";
  std::filesystem::create_directories(state_dir());
  std::filesystem::create_directories(volume_root());
}

Daemon::~Daemon() {
  if (child_.running()) child_.Stop(SIGKILL, 10s);
}

bool Daemon::Start(std::chrono::seconds ready_timeout) {
  if (child_.running()) return false;
  ++starts_;
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "==== [harness] start #" << starts_ << " ====\n";
  }
  notify_ = std::make_unique<NotifySocket>(dir_ + "/notify." + std::to_string(starts_) + ".sock");
  std::vector<std::string> argv = options_.prefix;
  argv.push_back(SvmkeydPath());
  argv.push_back("--state-dir=" + state_dir());
  argv.push_back("--volume-root=" + volume_root());
  if (options_.batch_size) argv.push_back("--batch-size=" + std::to_string(options_.batch_size));
  if (!options_.io_mode.empty()) argv.push_back("--io-mode=" + options_.io_mode);
  for (const auto& a : options_.extra_args) argv.push_back(a);
  std::vector<std::string> env = {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address(),
                                  "NOTIFY_SOCKET=" + notify_->path()};
  for (const auto& e : options_.extra_env) {
    // An extra entry replaces a default one of the same name.
    const std::string key = e.substr(0, e.find('=') + 1);
    std::erase_if(env, [&](const std::string& x) { return x.rfind(key, 0) == 0; });
    env.push_back(e);
  }
  if (argv[0].find('/') == std::string::npos) argv[0] = "/usr/bin/" + argv[0];
  if (!child_.Spawn(argv, env, log_path_)) return false;
  const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (notify_->WaitFor("READY=1", 200ms)) return true;
    if (!child_.running()) return false;
  }
  return false;
}

void Daemon::Kill9() { child_.Stop(SIGKILL, 10s); }

int Daemon::Stop(int sig, std::chrono::seconds timeout) {
  if (!child_.running()) return child_.Wait(0ms);
  const auto t0 = std::chrono::steady_clock::now();
  child_.Signal(sig);
  int rc = child_.Wait(timeout);
  if (rc == -1) {
    Sh("{ echo '==== [harness] svmkeyd did not exit within " + std::to_string(timeout.count()) +
           " s of signal " + std::to_string(sig) + "; thread stacks:'; gdb -p " +
           std::to_string(child_.pid()) +
           " -batch -ex 'thread apply all bt' 2>&1 | grep -v '^\\[New LWP'; } >> " +
           Quote(log_path_) + " 2>&1",
       120s);
    child_.Stop(SIGKILL, 10s);
    return -1;
  }
  std::ofstream log(log_path_, std::ios::app);
  log << "==== [harness] exit status " << rc << " "
      << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
      << " s after signal " << sig << " ====\n";
  return rc;
}

std::string Daemon::LogTail(size_t max_bytes) const {
  std::string text = log();
  const size_t start = text.rfind("==== [harness] start #");
  if (start != std::string::npos) text = text.substr(start);
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  return text;
}

// ---- proxies ----

KeyManagerProxy::KeyManagerProxy(sdbus::IConnection& connection)
    : ProxyInterfaces(connection, kBusName, kManagerPath) {
  registerProxy();
}

KeyManagerProxy::~KeyManagerProxy() { unregisterProxy(); }

void KeyManagerProxy::onJobChanged(const std::string& uuid, const std::string& state) {
  std::lock_guard<std::mutex> lock(mu_);
  changes_.emplace_back(uuid, state);
  cv_.notify_all();
}

std::vector<std::pair<std::string, std::string>> KeyManagerProxy::job_changes() {
  std::lock_guard<std::mutex> lock(mu_);
  return changes_;
}

bool KeyManagerProxy::WaitJobChanged(const std::string& job, const std::string& state,
                                     std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    for (const auto& [u, s] : changes_) {
      if (u == job && s == state) return true;
    }
    return false;
  });
}

std::tuple<uint32_t, std::string> KeyManagerProxy::RekeyInternalWithin(
    const std::string& uuid, uint32_t return_timeout, std::chrono::seconds call_timeout) {
  std::tuple<uint32_t, std::string> result;
  getProxy()
      .callMethod("RekeyInternal")
      .onInterface(kManagerInterface)
      .withTimeout(call_timeout)
      .withArguments(uuid, return_timeout, false)
      .storeResultsTo(result);
  return result;
}

std::tuple<uint32_t, std::string> KeyManagerProxy::VerifyVolumesWithin(
    const std::string& svm, uint32_t return_timeout, std::chrono::seconds call_timeout) {
  std::tuple<uint32_t, std::string> result;
  getProxy()
      .callMethod("VerifyVolumes")
      .onInterface(kManagerInterface)
      .withTimeout(call_timeout)
      .withArguments(svm, return_timeout)
      .storeResultsTo(result);
  return result;
}

uint64_t KeyManagerProxy::RegisterVolumeSetWithin(const std::string& svm, const std::string& dir,
                                                  const VariantMap& options,
                                                  std::chrono::seconds call_timeout) {
  uint64_t count = 0;
  getProxy()
      .callMethod("RegisterVolumeSet")
      .onInterface(kManagerInterface)
      .withTimeout(call_timeout)
      .withArguments(svm, dir, options)
      .storeResultsTo(count);
  return count;
}

JobProxy::JobProxy(sdbus::IConnection& connection, const std::string& path)
    : ProxyInterfaces(connection, kBusName, path) {
  registerProxy();
}

JobProxy::~JobProxy() { unregisterProxy(); }

SignalLog::SignalLog(sdbus::IConnection& connection, const std::string& match) {
  slot_ = connection.addMatch(match, [this](sdbus::Message& msg) {
    RecordedSignal s;
    s.path = msg.getPath();
    s.interface = msg.getInterfaceName();
    s.member = msg.getMemberName();
    if (s.member == "PropertiesChanged") {
      try {
        std::string iface;
        VariantMap changed;
        std::vector<std::string> invalidated;
        msg >> iface >> changed >> invalidated;
        for (const auto& [k, v] : changed) {
          s.changed.push_back(k);
          if (v.peekValueType() == "s") s.values[k] = v.get<std::string>();
          if (v.peekValueType() == "t") s.values[k] = std::to_string(v.get<uint64_t>());
          if (v.peekValueType() == "u") s.values[k] = std::to_string(v.get<uint32_t>());
        }
      } catch (const sdbus::Error&) {
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    signals_.push_back(std::move(s));
    cv_.notify_all();
  });
}

std::vector<RecordedSignal> SignalLog::signals() {
  std::lock_guard<std::mutex> lock(mu_);
  return signals_;
}

bool SignalLog::WaitFor(const std::function<bool(const RecordedSignal&)>& pred,
                        std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    for (const auto& s : signals_) {
      if (pred(s)) return true;
    }
    return false;
  });
}

// ---- command-line clients ----

static std::string AsUser(const std::string& user) {
  return user.empty() ? "" : "runuser -u " + Quote(user) + " -- ";
}

sdbus::UnixFd PipeHolding(const std::string& bytes) {
  int p[2];
  if (::pipe(p) != 0) return sdbus::UnixFd();
  const ssize_t n = ::write(p[1], bytes.data(), bytes.size());
  ::close(p[1]);
  if (n != static_cast<ssize_t>(bytes.size())) {
    ::close(p[0]);
    return sdbus::UnixFd();
  }
  return sdbus::UnixFd(p[0], sdbus::adopt_fd);
}

CommandResult Busctl(const std::string& address, const std::string& args,
                     const std::string& as_user) {
  return Sh(AsUser(as_user) + "busctl --address=" + Quote(address) + " " + args);
}

CommandResult Gdbus(const std::string& address, const std::string& method, const std::string& args,
                    const std::string& as_user, const std::string& object_path) {
  return Sh(AsUser(as_user) + "gdbus call --address " + Quote(address) +
            " --dest org.svmkey.KeyManager1 --object-path " + Quote(object_path) + " --method " +
            Quote(method) + " " + args);
}

CommandResult DbusSend(const std::string& address, const std::string& method_and_args,
                       const std::string& as_user) {
  return Sh(AsUser(as_user) + "dbus-send --bus=" + Quote(address) +
            " --print-reply --dest=org.svmkey.KeyManager1 " + method_and_args);
}

std::string GdbusErrorName(const std::string& err) {
  const std::string tag = "GDBus.Error:";
  const size_t p = err.find(tag);
  if (p == std::string::npos) return "";
  const size_t start = p + tag.size();
  const size_t end = err.find(": ", start);
  return err.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string GdbusErrorMessage(const std::string& err) {
  const std::string tag = "GDBus.Error:";
  const size_t p = err.find(tag);
  if (p == std::string::npos) return "";
  const size_t sep = err.find(": ", p + tag.size());
  if (sep == std::string::npos) return "";
  return Trim(err.substr(sep + 2));
}

// ---- TableFile ----

TableFile::TableFile(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    error_ = db_ ? sqlite3_errmsg(db_) : "sqlite3_open_v2 failed";
    sqlite3_close(db_);
    db_ = nullptr;
    return;
  }
  sqlite3_busy_timeout(db_, 30000);
}

TableFile::~TableFile() {
  if (db_) sqlite3_close(db_);
}

namespace {

sqlite3_stmt* Prepare(sqlite3* db, const std::string& sql, const std::vector<std::string>& params,
                      int first_index, std::string* error) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    *error = sqlite3_errmsg(db);
    return nullptr;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    sqlite3_bind_text(st, static_cast<int>(i) + first_index, params[i].c_str(), -1,
                      SQLITE_TRANSIENT);
  }
  return st;
}

}  // namespace

bool TableFile::Exec(const std::string& sql, const std::vector<std::string>& params) {
  if (!db_) return false;
  sqlite3_stmt* st = Prepare(db_, sql, params, 1, &error_);
  if (!st) return false;
  const int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) error_ = sqlite3_errmsg(db_);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW;
}

std::optional<std::string> TableFile::QueryText(const std::string& sql,
                                                const std::vector<std::string>& params) {
  auto rows = QueryRows(sql, params);
  if (rows.empty() || rows[0].empty()) return std::nullopt;
  return rows[0][0];
}

std::optional<int64_t> TableFile::QueryInt(const std::string& sql,
                                           const std::vector<std::string>& params) {
  auto t = QueryText(sql, params);
  if (!t) return std::nullopt;
  return std::strtoll(t->c_str(), nullptr, 10);
}

std::optional<std::vector<uint8_t>> TableFile::QueryBlob(const std::string& sql,
                                                         const std::vector<std::string>& params) {
  if (!db_) return std::nullopt;
  sqlite3_stmt* st = Prepare(db_, sql, params, 1, &error_);
  if (!st) return std::nullopt;
  std::optional<std::vector<uint8_t>> out;
  if (sqlite3_step(st) == SQLITE_ROW) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st, 0));
    const int n = sqlite3_column_bytes(st, 0);
    out = std::vector<uint8_t>(p, p + n);
  }
  sqlite3_finalize(st);
  return out;
}

bool TableFile::SetBlob(const std::string& sql, const std::vector<uint8_t>& blob,
                        const std::vector<std::string>& params_after) {
  if (!db_) return false;
  sqlite3_stmt* st = Prepare(db_, sql, params_after, 2, &error_);
  if (!st) return false;
  sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) error_ = sqlite3_errmsg(db_);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE && sqlite3_changes(db_) > 0;
}

std::vector<std::vector<std::string>> TableFile::QueryRows(const std::string& sql,
                                                           const std::vector<std::string>& params) {
  std::vector<std::vector<std::string>> rows;
  if (!db_) return rows;
  sqlite3_stmt* st = Prepare(db_, sql, params, 1, &error_);
  if (!st) return rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const auto* t = sqlite3_column_text(st, c);
      row.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  return rows;
}

// ---- users ----

TestUsers EnsureTestUsers() {
  TestUsers u;
  if (::getgrnam("svmkey") == nullptr) {
    auto r = Sh("groupadd --system svmkey");
    if (r.status != 0 && ::getgrnam("svmkey") == nullptr) {
      u.error = "groupadd --system svmkey failed: " + r.err;
      return u;
    }
  }
  const struct group* g = ::getgrnam("svmkey");
  if (g == nullptr) {
    u.error = "group svmkey missing after groupadd";
    return u;
  }
  u.svmkey_gid = g->gr_gid;
  struct Want {
    const char* name;
    const char* groups;
  };
  for (const Want& w : {Want{kUnprivUser, ""}, Want{kOperatorUser, "svmkey"}}) {
    if (::getpwnam(w.name) == nullptr) {
      std::string cmd =
          std::string("useradd --system --no-create-home --shell /usr/sbin/nologin ") +
          (*w.groups ? std::string("-G ") + w.groups + " " : std::string()) + w.name;
      auto r = Sh(cmd);
      if (r.status != 0 && ::getpwnam(w.name) == nullptr) {
        u.error = cmd + " failed: " + r.err;
        return u;
      }
    } else if (*w.groups) {
      Sh(std::string("usermod -a -G ") + w.groups + " " + w.name);
    }
  }
  // getpwnam returns a static buffer: copy each answer before the next call.
  const struct passwd* p = ::getpwnam(kUnprivUser);
  if (p == nullptr) {
    u.error = std::string(kUnprivUser) + " missing after useradd";
    return u;
  }
  u.unpriv_uid = p->pw_uid;
  u.unpriv_gid = p->pw_gid;
  p = ::getpwnam(kOperatorUser);
  if (p == nullptr) {
    u.error = std::string(kOperatorUser) + " missing after useradd";
    return u;
  }
  u.operator_uid = p->pw_uid;
  u.operator_gid = p->pw_gid;
  return u;
}

}  // namespace svmkey::integration
