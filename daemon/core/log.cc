#include "daemon/core/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace svmkey::daemon {
namespace {
std::atomic<int> g_max_level{static_cast<int>(LogLevel::kInfo)};
}

void SetLogLevel(LogLevel max_level) { g_max_level = static_cast<int>(max_level); }

void Log(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) > g_max_level.load()) return;
  std::string line = "<" + std::to_string(static_cast<int>(level)) + ">";
  line.reserve(line.size() + message.size() + 1);
  for (char c : message) line.push_back(c == '\n' ? ' ' : c);  // one record per line
  line.push_back('\n');
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

std::string Printable(const std::string& text, size_t max_len) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max_len; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (text.size() > max_len) out += "...";
  return out;
}

}  // namespace svmkey::daemon
