// libFuzzer target: the parsers of what Keystone and Barbican answer (token body,
// secret metadata, token expiry times). Whatever the bytes: a Status with a code from
// the table, never a crash, and messages that stay printable.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/barbican/keystone_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto token = svmkey::barbican::ParseTokenResponse(in, "https://ks.test/v3/auth/tokens");
  if (!token.ok() &&
      token.status().code() != svmkey::ErrorCode::kKeyValueStoreResponseUnparsable) {
    __builtin_trap();
  }
  svmkey::Status meta = svmkey::barbican::CheckSecretMetadata(in, "https://bb.test/v1/secrets/x");
  if (!meta.ok()) {
    if (meta.code() != svmkey::ErrorCode::kKeyValueStoreResponseUnparsable &&
        meta.code() != svmkey::ErrorCode::kKeyManagerBlocked) {
      __builtin_trap();
    }
    for (unsigned char c : meta.message()) {
      if (c < 0x20 || c >= 0x7f) __builtin_trap();  // must stay valid for the bus
    }
  }
  (void)svmkey::barbican::ParseKeystoneTime(in);
  (void)svmkey::barbican::MapKeystoneStatus(static_cast<long>(size), "x");
  (void)svmkey::barbican::MapBarbicanStatus(static_cast<long>(size), "x");
  return 0;
}
