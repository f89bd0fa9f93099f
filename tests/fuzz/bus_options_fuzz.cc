// libFuzzer target: the daemon's validation of bus arguments (OptionReader over a{sv}
// maps, UUID and name checks). The input is decoded into a map of typed values; every
// outcome must be a value or an sdbus::Error from the error table ("<code>: ..."),
// never a crash, another exception, or a message that is not valid for the bus.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "daemon/bus/options.h"
#include "daemon/core/log.h"
#include "engine/status.h"

namespace {

struct Reader {
  const uint8_t* p;
  size_t n;
  uint8_t Byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::string Str() {
    size_t len = Byte();
    if (len == 255) len = 5000;  // an over-long string now and then
    std::string s;
    for (size_t i = 0; i < len && n > 0; ++i) s.push_back(static_cast<char>(Byte()));
    return s;
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | Byte();
    return v;
  }
};

const char* kKeys[] = {"svm", "name", "timeout", "verify", "proxy_port", "limit", "after",
                       "application_cred_secret", "state", "kind", "dsid", "unknown"};

void CheckError(const sdbus::Error& e) {
  if (e.getName().rfind("org.svmkey.Error.", 0) != 0) __builtin_trap();
  if (svmkey::FindErrorByName(e.getName()) == nullptr) __builtin_trap();
  const std::string& m = e.getMessage();
  if (m.empty() || m[0] < '0' || m[0] > '9') __builtin_trap();
  for (unsigned char c : m) {
    if (c < 0x20 && c != '\n') __builtin_trap();
    if (c >= 0x80) __builtin_trap();  // echoed input is made printable ASCII
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r{data, size};
  svmkey::daemon::VariantMap map;
  const int entries = r.Byte() % 8;
  for (int i = 0; i < entries; ++i) {
    const uint8_t k = r.Byte();
    std::string key = k < 200 ? kKeys[k % (sizeof kKeys / sizeof *kKeys)] : r.Str();
    if (!key.empty() && (key.back() & 0x80)) key.pop_back();
    switch (r.Byte() % 7) {
      case 0: {
        std::string v = r.Str();
        // The bus only carries valid UTF-8 strings; keep the fuzzed ones ASCII.
        for (char& c : v) c = static_cast<char>(c & 0x7f);
        map[key] = sdbus::Variant(v);
        break;
      }
      case 1: map[key] = sdbus::Variant(static_cast<bool>(r.Byte() & 1)); break;
      case 2: map[key] = sdbus::Variant(static_cast<uint32_t>(r.U64())); break;
      case 3: map[key] = sdbus::Variant(static_cast<int32_t>(r.U64())); break;
      case 4: map[key] = sdbus::Variant(r.U64()); break;
      case 5: map[key] = sdbus::Variant(static_cast<int64_t>(r.U64())); break;
      case 6: map[key] = sdbus::Variant(static_cast<double>(r.U64())); break;
    }
  }
  try {
    svmkey::daemon::OptionReader o(map);
    (void)o.String("svm", 255);
    (void)o.String("name");
    (void)o.Unsigned("timeout", 1, 600);
    (void)o.Bool("verify");
    (void)o.Unsigned("proxy_port", 0, 65535);
    (void)o.Unsigned("limit", 1, 10000);
    (void)o.Unsigned("dsid", 1, UINT64_MAX);
    (void)o.String("state", 16);
    (void)o.SecretFd("application_cred_secret");
    o.Finish();
  } catch (const sdbus::Error& e) {
    CheckError(e);
  }
  const std::string text = r.Str();
  std::string ascii = text;
  for (char& c : ascii) c = static_cast<char>(c & 0x7f);
  try {
    (void)svmkey::daemon::RequireUuid(ascii, "uuid");
  } catch (const sdbus::Error& e) {
    CheckError(e);
  }
  try {
    (void)svmkey::daemon::RequireName(text, "name");
  } catch (const sdbus::Error& e) {
    CheckError(e);
  }
  const std::string shown = svmkey::daemon::Printable(text, 64);
  for (unsigned char c : shown) {
    if (c < 0x20 || c >= 0x7f) __builtin_trap();
  }
  return 0;
}
