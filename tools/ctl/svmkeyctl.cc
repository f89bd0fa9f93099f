// svmkeyctl: the ONTAP "security key-manager" verbs over D-Bus (org.svmkey.KeyManager1,
// docs/ARCHITECTURE.md §11).
//
//   svmkeyctl [--json] [--address ADDR] <group> <verb> [options]
//
// Exit status: 0 success; 1 the operation failed (the ONTAP code is printed); 2 usage.
// Secrets (application credential secret, proxy password) are never taken from the
// command line: see tools/ctl/secret_input.h.
//
// Each verb group (barbican, keystore, svm, volume, job) declares its verbs in one Add*
// function; a verb's work is a function of the connected client and the parsed options.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/status.h"
#include "tools/ctl/ctl_exit.h"
#include "tools/ctl/ctl_output.h"
#include "tools/ctl/key_manager_client.h"
#include "tools/ctl/secret_input.h"
#include "version.h"

namespace svmkey::ctl {
namespace {

// What the command line said. One set of holders serves every verb: only one verb runs.
struct Options {
  bool json = false;
  bool quiet = false;
  std::string address;

  std::string svm, name, uuid, key_id, keystone_url, cred_id, secret_file, kind, dir, kek_file,
      state_filter, job, after;
  uint32_t limit = 1000;
  std::optional<uint64_t> dsid;
  bool reachability = false, keep_kek = false;
  // Job-starting verbs.
  bool no_wait = false;
  std::optional<uint32_t> return_timeout;
  // Connection settings of a Barbican configuration.
  std::string ca_file, proxy_type, proxy_host, proxy_user, proxy_password_file;
  std::optional<bool> verify, verify_host;
  std::optional<uint32_t> timeout, proxy_port;
  bool with_proxy_password = false;
};

// A verb's work, run once the whole command line has parsed; returns the exit status.
using Verb = int (*)(KeyManagerClient&, const Options&);

// ---- output ----

void PrintMap(const Options& o, const VariantMap& m, const std::vector<std::string>& order = {}) {
  if (o.json) {
    std::cout << ToJson(m).dump(2) << "\n";
  } else {
    std::cout << ToText(m, order);
  }
}

void PrintRows(const Options& o, const std::vector<VariantMap>& rows,
               const std::vector<std::string>& columns) {
  if (o.json) {
    std::cout << ToJson(rows).dump(2) << "\n";
  } else {
    std::cout << ToTable(rows, columns);
  }
}

// What a create verb prints: the new object's uuid (JSON) or a line naming it.
int PrintCreated(const Options& o, const char* what, const std::string& name,
                 const std::string& uuid) {
  if (o.json) {
    std::cout << nlohmann::json{{"uuid", uuid}}.dump(2) << "\n";
  } else {
    std::cout << "Created " << what << " " << name << ": " << uuid << "\n";
  }
  return 0;
}

std::string Str(const VariantMap& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end()) return "";
  const nlohmann::json j = ToJson(it->second);
  return j.is_string() ? j.get<std::string>() : j.dump();
}

// " (<code>)": the ONTAP code of a failure svmkeyctl finds itself, from the error table.
std::string CodeSuffix(ErrorCode code) {
  return " (" + std::to_string(static_cast<uint32_t>(code)) + ")";
}

// ---- jobs ----

// Waits for a job, drawing a progress bar on a terminal (a line per change otherwise).
// Returns the exit status: 0 success, 1 failure.
int WatchJob(KeyManagerClient& km, const Options& o, const std::string& job) {
  const bool tty = ::isatty(STDOUT_FILENO) && !o.json;
  std::string last_line;
  auto last_print = std::chrono::steady_clock::now() - std::chrono::hours(1);
  for (;;) {
    const VariantMap info = km.GetJob(job);
    const std::string state = Str(info, "state");
    const bool done = state == "success" || state == "failure";
    if (!o.quiet && !o.json) {
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
      if (tty && !o.quiet) std::cout << "\n";
      if (o.json) {
        std::cout << ToJson(info).dump(2) << "\n";
      } else if (state == "success") {
        std::cout << "Job " << job << " succeeded: " << Str(info, "message") << "\n";
      } else {
        std::cout << "Job " << job << " failed: code " << Str(info, "code") << ": "
                  << Str(info, "message") << "\n";
      }
      return state == "success" ? 0 : kExitFailure;
    }
    km.DispatchSignals();
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 200 : 500));
  }
}

// Prints the reply (status, job uuid) of a job-starting call and, unless --no-wait,
// follows the job.
int StartedJob(KeyManagerClient& km, const Options& o,
               const std::tuple<uint32_t, std::string>& reply) {
  const auto& [status, job] = reply;
  if (o.no_wait) {
    if (o.json) {
      std::cout << nlohmann::json{{"status", status}, {"job", {{"uuid", job}}}}.dump(2) << "\n";
    } else {
      std::cout << status << " " << (status == 202 ? "Accepted" : "Created") << ": job " << job
                << "\n";
    }
    return 0;
  }
  if (!o.json && !o.quiet) std::cout << "Job " << job << " started (" << status << ")\n";
  return WatchJob(km, o, job);
}

// ---- barbican ----

// The Barbican configuration meant by --uuid, or by --svm [+ --config-name] (the
// enabled one when no name is given).
std::string ResolveConfig(KeyManagerClient& km, const Options& o) {
  if (!o.uuid.empty()) return o.uuid;
  if (o.svm.empty()) throw CtlExit("give --uuid, or --svm (with --config-name)", kExitUsage);
  for (const auto& cfg : km.ListBarbicanConfigs({{"svm", sdbus::Variant(o.svm)}})) {
    if (!o.name.empty() ? Str(cfg, "name") == o.name : Str(cfg, "enabled") == "true") {
      return Str(cfg, "uuid");
    }
  }
  throw CtlExit(o.name.empty() ? "SVM " + o.svm + " has no enabled Barbican configuration" +
                                     CodeSuffix(ErrorCode::kBarbicanNotConfigured)
                               : "SVM " + o.svm + " has no Barbican configuration named " +
                                     o.name + CodeSuffix(ErrorCode::kEntryNotFound));
}

// The connection settings given on the command line, as CreateBarbicanConfig and
// UpdateBarbicanConfig keys.
void AddConnectionSettings(const Options& o, VariantMap& m) {
  if (!o.ca_file.empty()) m["ca_file"] = sdbus::Variant(o.ca_file);
  if (o.verify) m["verify"] = sdbus::Variant(*o.verify);
  if (o.verify_host) m["verify_host"] = sdbus::Variant(*o.verify_host);
  if (o.timeout) m["timeout"] = sdbus::Variant(*o.timeout);
  if (!o.proxy_type.empty()) m["proxy_type"] = sdbus::Variant(o.proxy_type);
  if (!o.proxy_host.empty()) m["proxy_host"] = sdbus::Variant(o.proxy_host);
  if (o.proxy_port) m["proxy_port"] = sdbus::Variant(*o.proxy_port);
  if (!o.proxy_user.empty()) m["proxy_username"] = sdbus::Variant(o.proxy_user);
  if (o.with_proxy_password || !o.proxy_password_file.empty()) {
    m["proxy_password_fd"] = sdbus::Variant(SecretPipe("proxy password", o.proxy_password_file));
  }
}

sdbus::Variant CredentialSecret(const Options& o) {
  return sdbus::Variant(SecretPipe("application credential secret", o.secret_file));
}

int CreateBarbicanConfig(KeyManagerClient& km, const Options& o) {
  VariantMap m{{"svm", sdbus::Variant(o.svm)},
               {"name", sdbus::Variant(o.name)},
               {"key_id", sdbus::Variant(o.key_id)},
               {"keystone_url", sdbus::Variant(o.keystone_url)},
               {"application_cred_id", sdbus::Variant(o.cred_id)},
               {"application_cred_secret_fd", CredentialSecret(o)}};
  AddConnectionSettings(o, m);
  return PrintCreated(o, "Barbican configuration", o.name, km.CreateBarbicanConfig(m));
}

int ShowBarbicanConfigs(KeyManagerClient& km, const Options& o) {
  if (!o.uuid.empty() || !o.name.empty() || o.reachability) {
    VariantMap opts;
    if (o.reachability) opts["reachability"] = sdbus::Variant(true);
    PrintMap(o, km.GetBarbicanConfig(ResolveConfig(km, o), opts),
             {"uuid", "name", "svm", "enabled", "state", "key_id", "keystone_url"});
    return 0;
  }
  VariantMap filter;
  if (!o.svm.empty()) filter["svm"] = sdbus::Variant(o.svm);
  PrintRows(o, km.ListBarbicanConfigs(filter), {"svm", "name", "uuid", "enabled", "state", "key_id"});
  return 0;
}

int CheckBarbican(KeyManagerClient& km, const Options& o) {
  VariantMap cfg = km.GetBarbicanConfig(ResolveConfig(km, o), {{"reachability", sdbus::Variant(true)}});
  VariantMap r{{"uuid", cfg["uuid"]},
               {"reachable", cfg["barbican_reachability_reachable"]},
               {"code", cfg["barbican_reachability_code"]},
               {"message", cfg["barbican_reachability_message"]}};
  PrintMap(o, r, {"uuid", "reachable", "code", "message"});
  return Str(cfg, "barbican_reachability_reachable") == "true" ? 0 : kExitFailure;
}

int UpdateBarbicanCredentials(KeyManagerClient& km, const Options& o) {
  const std::string id = ResolveConfig(km, o);
  km.UpdateBarbicanCredentials(id, {{"application_cred_id", sdbus::Variant(o.cred_id)},
                                    {"application_cred_secret_fd", CredentialSecret(o)}});
  if (!o.json) std::cout << "Updated the credentials of " << id << "\n";
  return 0;
}

int UpdateBarbicanConfig(KeyManagerClient& km, const Options& o) {
  const std::string id = ResolveConfig(km, o);
  VariantMap m;
  AddConnectionSettings(o, m);
  km.UpdateBarbicanConfig(id, m);
  if (!o.json) std::cout << "Updated the settings of " << id << "\n";
  return 0;
}

int RekeyInternal(KeyManagerClient& km, const Options& o) {
  return StartedJob(km, o,
                    km.RekeyInternal(ResolveConfig(km, o), o.return_timeout.value_or(0), false));
}

int RestoreSvmKek(KeyManagerClient& km, const Options& o) {
  return StartedJob(km, o, km.Restore(ResolveConfig(km, o), o.return_timeout.value_or(0)));
}

// ---- keystore ----

// enable and delete name one configuration: by --uuid or by --svm with --config-name.
std::string NamedKeyStore(KeyManagerClient& km, const Options& o) {
  if (o.uuid.empty() && o.name.empty()) {
    throw CtlExit("give --uuid or --svm with --config-name", kExitUsage);
  }
  return ResolveConfig(km, o);
}

int EnableKeyStore(KeyManagerClient& km, const Options& o) {
  const std::string id = NamedKeyStore(km, o);
  km.EnableKeyStore(id);
  if (!o.json) std::cout << "Enabled key store " << id << "\n";
  return 0;
}

int DeleteKeyStore(KeyManagerClient& km, const Options& o) {
  const std::string id = NamedKeyStore(km, o);
  km.DeleteKeyStore(id);
  if (!o.json) std::cout << "Deleted key store " << id << "\n";
  return 0;
}

int ShowKeyStores(KeyManagerClient& km, const Options& o) {
  VariantMap filter;
  if (!o.svm.empty()) filter["svm"] = sdbus::Variant(o.svm);
  PrintRows(o, km.ListKeyStores(filter), {"svm", "name", "uuid", "type", "enabled", "state"});
  return 0;
}

// ---- svm ----

int CreateSvm(KeyManagerClient& km, const Options& o) {
  VariantMap opts;
  if (!o.kind.empty()) opts["kind"] = sdbus::Variant(o.kind);
  return PrintCreated(o, "SVM", o.name, km.CreateSvm(o.name, opts));
}

int ShowSvms(KeyManagerClient& km, const Options& o) {
  PrintRows(o, km.ListSvms({}), {"name", "uuid", "kind", "key_generation"});
  return 0;
}

// ---- volume ----

int CreateVolume(KeyManagerClient& km, const Options& o) {
  VariantMap opts;
  if (o.dsid) opts["dsid"] = sdbus::Variant(*o.dsid);
  return PrintCreated(o, "volume", o.name, km.CreateVolume(o.svm, o.name, opts));
}

int RegisterVolumeSet(KeyManagerClient& km, const Options& o) {
  VariantMap opts{{"kek_file", sdbus::Variant(o.kek_file)}};
  if (o.keep_kek) opts["keep_kek_file"] = sdbus::Variant(true);
  const uint64_t n = km.RegisterVolumeSet(o.svm, o.dir, opts);
  if (o.json) {
    std::cout << nlohmann::json{{"count", n}}.dump(2) << "\n";
  } else {
    std::cout << "Registered " << n << " volumes\n";
  }
  return 0;
}

int ListVolumes(KeyManagerClient& km, const Options& o) {
  VariantMap opts{{"limit", sdbus::Variant(o.limit)}};
  if (!o.after.empty()) opts["after"] = sdbus::Variant(o.after);
  PrintRows(o, km.ListVolumes(o.svm, opts), {"name", "uuid", "key_generation", "key_manager", "path"});
  return 0;
}

int VerifyVolumes(KeyManagerClient& km, const Options& o) {
  return StartedJob(km, o, km.VerifyVolumes(o.svm, o.return_timeout.value_or(0)));
}

// ---- job ----

int ShowJob(KeyManagerClient& km, const Options& o) {
  PrintMap(o, km.GetJob(o.job),
           {"uuid", "description", "state", "code", "message", "phase", "volumes_done",
            "volumes_total", "start_time", "end_time"});
  return 0;
}

int ListJobs(KeyManagerClient& km, const Options& o) {
  VariantMap filter;
  if (!o.state_filter.empty()) filter["state"] = sdbus::Variant(o.state_filter);
  if (!o.svm.empty()) filter["svm"] = sdbus::Variant(o.svm);
  PrintRows(o, km.ListJobs(filter),
            {"uuid", "description", "state", "code", "volumes_done", "volumes_total", "end_time"});
  return 0;
}

int WatchJobVerb(KeyManagerClient& km, const Options& o) { return WatchJob(km, o, o.job); }

// ---- the command line ----

class CommandLine {
 public:
  CommandLine();
  int Run(int argc, char** argv);

 private:
  CLI::App* AddGroup(const char* name, const char* help);
  CLI::App* AddVerb(CLI::App* group, const char* name, const char* help, Verb verb);
  void AddSvmOption(CLI::App* s, bool required);
  void AddConfigOptions(CLI::App* s);
  void AddSettingOptions(CLI::App* s);
  void AddWaitOptions(CLI::App* s);

  void AddBarbicanVerbs();
  void AddKeystoreVerbs();
  void AddSvmVerbs();
  void AddVolumeVerbs();
  void AddJobVerbs();

  Options o_;
  CLI::App app_{
      "svmkeyctl: manage svmkey's key hierarchy (ONTAP security key-manager verbs)\n"
      "over D-Bus (org.svmkey.KeyManager1 on the system bus)."};
  Verb chosen_ = nullptr;
};

CommandLine::CommandLine() {
  app_.name("svmkeyctl");
  app_.set_version_flag("--version", std::string("svmkeyctl ") + kVersion);
  app_.require_subcommand(1);
  app_.fallthrough();  // global options (--json, --address) may follow the verb
  app_.add_flag("--json", o_.json, "Machine-readable JSON output");
  app_.add_option("--address", o_.address,
                  "D-Bus address (default: the system bus, or $DBUS_SYSTEM_BUS_ADDRESS)");
  app_.add_flag("-q,--quiet", o_.quiet, "No progress output");
  app_.footer(
      "Examples:\n"
      "  svmkeyctl svm create vs1\n"
      "  svmkeyctl barbican create-config --svm vs1 --config-name cfg1 --key-id URL \\\n"
      "      --keystone-url https://ks:5000/v3 --application-cred-id ID --ca-file ca.pem\n"
      "  svmkeyctl keystore enable --svm vs1 --config-name cfg1\n"
      "  svmkeyctl barbican rekey-internal --svm vs1\n");
  AddBarbicanVerbs();
  AddKeystoreVerbs();
  AddSvmVerbs();
  AddVolumeVerbs();
  AddJobVerbs();
}

CLI::App* CommandLine::AddGroup(const char* name, const char* help) {
  auto* group = app_.add_subcommand(name, help);
  group->require_subcommand(1);
  group->fallthrough();
  return group;
}

CLI::App* CommandLine::AddVerb(CLI::App* group, const char* name, const char* help, Verb verb) {
  auto* s = group->add_subcommand(name, help);
  s->callback([this, verb] { chosen_ = verb; });
  return s;
}

void CommandLine::AddSvmOption(CLI::App* s, bool required) {
  auto* o = s->add_option("--svm,--vserver", o_.svm, "SVM name or uuid");
  if (required) o->required();
}

void CommandLine::AddConfigOptions(CLI::App* s) {
  s->add_option("--uuid", o_.uuid, "Barbican configuration uuid");
  AddSvmOption(s, false);
  s->add_option("--config-name", o_.name, "Configuration name (with --svm)");
}

void CommandLine::AddSettingOptions(CLI::App* s) {
  s->add_option("--ca-file", o_.ca_file, "PEM CA bundle for Keystone and Barbican");
  s->add_option("--verify", o_.verify, "Verify the server certificate (true|false)");
  s->add_option("--verify-host", o_.verify_host, "Verify the host name (true|false)");
  s->add_option("--timeout", o_.timeout, "Seconds per HTTPS exchange (1-600)");
  s->add_option("--proxy-type", o_.proxy_type, "http or https");
  s->add_option("--proxy-host", o_.proxy_host, "Proxy host (empty: no proxy)");
  s->add_option("--proxy-port", o_.proxy_port, "Proxy port");
  s->add_option("--proxy-username", o_.proxy_user, "Proxy user name");
  s->add_flag("--proxy-password", o_.with_proxy_password, "Prompt for the proxy password");
  s->add_option("--proxy-password-file", o_.proxy_password_file,
                "Read the proxy password from a file ('-': stdin)");
}

void CommandLine::AddWaitOptions(CLI::App* s) {
  s->add_flag("--no-wait", o_.no_wait, "Print the job and return (202) instead of following it");
  s->add_option("--return-timeout", o_.return_timeout,
                "Seconds the daemon waits before answering 202 (0-120)");
}

void CommandLine::AddBarbicanVerbs() {
  auto* g = AddGroup("barbican", "Barbican KMS configurations (security key-manager external barbican)");
  auto* s = AddVerb(g, "create-config", "Create an inactive Barbican configuration for an SVM.\n"
      "Example: svmkeyctl barbican create-config --svm vs1 --config-name cfg1 \\\n"
      "  --key-id https://bb:9311/v1/secrets/<uuid> --keystone-url https://ks:5000/v3 \\\n"
      "  --application-cred-id ID --application-cred-secret-file secret.txt --ca-file ca.pem",
      CreateBarbicanConfig);
  AddSvmOption(s, true);
  s->add_option("--config-name", o_.name, "Configuration name")->required();
  s->add_option("--key-id", o_.key_id, "HTTPS URL of the Barbican secret (the KEK)")->required();
  s->add_option("--keystone-url", o_.keystone_url, "HTTPS URL of Keystone v3")->required();
  s->add_option("--application-cred-id", o_.cred_id, "Keystone application credential id")->required();
  s->add_option("--application-cred-secret-file", o_.secret_file, "Read the secret from a file ('-': stdin); default: prompt");
  AddSettingOptions(s);

  s = AddVerb(g, "show", "Show Barbican configurations (all, one SVM's, or one).\n"
      "Example: svmkeyctl barbican show --svm vs1", ShowBarbicanConfigs);
  AddConfigOptions(s);
  s->add_flag("--reachability", o_.reachability, "Also check that Barbican answers (advanced)");

  s = AddVerb(g, "check", "Check that the SVM's Barbican key is reachable (barbican_reachability).\n"
      "Example: svmkeyctl barbican check --svm vs1", CheckBarbican);
  AddConfigOptions(s);

  s = AddVerb(g, "update-credentials", "Replace the application credential (id and secret together).\n"
      "Example: svmkeyctl barbican update-credentials --svm vs1 --application-cred-id NEWID",
      UpdateBarbicanCredentials);
  AddConfigOptions(s);
  s->add_option("--application-cred-id", o_.cred_id, "New application credential id")->required();
  s->add_option("--application-cred-secret-file", o_.secret_file, "Read the secret from a file ('-': stdin); default: prompt");

  s = AddVerb(g, "update-config", "Change connection settings of a configuration.\n"
      "Example: svmkeyctl barbican update-config --svm vs1 --timeout 30", UpdateBarbicanConfig);
  AddConfigOptions(s);
  AddSettingOptions(s);

  s = AddVerb(g, "rekey-internal", "Rotate the SVM's internal key (SVM-KEK) and rewrap every volume key;\n"
      "follows the job with a progress bar unless --no-wait.\n"
      "Example: svmkeyctl barbican rekey-internal --svm vs1", RekeyInternal);
  AddConfigOptions(s);
  AddWaitOptions(s);

  s = AddVerb(g, "restore", "Reinstall the SVM's active SVM-KEK from the table into the key table.\n"
      "Example: svmkeyctl barbican restore --svm vs1", RestoreSvmKek);
  AddConfigOptions(s);
  AddWaitOptions(s);
}

void CommandLine::AddKeystoreVerbs() {
  auto* g = AddGroup("keystore", "Key stores (security key-manager keystore)");
  AddConfigOptions(AddVerb(g, "enable",
      "Enable a configuration, or switch the SVM to it (rewraps the SVM-KEK).\n"
      "Example: svmkeyctl keystore enable --svm vs1 --config-name cfg1", EnableKeyStore));
  AddConfigOptions(AddVerb(g, "delete",
      "Delete an inactive configuration.\n"
      "Example: svmkeyctl keystore delete --svm vs1 --config-name old", DeleteKeyStore));
  AddSvmOption(AddVerb(g, "show", "List key stores.\nExample: svmkeyctl keystore show --svm vs1",
                       ShowKeyStores),
               false);
}

void CommandLine::AddSvmVerbs() {
  auto* g = AddGroup("svm", "SVMs");
  auto* s = AddVerb(g, "create", "Create an SVM.\nExample: svmkeyctl svm create vs1", CreateSvm);
  s->add_option("name", o_.name, "SVM name")->required();
  s->add_option("--kind", o_.kind, "data (default) or admin");
  AddVerb(g, "show", "List SVMs with their SVM-KEK generation.\nExample: svmkeyctl svm show", ShowSvms);
}

void CommandLine::AddVolumeVerbs() {
  auto* g = AddGroup("volume", "Encrypted volumes");
  auto* s = AddVerb(g, "create", "Create an encrypted volume (new VDEK under the SVM-KEK).\n"
      "Example: svmkeyctl volume create --svm vs1 --name vol1", CreateVolume);
  AddSvmOption(s, true);
  s->add_option("--name", o_.name, "Volume name")->required();
  s->add_option("--dsid", o_.dsid, "Data-set id (default: random)");

  s = AddVerb(g, "register-set", "Adopt a volume set made by svmkey-volset (SVM without SVM-KEK).\n"
      "Example: svmkeyctl volume register-set --svm vs1 --dir /srv/set --kek-file /srv/set/kek.bin",
      RegisterVolumeSet);
  AddSvmOption(s, true);
  s->add_option("--dir", o_.dir, "Volume set directory (absolute)")->required();
  s->add_option("--kek-file", o_.kek_file, "The set's SVM-KEK file (removed after adoption)")->required();
  s->add_flag("--keep-kek-file", o_.keep_kek, "Do not remove the KEK file");

  s = AddVerb(g, "list", "List volumes of an SVM (paged).\nExample: svmkeyctl volume list --svm vs1 --limit 20",
              ListVolumes);
  AddSvmOption(s, true);
  s->add_option("--limit", o_.limit, "At most this many (1-10000)")->capture_default_str();
  s->add_option("--after", o_.after, "Continue after this volume uuid");

  s = AddVerb(g, "verify", "Check that every volume key of the SVM opens under the active SVM-KEK.\n"
      "Example: svmkeyctl volume verify --svm vs1", VerifyVolumes);
  AddSvmOption(s, true);
  AddWaitOptions(s);
}

void CommandLine::AddJobVerbs() {
  auto* g = AddGroup("job", "Jobs");
  auto* s = AddVerb(g, "show", "Show one job.\nExample: svmkeyctl job show <uuid>", ShowJob);
  s->add_option("uuid", o_.job, "Job uuid")->required();

  s = AddVerb(g, "list", "List recent jobs.\nExample: svmkeyctl job list --state failure", ListJobs);
  s->add_option("--state", o_.state_filter, "queued, running, paused, success or failure");
  AddSvmOption(s, false);

  s = AddVerb(g, "watch", "Follow a job with a progress bar until it ends.\nExample: svmkeyctl job watch <uuid>",
              WatchJobVerb);
  s->add_option("uuid", o_.job, "Job uuid")->required();
}

// A failed call prints "Error: <message>": svmkeyd's errors (those of the error table)
// read "<ONTAP code>: <text>"; bus-level ones get their D-Bus name in front.
int ReportBusError(const sdbus::Error& e) {
  if (FindErrorByName(e.getName()) != nullptr) {
    std::cerr << "Error: " << e.getMessage() << "\n";
  } else {
    std::cerr << "Error: " << e.getName() << ": " << e.getMessage() << "\n";
  }
  return kExitFailure;
}

int CommandLine::Run(int argc, char** argv) {
  // ONTAP spells its options with one dash (-vserver vs1); accept that too. CLI11 takes
  // the arguments in reverse order.
  std::vector<std::string> args;
  for (int i = argc - 1; i > 0; --i) {
    std::string a = argv[i];
    if (a.size() > 2 && a[0] == '-' && a[1] != '-') a = "-" + a;
    args.push_back(a);
  }
  try {
    app_.parse(args);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (chosen_ == nullptr) return 0;
  try {
    const auto connection = ConnectToBus(o_.address);
    KeyManagerClient km(*connection);
    return chosen_(km, o_);
  } catch (const sdbus::Error& e) {
    return ReportBusError(e);
  } catch (const CtlExit& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return e.status();
  }
}

}  // namespace
}  // namespace svmkey::ctl

int main(int argc, char** argv) { return svmkey::ctl::CommandLine().Run(argc, argv); }
