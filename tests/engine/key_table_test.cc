#include "engine/key_table.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "engine/testing/key_table_test_peer.h"

namespace svmkey {
namespace {

std::unique_ptr<KeyTable> NewTable(size_t capacity = 8) {
  auto t = KeyTable::Create(capacity);
  EXPECT_TRUE(t.ok());
  return std::move(t).value();
}

std::array<uint8_t, kKeyBytes> Export(KeyTable& t, KeyHandle h) {
  std::array<uint8_t, kKeyBytes> out{};
  EXPECT_TRUE(KeyTableTestPeer::Export(t, h, &out).ok());
  return out;
}

const std::array<uint8_t, 5> kAad = {'s', 'v', 'm', '-', '1'};

TEST(KeyTableTest, GeneratesDistinctRandomKeys) {
  auto t = NewTable();
  auto a = t->Generate();
  auto b = t->Generate();
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(Export(*t, *a), Export(*t, *b));
  EXPECT_NE(Export(*t, *a), (std::array<uint8_t, kKeyBytes>{}));
  EXPECT_EQ(t->size(), 2u);
}

TEST(KeyTableTest, WrapUnwrapRoundTrip) {
  auto t = NewTable();
  auto kek = t->Generate();
  auto key = t->Generate();
  auto wrapped = t->Wrap(*kek, *key, kAad);
  ASSERT_TRUE(wrapped.ok());
  // The wrapped form does not contain the key.
  EXPECT_NE(0, std::memcmp(wrapped->ciphertext.data(), Export(*t, *key).data(), kKeyBytes));
  auto back = t->Unwrap(*kek, *wrapped, kAad);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(Export(*t, *back), Export(*t, *key));
}

TEST(KeyTableTest, UnwrapFailsWithWrongKeyAadOrTamperedBlob) {
  auto t = NewTable();
  auto kek = t->Generate();
  auto other = t->Generate();
  auto key = t->Generate();
  auto wrapped = t->Wrap(*kek, *key, kAad);
  ASSERT_TRUE(wrapped.ok());
  const std::array<uint8_t, 5> other_aad = {'s', 'v', 'm', '-', '2'};
  EXPECT_EQ(t->Unwrap(*other, *wrapped, kAad).status().code(), ErrorCode::kDecryptFailed);
  EXPECT_EQ(t->Unwrap(*kek, *wrapped, other_aad).status().code(), ErrorCode::kDecryptFailed);
  for (size_t byte = 0; byte < WrappedKey::kSerializedSize; ++byte) {
    auto bytes = wrapped->Serialize();
    bytes[byte] ^= 0x01;
    auto tampered = WrappedKey::Deserialize(bytes);
    ASSERT_TRUE(tampered.ok());
    EXPECT_EQ(t->Unwrap(*kek, *tampered, kAad).status().code(), ErrorCode::kDecryptFailed)
        << "byte " << byte;
  }
  // Failed unwraps leave no entries behind.
  EXPECT_EQ(t->size(), 3u);
}

TEST(KeyTableTest, SerializeDeserializeRoundTripAndSizeCheck) {
  auto t = NewTable();
  auto kek = t->Generate();
  auto wrapped = t->Wrap(*kek, *kek, kAad);
  ASSERT_TRUE(wrapped.ok());
  auto bytes = wrapped->Serialize();
  auto back = WrappedKey::Deserialize(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->Serialize(), bytes);
  EXPECT_EQ(WrappedKey::Deserialize(std::span<const uint8_t>(bytes).first(59)).status().code(),
            ErrorCode::kInvalidEncryptionBlob);
}

TEST(KeyTableTest, ReleaseZeroesMemoryAndInvalidatesHandle) {
  auto t = NewTable();
  auto key = t->Generate();
  ASSERT_TRUE(key.ok());
  const auto before = Export(*t, *key);
  const uint8_t* slot = KeyTableTestPeer::SlotAddress(*t, key->slot);
  ASSERT_EQ(0, std::memcmp(slot, before.data(), kKeyBytes));
  ASSERT_TRUE(t->Release(*key).ok());
  const std::array<uint8_t, kKeyBytes> zero{};
  EXPECT_EQ(0, std::memcmp(slot, zero.data(), kKeyBytes));
  EXPECT_EQ(t->Release(*key).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(t->Wrap(*key, *key, kAad).status().code(), ErrorCode::kEncryptFailed);
  // The slot is reused, but the old handle does not reach the new key.
  auto fresh = t->Generate();
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->slot, key->slot);
  EXPECT_NE(fresh->serial, key->serial);
  std::array<uint8_t, kKeyBytes> out{};
  EXPECT_FALSE(KeyTableTestPeer::Export(*t, *key, &out).ok());
}

TEST(KeyTableTest, FullTableAndForeignHandlesAreRefused) {
  auto t = NewTable(2);
  ASSERT_TRUE(t->Generate().ok());
  ASSERT_TRUE(t->Generate().ok());
  EXPECT_EQ(t->Generate().status().code(), ErrorCode::kSvmKeyGenerationFailed);
  EXPECT_EQ(t->Release(KeyHandle{}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(t->Release(KeyHandle{7, 1}).code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(KeyTable::Create(0).ok());
}

TEST(KeyTableTest, ImportCopiesFromSecureBuffer) {
  auto t = NewTable();
  auto buf = SecureBuffer::Allocate(kKeyBytes);
  ASSERT_TRUE(buf.ok());
  for (size_t i = 0; i < kKeyBytes; ++i) buf->data()[i] = static_cast<uint8_t>(i);
  auto h = t->Import(*buf);
  ASSERT_TRUE(h.ok());
  auto bytes = Export(*t, *h);
  for (size_t i = 0; i < kKeyBytes; ++i) EXPECT_EQ(bytes[i], i);
  auto short_buf = SecureBuffer::Allocate(16);
  ASSERT_TRUE(short_buf.ok());
  EXPECT_EQ(t->Import(*short_buf).status().code(), ErrorCode::kVolumeKeyInvalid);
}

}  // namespace
}  // namespace svmkey
