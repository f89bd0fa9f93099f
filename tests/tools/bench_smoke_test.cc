// bench-smoke: svmkey-bench on 1,000 volumes, one repetition. Asserts only that it runs
// and writes its CSV (header, a row per mode and cache state) and its PNG; no timing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/command.h"
#include "tests/support/temp_dir.h"
#include "tools/bench/bench_report.h"

namespace svmkey::bench {
namespace {

using testing::Sh;
using testing::TempDir;
using testing::ToolPath;

TEST(BenchSmokeTest, RunsOnAThousandVolumesAndWritesCsvAndPng) {
  const std::string tool = ToolPath("SVMKEY_BENCH");
  ASSERT_FALSE(tool.empty()) << "SVMKEY_BENCH is not set (run through meson test)";
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string csv = dir.path() + "/out.csv";
  const std::string png = dir.path() + "/out.png";
  const auto run = Sh(tool + " --work-dir " + dir.path() + "/work --sizes 1000 --reps 1" +
                         " --csv " + csv + " --png " + png + " --remove-sets",
                     std::chrono::seconds(600));
  ASSERT_EQ(run.status, 0) << run.output();
  EXPECT_NE(run.output().find("verified after the runs: all 1000 volumes"), std::string::npos)
      << run.output();

  std::ifstream in(csv);
  ASSERT_TRUE(in) << csv;
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, kCsvHeader);
  std::set<std::string> rows;
  while (std::getline(in, line)) {
    std::stringstream fields(line);
    std::string mode, n, cache;
    std::getline(fields, mode, ',');
    std::getline(fields, n, ',');
    std::getline(fields, cache, ',');
    EXPECT_EQ(n, "1000") << line;
    rows.insert(mode + "/" + cache);
  }
  for (const std::string& mode : kAllModes) {
    for (const char* cache : {"warm", "cold"}) {
      EXPECT_EQ(rows.count(mode + "/" + cache), 1u) << "no CSV row for " << mode << " " << cache;
    }
  }
  EXPECT_EQ(rows.size(), kAllModes.size() * 2);

  std::ifstream image(png, std::ios::binary);
  ASSERT_TRUE(image) << png;
  char signature[8] = {};
  image.read(signature, sizeof signature);
  EXPECT_EQ(std::string(signature, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

// Without gnuplot (and fio) on PATH a complete run still succeeds: the CSV is written,
// the missing plot and fio rows are n/a, the exit status is 0.
TEST(BenchSmokeTest, MissingGnuplotIsNotAFailure) {
  const std::string tool = ToolPath("SVMKEY_BENCH");
  ASSERT_FALSE(tool.empty()) << "SVMKEY_BENCH is not set (run through meson test)";
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string empty_path = dir.path() + "/empty-path";
  std::filesystem::create_directories(empty_path);
  const std::string csv = dir.path() + "/out.csv";
  const std::string png = dir.path() + "/out.png";
  const auto run = Sh("env PATH=" + empty_path + " " + tool + " --work-dir " + dir.path() +
                          "/work --sizes 100 --reps 1 --modes svmkey-uring,fio --cache warm --csv " +
                          csv + " --png " + png + " --remove-sets",
                      std::chrono::seconds(600));
  ASSERT_EQ(run.status, 0) << run.output();
  EXPECT_NE(run.output().find("PNG: n/a: gnuplot not found"), std::string::npos) << run.output();
  EXPECT_TRUE(std::filesystem::exists(csv)) << run.output();
  EXPECT_FALSE(std::filesystem::exists(png));
}

}  // namespace
}  // namespace svmkey::bench
