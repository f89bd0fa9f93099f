// svmkeyctl: the ONTAP "security key-manager" verbs over D-Bus (org.svmkey.KeyManager1).
//
//   svmkeyctl [--json] [--address ADDR] <group> <verb> [options]
//
// Exit status: 0 success; 1 the operation failed (the ONTAP code is printed); 2 usage.
// Secrets (application credential secret, proxy password) are never taken from the
// command line: they are read from a prompt (no echo) or a file and handed to the daemon
// through a pipe file descriptor, so they never travel in a bus message either.
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "tools/ctl/ctl_output.h"

namespace svmkey::ctl {
namespace {

constexpr const char* kService = "org.svmkey.KeyManager1";
constexpr const char* kPath = "/org/svmkey/KeyManager1";
constexpr const char* kInterface = "org.svmkey.KeyManager1";

struct Globals {
  bool json = false;
  std::string address;
  bool quiet = false;
};
Globals g;

// A failed call: prints "Error: <code>: <text>" (and the D-Bus error name with -v).
struct Failure {
  std::string name;
  std::string message;
};

class Client {
 public:
  Client() {
    // --address names the system bus to use. It goes through DBUS_SYSTEM_BUS_ADDRESS
    // rather than sdbus-c++'s createSessionBusConnectionWithAddress, which (1.2.0) leaks
    // its sd_bus when the connection fails (LeakSanitizer in the ASan run of the
    // svmkeyctl test); libsystemd's own open cleans up after itself.
    if (!g.address.empty()) ::setenv("DBUS_SYSTEM_BUS_ADDRESS", g.address.c_str(), 1);
    connection_ = sdbus::createSystemBusConnection();
    proxy_ = sdbus::createProxy(*connection_, kService, kPath);
  }

  template <typename... Out, typename... In>
  std::tuple<Out...> Call(const std::string& method, const In&... in) {
    auto call = proxy_->createMethodCall(kInterface, method);
    if constexpr (sizeof...(In) > 0) (call << ... << in);
    auto reply = proxy_->callMethod(call, 600'000'000);  // µs: generous (return_timeout ≤ 120 s)
    std::tuple<Out...> out;
    if constexpr (sizeof...(Out) > 0) std::apply([&](auto&... o) { (reply >> ... >> o); }, out);
    return out;
  }

 private:
  std::unique_ptr<sdbus::IConnection> connection_;
  std::unique_ptr<sdbus::IProxy> proxy_;
};

[[noreturn]] void Die(const std::string& message, int status = 1) {
  std::cerr << "Error: " << message << "\n";
  std::exit(status);
}

// Reads a secret from `file` ("-" = stdin) or, without one, from the terminal with echo
// off. Returns a pipe's read end holding it (the daemon reads it from there).
sdbus::UnixFd SecretPipe(const std::string& what, const std::string& file) {
  std::string secret;
  if (!file.empty()) {
    if (file == "-") {
      std::getline(std::cin, secret);
    } else {
      std::ifstream in(file);
      if (!in) Die("cannot read " + what + " file " + file, 2);
      std::getline(in, secret);
    }
  } else {
    FILE* tty = std::fopen("/dev/tty", "r+");
    if (tty == nullptr) Die(what + ": no terminal to prompt on; use the --*-file option", 2);
    std::fprintf(tty, "Enter the %s: ", what.c_str());
    std::fflush(tty);
    termios old{};
    const int fd = fileno(tty);
    const bool have_tty = ::tcgetattr(fd, &old) == 0;
    if (have_tty) {
      termios quiet = old;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    char buf[4097];
    if (std::fgets(buf, sizeof buf, tty) != nullptr) secret = buf;
    if (have_tty) ::tcsetattr(fd, TCSAFLUSH, &old);
    std::fprintf(tty, "\n");
    std::fclose(tty);
    volatile char* p = buf;
    for (size_t i = 0; i < sizeof buf; ++i) p[i] = 0;
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) Die(what + " is empty", 2);
  int fds[2];
  if (::pipe(fds) != 0) Die("pipe failed");
  const ssize_t n = ::write(fds[1], secret.data(), secret.size());
  ::close(fds[1]);
  volatile char* p = secret.data();
  for (size_t i = 0; i < secret.size(); ++i) p[i] = 0;
  if (n != static_cast<ssize_t>(secret.size())) Die("cannot pass the " + what);
  sdbus::UnixFd out(fds[0]);
  ::close(fds[0]);  // UnixFd dup'ed it
  return out;
}

void PrintMap(const VariantMap& m, const std::vector<std::string>& order = {}) {
  if (g.json) {
    std::cout << ToJson(m).dump(2) << "\n";
  } else {
    std::cout << ToText(m, order);
  }
}

void PrintRows(const std::vector<VariantMap>& rows, const std::vector<std::string>& columns) {
  if (g.json) {
    std::cout << ToJson(rows).dump(2) << "\n";
  } else {
    std::cout << ToTable(rows, columns);
  }
}

// What a create verb prints: the new object's uuid (JSON) or a line naming it.
void PrintCreated(const char* what, const std::string& name, const std::string& uuid) {
  if (g.json) {
    std::cout << nlohmann::json{{"uuid", uuid}}.dump(2) << "\n";
  } else {
    std::cout << "Created " << what << " " << name << ": " << uuid << "\n";
  }
}

std::string Str(const VariantMap& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end()) return "";
  return ToJson(it->second).is_string() ? ToJson(it->second).get<std::string>() : ToJson(it->second).dump();
}

// The Barbican configuration meant by --uuid, or by --svm [+ --config-name] (the
// enabled one when no name is given).
std::string ResolveConfig(Client& c, const std::string& uuid, const std::string& svm,
                          const std::string& name) {
  if (!uuid.empty()) return uuid;
  if (svm.empty()) Die("give --uuid, or --svm (with --config-name)", 2);
  VariantMap filter{{"svm", sdbus::Variant(svm)}};
  auto [configs] = c.Call<std::vector<VariantMap>>("ListBarbicanConfigs", filter);
  for (const auto& cfg : configs) {
    if (!name.empty() ? Str(cfg, "name") == name : Str(cfg, "enabled") == "true") {
      return Str(cfg, "uuid");
    }
  }
  Die(name.empty() ? "SVM " + svm + " has no enabled Barbican configuration (65539817)"
                   : "SVM " + svm + " has no Barbican configuration named " + name + " (4)");
}

// Waits for a job, drawing a progress bar on a terminal (a line per change otherwise).
// Returns the exit status: 0 success, 1 failure.
int WatchJob(Client& c, const std::string& job) {
  const bool tty = ::isatty(STDOUT_FILENO) && !g.json;
  std::string last_line;
  auto last_print = std::chrono::steady_clock::now() - std::chrono::hours(1);
  for (;;) {
    auto [info] = c.Call<VariantMap>("GetJob", job);
    const std::string state = Str(info, "state");
    const bool done = state == "success" || state == "failure";
    if (!g.quiet && !g.json) {
      const std::string line = ProgressLine(info);
      if (tty) {
        std::cout << "\r" << line << "\033[K" << std::flush;
      } else if (line != last_line &&
                 (done || std::chrono::steady_clock::now() - last_print > std::chrono::seconds(2))) {
        std::cout << line << "\n" << std::flush;
        last_print = std::chrono::steady_clock::now();
      }
      last_line = line;
    }
    if (done) {
      if (tty && !g.quiet) std::cout << "\n";
      if (g.json) {
        std::cout << ToJson(info).dump(2) << "\n";
      } else if (state == "success") {
        std::cout << "Job " << job << " succeeded: " << Str(info, "message") << "\n";
      } else {
        std::cout << "Job " << job << " failed: code " << Str(info, "code") << ": "
                  << Str(info, "message") << "\n";
      }
      return state == "success" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 200 : 500));
  }
}

// Prints the reply of a job-starting call and, unless no_wait, follows the job.
int StartedJob(Client& c, uint32_t status, const std::string& job, bool no_wait) {
  if (no_wait) {
    if (g.json) {
      std::cout << nlohmann::json{{"status", status}, {"job", {{"uuid", job}}}}.dump(2) << "\n";
    } else {
      std::cout << status << " " << (status == 202 ? "Accepted" : "Created") << ": job " << job
                << "\n";
    }
    return 0;
  }
  if (!g.json && !g.quiet) std::cout << "Job " << job << " started (" << status << ")\n";
  return WatchJob(c, job);
}

int Run(int argc, char** argv) {
  CLI::App app{"svmkeyctl: manage svmkey's key hierarchy (ONTAP security key-manager verbs)\n"
               "over D-Bus (org.svmkey.KeyManager1 on the system bus)."};
  app.name("svmkeyctl");
  app.require_subcommand(1);
  app.fallthrough();  // global options (--json, --address) may follow the verb
  app.add_flag("--json", g.json, "Machine-readable JSON output");
  app.add_option("--address", g.address, "D-Bus address (default: the system bus, or $DBUS_SYSTEM_BUS_ADDRESS)");
  app.add_flag("-q,--quiet", g.quiet, "No progress output");
  app.footer("Examples:\n"
             "  svmkeyctl svm create vs1\n"
             "  svmkeyctl barbican create-config --svm vs1 --config-name cfg1 --key-id URL \\\n"
             "      --keystone-url https://ks:5000/v3 --application-cred-id ID --ca-file ca.pem\n"
             "  svmkeyctl keystore enable --svm vs1 --config-name cfg1\n"
             "  svmkeyctl barbican rekey-internal --svm vs1\n");
  int status = 0;
  std::function<void()> action;
  // Each verb's work runs once the whole command line has parsed, with a connected client.
  auto on_run = [&action](CLI::App* s, std::function<void(Client&)> body) {
    s->callback([&action, body] {
      action = [body] {
        Client c;
        body(c);
      };
    });
  };

  // Shared option holders.
  std::string svm, name, uuid, key_id, keystone_url, cred_id, secret_file, ca_file, proxy_type,
      proxy_host, proxy_user, proxy_password_file, kind, dir, kek_file, state_filter, job;
  std::optional<bool> verify, verify_host;
  std::optional<uint32_t> timeout, proxy_port, return_timeout;
  std::optional<uint64_t> dsid;
  bool no_wait = false, reachability = false, keep_kek = false, with_proxy_password = false;
  uint32_t limit = 1000;
  std::string after;

  auto add_svm = [&](CLI::App* s, bool required) {
    auto* o = s->add_option("--svm,--vserver", svm, "SVM name or uuid");
    if (required) o->required();
  };
  auto add_config = [&](CLI::App* s) {
    s->add_option("--uuid", uuid, "Barbican configuration uuid");
    add_svm(s, false);
    s->add_option("--config-name", name, "Configuration name (with --svm)");
  };
  auto add_settings = [&](CLI::App* s) {
    s->add_option("--ca-file", ca_file, "PEM CA bundle for Keystone and Barbican");
    s->add_option("--verify", verify, "Verify the server certificate (true|false)");
    s->add_option("--verify-host", verify_host, "Verify the host name (true|false)");
    s->add_option("--timeout", timeout, "Seconds per HTTPS exchange (1-600)");
    s->add_option("--proxy-type", proxy_type, "http or https");
    s->add_option("--proxy-host", proxy_host, "Proxy host (empty: no proxy)");
    s->add_option("--proxy-port", proxy_port, "Proxy port");
    s->add_option("--proxy-username", proxy_user, "Proxy user name");
    s->add_flag("--proxy-password", with_proxy_password, "Prompt for the proxy password");
    s->add_option("--proxy-password-file", proxy_password_file, "Read the proxy password from a file ('-': stdin)");
  };
  auto settings_map = [&](VariantMap& m) {
    if (!ca_file.empty()) m["ca_file"] = sdbus::Variant(ca_file);
    if (verify) m["verify"] = sdbus::Variant(*verify);
    if (verify_host) m["verify_host"] = sdbus::Variant(*verify_host);
    if (timeout) m["timeout"] = sdbus::Variant(*timeout);
    if (!proxy_type.empty()) m["proxy_type"] = sdbus::Variant(proxy_type);
    if (!proxy_host.empty()) m["proxy_host"] = sdbus::Variant(proxy_host);
    if (proxy_port) m["proxy_port"] = sdbus::Variant(*proxy_port);
    if (!proxy_user.empty()) m["proxy_username"] = sdbus::Variant(proxy_user);
    if (with_proxy_password || !proxy_password_file.empty()) {
      m["proxy_password_fd"] = sdbus::Variant(SecretPipe("proxy password", proxy_password_file));
    }
  };
  auto add_wait = [&](CLI::App* s) {
    s->add_flag("--no-wait", no_wait, "Print the job and return (202) instead of following it");
    s->add_option("--return-timeout", return_timeout, "Seconds the daemon waits before answering 202 (0-120)");
  };

  // ---- barbican ----
  auto* barbican = app.add_subcommand("barbican", "Barbican KMS configurations (security key-manager external barbican)");
  barbican->require_subcommand(1);
  barbican->fallthrough();
  {
    auto* s = barbican->add_subcommand("create-config", "Create an inactive Barbican configuration for an SVM.\n"
        "Example: svmkeyctl barbican create-config --svm vs1 --config-name cfg1 \\\n"
        "  --key-id https://bb:9311/v1/secrets/<uuid> --keystone-url https://ks:5000/v3 \\\n"
        "  --application-cred-id ID --application-cred-secret-file secret.txt --ca-file ca.pem");
    add_svm(s, true);
    s->add_option("--config-name", name, "Configuration name")->required();
    s->add_option("--key-id", key_id, "HTTPS URL of the Barbican secret (the KEK)")->required();
    s->add_option("--keystone-url", keystone_url, "HTTPS URL of Keystone v3")->required();
    s->add_option("--application-cred-id", cred_id, "Keystone application credential id")->required();
    s->add_option("--application-cred-secret-file", secret_file, "Read the secret from a file ('-': stdin); default: prompt");
    add_settings(s);
    on_run(s, [&](Client& c) {
      VariantMap m{{"svm", sdbus::Variant(svm)}, {"name", sdbus::Variant(name)},
                   {"key_id", sdbus::Variant(key_id)}, {"keystone_url", sdbus::Variant(keystone_url)},
                   {"application_cred_id", sdbus::Variant(cred_id)},
                   {"application_cred_secret_fd", sdbus::Variant(SecretPipe("application credential secret", secret_file))}};
      settings_map(m);
      auto [id] = c.Call<std::string>("CreateBarbicanConfig", m);
      PrintCreated("Barbican configuration", name, id);
    });
  }
  {
    auto* s = barbican->add_subcommand("show", "Show Barbican configurations (all, one SVM's, or one).\n"
        "Example: svmkeyctl barbican show --svm vs1");
    add_config(s);
    s->add_flag("--reachability", reachability, "Also check that Barbican answers (advanced)");
    on_run(s, [&](Client& c) {
      if (!uuid.empty() || !name.empty() || reachability) {
        const std::string id = ResolveConfig(c, uuid, svm, name);
        VariantMap opts;
        if (reachability) opts["reachability"] = sdbus::Variant(true);
        auto [cfg] = c.Call<VariantMap>("GetBarbicanConfig", id, opts);
        PrintMap(cfg, {"uuid", "name", "svm", "enabled", "state", "key_id", "keystone_url"});
        return;
      }
      VariantMap filter;
      if (!svm.empty()) filter["svm"] = sdbus::Variant(svm);
      auto [rows] = c.Call<std::vector<VariantMap>>("ListBarbicanConfigs", filter);
      PrintRows(rows, {"svm", "name", "uuid", "enabled", "state", "key_id"});
    });
  }
  {
    auto* s = barbican->add_subcommand("check", "Check that the SVM's Barbican key is reachable (barbican_reachability).\n"
        "Example: svmkeyctl barbican check --svm vs1");
    add_config(s);
    on_run(s, [&](Client& c) {
      const std::string id = ResolveConfig(c, uuid, svm, name);
      auto [cfg] = c.Call<VariantMap>("GetBarbicanConfig", id, VariantMap{{"reachability", sdbus::Variant(true)}});
      VariantMap r{{"uuid", cfg["uuid"]},
                   {"reachable", cfg["barbican_reachability_reachable"]},
                   {"code", cfg["barbican_reachability_code"]},
                   {"message", cfg["barbican_reachability_message"]}};
      PrintMap(r, {"uuid", "reachable", "code", "message"});
      status = Str(cfg, "barbican_reachability_reachable") == "true" ? 0 : 1;
    });
  }
  {
    auto* s = barbican->add_subcommand("update-credentials", "Replace the application credential (id and secret together).\n"
        "Example: svmkeyctl barbican update-credentials --svm vs1 --application-cred-id NEWID");
    add_config(s);
    s->add_option("--application-cred-id", cred_id, "New application credential id")->required();
    s->add_option("--application-cred-secret-file", secret_file, "Read the secret from a file ('-': stdin); default: prompt");
    on_run(s, [&](Client& c) {
      const std::string id = ResolveConfig(c, uuid, svm, name);
      VariantMap m{{"application_cred_id", sdbus::Variant(cred_id)},
                   {"application_cred_secret_fd", sdbus::Variant(SecretPipe("application credential secret", secret_file))}};
      c.Call<>("UpdateBarbicanCredentials", id, m);
      if (!g.json) std::cout << "Updated the credentials of " << id << "\n";
    });
  }
  {
    auto* s = barbican->add_subcommand("update-config", "Change connection settings of a configuration.\n"
        "Example: svmkeyctl barbican update-config --svm vs1 --timeout 30");
    add_config(s);
    add_settings(s);
    on_run(s, [&](Client& c) {
      const std::string id = ResolveConfig(c, uuid, svm, name);
      VariantMap m;
      settings_map(m);
      c.Call<>("UpdateBarbicanConfig", id, m);
      if (!g.json) std::cout << "Updated the settings of " << id << "\n";
    });
  }
  {
    auto* s = barbican->add_subcommand("rekey-internal", "Rotate the SVM's internal key (SVM-KEK) and rewrap every volume key;\n"
        "follows the job with a progress bar unless --no-wait.\n"
        "Example: svmkeyctl barbican rekey-internal --svm vs1");
    add_config(s);
    add_wait(s);
    on_run(s, [&](Client& c) {
      const std::string id = ResolveConfig(c, uuid, svm, name);
      auto [st, jobid] = c.Call<uint32_t, std::string>("RekeyInternal", id, return_timeout.value_or(0), false);
      status = StartedJob(c, st, jobid, no_wait);
    });
  }
  {
    auto* s = barbican->add_subcommand("restore", "Reinstall the SVM's active SVM-KEK from the table into the key table.\n"
        "Example: svmkeyctl barbican restore --svm vs1");
    add_config(s);
    add_wait(s);
    on_run(s, [&](Client& c) {
      const std::string id = ResolveConfig(c, uuid, svm, name);
      auto [st, jobid] = c.Call<uint32_t, std::string>("Restore", id, return_timeout.value_or(0));
      status = StartedJob(c, st, jobid, no_wait);
    });
  }

  // ---- keystore ----
  auto* keystore = app.add_subcommand("keystore", "Key stores (security key-manager keystore)");
  keystore->require_subcommand(1);
  keystore->fallthrough();
  // enable and delete: a call on one named configuration.
  auto keystore_call = [&](const char* verb, const char* help, const char* method,
                           const char* done) {
    auto* s = keystore->add_subcommand(verb, help);
    add_config(s);
    on_run(s, [&, method, done](Client& c) {
      if (uuid.empty() && name.empty()) Die("give --uuid or --svm with --config-name", 2);
      const std::string id = ResolveConfig(c, uuid, svm, name);
      c.Call<>(method, id);
      if (!g.json) std::cout << done << " key store " << id << "\n";
    });
  };
  keystore_call("enable",
                "Enable a configuration, or switch the SVM to it (rewraps the SVM-KEK).\n"
                "Example: svmkeyctl keystore enable --svm vs1 --config-name cfg1",
                "EnableKeyStore", "Enabled");
  keystore_call("delete",
                "Delete an inactive configuration.\n"
                "Example: svmkeyctl keystore delete --svm vs1 --config-name old",
                "DeleteKeyStore", "Deleted");
  {
    auto* s = keystore->add_subcommand("show", "List key stores.\nExample: svmkeyctl keystore show --svm vs1");
    add_svm(s, false);
    on_run(s, [&](Client& c) {
      VariantMap filter;
      if (!svm.empty()) filter["svm"] = sdbus::Variant(svm);
      auto [rows] = c.Call<std::vector<VariantMap>>("ListKeyStores", filter);
      PrintRows(rows, {"svm", "name", "uuid", "type", "enabled", "state"});
    });
  }

  // ---- svm ----
  auto* svmcmd = app.add_subcommand("svm", "SVMs");
  svmcmd->require_subcommand(1);
  svmcmd->fallthrough();
  {
    auto* s = svmcmd->add_subcommand("create", "Create an SVM.\nExample: svmkeyctl svm create vs1");
    s->add_option("name", name, "SVM name")->required();
    s->add_option("--kind", kind, "data (default) or admin");
    on_run(s, [&](Client& c) {
      VariantMap opts;
      if (!kind.empty()) opts["kind"] = sdbus::Variant(kind);
      auto [id] = c.Call<std::string>("CreateSvm", name, opts);
      PrintCreated("SVM", name, id);
    });
  }
  {
    auto* s = svmcmd->add_subcommand("show", "List SVMs with their SVM-KEK generation.\nExample: svmkeyctl svm show");
    on_run(s, [&](Client& c) {
      auto [rows] = c.Call<std::vector<VariantMap>>("ListSvms", VariantMap{});
      PrintRows(rows, {"name", "uuid", "kind", "key_generation"});
    });
  }

  // ---- volume ----
  auto* volume = app.add_subcommand("volume", "Encrypted volumes");
  volume->require_subcommand(1);
  volume->fallthrough();
  {
    auto* s = volume->add_subcommand("create", "Create an encrypted volume (new VDEK under the SVM-KEK).\n"
        "Example: svmkeyctl volume create --svm vs1 --name vol1");
    add_svm(s, true);
    s->add_option("--name", name, "Volume name")->required();
    s->add_option("--dsid", dsid, "Data-set id (default: random)");
    on_run(s, [&](Client& c) {
      VariantMap opts;
      if (dsid) opts["dsid"] = sdbus::Variant(*dsid);
      auto [id] = c.Call<std::string>("CreateVolume", svm, name, opts);
      PrintCreated("volume", name, id);
    });
  }
  {
    auto* s = volume->add_subcommand("register-set", "Adopt a volume set made by svmkey-volset (SVM without SVM-KEK).\n"
        "Example: svmkeyctl volume register-set --svm vs1 --dir /srv/set --kek-file /srv/set/kek.bin");
    add_svm(s, true);
    s->add_option("--dir", dir, "Volume set directory (absolute)")->required();
    s->add_option("--kek-file", kek_file, "The set's SVM-KEK file (removed after adoption)")->required();
    s->add_flag("--keep-kek-file", keep_kek, "Do not remove the KEK file");
    on_run(s, [&](Client& c) {
      VariantMap opts{{"kek_file", sdbus::Variant(kek_file)}};
      if (keep_kek) opts["keep_kek_file"] = sdbus::Variant(true);
      auto [n] = c.Call<uint64_t>("RegisterVolumeSet", svm, dir, opts);
      if (g.json) std::cout << nlohmann::json{{"count", n}}.dump(2) << "\n";
      else std::cout << "Registered " << n << " volumes\n";
    });
  }
  {
    auto* s = volume->add_subcommand("list", "List volumes of an SVM (paged).\nExample: svmkeyctl volume list --svm vs1 --limit 20");
    add_svm(s, true);
    s->add_option("--limit", limit, "At most this many (1-10000)")->capture_default_str();
    s->add_option("--after", after, "Continue after this volume uuid");
    on_run(s, [&](Client& c) {
      VariantMap opts{{"limit", sdbus::Variant(limit)}};
      if (!after.empty()) opts["after"] = sdbus::Variant(after);
      auto [rows] = c.Call<std::vector<VariantMap>>("ListVolumes", svm, opts);
      PrintRows(rows, {"name", "uuid", "key_generation", "key_manager", "path"});
    });
  }
  {
    auto* s = volume->add_subcommand("verify", "Check that every volume key of the SVM opens under the active SVM-KEK.\n"
        "Example: svmkeyctl volume verify --svm vs1");
    add_svm(s, true);
    add_wait(s);
    on_run(s, [&](Client& c) {
      auto [st, jobid] = c.Call<uint32_t, std::string>("VerifyVolumes", svm, return_timeout.value_or(0));
      status = StartedJob(c, st, jobid, no_wait);
    });
  }

  // ---- job ----
  auto* jobcmd = app.add_subcommand("job", "Jobs");
  jobcmd->require_subcommand(1);
  jobcmd->fallthrough();
  {
    auto* s = jobcmd->add_subcommand("show", "Show one job.\nExample: svmkeyctl job show <uuid>");
    s->add_option("uuid", job, "Job uuid")->required();
    on_run(s, [&](Client& c) {
      auto [info] = c.Call<VariantMap>("GetJob", job);
      PrintMap(info, {"uuid", "description", "state", "code", "message", "phase", "volumes_done",
                      "volumes_total", "start_time", "end_time"});
    });
  }
  {
    auto* s = jobcmd->add_subcommand("list", "List recent jobs.\nExample: svmkeyctl job list --state failure");
    s->add_option("--state", state_filter, "queued, running, paused, success or failure");
    add_svm(s, false);
    on_run(s, [&](Client& c) {
      VariantMap filter;
      if (!state_filter.empty()) filter["state"] = sdbus::Variant(state_filter);
      if (!svm.empty()) filter["svm"] = sdbus::Variant(svm);
      auto [rows] = c.Call<std::vector<VariantMap>>("ListJobs", filter);
      PrintRows(rows, {"uuid", "description", "state", "code", "volumes_done", "volumes_total", "end_time"});
    });
  }
  {
    auto* s = jobcmd->add_subcommand("watch", "Follow a job with a progress bar until it ends.\nExample: svmkeyctl job watch <uuid>");
    s->add_option("uuid", job, "Job uuid")->required();
    on_run(s, [&](Client& c) {
      status = WatchJob(c, job);
    });
  }

  // ONTAP spells its options with one dash (-vserver vs1); accept that too.
  std::vector<std::string> args;
  for (int i = argc - 1; i > 0; --i) {
    std::string a = argv[i];
    if (a.size() > 2 && a[0] == '-' && a[1] != '-') a = "-" + a;
    args.push_back(a);
  }
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (action) action();
  } catch (const sdbus::Error& e) {
    // Our errors read "<ONTAP code>: <text>"; bus-level ones get their D-Bus name.
    const std::string& msg = e.getMessage();
    if (e.getName().rfind("org.svmkey.Error.", 0) == 0) {
      std::cerr << "Error: " << msg << "\n";
    } else {
      std::cerr << "Error: " << e.getName() << ": " << msg << "\n";
    }
    return 1;
  }
  return status;
}

}  // namespace
}  // namespace svmkey::ctl

int main(int argc, char** argv) { return svmkey::ctl::Run(argc, argv); }
