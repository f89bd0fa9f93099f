// RegisterVolumeSet's directory rule and all-or-nothing registration
// (daemon/service/volume_set_directory.h, volume_service.h): a directory outside the
// volume root and the configured --volume-set-root is refused with 262185 naming
// `directory` whether or not it exists; a symlink in the directory or in place of the
// manifest, and a FIFO manifest, are refused at once; a truncated, padded or duplicated
// manifest leaves the table as it was and the complete one then registers. Also the
// smaller argument checks of CreateVolume and CreateSvm.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/daemon_fixture.h"

namespace svmkey::integration {
namespace {

class RegisterTest : public DaemonTest {
 protected:
  DaemonOptions Options() override {
    DaemonOptions o;
    o.extra_args.push_back("--volume-set-root=" + ExtraRoot());
    return o;
  }
  std::string ExtraRoot() { return dir().path() + "/extra-root"; }

  // Registers with the set's own kek.bin, or, for a directory that has none (the
  // refusals below), with a spare 32-byte key: the directory is judged either way.
  uint64_t Register(const std::string& set_dir) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(set_dir + "/kek.bin", ec)) {
      return RegisterVolumeSet("vs1", set_dir);
    }
    const std::string spare = dir().path() + "/spare-kek.bin";
    if (!std::filesystem::exists(spare)) WriteFile(spare, std::string(32, 'k'), 0600);
    VariantMap options;
    options["kek_fd"] = sdbus::Variant(OpenFd(spare));
    return km().RegisterVolumeSetWithin("vs1", set_dir, options, 600s);
  }

  // The call fails with InvalidValue (262185) and a message naming `what`.
  void ExpectInvalid(const std::function<void()>& call, const std::string& what) {
    try {
      call();
      ADD_FAILURE() << "the call succeeded";
    } catch (const sdbus::Error& e) {
      EXPECT_EQ(e.getName(), "org.svmkey.Error.InvalidValue") << e.getMessage();
      EXPECT_EQ(e.getMessage().rfind("262185: ", 0), 0u) << e.getMessage();
      EXPECT_NE(e.getMessage().find(what), std::string::npos) << e.getMessage();
    }
  }
  std::string RefusalMessage(const std::string& set_dir) {
    try {
      Register(set_dir);
    } catch (const sdbus::Error& e) {
      return e.getMessage();
    }
    return "(accepted)";
  }

  // What a registration may change: the SVM's key generation and its volumes.
  uint64_t KeyGeneration() {
    for (const VariantMap& svm : km().ListSvms({})) {
      if (svm.at("name").get<std::string>() == "vs1") {
        return svm.at("key_generation").get<uint64_t>();
      }
    }
    ADD_FAILURE() << "no SVM vs1";
    return UINT64_MAX;
  }
  void ExpectNothingRegistered() {
    EXPECT_EQ(KeyGeneration(), 0u);
    EXPECT_TRUE(km().ListVolumes("vs1", {}).empty());
  }

  static std::vector<std::string> Lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  static std::string Join(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

TEST_F(RegisterTest, DirectoryMustLieBeneathAConfiguredRoot) {
  const SvmSetup s = SetUpSvm("vs1");
  // A complete, valid set outside every root (the test's own directory).
  const std::string outside = dir().path() + "/outside-set";
  auto made = Sh(Quote(SVMKEY_VOLSET_PATH) + " create --dir " + Quote(outside) + " --svm-uuid " +
                     Quote(s.svm_uuid) + " --count 5",
                 std::chrono::seconds(120));
  ASSERT_EQ(made.status, 0) << made.out << made.err;
  const std::string root_message = RefusalMessage(outside);
  ExpectInvalid([&] { Register(outside); }, "directory");
  // Same answer for a path that exists, one that does not, a root-only directory, a
  // relative path and a lexical escape from the volume root: nothing tells whether a
  // path exists.
  for (const std::string& d :
       {std::string("/nonexistent/set"), std::string("/root"), std::string("/etc"),
        std::string("relative/set"), daemon().volume_root() + "/../outside-set",
        daemon().volume_root() + "/sets/../../outside-set"}) {
    SCOPED_TRACE(d);
    EXPECT_EQ(RefusalMessage(d), root_message);
  }
  ExpectNothingRegistered();

  // The same set beneath the administrator's --volume-set-root is accepted.
  std::filesystem::create_directories(ExtraRoot());
  std::filesystem::rename(outside, ExtraRoot() + "/set");
  EXPECT_EQ(Register(ExtraRoot() + "/./set/"), 5u) << DaemonLog();
  EXPECT_EQ(KeyGeneration(), 1u);
}

TEST_F(RegisterTest, SymlinksAndFifosAreRefusedAtOnce) {
  const SvmSetup s = SetUpSvm("vs1");
  const std::string set = MakeVolumeSet(s.svm_uuid, 8);
  const std::string sets = daemon().volume_root() + "/sets";
  // A symlinked directory component, beneath the root and pointing inside it.
  ASSERT_EQ(::symlink(set.c_str(), (sets + "/link").c_str()), 0);
  ExpectInvalid([&] { Register(sets + "/link"); }, "directory");
  // A symlink in place of the manifest (to the real one, moved aside).
  const std::string manifest = set + "/volset.manifest";
  std::filesystem::rename(manifest, set + "/real.manifest");
  ASSERT_EQ(::symlink((set + "/real.manifest").c_str(), manifest.c_str()), 0);
  ExpectInvalid([&] { Register(set); }, "directory");
  // A FIFO in place of the manifest: refused at once, the daemon keeps answering.
  ASSERT_EQ(::unlink(manifest.c_str()), 0);
  ASSERT_EQ(::mkfifo(manifest.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  ExpectInvalid([&] { Register(set); }, "directory");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(km().ListSvms({}).size(), 1u);
  ExpectNothingRegistered();

  // The real manifest back: the set registers.
  ASSERT_EQ(::unlink(manifest.c_str()), 0);
  std::filesystem::rename(set + "/real.manifest", manifest);
  EXPECT_EQ(Register(set), 8u) << DaemonLog();
}

TEST_F(RegisterTest, BadManifestLeavesTheTableAsItWas) {
  const SvmSetup s = SetUpSvm("vs1");
  constexpr size_t kVolumes = 60;
  const std::string set = MakeVolumeSet(s.svm_uuid, kVolumes);
  const std::string manifest = set + "/volset.manifest";
  const std::string complete = ReadFile(manifest);
  const std::vector<std::string> lines = Lines(complete);
  ASSERT_EQ(lines.size(), kVolumes + 1);
  // Volume lines of another set of the same SVM, to pad with.
  const std::vector<std::string> other = Lines(ReadFile(MakeVolumeSet(s.svm_uuid, 5) +
                                                        "/volset.manifest"));

  std::vector<std::string> truncated(lines.begin(), lines.end() - 5);  // 55 of 60
  std::vector<std::string> padded = lines;                             // 65 of 60
  padded.insert(padded.end(), other.begin() + 1, other.end());
  std::vector<std::string> duplicated = lines;  // 60 of 60, one volume twice
  duplicated.back() = lines[1];
  std::vector<std::string> bad_line = lines;  // the last line does not parse
  bad_line.back() = "not a volume line";
  std::vector<std::string> huge_dsid = lines;  // DSID 2^63
  huge_dsid[30] = huge_dsid[30].substr(0, 36) + " 9223372036854775808 " +
                  huge_dsid[30].substr(huge_dsid[30].rfind(' ') + 1);
  for (const auto& [name, variant] :
       {std::pair{"truncated", truncated}, std::pair{"padded", padded},
        std::pair{"duplicated", duplicated}, std::pair{"bad line", bad_line},
        std::pair{"dsid 2^63", huge_dsid}}) {
    SCOPED_TRACE(name);
    WriteFile(manifest, Join(variant), 0644);
    ExpectInvalid([&] { Register(set); }, "volset.manifest");
    ExpectNothingRegistered();
    EXPECT_TRUE(std::filesystem::exists(set + "/kek.bin")) << "a refused run removed the KEK";
  }

  // The complete manifest back: the same KEK and set register in full.
  WriteFile(manifest, complete, 0644);
  EXPECT_EQ(Register(set), kVolumes) << DaemonLog();
  EXPECT_EQ(KeyGeneration(), 1u);
  EXPECT_EQ(km().ListVolumes("vs1", {}).size(), kVolumes);
}

// CreateVolume's DSID is a signed 64-bit column: 2^63 and above are refused when the
// arguments are checked, with nothing created.
TEST_F(RegisterTest, CreateVolumeRefusesDsidFrom2To63) {
  SetUpSvm("vs1", {.volumes = 1});
  VariantMap options;
  options["dsid"] = sdbus::Variant(uint64_t{1} << 63);
  ExpectInvalid([&] { CreateVolume("vs1", "big-dsid", options); }, "dsid");
  options["dsid"] = sdbus::Variant(UINT64_MAX);
  ExpectInvalid([&] { CreateVolume("vs1", "big-dsid", options); }, "dsid");
  EXPECT_EQ(km().ListVolumes("vs1", {}).size(), 1u);
  options["dsid"] = sdbus::Variant(uint64_t{INT64_MAX});
  EXPECT_FALSE(CreateVolume("vs1", "max-dsid", options).empty());
}

// The duplicate-SVM error names the SVM that exists, not a uuid made up for the refused
// call.
TEST_F(RegisterTest, DuplicateSvmErrorNamesTheExistingSvm) {
  const std::string existing = km().CreateSvm("dup", {});
  try {
    km().CreateSvm("dup", {});
    ADD_FAILURE() << "a second SVM dup was created";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getMessage().rfind("1: ", 0), 0u) << e.getMessage();
    EXPECT_NE(e.getMessage().find("dup (" + existing + ")"), std::string::npos) << e.getMessage();
  }
}

}  // namespace
}  // namespace svmkey::integration
