// Logging for svmkeyd: one line per message on stderr with a "<N>" syslog priority prefix,
// which journald turns into the priority (SyslogLevelPrefix=yes is systemd's default).
//
// Never pass key bytes, tokens or credential secrets: log identifiers (uuids, names,
// paths), counts and codes only. Thread-safe: each line is one write(2).
#pragma once

#include <string>
#include <string_view>

namespace svmkey::daemon {

enum class LogLevel : int { kErr = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

void Log(LogLevel level, std::string_view message);
// Messages above this level are dropped (default kInfo; SVMKEYD_DEBUG=1 sets kDebug).
void SetLogLevel(LogLevel max_level);

inline void LogErr(std::string_view m) { Log(LogLevel::kErr, m); }
inline void LogWarning(std::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogNotice(std::string_view m) { Log(LogLevel::kNotice, m); }
inline void LogInfo(std::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogDebug(std::string_view m) { Log(LogLevel::kDebug, m); }

// At most max_len bytes of `text` with every byte outside printable ASCII as '?' (for
// echoing caller input in messages and logs: bus strings must be valid UTF-8).
std::string Printable(const std::string& text, size_t max_len = 64);

}  // namespace svmkey::daemon
