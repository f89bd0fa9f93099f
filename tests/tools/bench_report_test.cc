// BenchReport: medians, spreads and same-run ratios in the CSV; n/a cells stay empty.
#include "tools/bench/bench_report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace svmkey::bench {
namespace {

TEST(BenchReportTest, MedianOfOddAndEvenCounts) {
  EXPECT_DOUBLE_EQ(Median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(Median({}), 0);
}

TEST(BenchReportTest, CsvHoldsMedianSpreadAndRatiosOfTheSameCacheAndSize) {
  BenchReport report;
  auto fill = [&](const char* mode, std::vector<double> rates) {
    BenchCell& cell = report.Cell(mode, 100, "warm");
    cell.volumes_per_s = rates;
    cell.cpu_us_per_volume = std::vector<double>(rates.size(), 10.0);
    cell.peak_rss_kib = 2048;
    cell.volumes_per_run = 100;
  };
  fill(kModeUring, {90, 100, 80});
  fill(kModeIoOnly, {100, 100, 100});
  fill(kModeFio, {50});
  fill(kModeNaive, {2, 2});
  report.Cell(kModeUring, 100, "cold").note = "n/a: drop_caches not permitted";
  testing::TempDir dir;
  const std::string path = dir.path() + "/r.csv";
  ASSERT_TRUE(report.WriteCsv(path).ok());
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  EXPECT_NE(text.find("svmkey-uring,100,warm,3,90.0,80.0,100.0,0.90,1.80,45.00,2.0,10.00,100,\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("svmkey-uring,100,cold,0,,,,,,,,,0,n/a: drop_caches not permitted\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace svmkey::bench
