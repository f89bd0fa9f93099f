// Test-only access to key bytes. Never linked into svmkeyd or the tools: tests use it
// to prove that keys are what they should be and that secrets leave no trace.
#pragma once

#include <array>

#include "engine/key_table.h"

namespace svmkey {

class KeyTableTestPeer {
 public:
  // Copies the key's bytes out (tests only).
  static Status Export(KeyTable& table, KeyHandle handle, std::array<uint8_t, kKeyBytes>* out);
  // Address of the arena slot (to check that release zeroed it).
  static const uint8_t* SlotAddress(KeyTable& table, uint32_t slot);
  // Imports raw bytes as a key (tests only; production imports from SecureBuffer).
  static Result<KeyHandle> ImportRaw(KeyTable& table, const std::array<uint8_t, kKeyBytes>& key);
};

}  // namespace svmkey
