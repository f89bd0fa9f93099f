#include "engine/volume.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "engine/testing/key_table_test_peer.h"
#include "tests/support/temp_dir.h"

namespace svmkey {
namespace {

using testing::TempDir;

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = KeyTable::Create(16);
    ASSERT_TRUE(t.ok());
    table_ = std::move(t).value();
    kek_ = *table_->Generate();
    ring_.Add(1, kek_);
    io_ = MakeSyncFileIo();
    svm_ = Uuid::Random();
    for (size_t i = 0; i < fp_key_.size(); ++i) fp_key_[i] = static_cast<uint8_t>(i);
  }

  std::vector<VolumeRef> MakeRefs(size_t n) {
    std::vector<VolumeRef> refs(n);
    for (size_t i = 0; i < n; ++i) {
      refs[i].id = {Uuid::Random(), svm_, 1000 + i};
      refs[i].path = dir_ / (refs[i].id.volume.ToString() + ".meta");
    }
    return refs;
  }

  std::vector<OpenResult> Verify(const std::vector<VolumeRef>& refs, const KeyRing& ring) {
    std::vector<OpenResult> results(refs.size());
    EXPECT_TRUE(VerifyVolumes(*io_, *table_, ring, refs, results, fp_key_.data()).ok());
    return results;
  }

  TempDir dir_;
  std::unique_ptr<KeyTable> table_;
  KeyHandle kek_;
  KeyRing ring_;
  std::unique_ptr<FileIo> io_;
  Uuid svm_;
  std::array<uint8_t, 32> fp_key_{};
};

TEST_F(VolumeTest, CreateThenVerifyEveryVolume) {
  auto refs = MakeRefs(300);
  std::vector<CreateResult> created(refs.size());
  ASSERT_TRUE(CreateVolumes(*io_, *table_, kek_, 1, refs, created).ok());
  for (size_t i = 0; i < refs.size(); ++i) {
    ASSERT_TRUE(created[i].status.ok()) << created[i].status.ToString();
    auto bytes = ReadFile(refs[i].path);
    ASSERT_EQ(bytes.size(), kMetadataFileSize);
    // The returned blob is exactly slot A of the file.
    EXPECT_EQ(0, std::memcmp(bytes.data() + kSlotOffset[0], created[i].blob.data(), kSectorSize));
  }
  auto results = Verify(refs, ring_);
  std::set<std::string> fingerprints;
  for (const auto& r : results) {
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.generation, 1u);
    EXPECT_EQ(r.sequence, 1u);
    EXPECT_EQ(r.slot, 0);
    fingerprints.emplace(reinterpret_cast<const char*>(r.fingerprint.data()), 16);
  }
  EXPECT_EQ(fingerprints.size(), refs.size()) << "VDEKs must be distinct";
}

TEST_F(VolumeTest, ExistingFileIsNotOverwritten) {
  auto refs = MakeRefs(2);
  WriteFile(refs[1].path, {1, 2, 3});
  std::vector<CreateResult> created(refs.size());
  ASSERT_TRUE(CreateVolumes(*io_, *table_, kek_, 1, refs, created).ok());
  EXPECT_TRUE(created[0].status.ok());
  EXPECT_EQ(created[1].status.code(), ErrorCode::kVdekBlobUpdateFailed);
  EXPECT_EQ(ReadFile(refs[1].path).size(), 3u);
}

TEST_F(VolumeTest, ClonesShareTheirParentsVdek) {
  auto refs = MakeRefs(3);
  std::vector<CreateResult> created(refs.size());
  const int clone_of[] = {-1, 0, -1};
  ASSERT_TRUE(CreateVolumes(*io_, *table_, kek_, 1, refs, created, clone_of).ok());
  auto results = Verify(refs, ring_);
  for (const auto& r : results) ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(results[0].fingerprint, results[1].fingerprint);
  EXPECT_NE(results[0].fingerprint, results[2].fingerprint);
  // Same VDEK, but each blob is bound to its own volume.
  EXPECT_NE(created[0].blob, created[1].blob);
}

// A slot copied into another volume's file does not open there (AAD binds the uuid).
TEST_F(VolumeTest, SlotCopiedToAnotherVolumeFailsToOpen) {
  auto refs = MakeRefs(2);
  std::vector<CreateResult> created(refs.size());
  ASSERT_TRUE(CreateVolumes(*io_, *table_, kek_, 1, refs, created).ok());
  auto victim = ReadFile(refs[1].path);
  std::memcpy(victim.data() + kSlotOffset[0], created[0].blob.data(), kSectorSize);
  WriteFile(refs[1].path, victim);
  auto results = Verify(refs, ring_);
  EXPECT_TRUE(results[0].status.ok());
  EXPECT_EQ(results[1].status.code(), ErrorCode::kDecryptFailed);
}

// A slot relabelled with another generation (checksum recomputed) does not open, even
// when the ring maps that generation to the same key.
TEST_F(VolumeTest, SlotRelabelledWithAnotherGenerationFailsToOpen) {
  auto refs = MakeRefs(1);
  std::vector<CreateResult> created(1);
  ASSERT_TRUE(CreateVolumes(*io_, *table_, kek_, 1, refs, created).ok());
  auto file = ReadFile(refs[0].path);
  VdekSlot slot;
  ASSERT_TRUE(DecodeSlot(std::span<const uint8_t>(file).subspan(512, 512), 0, &slot).ok());
  slot.generation = 2;
  EncodeSlot(slot, 0, file.data() + kSlotOffset[0]);
  WriteFile(refs[0].path, file);
  KeyRing ring;
  ring.Add(1, kek_);
  ring.Add(2, kek_);
  auto results = Verify(refs, ring);
  EXPECT_EQ(results[0].status.code(), ErrorCode::kDecryptFailed);
}

TEST_F(VolumeTest, WrongKeyMissingKeyAndMissingFile) {
  auto refs = MakeRefs(3);
  std::vector<CreateResult> created(refs.size());
  ASSERT_TRUE(CreateVolumes(*io_, *table_, kek_, 1, refs, created).ok());
  ::unlink(refs[2].path.c_str());
  KeyRing wrong;
  wrong.Add(1, *table_->Generate());
  auto results = Verify(refs, wrong);
  EXPECT_EQ(results[0].status.code(), ErrorCode::kDecryptFailed);
  EXPECT_EQ(results[2].status.code(), ErrorCode::kVolumeKeyMissing);
  KeyRing other_generation;
  other_generation.Add(7, kek_);
  results = Verify(refs, other_generation);
  EXPECT_EQ(results[0].status.code(), ErrorCode::kSvmKekUnwrapFailed);
}

TEST_F(VolumeTest, TruncatedOversizedAndGarbageFilesGetCodes) {
  auto refs = MakeRefs(4);
  std::vector<CreateResult> created(refs.size());
  ASSERT_TRUE(CreateVolumes(*io_, *table_, kek_, 1, refs, created).ok());
  auto full = ReadFile(refs[0].path);
  WriteFile(refs[0].path, std::vector<uint8_t>(full.begin(), full.begin() + 1000));
  full.push_back(0);
  WriteFile(refs[1].path, full);
  WriteFile(refs[2].path, {});
  WriteFile(refs[3].path, std::vector<uint8_t>(4096, 0xEE));
  auto results = Verify(refs, ring_);
  for (const auto& r : results) {
    EXPECT_EQ(r.status.code(), ErrorCode::kInvalidEncryptionBlob) << r.status.ToString();
  }
}

TEST_F(VolumeTest, BadIdentitiesAreRefusedBeforeAnyFileIsMade) {
  auto refs = MakeRefs(2);
  refs[0].id.volume = Uuid{};
  refs[1].id.dsid = 0;
  std::vector<CreateResult> created(refs.size());
  ASSERT_TRUE(CreateVolumes(*io_, *table_, kek_, 1, refs, created).ok());
  EXPECT_EQ(created[0].status.code(), ErrorCode::kVolumeUuidMissing);
  EXPECT_EQ(created[1].status.code(), ErrorCode::kVolumeDsidMissing);
  EXPECT_NE(::access(refs[0].path.c_str(), F_OK), 0);
  EXPECT_NE(::access(refs[1].path.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace svmkey
