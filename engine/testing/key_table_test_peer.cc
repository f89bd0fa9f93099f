#include "engine/testing/key_table_test_peer.h"

#include <algorithm>

namespace svmkey {

Status KeyTableTestPeer::Export(KeyTable& table, KeyHandle handle,
                                std::array<uint8_t, kKeyBytes>* out) {
  std::lock_guard<std::mutex> lock(table.mu_);
  SVMKEY_RETURN_IF_ERROR(table.CheckLocked(handle));
  std::copy_n(table.KeyBytesLocked(handle.slot), kKeyBytes, out->begin());
  return Status::Ok();
}

const uint8_t* KeyTableTestPeer::SlotAddress(KeyTable& table, uint32_t slot) {
  return table.arena_.data() + slot * kKeyBytes;
}

Result<KeyHandle> KeyTableTestPeer::ImportRaw(KeyTable& table,
                                              const std::array<uint8_t, kKeyBytes>& key) {
  auto buf = SecureBuffer::Allocate(kKeyBytes);
  if (!buf.ok()) return buf.status();
  std::copy(key.begin(), key.end(), buf->data());
  return table.Import(*buf);
}

}  // namespace svmkey
