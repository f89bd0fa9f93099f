// svmkey-volset end to end: create + verify ~200 volumes through the CLI, a corrupt
// manifest giving a clear error and a non-zero exit, no key bytes in any output.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/command.h"
#include "tests/support/temp_dir.h"

namespace svmkey {
namespace {

using testing::Sh;
using testing::TempDir;
using testing::ToolPath;

constexpr char kSvm[] = "0d9c8b7a-6f5e-4d3c-8b2a-190817263544";

std::string Hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class VolsetCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tool_ = ToolPath("SVMKEY_VOLSET");
    ASSERT_FALSE(tool_.empty()) << "SVMKEY_VOLSET is not set (run through meson test)";
    ASSERT_TRUE(std::filesystem::exists(tool_)) << tool_;
    ASSERT_TRUE(dir_.ok());
    set_ = dir_.path() + "/set";
  }
  std::string tool_;
  TempDir dir_;
  std::string set_;
};

TEST_F(VolsetCliTest, CreateThenVerify) {
  const auto created = Sh(tool_ + " create --dir " + set_ + " --svm-uuid " + kSvm +
                                  " --count 200 --clone-every 20 --generation 2");
  ASSERT_EQ(created.status, 0) << created.output();
  EXPECT_NE(created.output().find("created 200 volumes (10 clones)"), std::string::npos)
      << created.output();
  EXPECT_NE(created.output().find("kek.bin (mode 0600)"), std::string::npos) << created.output();

  const auto verified = Sh(tool_ + " verify --dir " + set_);
  ASSERT_EQ(verified.status, 0) << verified.output();
  EXPECT_NE(verified.output().find("verified 200 volumes of SVM " + std::string(kSvm) +
                                 ": 200 open under generation 2, 0 failed"),
            std::string::npos)
      << verified.output();

  const auto wrong = Sh(tool_ + " verify --dir " + set_ + " --generation 1");
  EXPECT_EQ(wrong.status, 1) << wrong.output();
  EXPECT_NE(wrong.output().find("200 failed"), std::string::npos) << wrong.output();

  // Never a key byte in the output (hex or raw).
  const std::string kek = ReadFile(set_ + "/kek.bin");
  ASSERT_EQ(kek.size(), 32u);
  for (const std::string& out : {created.output(), verified.output(), wrong.output()}) {
    EXPECT_EQ(out.find(Hex(kek)), std::string::npos);
    EXPECT_EQ(out.find(kek), std::string::npos);
  }
}

TEST_F(VolsetCliTest, RekeyThenVerifyUnderTheNewKey) {
  ASSERT_EQ(Sh(tool_ + " create --dir " + set_ + " --svm-uuid " + kSvm + " --count 200")
                .status,
            0);
  const std::string next = dir_.path() + "/next.bin";
  const auto rekeyed = Sh(tool_ + " rekey --dir " + set_ + " --new-kek-file " + next);
  ASSERT_EQ(rekeyed.status, 0) << rekeyed.output();
  EXPECT_NE(rekeyed.output().find("from generation 1 to 2: 200 rewrapped"), std::string::npos)
      << rekeyed.output();
  const auto verified = Sh(tool_ + " verify --dir " + set_ + " --kek-file " + next);
  ASSERT_EQ(verified.status, 0) << verified.output();
  EXPECT_NE(verified.output().find("200 open under generation 2"), std::string::npos);
  EXPECT_NE(Sh(tool_ + " verify --dir " + set_).status, 0);  // old key, gen 2
}

TEST_F(VolsetCliTest, CorruptManifestFailsWithAClearError) {
  ASSERT_EQ(Sh(tool_ + " create --dir " + set_ + " --svm-uuid " + kSvm + " --count 200")
                .status,
            0);
  const std::string manifest = set_ + "/volset.manifest";
  std::string text = ReadFile(manifest);
  // Drop the last 30 volume lines: the header still says 200.
  for (int i = 0; i < 30; ++i) text.erase(text.rfind('\n', text.size() - 2) + 1);
  std::ofstream(manifest, std::ios::binary | std::ios::trunc) << text;
  const auto truncated = Sh(tool_ + " verify --dir " + set_);
  EXPECT_NE(truncated.status, 0);
  EXPECT_NE(truncated.output().find("170 volume lines, header says count=200 (truncated or padded "
                                  "manifest)"),
            std::string::npos)
      << truncated.output();

  std::ofstream(manifest, std::ios::binary | std::ios::trunc) << "not a manifest\n";
  const auto garbage = Sh(tool_ + " verify --dir " + set_);
  EXPECT_NE(garbage.status, 0);
  EXPECT_NE(garbage.output().find("line 1: not a svmkey-volset manifest"), std::string::npos)
      << garbage.output();
}

TEST_F(VolsetCliTest, HelpSaysTheseArePerformanceSets) {
  const auto help = Sh(tool_ + " --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output().find("PERFORMANCE SETS ONLY"), std::string::npos) << help.output();
  const auto refused = Sh(tool_ + " create --dir " + set_ + " --svm-uuid nope --count 3");
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.output().find("--svm-uuid is not a uuid"), std::string::npos) << refused.output();
}

}  // namespace
}  // namespace svmkey
