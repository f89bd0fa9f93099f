#include "engine/secure_memory.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace svmkey {
namespace {

// Reads the VmFlags of the mapping that contains `addr` from /proc/self/smaps.
std::string VmFlagsOf(const void* addr) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  const auto a = reinterpret_cast<uintptr_t>(addr);
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) == 3 &&
        (perms[3] == 'p' || perms[3] == 's')) {
      inside = a >= lo && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

TEST(SecureBufferTest, IsZeroedLockedAndNotDumpable) {
  auto buf = SecureBuffer::Allocate(64);
  ASSERT_TRUE(buf.ok()) << buf.status().ToString();
  for (size_t i = 0; i < buf->size(); ++i) ASSERT_EQ(buf->data()[i], 0);
  const std::string flags = VmFlagsOf(buf->data());
  ASSERT_FALSE(flags.empty());
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer replaces mlock(2) with a no-op, so an ASan build cannot show locked
  // pages; the regular build (the same test, suite unit) checks them.
  EXPECT_EQ(flags.find(" lo"), std::string::npos) << "ASan stopped ignoring mlock: " << flags;
#else
  EXPECT_NE(flags.find(" lo"), std::string::npos) << flags;  // mlock'ed
#endif
  EXPECT_NE(flags.find(" dd"), std::string::npos) << flags;  // MADV_DONTDUMP
}

TEST(SecureBufferTest, WipeZeroesAndMoveTransfersOwnership) {
  auto buf = SecureBuffer::Allocate(32);
  ASSERT_TRUE(buf.ok());
  std::memset(buf->data(), 0xA5, 32);
  SecureBuffer moved = std::move(buf).value();
  EXPECT_EQ(moved.size(), 32u);
  EXPECT_EQ(moved.data()[31], 0xA5);
  moved.Wipe();
  for (size_t i = 0; i < 32; ++i) EXPECT_EQ(moved.data()[i], 0);
}

TEST(SecureBufferTest, HugeAllocationFailsWithACode) {
  // Far beyond RLIMIT_MEMLOCK: must fail cleanly, not crash.
  auto buf = SecureBuffer::Allocate(size_t{1} << 40);
  ASSERT_FALSE(buf.ok());
  EXPECT_EQ(buf.status().code(), ErrorCode::kResourceLimit);
}

TEST(SecureBufferTest, ConstantTimeEqual) {
  const uint8_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4}, c[4] = {1, 2, 3, 5};
  EXPECT_TRUE(ConstantTimeEqual(a, b, 4));
  EXPECT_FALSE(ConstantTimeEqual(a, c, 4));
}

}  // namespace
}  // namespace svmkey
