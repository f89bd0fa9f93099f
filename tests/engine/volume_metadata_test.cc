#include "engine/volume_metadata.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <random>
#include <vector>

namespace svmkey {
namespace {

VolumeIdentity TestIdentity() {
  VolumeIdentity id;
  id.volume = *Uuid::Parse("11111111-2222-4333-8444-555555555555");
  id.svm = *Uuid::Parse("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
  id.dsid = 1027;
  return id;
}

VdekSlot TestSlot(uint64_t seq, uint64_t gen) {
  VdekSlot s;
  s.sequence = seq;
  s.generation = gen;
  for (size_t i = 0; i < s.nonce.size(); ++i) s.nonce[i] = static_cast<uint8_t>(i + seq);
  for (size_t i = 0; i < s.wrapped.size(); ++i) s.wrapped[i] = static_cast<uint8_t>(3 * i + gen);
  for (size_t i = 0; i < s.tag.size(); ++i) s.tag[i] = static_cast<uint8_t>(7 * i);
  return s;
}

std::vector<uint8_t> MakeFile(const VolumeIdentity& id, const VdekSlot* a, const VdekSlot* b) {
  std::vector<uint8_t> file(kMetadataFileSize, 0);
  EncodeHeader(id, 0, file.data());
  if (a) EncodeSlot(*a, 0, file.data() + kSlotOffset[0]);
  if (b) EncodeSlot(*b, 1, file.data() + kSlotOffset[1]);
  return file;
}

TEST(VolumeMetadataTest, RoundTrip) {
  const auto id = TestIdentity();
  const auto a = TestSlot(1, 1), b = TestSlot(2, 2);
  auto file = MakeFile(id, &a, &b);
  auto meta = DecodeMetadataFile(file, &id);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->id, id);
  ASSERT_TRUE(meta->slot[0] && meta->slot[1]);
  EXPECT_EQ(meta->slot[0]->sequence, 1u);
  EXPECT_EQ(meta->slot[1]->generation, 2u);
  EXPECT_EQ(meta->slot[1]->wrapped, b.wrapped);
  EXPECT_EQ(meta->slot[1]->nonce, b.nonce);
  EXPECT_EQ(meta->slot[1]->tag, b.tag);
  int order[2];
  ASSERT_EQ(meta->Candidates(order), 2);
  EXPECT_EQ(order[0], 1);  // higher sequence first
  EXPECT_EQ(order[1], 0);
  // Layout: the fields sit where the documented table says.
  EXPECT_EQ(0, std::memcmp(file.data(), "SVMKVOL1", 8));
  EXPECT_EQ(0, std::memcmp(file.data() + 512, "SVMKSLT1", 8));
  EXPECT_EQ(0, std::memcmp(file.data() + 1024, "SVMKSLT1", 8));
  EXPECT_EQ(0, std::memcmp(file.data() + 16, id.volume.bytes.data(), 16));
  EXPECT_EQ(file[48], 1027 & 0xff);
  EXPECT_EQ(file[49], 1027 >> 8);
  for (size_t i = 1536; i < kMetadataFileSize; ++i) ASSERT_EQ(file[i], 0);
}

TEST(VolumeMetadataTest, NewerSlotWinsEitherWay) {
  const auto id = TestIdentity();
  const auto older = TestSlot(5, 1), newer = TestSlot(6, 2);
  for (bool newer_in_a : {false, true}) {
    auto file = newer_in_a ? MakeFile(id, &newer, &older) : MakeFile(id, &older, &newer);
    auto meta = DecodeMetadataFile(file);
    ASSERT_TRUE(meta.ok());
    int order[2];
    ASSERT_EQ(meta->Candidates(order), 2);
    EXPECT_EQ(meta->slot[order[0]]->sequence, 6u);
  }
}

// Every single-byte change of the header sector is caught, with 65536889.
TEST(VolumeMetadataTest, EveryHeaderByteCorruptionDetected) {
  const auto id = TestIdentity();
  const auto a = TestSlot(1, 1);
  const auto good = MakeFile(id, &a, nullptr);
  for (size_t byte = 0; byte < kSectorSize; ++byte) {
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      auto file = good;
      file[byte] ^= flip;
      auto meta = DecodeMetadataFile(file);
      ASSERT_FALSE(meta.ok()) << "byte " << byte;
      EXPECT_EQ(meta.status().code(), ErrorCode::kInvalidEncryptionBlob) << "byte " << byte;
    }
  }
}

// Every single-byte change of a slot sector invalidates that slot: alone it fails the
// file with 65536889; beside an older valid slot, the older one becomes current.
TEST(VolumeMetadataTest, EverySlotByteCorruptionDetected) {
  const auto id = TestIdentity();
  const auto older = TestSlot(1, 1), newer = TestSlot(2, 2);
  const auto lone = MakeFile(id, nullptr, &newer);
  const auto pair = MakeFile(id, &older, &newer);
  for (size_t byte = 0; byte < kSectorSize; ++byte) {
    auto file = lone;
    file[kSlotOffset[1] + byte] ^= 0x5a;
    auto meta = DecodeMetadataFile(file);
    ASSERT_FALSE(meta.ok()) << "byte " << byte;
    EXPECT_EQ(meta.status().code(), ErrorCode::kInvalidEncryptionBlob) << "byte " << byte;

    file = pair;
    file[kSlotOffset[1] + byte] ^= 0x5a;
    meta = DecodeMetadataFile(file);
    ASSERT_TRUE(meta.ok()) << "byte " << byte;
    EXPECT_FALSE(meta->slot[1].has_value());
    EXPECT_EQ(meta->slot_state[1], ErrorCode::kInvalidEncryptionBlob);
    int order[2];
    ASSERT_EQ(meta->Candidates(order), 1);
    EXPECT_EQ(meta->slot[order[0]]->sequence, 1u);
  }
}

// A torn newer slot (only a prefix of the sector reached the disk) falls back.
TEST(VolumeMetadataTest, TornNewerSlotFallsBackToOlder) {
  const auto id = TestIdentity();
  const auto older = TestSlot(1, 1), newer = TestSlot(2, 2);
  const auto before = MakeFile(id, &older, nullptr);
  const auto after = MakeFile(id, &older, &newer);
  for (size_t prefix = 0; prefix < kSectorSize; prefix += 8) {
    auto file = before;
    std::memcpy(file.data() + kSlotOffset[1], after.data() + kSlotOffset[1], prefix);
    auto meta = DecodeMetadataFile(file);
    ASSERT_TRUE(meta.ok()) << prefix;
    int order[2];
    ASSERT_EQ(meta->Candidates(order), 1) << prefix;
    EXPECT_EQ(meta->slot[order[0]]->sequence, 1u);
  }
}

struct DefectCase {
  const char* name;
  void (*mutate)(VolumeIdentity* id, VdekSlot* slot, bool* with_slot);
  ErrorCode want;
};

TEST(VolumeMetadataTest, EachDefectGetsItsCode) {
  const DefectCase cases[] = {
      {"nil volume uuid", [](VolumeIdentity* id, VdekSlot*, bool*) { id->volume = Uuid{}; },
       ErrorCode::kVolumeUuidMissing},
      {"zero dsid", [](VolumeIdentity* id, VdekSlot*, bool*) { id->dsid = 0; },
       ErrorCode::kVolumeDsidMissing},
      {"no slot", [](VolumeIdentity*, VdekSlot*, bool* with) { *with = false; },
       ErrorCode::kVolumeKeyMissing},
      {"key length 16", [](VolumeIdentity*, VdekSlot* s, bool*) { s->key_length = 16; },
       ErrorCode::kVolumeKeyInvalid},
      {"unknown algorithm", [](VolumeIdentity*, VdekSlot* s, bool*) { s->algorithm = 9; },
       ErrorCode::kInvalidEncryptionBlob},
      {"generation 0", [](VolumeIdentity*, VdekSlot* s, bool*) { s->generation = 0; },
       ErrorCode::kInvalidEncryptionBlob},
  };
  for (const auto& c : cases) {
    VolumeIdentity id = TestIdentity();
    VdekSlot slot = TestSlot(1, 1);
    bool with_slot = true;
    c.mutate(&id, &slot, &with_slot);
    auto file = MakeFile(id, with_slot ? &slot : nullptr, nullptr);
    auto meta = DecodeMetadataFile(file);
    ASSERT_FALSE(meta.ok()) << c.name;
    EXPECT_EQ(meta.status().code(), c.want) << c.name << ": " << meta.status().ToString();
  }
}

TEST(VolumeMetadataTest, ForeignFileIsRejected) {
  const auto id = TestIdentity();
  const auto a = TestSlot(1, 1);
  auto file = MakeFile(id, &a, nullptr);
  VolumeIdentity other = id;
  other.dsid = 1028;
  EXPECT_EQ(DecodeMetadataFile(file, &other).status().code(), ErrorCode::kInvalidEncryptionBlob);
  other = id;
  other.svm = Uuid::Random();
  EXPECT_EQ(DecodeMetadataFile(file, &other).status().code(), ErrorCode::kInvalidEncryptionBlob);
}

TEST(VolumeMetadataTest, WrongSizesAndRandomBytesGiveCodes) {
  const auto id = TestIdentity();
  const auto a = TestSlot(1, 1);
  auto good = MakeFile(id, &a, nullptr);
  for (size_t size : {size_t{0}, size_t{1}, size_t{511}, size_t{512}, size_t{1535}, size_t{4095},
                      size_t{4097}, size_t{8192}}) {
    std::vector<uint8_t> file(size, 0);
    if (size > 0) std::memcpy(file.data(), good.data(), std::min(size, good.size()));
    auto meta = DecodeMetadataFile(file);
    ASSERT_FALSE(meta.ok()) << size;
    EXPECT_EQ(meta.status().code(), ErrorCode::kInvalidEncryptionBlob) << size;
  }
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> file(kMetadataFileSize);
    for (auto& b : file) b = static_cast<uint8_t>(rng());
    if (i % 2) std::memcpy(file.data(), "SVMKVOL1", 8);
    auto meta = DecodeMetadataFile(file);
    EXPECT_FALSE(meta.ok());
    EXPECT_EQ(meta.status().code(), ErrorCode::kInvalidEncryptionBlob);
  }
}

TEST(VolumeMetadataTest, AadBindsIdentityAndGeneration) {
  const auto id = TestIdentity();
  const Aad base = VdekAad(id, 3);
  EXPECT_EQ(base.size(), 64u);
  EXPECT_NE(base, VdekAad(id, 4));
  VolumeIdentity other = id;
  other.dsid++;
  EXPECT_NE(base, VdekAad(other, 3));
  other = id;
  other.volume.bytes[15] ^= 1;
  EXPECT_NE(base, VdekAad(other, 3));
  other = id;
  other.svm.bytes[0] ^= 1;
  EXPECT_NE(base, VdekAad(other, 3));
}

// The slot-selection rule (DecodedMetadata::Candidates, used by open, verify, rewrap and
// repair): valid slots only, newest sequence first, A before B on a tie; each damage
// of a slot removes it from the order.
TEST(VolumeMetadataTest, SlotSelectionUnderEachDamage) {
  enum Slot { kEmpty, kSeq1, kSeq2, kFlipped, kTorn, kMovedHere };
  struct Case {
    const char* name;
    Slot a, b;
    std::vector<int> want;  // Candidates order; empty = the file does not decode
  };
  const Case cases[] = {
      {"A only", kSeq1, kEmpty, {0}},
      {"B only", kEmpty, kSeq1, {1}},
      {"B newer", kSeq1, kSeq2, {1, 0}},
      {"A newer", kSeq2, kSeq1, {0, 1}},
      {"tie: A first", kSeq1, kSeq1, {0, 1}},
      {"newer B bit-flipped", kSeq1, kFlipped, {0}},
      {"newer B torn", kSeq1, kTorn, {0}},
      {"A bit-flipped, B valid", kFlipped, kSeq1, {1}},
      {"A's sector copied to B", kSeq1, kMovedHere, {0}},
      {"B's sector copied to A", kMovedHere, kSeq1, {1}},
      {"both empty", kEmpty, kEmpty, {}},
      {"both damaged", kFlipped, kTorn, {}},
      {"only A, bit-flipped", kFlipped, kEmpty, {}},
  };
  const auto id = TestIdentity();
  for (const Case& c : cases) {
    std::vector<uint8_t> file(kMetadataFileSize, 0);
    EncodeHeader(id, 0, file.data());
    const Slot states[2] = {c.a, c.b};
    for (int i = 0; i < 2; ++i) {
      uint8_t* sector = file.data() + kSlotOffset[i];
      switch (states[i]) {
        case kEmpty: break;
        case kSeq1: EncodeSlot(TestSlot(1, 1), i, sector); break;
        case kSeq2: EncodeSlot(TestSlot(2, 2), i, sector); break;
        case kFlipped:
          EncodeSlot(TestSlot(3, 3), i, sector);
          sector[60] ^= 0x01;
          break;
        case kTorn: {
          uint8_t full[kSectorSize];
          EncodeSlot(TestSlot(3, 3), i, full);
          std::memcpy(sector, full, 200);
          break;
        }
        case kMovedHere: EncodeSlot(TestSlot(3, 3), 1 - i, sector); break;
      }
    }
    auto meta = DecodeMetadataFile(file, &id);
    if (c.want.empty()) {
      EXPECT_FALSE(meta.ok()) << c.name;
      continue;
    }
    ASSERT_TRUE(meta.ok()) << c.name << ": " << meta.status().ToString();
    int order[2];
    const int n = meta->Candidates(order);
    EXPECT_EQ(std::vector<int>(order, order + n), c.want) << c.name;
  }
}

}  // namespace
}  // namespace svmkey
