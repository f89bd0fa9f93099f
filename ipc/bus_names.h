// The names both ends of the bus agree on: the daemon, svmkeyctl and the tests include
// this header instead of spelling them. The interfaces themselves are defined by
// ipc/org.svmkey.KeyManager1.xml and ipc/org.svmkey.Job1.xml.
#pragma once

#include <string>
#include <string_view>

namespace svmkey::ipc {

inline constexpr const char* kBusName = "org.svmkey.KeyManager1";
inline constexpr const char* kManagerPath = "/org/svmkey/KeyManager1";
inline constexpr const char* kManagerInterface = "org.svmkey.KeyManager1";
inline constexpr const char* kJobInterface = "org.svmkey.Job1";
// Job objects live at kJobPathPrefix + the job uuid with '-' replaced by '_' (a D-Bus
// object path allows only [A-Za-z0-9_] in an element).
inline constexpr const char* kJobPathPrefix = "/org/svmkey/KeyManager1/job/";

inline std::string JobObjectPath(std::string_view job_uuid) {
  std::string path(kJobPathPrefix);
  for (char c : job_uuid) path.push_back(c == '-' ? '_' : c);
  return path;
}

}  // namespace svmkey::ipc
