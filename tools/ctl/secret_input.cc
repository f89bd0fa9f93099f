#include "tools/ctl/secret_input.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "tools/ctl/ctl_exit.h"

namespace svmkey::ctl {
namespace {

void Wipe(char* p, size_t n) {
  volatile char* v = p;
  for (size_t i = 0; i < n; ++i) v[i] = 0;
}

std::string ReadSecretFile(const std::string& what, const std::string& file) {
  std::string secret;
  if (file == "-") {
    std::getline(std::cin, secret);
    return secret;
  }
  std::ifstream in(file);
  if (!in) throw CtlExit("cannot read " + what + " file " + file, kExitUsage);
  std::getline(in, secret);
  return secret;
}

std::string PromptSecret(const std::string& what) {
  FILE* tty = std::fopen("/dev/tty", "r+");
  if (tty == nullptr) {
    throw CtlExit(what + ": no terminal to prompt on; use the --*-file option", kExitUsage);
  }
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
  std::string secret;
  char buf[4097];
  if (std::fgets(buf, sizeof buf, tty) != nullptr) secret = buf;
  if (have_tty) ::tcsetattr(fd, TCSAFLUSH, &old);
  std::fprintf(tty, "\n");
  std::fclose(tty);
  Wipe(buf, sizeof buf);
  return secret;
}

}  // namespace

sdbus::UnixFd SecretPipe(const std::string& what, const std::string& file) {
  std::string secret = file.empty() ? PromptSecret(what) : ReadSecretFile(what, file);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) throw CtlExit(what + " is empty", kExitUsage);
  int fds[2];
  if (::pipe(fds) != 0) {
    Wipe(secret.data(), secret.size());
    throw CtlExit("pipe failed");
  }
  const ssize_t n = ::write(fds[1], secret.data(), secret.size());
  ::close(fds[1]);
  Wipe(secret.data(), secret.size());
  if (n != static_cast<ssize_t>(secret.size())) {
    ::close(fds[0]);
    throw CtlExit("cannot pass the " + what);
  }
  sdbus::UnixFd out(fds[0]);
  ::close(fds[0]);  // UnixFd dup'ed it
  return out;
}

sdbus::UnixFd OpenForDaemon(const std::string& what, const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw CtlExit("cannot open " + what + " " + file, kExitUsage);
  return sdbus::UnixFd(fd, sdbus::adopt_fd);
}

std::vector<uint8_t> ReadSmallFile(const std::string& what, const std::string& file,
                                   size_t max_bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CtlExit("cannot read " + what + " " + file, kExitUsage);
  std::vector<uint8_t> bytes;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.insert(bytes.end(), buf, buf + in.gcount());
    if (bytes.size() > max_bytes) {
      throw CtlExit(what + " " + file + " is larger than " + std::to_string(max_bytes) + " bytes",
                    kExitUsage);
    }
  }
  return bytes;
}

}  // namespace svmkey::ctl
