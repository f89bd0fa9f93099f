#include "tests/daemon/barbican/kms_environment.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "tests/support/command.h"

namespace svmkey::barbican::testing {
namespace {

using ::svmkey::testing::Quote;
using ::svmkey::testing::Sh;

KmsEnvironment* const g_env =
    static_cast<KmsEnvironment*>(::testing::AddGlobalTestEnvironment(new KmsEnvironment));

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::map<std::string, std::string> ParseKeyValues(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

KmsEnvironment& KmsEnvironment::Get() { return *g_env; }

std::string KmsEnvironment::ToolPath(const std::string& name) {
  return std::string(SVMKEY_SOURCE_ROOT) + "/tools/" + name;
}

void KmsEnvironment::SetUp() {
  std::string env_file;
  if (const char* given = std::getenv("SVMKEY_KMS_ENV"); given != nullptr && *given != '\0') {
    env_file = given;
    std::fprintf(stderr, "[kms] using the services of %s (SVMKEY_KMS_ENV)\n", env_file.c_str());
  } else {
    char tmpl[] = "/tmp/svmkey-kms-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      error_ = "mkdtemp failed";
      ADD_FAILURE() << error_;
      return;
    }
    state_dir_ = tmpl;
    const int kport = FreeLoopbackPort();
    int bport = FreeLoopbackPort();
    while (bport == kport) bport = FreeLoopbackPort();
    started_here_ = true;
    // If this process dies without TearDown (a meson timeout kills it), the services
    // must not outlive it.
    const std::string watchdog = "setsid sh -c 'while kill -0 " + std::to_string(getpid()) +
                                 " 2>/dev/null; do sleep 2; done; " +
                                 Quote(ToolPath("barbican-down")) + " " +
                                 Quote(state_dir_) + "' </dev/null >/dev/null 2>&1 &";
    if (std::system(watchdog.c_str()) != 0) std::fprintf(stderr, "[kms] no watchdog\n");
    const std::string cmd = "SKIP_INSTALL=1 " + Quote(ToolPath("barbican-up")) + " " +
                            Quote(state_dir_) + " " + std::to_string(kport) + " " +
                            std::to_string(bport) + " >/dev/null 2>" +
                            Quote(state_dir_ + ".up.log");
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = Sh(cmd, std::chrono::seconds(900)).status;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "[kms] tools/barbican-up %s on ports %d/%d: exit %d after %.1f s\n",
                 state_dir_.c_str(), kport, bport, rc, secs);
    if (rc != 0) {
      error_ = "tools/barbican-up failed (exit " + std::to_string(rc) +
               "): " + ReadText(state_dir_ + ".up.log");
      ADD_FAILURE() << error_;
      return;
    }
    env_file = state_dir_ + "/env";
  }
  vars_ = ParseKeyValues(ReadText(env_file));
  for (const char* key : {"KEYSTONE_URL", "BARBICAN_URL", "BARBICAN_KEY_ID", "APP_CRED_ID",
                          "APP_CRED_SECRET", "CA_FILE", "KEK_FILE", "STATE_DIR", "TLS_CERT",
                          "TLS_KEY", "BARBICAN_PORT", "KEYSTONE_PORT"}) {
    if (vars_[key].empty()) {
      error_ = "env file " + env_file + " has no " + key;
      ADD_FAILURE() << error_;
      return;
    }
  }
  ready_ = true;
}

void KmsEnvironment::TearDown() {
  if (!started_here_) return;
  const auto down = Sh(Quote(ToolPath("barbican-down")) + " " + Quote(state_dir_) + " 2>&1",
                       std::chrono::seconds(300));
  EXPECT_EQ(down.status, 0) << "barbican-down: " << down.out;
  std::error_code ec;
  std::filesystem::remove_all(state_dir_, ec);
  std::filesystem::remove(state_dir_ + ".up.log", ec);
}

std::string KmsEnvironment::Var(const std::string& key) const {
  auto it = vars_.find(key);
  if (it == vars_.end() || it->second.empty()) {
    ADD_FAILURE() << "KMS env has no " << key;
    return "";
  }
  return it->second;
}

BarbicanConfig KmsEnvironment::Config() const {
  BarbicanConfig c;
  c.keystone_url = Var("KEYSTONE_URL");
  c.key_id = Var("BARBICAN_KEY_ID");
  c.application_cred_id = Var("APP_CRED_ID");
  auto secret = SecretFromString(Var("APP_CRED_SECRET"));
  EXPECT_TRUE(secret.ok()) << secret.status().ToString();
  if (secret.ok()) c.application_cred_secret = std::move(secret).value();
  c.ca_file = Var("CA_FILE");
  c.timeout_seconds = 30;  // a loaded shared machine; the timeout test sets its own
  return c;
}

std::map<std::string, std::string> KmsEnvironment::Admin(
    const std::vector<std::string>& args) const {
  std::string cmd = Quote(ToolPath("barbican-admin")) + " " + Quote(Var("STATE_DIR"));
  for (const auto& a : args) cmd += " " + Quote(a);
  const auto admin = Sh(cmd, std::chrono::seconds(300));
  EXPECT_EQ(admin.status, 0) << "barbican-admin " << (args.empty() ? "" : args[0])
                             << " failed: " << admin.err;
  return ParseKeyValues(admin.out);
}

}  // namespace svmkey::barbican::testing
