#include "tools/ctl/verbs.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/status.h"
#include "tools/ctl/ctl_exit.h"
#include "tools/ctl/ctl_output.h"
#include "tools/ctl/secret_input.h"

namespace svmkey::ctl {
namespace {

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
      } else if (line != last_line && (done || std::chrono::steady_clock::now() - last_print >
                                                   std::chrono::seconds(2))) {
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

// ---- configurations ----

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
                               : "SVM " + o.svm + " has no Barbican configuration named " + o.name +
                                     CodeSuffix(ErrorCode::kEntryNotFound));
}

// The connection settings given on the command line, as CreateBarbicanConfig and
// UpdateBarbicanConfig keys.
void AddConnectionSettings(const Options& o, VariantMap& m) {
  // The daemon keeps its own copy of the bundle; it is read here, with the caller's rights.
  if (!o.ca_file.empty()) {
    m["ca_pem"] = sdbus::Variant(ReadSmallFile("CA bundle", o.ca_file, kMaxCaBundleBytes));
  }
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

// enable and delete name one configuration: by --uuid or by --svm with --config-name.
std::string NamedKeyStore(KeyManagerClient& km, const Options& o) {
  if (o.uuid.empty() && o.name.empty()) {
    throw CtlExit("give --uuid or --svm with --config-name", kExitUsage);
  }
  return ResolveConfig(km, o);
}

}  // namespace

// ---- barbican ----

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
  PrintRows(o, km.ListBarbicanConfigs(filter),
            {"svm", "name", "uuid", "enabled", "state", "key_id"});
  return 0;
}

int CheckBarbican(KeyManagerClient& km, const Options& o) {
  VariantMap cfg =
      km.GetBarbicanConfig(ResolveConfig(km, o), {{"reachability", sdbus::Variant(true)}});
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
  VariantMap opts{{"kek_fd", sdbus::Variant(OpenForDaemon("KEK file", o.kek_file))}};
  const uint64_t n = km.RegisterVolumeSet(o.svm, o.dir, opts);
  // The daemon never removes a file it did not create: the KEK file is the caller's.
  if (!o.keep_kek && ::unlink(o.kek_file.c_str()) != 0) {
    std::cerr << "svmkeyctl: could not remove the KEK file " << o.kek_file << "\n";
  }
  if (o.json) {
    std::cout << nlohmann::json{{"count", n}}.dump(2) << "\n";
  } else {
    std::cout << "Registered " << n << " volumes\n";
  }
  return 0;
}

// Pages through the SVM's volumes: a page may hold fewer rows than asked for (the
// daemon bounds each reply's bytes), so it continues after the last uuid until a page
// comes back empty or --limit rows were read.
int ListVolumes(KeyManagerClient& km, const Options& o) {
  constexpr uint32_t kPageRows = 10000;  // the daemon's largest page
  std::vector<VariantMap> rows;
  std::string after = o.after;
  for (;;) {
    const size_t wanted = o.limit == 0 ? kPageRows : o.limit - rows.size();
    if (wanted == 0) break;
    VariantMap opts{
        {"limit", sdbus::Variant(static_cast<uint32_t>(std::min<size_t>(wanted, kPageRows)))}};
    if (!after.empty()) opts["after"] = sdbus::Variant(after);
    std::vector<VariantMap> page = km.ListVolumes(o.svm, opts);
    if (page.empty()) break;
    after = page.back().at("uuid").get<std::string>();
    for (auto& row : page) rows.push_back(std::move(row));
  }
  PrintRows(o, rows, {"name", "uuid", "key_generation", "key_manager", "path"});
  return 0;
}

int VerifyVolumes(KeyManagerClient& km, const Options& o) {
  return StartedJob(km, o, km.VerifyVolumes(o.svm, o.return_timeout.value_or(0)));
}

int RepairVolumes(KeyManagerClient& km, const Options& o) {
  VariantMap opts{{"return_timeout", sdbus::Variant(o.return_timeout.value_or(0))}};
  if (o.dry_run) opts["dry_run"] = sdbus::Variant(true);
  return StartedJob(km, o, km.RepairVolumes(o.svm, opts));
}

// ---- job ----

int ShowJob(KeyManagerClient& km, const Options& o) {
  PrintMap(o, km.GetJob(o.job),
           {"uuid", "description", "state", "code", "message", "phase", "volumes_done",
            "volumes_total", "start_time", "end_time", "cancelable", "started_by_uid"});
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

namespace {

// Job1 Cancel/Pause/Resume; the job's new state shows once it reached a batch boundary.
int ControlJobVerb(KeyManagerClient& km, const Options& o, const std::string& action) {
  km.ControlJob(o.job, action);
  std::cout << "Job " << o.job << ": " << action << " requested\n";
  return 0;
}

}  // namespace

int CancelJob(KeyManagerClient& km, const Options& o) { return ControlJobVerb(km, o, "cancel"); }
int PauseJob(KeyManagerClient& km, const Options& o) { return ControlJobVerb(km, o, "pause"); }
int ResumeJob(KeyManagerClient& km, const Options& o) { return ControlJobVerb(km, o, "resume"); }

}  // namespace svmkey::ctl
