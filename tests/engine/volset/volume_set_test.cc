// Unit tests for the volume-set library: KEK files, CreateVolumeSet + VerifyVolumeSet
// on ~200 volumes (with clones), per-volume failures, and RekeyVolumeSet.
#include "engine/volset/volume_set.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "engine/uring_file_io.h"
#include "engine/volset/kek_file.h"
#include "engine/volume_metadata.h"
#include "tests/support/temp_dir.h"

namespace svmkey::volset {
namespace {

using testing::TempDir;

constexpr uint64_t kVolumes = 200;

class VolumeSetTest : public ::testing::TestWithParam<IoMode> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    auto table = KeyTable::Create(8);
    ASSERT_TRUE(table.ok());
    table_ = std::move(table).value();
    auto io = MakeFileIo(GetParam());
    ASSERT_TRUE(io.ok()) << io.status().ToString();
    io_ = std::move(io).value();
  }

  // Creates the set in dir_/set with a generated kek.bin; returns the key.
  KeyHandle CreateSet(uint64_t clone_every) {
    set_ = dir_.path() + "/set";
    std::filesystem::create_directories(set_);
    auto kek = GenerateKekFile(*table_, set_ + "/" + std::string(kKekFileName), false);
    EXPECT_TRUE(kek.ok()) << kek.status().ToString();
    CreateVolumeSetOptions options;
    options.dir = set_;
    options.svm = Uuid::Random();
    options.count = kVolumes;
    options.generation = 3;
    options.clone_every = clone_every;
    options.batch_size = 64;  // several batches
    uint64_t last_progress = 0;
    options.progress = [&](uint64_t created) { last_progress = created; };
    auto report = CreateVolumeSet(*io_, *table_, *kek, options);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    if (report.ok()) {
      EXPECT_EQ(report->created, kVolumes);
      EXPECT_EQ(last_progress, kVolumes);
    }
    return *kek;
  }

  Result<VerifyVolumeSetReport> Verify(KeyHandle kek, uint64_t generation) {
    auto source = ManifestVolumeSource::Open(set_);
    if (!source.ok()) return source.status();
    return VerifyVolumeSet(*io_, *table_, kek, generation, **source, 37);
  }

  std::vector<VolumeRef> AllVolumes() {
    auto source = ManifestVolumeSource::Open(set_);
    EXPECT_TRUE(source.ok());
    std::vector<VolumeRef> refs(kVolumes + 1);
    auto got = (*source)->Next(refs);
    EXPECT_TRUE(got.ok());
    refs.resize(got.ok() ? *got : 0);
    return refs;
  }

  TempDir dir_;
  std::string set_;
  std::unique_ptr<KeyTable> table_;
  std::unique_ptr<FileIo> io_;
};

TEST_P(VolumeSetTest, CreatedSetVerifiesUnderItsGenerationOnly) {
  const KeyHandle kek = CreateSet(/*clone_every=*/10);
  auto ok = Verify(kek, 3);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->total, kVolumes);
  EXPECT_EQ(ok->opened, kVolumes);
  EXPECT_EQ(ok->failed, 0u);

  auto wrong_generation = Verify(kek, 4);
  ASSERT_TRUE(wrong_generation.ok());
  EXPECT_EQ(wrong_generation->failed, kVolumes);

  auto other_key = table_->Generate();
  ASSERT_TRUE(other_key.ok());
  auto wrong_key = Verify(*other_key, 3);
  ASSERT_TRUE(wrong_key.ok());
  EXPECT_EQ(wrong_key->opened, 0u);
  EXPECT_EQ(wrong_key->failures_by_code[static_cast<uint32_t>(ErrorCode::kDecryptFailed)], kVolumes);
}

TEST_P(VolumeSetTest, FilesSitInSubdirectoriesWithTheManifestsIdentities) {
  CreateSet(/*clone_every=*/10);
  const auto refs = AllVolumes();
  ASSERT_EQ(refs.size(), kVolumes);
  size_t clones = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    EXPECT_EQ(refs[i].path, set_ + "/" + RelativeVolumePath(refs[i].id.volume));
    EXPECT_EQ(refs[i].id.dsid, 1 + i);  // first_dsid 1, in order
    // Within a create batch (64 here) the manifest is grouped by subdirectory.
    if (i % 64 != 0) {
      EXPECT_LT(refs[i - 1].path, refs[i].path) << i;
    }
    std::ifstream in(refs[i].path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    ASSERT_EQ(bytes.size(), kMetadataFileSize);
    auto meta = DecodeMetadataFile(bytes, &refs[i].id);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    if (meta->flags & kFlagClone) ++clones;
  }
  // Index 9, 19, ... are clones, except where a batch (64) starts: 9..199 step 10 = 20,
  // none of them at a batch start (0, 64, 128, 192).
  EXPECT_EQ(clones, 20u);
}

TEST_P(VolumeSetTest, VerifyReportsEachBrokenVolumeAndKeepsGoing) {
  const KeyHandle kek = CreateSet(0);
  const auto refs = AllVolumes();
  ASSERT_EQ(refs.size(), kVolumes);
  // Missing file, corrupt header, truncated file.
  std::filesystem::remove(refs[5].path);
  {
    std::fstream f(refs[50].path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('X');
  }
  std::filesystem::resize_file(refs[150].path, 100);
  auto report = Verify(kek, 3);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->total, kVolumes);
  EXPECT_EQ(report->failed, 3u);
  EXPECT_EQ(report->opened, kVolumes - 3);
  EXPECT_EQ(report->failures_by_code[static_cast<uint32_t>(ErrorCode::kVolumeKeyMissing)], 1u);
  EXPECT_EQ(report->failures_by_code[static_cast<uint32_t>(ErrorCode::kInvalidEncryptionBlob)], 2u);
  ASSERT_EQ(report->failure_samples.size(), 3u);
  EXPECT_NE(report->failure_samples[0].find(refs[5].path), std::string::npos);
}

TEST_P(VolumeSetTest, RekeyMovesEveryVolumeToTheNextGenerationAndTheManifestWithIt) {
  const KeyHandle kek = CreateSet(7);
  auto next = GenerateKekFile(*table_, dir_.path() + "/next.bin", false);
  ASSERT_TRUE(next.ok());
  RewrapKeys keys{kek, 3, *next, 4};
  auto source = ManifestVolumeSource::Open(set_);
  ASSERT_TRUE(source.ok());
  auto counters = RekeyVolumeSet(*io_, *table_, keys, **source, RewrapOptions{},
                                 [](const RewrapBatchReport&) { return true; });
  ASSERT_TRUE(counters.ok()) << counters.status().ToString();
  EXPECT_EQ(counters->rewrapped, kVolumes);
  auto after = ManifestVolumeSource::Open(set_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->header().generation, 4u);
  auto at_new = Verify(*next, 4);
  ASSERT_TRUE(at_new.ok());
  EXPECT_EQ(at_new->opened, kVolumes);
  // The current slot is at 4 now: generation 3 no longer verifies, although the older
  // slot still holds the VDEK under 3.
  auto at_old = Verify(kek, 3);
  ASSERT_TRUE(at_old.ok());
  EXPECT_EQ(at_old->opened, 0u);

  // A rekey from a generation the manifest does not hold is refused.
  auto stale = ManifestVolumeSource::Open(set_);
  ASSERT_TRUE(stale.ok());
  auto refused = RekeyVolumeSet(*io_, *table_, keys, **stale, RewrapOptions{}, {});
  EXPECT_FALSE(refused.ok());
}

TEST_P(VolumeSetTest, CreateRefusesADirectoryThatHoldsASet) {
  const KeyHandle kek = CreateSet(0);
  CreateVolumeSetOptions options;
  options.dir = set_;
  options.svm = Uuid::Random();
  options.count = 3;
  auto again = CreateVolumeSet(*io_, *table_, kek, options);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kDuplicateEntry);
}

INSTANTIATE_TEST_SUITE_P(IoModes, VolumeSetTest, ::testing::Values(IoMode::kSync, IoMode::kAuto),
                         [](const auto& param_info) {
                           return std::string(param_info.param == IoMode::kSync ? "Sync" : "Auto");
                         });

TEST(KekFileTest, GeneratedFileIsPrivateAndImportsToTheSameKey) {
  TempDir dir;
  auto table = KeyTable::Create(4);
  ASSERT_TRUE(table.ok());
  const std::string path = dir.path() + "/kek.bin";
  auto generated = GenerateKekFile(**table, path, false);
  ASSERT_TRUE(generated.ok()) << generated.status().ToString();
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  // Not replaced unless asked.
  auto twice = GenerateKekFile(**table, path, false);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), ErrorCode::kDuplicateEntry);

  // Same key: a blob wrapped under the generated handle opens under the imported one.
  auto imported = ImportKekFile(**table, path);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  auto vdek = (*table)->Generate();
  ASSERT_TRUE(vdek.ok());
  const uint8_t aad[4] = {1, 2, 3, 4};
  auto wrapped = (*table)->Wrap(*generated, *vdek, aad);
  ASSERT_TRUE(wrapped.ok());
  EXPECT_TRUE((*table)->Unwrap(*imported, *wrapped, aad).ok());
}

TEST(KekFileTest, ImportRejectsWrongSizesAndMissingFiles) {
  TempDir dir;
  auto table = KeyTable::Create(4);
  ASSERT_TRUE(table.ok());
  for (size_t size : {0, 31, 33, 64}) {
    const std::string path = dir.path() + "/k" + std::to_string(size);
    std::ofstream(path, std::ios::binary) << std::string(size, 'k');
    auto imported = ImportKekFile(**table, path);
    ASSERT_FALSE(imported.ok()) << size;
    EXPECT_EQ(imported.status().code(), ErrorCode::kInvalidValue) << size;
  }
  auto missing = ImportKekFile(**table, dir.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kEntryNotFound);
  EXPECT_EQ((*table)->size(), 0u);  // nothing imported
}

}  // namespace
}  // namespace svmkey::volset
