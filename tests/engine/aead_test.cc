#include "engine/aead.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <unordered_set>

namespace svmkey {
namespace {

TEST(AeadContextTest, SealOpenManyWithOneKeySchedule) {
  auto t = KeyTable::Create(4);
  ASSERT_TRUE(t.ok());
  auto key = (*t)->Generate();
  auto ctx = AeadContext::Create(**t, *key);
  ASSERT_TRUE(ctx.ok());
  NoncePool nonces(16);
  const std::array<uint8_t, 3> aad = {1, 2, 3};
  for (int i = 0; i < 100; ++i) {
    uint8_t pt[32], ct[32], tag[16], back[32];
    std::memset(pt, i, sizeof pt);
    const uint8_t* nonce = nonces.Next();
    uint8_t n[12];
    std::memcpy(n, nonce, 12);
    ASSERT_TRUE(ctx->Seal(n, aad, pt, 32, ct, tag).ok());
    EXPECT_NE(0, std::memcmp(pt, ct, 32));
    ASSERT_TRUE(ctx->Open(n, aad, ct, 32, tag, back).ok());
    EXPECT_EQ(0, std::memcmp(pt, back, 32));
    tag[0] ^= 1;
    EXPECT_EQ(ctx->Open(n, aad, ct, 32, tag, back).code(), ErrorCode::kDecryptFailed);
    const uint8_t zero[32] = {};
    EXPECT_EQ(0, std::memcmp(back, zero, 32)) << "plaintext not cleared on failure";
  }
}

TEST(AeadContextTest, KnownAnswerNistGcmVector) {
  // NIST GCM test case 14 (AES-256, zero key, zero IV, 16 zero bytes of plaintext).
  std::array<uint8_t, kKeyBytes> zero_key{};
  auto buf = SecureBuffer::Allocate(kKeyBytes);
  ASSERT_TRUE(buf.ok());
  std::memcpy(buf->data(), zero_key.data(), kKeyBytes);
  auto t = KeyTable::Create(1);
  auto key = (*t)->Import(*buf);
  ASSERT_TRUE(key.ok());
  auto ctx = AeadContext::Create(**t, *key);
  ASSERT_TRUE(ctx.ok());
  uint8_t nonce[12] = {}, pt[16] = {}, ct[16], tag[16];
  ASSERT_TRUE(ctx->Seal(nonce, {}, pt, 16, ct, tag).ok());
  const uint8_t want_ct[16] = {0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e,
                               0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3, 0x9d, 0x18};
  const uint8_t want_tag[16] = {0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99, 0x6b, 0xf0,
                                0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19};
  EXPECT_EQ(0, std::memcmp(ct, want_ct, 16));
  EXPECT_EQ(0, std::memcmp(tag, want_tag, 16));
}

// 10^6 nonces from the pool (as 10^6 wraps would draw them): none repeats.
TEST(NoncePoolTest, MillionNoncesNoRepeat) {
  NoncePool pool;
  std::unordered_set<std::string> seen;
  seen.reserve(1'000'000);
  for (int i = 0; i < 1'000'000; ++i) {
    const uint8_t* n = pool.Next();
    ASSERT_TRUE(seen.emplace(reinterpret_cast<const char*>(n), kNonceBytes).second) << i;
  }
}

// And through the public wrap path: fresh nonce on every wrap of the same key.
TEST(KeyTableWrapTest, RepeatedWrapsUseFreshNonces) {
  auto t = KeyTable::Create(2);
  auto kek = (*t)->Generate();
  auto key = (*t)->Generate();
  std::unordered_set<std::string> nonces, cts;
  for (int i = 0; i < 10'000; ++i) {
    auto w = (*t)->Wrap(*kek, *key, {});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(nonces.emplace(reinterpret_cast<const char*>(w->nonce.data()), 12).second);
    ASSERT_TRUE(cts.emplace(reinterpret_cast<const char*>(w->ciphertext.data()), 32).second);
  }
}

}  // namespace
}  // namespace svmkey
