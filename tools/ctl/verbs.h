// The verbs of svmkeyctl, one function each: the work a verb does with the connected
// client once the command line has parsed (svmkeyctl.cc declares the command line).
// Every function returns the exit status (0 success, 1 the operation failed) or throws
// CtlExit or sdbus::Error; all run on svmkeyctl's one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tools/ctl/key_manager_client.h"

namespace svmkey::ctl {

// What the command line said. One set of holders serves every verb: only one verb runs.
struct Options {
  bool json = false;
  bool quiet = false;
  std::string address;

  std::string svm, name, uuid, key_id, keystone_url, cred_id, secret_file, kind, dir, kek_file,
      state_filter, job, after;
  uint32_t limit = 0;  // volume list: rows in all, 0 = every row
  std::optional<uint64_t> dsid;
  bool reachability = false, keep_kek = false;
  bool dry_run = false;  // volume repair
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

// barbican
int CreateBarbicanConfig(KeyManagerClient& km, const Options& o);
int ShowBarbicanConfigs(KeyManagerClient& km, const Options& o);
int CheckBarbican(KeyManagerClient& km, const Options& o);
int UpdateBarbicanCredentials(KeyManagerClient& km, const Options& o);
int UpdateBarbicanConfig(KeyManagerClient& km, const Options& o);
int RekeyInternal(KeyManagerClient& km, const Options& o);
int RestoreSvmKek(KeyManagerClient& km, const Options& o);
// keystore
int EnableKeyStore(KeyManagerClient& km, const Options& o);
int DeleteKeyStore(KeyManagerClient& km, const Options& o);
int ShowKeyStores(KeyManagerClient& km, const Options& o);
// svm
int CreateSvm(KeyManagerClient& km, const Options& o);
int ShowSvms(KeyManagerClient& km, const Options& o);
// volume
int CreateVolume(KeyManagerClient& km, const Options& o);
int RegisterVolumeSet(KeyManagerClient& km, const Options& o);
int ListVolumes(KeyManagerClient& km, const Options& o);
int VerifyVolumes(KeyManagerClient& km, const Options& o);
int RepairVolumes(KeyManagerClient& km, const Options& o);
// job
int ShowJob(KeyManagerClient& km, const Options& o);
int ListJobs(KeyManagerClient& km, const Options& o);
int WatchJobVerb(KeyManagerClient& km, const Options& o);
int CancelJob(KeyManagerClient& km, const Options& o);
int PauseJob(KeyManagerClient& km, const Options& o);
int ResumeJob(KeyManagerClient& km, const Options& o);

}  // namespace svmkey::ctl
