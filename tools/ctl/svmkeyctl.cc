// svmkeyctl: the ONTAP "security key-manager" verbs over D-Bus (org.svmkey.KeyManager1,
// docs/ARCHITECTURE.md §11).
//
//   svmkeyctl [--json] [--address ADDR] <group> <verb> [options]
//
// Exit status: 0 success; 1 the operation failed (the ONTAP code is printed); 2 usage.
// Secrets (application credential secret, proxy password) are never taken from the
// command line: see tools/ctl/secret_input.h.
//
// Each verb group (barbican, keystore, svm, volume, job) declares its verbs and options
// in one Add* function here; what a verb does is a function in tools/ctl/verbs.h.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "engine/status.h"
#include "tools/ctl/ctl_exit.h"
#include "tools/ctl/key_manager_client.h"
#include "tools/ctl/verbs.h"
#include "version.h"

namespace svmkey::ctl {
namespace {

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
  void AddBarbicanUpdateVerbs(CLI::App* g);
  void AddBarbicanJobVerbs(CLI::App* g);
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
      "  svmkeyctl barbican rekey-internal --svm vs1\n"
      "Files (--*-file, --ca-file, --kek-file) are opened by svmkeyctl with your rights and\n"
      "passed to svmkeyd as descriptors or bytes; svmkeyd opens no path itself.\n");
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
  s->add_option("--ca-file", o_.ca_file,
                "PEM CA bundle for Keystone and Barbican (read here, sent as ca_pem bytes)");
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
  auto* g =
      AddGroup("barbican", "Barbican KMS configurations (security key-manager external barbican)");
  auto* s = AddVerb(
      g, "create-config",
      "Create an inactive Barbican configuration for an SVM.\n"
      "Example: svmkeyctl barbican create-config --svm vs1 --config-name cfg1 \\\n"
      "  --key-id https://bb:9311/v1/secrets/<uuid> --keystone-url https://ks:5000/v3 \\\n"
      "  --application-cred-id ID --application-cred-secret-file secret.txt --ca-file ca.pem",
      CreateBarbicanConfig);
  AddSvmOption(s, true);
  s->add_option("--config-name", o_.name, "Configuration name")->required();
  s->add_option("--key-id", o_.key_id, "HTTPS URL of the Barbican secret (the KEK)")->required();
  s->add_option("--keystone-url", o_.keystone_url, "HTTPS URL of Keystone v3")->required();
  s->add_option("--application-cred-id", o_.cred_id, "Keystone application credential id")
      ->required();
  s->add_option("--application-cred-secret-file", o_.secret_file,
                "Read the secret from a file ('-': stdin); default: prompt");
  AddSettingOptions(s);

  s = AddVerb(g, "show",
              "Show Barbican configurations (all, one SVM's, or one).\n"
              "Example: svmkeyctl barbican show --svm vs1",
              ShowBarbicanConfigs);
  AddConfigOptions(s);
  s->add_flag("--reachability", o_.reachability, "Also check that Barbican answers (advanced)");

  s = AddVerb(g, "check",
              "Check that the SVM's Barbican key is reachable (barbican_reachability).\n"
              "Example: svmkeyctl barbican check --svm vs1",
              CheckBarbican);
  AddConfigOptions(s);
  AddBarbicanUpdateVerbs(g);
  AddBarbicanJobVerbs(g);
}

void CommandLine::AddBarbicanUpdateVerbs(CLI::App* g) {
  auto* s = AddVerb(
      g, "update-credentials",
      "Replace the application credential (id and secret together).\n"
      "Example: svmkeyctl barbican update-credentials --svm vs1 --application-cred-id NEWID",
      UpdateBarbicanCredentials);
  AddConfigOptions(s);
  s->add_option("--application-cred-id", o_.cred_id, "New application credential id")->required();
  s->add_option("--application-cred-secret-file", o_.secret_file,
                "Read the secret from a file ('-': stdin); default: prompt");

  s = AddVerb(g, "update-config",
              "Change connection settings of a configuration.\n"
              "Example: svmkeyctl barbican update-config --svm vs1 --timeout 30",
              UpdateBarbicanConfig);
  AddConfigOptions(s);
  AddSettingOptions(s);
}

void CommandLine::AddBarbicanJobVerbs(CLI::App* g) {
  auto* s = AddVerb(g, "rekey-internal",
                    "Rotate the SVM's internal key (SVM-KEK) and rewrap every volume key;\n"
                    "follows the job with a progress bar unless --no-wait.\n"
                    "Example: svmkeyctl barbican rekey-internal --svm vs1",
                    RekeyInternal);
  AddConfigOptions(s);
  AddWaitOptions(s);

  s = AddVerb(g, "restore",
              "Reinstall the SVM's active SVM-KEK from the table into the key table.\n"
              "Example: svmkeyctl barbican restore --svm vs1",
              RestoreSvmKek);
  AddConfigOptions(s);
  AddWaitOptions(s);
}

void CommandLine::AddKeystoreVerbs() {
  auto* g = AddGroup("keystore", "Key stores (security key-manager keystore)");
  AddConfigOptions(
      AddVerb(g, "enable",
              "Enable a configuration, or switch the SVM to it (rewraps the SVM-KEK).\n"
              "Example: svmkeyctl keystore enable --svm vs1 --config-name cfg1",
              EnableKeyStore));
  AddConfigOptions(AddVerb(g, "delete",
                           "Delete an inactive configuration.\n"
                           "Example: svmkeyctl keystore delete --svm vs1 --config-name old",
                           DeleteKeyStore));
  AddSvmOption(AddVerb(g, "show", "List key stores.\nExample: svmkeyctl keystore show --svm vs1",
                       ShowKeyStores),
               false);
}

void CommandLine::AddSvmVerbs() {
  auto* g = AddGroup("svm", "SVMs");
  auto* s = AddVerb(g, "create", "Create an SVM.\nExample: svmkeyctl svm create vs1", CreateSvm);
  s->add_option("name", o_.name, "SVM name")->required();
  s->add_option("--kind", o_.kind, "data (default) or admin");
  AddVerb(g, "show", "List SVMs with their SVM-KEK generation.\nExample: svmkeyctl svm show",
          ShowSvms);
}

void CommandLine::AddVolumeVerbs() {
  auto* g = AddGroup("volume", "Encrypted volumes");
  auto* s = AddVerb(g, "create",
                    "Create an encrypted volume (new VDEK under the SVM-KEK).\n"
                    "Example: svmkeyctl volume create --svm vs1 --name vol1",
                    CreateVolume);
  AddSvmOption(s, true);
  s->add_option("--name", o_.name, "Volume name")->required();
  s->add_option("--dsid", o_.dsid, "Data-set id (default: random)");

  s = AddVerb(
      g, "register-set",
      "Adopt a volume set made by svmkey-volset (SVM without SVM-KEK).\n"
      "Example: svmkeyctl volume register-set --svm vs1 --dir /srv/set --kek-file /srv/set/kek.bin",
      RegisterVolumeSet);
  AddSvmOption(s, true);
  s->add_option("--dir", o_.dir, "Volume set directory (absolute)")->required();
  s->add_option("--kek-file", o_.kek_file,
                "The set's SVM-KEK file (opened here, passed as kek_fd; svmkeyctl removes it "
                "after a complete registration)")
      ->required();
  s->add_flag("--keep-kek-file", o_.keep_kek, "Do not remove the KEK file");

  s = AddVerb(
      g, "list",
      "List volumes of an SVM (paged).\nExample: svmkeyctl volume list --svm vs1 --limit 20",
      ListVolumes);
  AddSvmOption(s, true);
  s->add_option("--limit", o_.limit, "At most this many in all (0: every volume, in pages)")
      ->capture_default_str();
  s->add_option("--after", o_.after, "Continue after this volume uuid");

  s = AddVerb(g, "verify",
              "Check that every volume key of the SVM opens under the active SVM-KEK.\n"
              "Example: svmkeyctl volume verify --svm vs1",
              VerifyVolumes);
  AddSvmOption(s, true);
  AddWaitOptions(s);

  s = AddVerb(g, "repair",
              "Rewrite each damaged volume metadata file from the table's copy of its key.\n"
              "Example: svmkeyctl volume repair --svm vs1 --dry-run",
              RepairVolumes);
  AddSvmOption(s, true);
  AddWaitOptions(s);
  s->add_flag("--dry-run", o_.dry_run, "Report what would be repaired; write nothing");
}

void CommandLine::AddJobVerbs() {
  auto* g = AddGroup("job", "Jobs");
  auto* s = AddVerb(g, "show", "Show one job.\nExample: svmkeyctl job show <uuid>", ShowJob);
  s->add_option("uuid", o_.job, "Job uuid")->required();

  s = AddVerb(g, "list", "List recent jobs.\nExample: svmkeyctl job list --state failure",
              ListJobs);
  s->add_option("--state", o_.state_filter, "queued, running, paused, success or failure");
  AddSvmOption(s, false);

  s = AddVerb(
      g, "watch",
      "Follow a job with a progress bar until it ends.\nExample: svmkeyctl job watch <uuid>",
      WatchJobVerb);
  s->add_option("uuid", o_.job, "Job uuid")->required();

  // Job control (Job1 Cancel, Pause, Resume): rekey-internal and verify jobs.
  s = AddVerb(g, "cancel",
              "Cancel a job at its next batch boundary (a rekey: before its commit only; both "
              "SVM-KEK generations stay and a rerun completes the rotation).\n"
              "Example: svmkeyctl job cancel <uuid>",
              CancelJob);
  s->add_option("uuid", o_.job, "Job uuid")->required();
  s = AddVerb(g, "pause",
              "Pause a job at its next batch boundary; it stays paused across restarts.\n"
              "Example: svmkeyctl job pause <uuid>",
              PauseJob);
  s->add_option("uuid", o_.job, "Job uuid")->required();
  s = AddVerb(g, "resume",
              "Resume a paused job from where it stopped.\nExample: svmkeyctl job resume <uuid>",
              ResumeJob);
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
