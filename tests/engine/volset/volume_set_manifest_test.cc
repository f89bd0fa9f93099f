// Unit tests for the volume-set manifest: header and line codec, writer/reader round
// trip, ManifestVolumeSource's errors on malformed, truncated and padded manifests.
#include "engine/volset/volume_set_manifest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace svmkey::volset {
namespace {

using testing::TempDir;

constexpr char kSvm[] = "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Writes a manifest of `n` volumes through ManifestWriter; returns their identities.
std::vector<VolumeIdentity> WriteManifest(const std::string& dir, uint64_t n, uint64_t generation) {
  ManifestHeader header;
  header.svm = *Uuid::Parse(kSvm);
  header.generation = generation;
  header.count = n;
  auto writer = ManifestWriter::Create(dir, header);
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
  std::vector<VolumeIdentity> ids;
  for (uint64_t i = 0; i < n; ++i) {
    VolumeIdentity id{Uuid::Random(), header.svm, 100 + i};
    EXPECT_TRUE((*writer)->Add(id, RelativeVolumePath(id.volume)).ok());
    ids.push_back(id);
  }
  Status s = (*writer)->Finish();
  EXPECT_TRUE(s.ok()) << s.ToString();
  return ids;
}

// Drains a source in chunks of `chunk`; returns the refs read or the failure.
Result<std::vector<VolumeRef>> Drain(ManifestVolumeSource& source, size_t chunk) {
  std::vector<VolumeRef> all, buf(chunk);
  for (;;) {
    auto got = source.Next(buf);
    if (!got.ok()) return got.status();
    if (*got == 0) return all;
    all.insert(all.end(), buf.begin(), buf.begin() + static_cast<long>(*got));
  }
}

TEST(ManifestHeaderTest, FormatParseRoundTripIsFixedWidth) {
  ManifestHeader a{*Uuid::Parse(kSvm), 1, 10};
  ManifestHeader b{*Uuid::Parse(kSvm), 123456789012ULL, 1000000};
  const std::string line_a = FormatManifestHeader(a);
  EXPECT_EQ(line_a.size(), FormatManifestHeader(b).size());
  EXPECT_EQ(line_a, std::string("svmkey-volset-manifest v1 svm=") + kSvm +
                        " generation=00000000000000000001 count=00000000000000000010");
  ManifestHeader parsed;
  ASSERT_TRUE(ParseManifestHeader(FormatManifestHeader(b), &parsed).ok());
  EXPECT_EQ(parsed.svm, b.svm);
  EXPECT_EQ(parsed.generation, b.generation);
  EXPECT_EQ(parsed.count, b.count);
}

TEST(ManifestHeaderTest, RejectsMalformedHeaders) {
  const std::string svm = kSvm;
  const std::vector<std::string> bad = {
      "",
      "hello world",
      "svmkey-volset-manifest v2 svm=" + svm + " generation=1 count=1",
      "svmkey-volset-manifest v1 svm=nope generation=1 count=1",
      "svmkey-volset-manifest v1 svm=00000000-0000-0000-0000-000000000000 generation=1 count=1",
      "svmkey-volset-manifest v1 svm=" + svm + " generation=x count=1",
      "svmkey-volset-manifest v1 svm=" + svm + " generation=1 count=-1",
      "svmkey-volset-manifest v1 svm=" + svm + " count=1 generation=1",
      "svmkey-volset-manifest v1 svm=" + svm + " generation=1 count=1 extra",
      "svmkey-volset-manifest v1 svm=" + svm + "  generation=1 count=1",
  };
  for (const std::string& line : bad) {
    ManifestHeader header;
    Status s = ParseManifestHeader(line, &header);
    EXPECT_FALSE(s.ok()) << line;
    EXPECT_EQ(s.code(), ErrorCode::kInvalidValue) << line;
  }
}

TEST(ManifestVolumeLineTest, ParsesAndRejects) {
  const Uuid svm = *Uuid::Parse(kSvm);
  VolumeIdentity id;
  std::string_view path;
  ASSERT_TRUE(ParseManifestVolumeLine(
                  "3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11 17 vol/3f/x.meta", svm, &id, &path)
                  .ok());
  EXPECT_EQ(id.volume.ToString(), "3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11");
  EXPECT_EQ(id.svm, svm);
  EXPECT_EQ(id.dsid, 17u);
  EXPECT_EQ(path, "vol/3f/x.meta");

  const std::vector<std::string> bad = {
      "3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11 17",                    // no path
      "3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11 0 vol/x.meta",          // DSID 0
      "3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11 1x vol/x.meta",         // DSID not decimal
      "not-a-uuid 17 vol/x.meta",                                    // uuid
      "00000000-0000-0000-0000-000000000000 17 vol/x.meta",          // nil uuid
      "3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11 17 /etc/passwd",         // absolute
      "3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11 17 vol/../../x.meta",    // escapes the set
      "3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11 17 vol/x.meta extra",    // 4 fields
  };
  for (const std::string& line : bad) {
    EXPECT_FALSE(ParseManifestVolumeLine(line, svm, &id, &path).ok()) << line;
  }
}

TEST(ManifestVolumeSourceTest, StreamsEveryVolumeInOrderWhateverTheChunk) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const auto ids = WriteManifest(dir.path(), 257, 4);
  for (size_t chunk : {1, 7, 256, 1000}) {
    auto source = ManifestVolumeSource::Open(dir.path());
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    EXPECT_EQ((*source)->header().count, 257u);
    EXPECT_EQ((*source)->header().generation, 4u);
    auto refs = Drain(**source, chunk);
    ASSERT_TRUE(refs.ok()) << refs.status().ToString();
    ASSERT_EQ(refs->size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ((*refs)[i].id, ids[i]);
      EXPECT_EQ((*refs)[i].path, dir.path() + "/" + RelativeVolumePath(ids[i].volume));
    }
    // After the end, Next keeps returning 0.
    std::vector<VolumeRef> more(3);
    auto again = (*source)->Next(more);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, 0u);
  }
}

TEST(ManifestVolumeSourceTest, MissingManifestIsEntryNotFound) {
  TempDir dir;
  auto source = ManifestVolumeSource::Open(dir.path());
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), ErrorCode::kEntryNotFound);
}

struct CorruptCase {
  const char* name;
  // Edits the manifest text.
  std::string (*edit)(const std::string& text);
  const char* expected_message_part;
};

std::string DropLastLine(const std::string& t) {
  const size_t end = t.rfind('\n', t.size() - 2);
  return t.substr(0, end + 1);
}
std::string AddLine(const std::string& t) {
  return t + "3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11 9 vol/3f/x.meta\n";
}
std::string CutMidLine(const std::string& t) { return t.substr(0, t.size() - 10); }
std::string GarbleThirdLine(const std::string& t) {
  size_t pos = 0;
  for (int i = 0; i < 2; ++i) pos = t.find('\n', pos) + 1;
  std::string out = t;
  out.replace(pos, 8, "zzzzzzzz");
  return out;
}
std::string BreakHeader(const std::string& t) { return "x" + t; }

TEST(ManifestVolumeSourceTest, CorruptManifestsFailWithAClearError) {
  const CorruptCase cases[] = {
      {"truncated by a line", DropLastLine, "truncated or padded"},
      {"padded by a line", AddLine, "more volume lines than the header's count=5"},
      {"cut mid-line", CutMidLine, "unterminated last line"},
      {"garbled volume uuid", GarbleThirdLine, "line 3: bad volume uuid"},
      {"broken header", BreakHeader, "line 1: not a svmkey-volset manifest"},
  };
  for (const CorruptCase& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    WriteManifest(dir.path(), 5, 1);
    const std::string path = ManifestPath(dir.path());
    WriteFile(path, c.edit(ReadFile(path)));
    auto source = ManifestVolumeSource::Open(dir.path());
    Status status;
    if (!source.ok()) {
      status = source.status();
    } else {
      auto refs = Drain(**source, 2);
      ASSERT_FALSE(refs.ok());
      status = refs.status();
    }
    EXPECT_EQ(status.code(), ErrorCode::kInvalidValue);
    EXPECT_NE(status.message().find(c.expected_message_part), std::string::npos)
        << status.message();
    EXPECT_NE(status.message().find(path), std::string::npos) << status.message();
  }
}

TEST(ManifestWriterTest, FinishFailsOnCountMismatchAndLeavesNoManifest) {
  TempDir dir;
  ManifestHeader header{*Uuid::Parse(kSvm), 1, 3};
  auto writer = ManifestWriter::Create(dir.path(), header);
  ASSERT_TRUE(writer.ok());
  VolumeIdentity id{Uuid::Random(), header.svm, 1};
  ASSERT_TRUE((*writer)->Add(id, RelativeVolumePath(id.volume)).ok());
  EXPECT_FALSE((*writer)->Add(id, "../escape").ok());
  EXPECT_FALSE((*writer)->Finish().ok());
  writer->reset();
  EXPECT_FALSE(std::filesystem::exists(ManifestPath(dir.path())));
  EXPECT_FALSE(std::filesystem::exists(ManifestPath(dir.path()) + ".tmp"));
}

TEST(ManifestTest, UpdateGenerationRewritesOnlyTheHeader) {
  TempDir dir;
  const auto ids = WriteManifest(dir.path(), 3, 1);
  const std::string before = ReadFile(ManifestPath(dir.path()));
  ASSERT_TRUE(UpdateManifestGeneration(dir.path(), 42).ok());
  const std::string after = ReadFile(ManifestPath(dir.path()));
  EXPECT_EQ(before.size(), after.size());
  EXPECT_EQ(before.substr(before.find('\n')), after.substr(after.find('\n')));
  auto source = ManifestVolumeSource::Open(dir.path());
  ASSERT_TRUE(source.ok());
  EXPECT_EQ((*source)->header().generation, 42u);
  auto refs = Drain(**source, 10);
  ASSERT_TRUE(refs.ok());
  EXPECT_EQ(refs->size(), 3u);
}

TEST(ManifestTest, RelativeVolumePathSpreadsByFirstByte) {
  const Uuid id = *Uuid::Parse("ab0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11");
  EXPECT_EQ(RelativeVolumePath(id), "vol/ab/ab0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11.meta");
}

}  // namespace
}  // namespace svmkey::volset
