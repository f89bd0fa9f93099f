// rw_rewrap_bench: the engine-level measurement behind the defaults in engine/rewrap.cc
// (durability mode, batch size) and engine/uring_file_io.h (queue depth). Not a test;
// tools/svmkey-bench is the user-facing benchmark.
//
//   rw_rewrap_bench DIR N [config ...]
//   config = mode:durability:batch:depth[:io]   e.g. uring:syncfs:4096:256  sync:fdatasync:1024:0
//
// Creates N volumes in DIR once, then runs one rotation per config (g → g+1 → g+2 ...)
// over the same files, warm cache, and prints volumes/s. Each config runs `repeat`
// times (env REPEAT, default 1); the median is printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/key_table.h"
#include "engine/rewrap.h"
#include "engine/uring_file_io.h"
#include "engine/volume.h"

using namespace svmkey;

namespace {

struct Config {
  std::string text;
  IoMode mode = IoMode::kUring;
  RewrapOptions options;
  unsigned depth = 256;
};

bool Parse(const std::string& text, Config* c) {
  c->text = text;
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() < 4) return false;
  if (!ParseIoMode(parts[0], &c->mode)) return false;
  c->options.durability = parts[1] == "fdatasync" ? RewrapDurability::kFdatasyncPerFile
                                                  : RewrapDurability::kSyncFsPerBatch;
  c->options.batch_size = std::strtoul(parts[2].c_str(), nullptr, 10);
  c->depth = static_cast<unsigned>(std::strtoul(parts[3].c_str(), nullptr, 10));
  c->options.io_only = parts.size() > 4 && parts[4] == "io";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s DIR N config...\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const size_t n = std::strtoul(argv[2], nullptr, 10);
  const int repeat = std::getenv("REPEAT") ? std::atoi(std::getenv("REPEAT")) : 1;
  std::vector<Config> configs;
  for (int i = 3; i < argc; ++i) {
    Config c;
    if (!Parse(argv[i], &c)) {
      std::fprintf(stderr, "bad config %s\n", argv[i]);
      return 2;
    }
    configs.push_back(c);
  }
  auto table = KeyTable::Create(4 + configs.size() * static_cast<size_t>(repeat));
  if (!table.ok()) return 1;
  std::vector<KeyHandle> keks{*(*table)->Generate()};
  const Uuid svm = Uuid::Random();
  std::vector<VolumeRef> vols(n);
  for (size_t i = 0; i < n; ++i) {
    vols[i].id = {Uuid::Random(), svm, 1 + i};
    char name[40];
    std::snprintf(name, sizeof name, "/v%07zu.meta", i);
    vols[i].path = dir + name;
  }
  {
    std::vector<CreateResult> results(n);
    auto io = MakeSyncFileIo();
    const auto t0 = std::chrono::steady_clock::now();
    Status s = CreateVolumes(*io, **table, keks[0], 1, vols, results);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!s.ok()) {
      std::fprintf(stderr, "create: %s\n", s.ToString().c_str());
      return 1;
    }
    std::printf("create %zu volumes: %.0f volumes/s\n", n, n / secs);
  }
  uint64_t gen = 1;
  for (const Config& c : configs) {
    std::vector<double> rates;
    for (int r = 0; r < repeat; ++r) {
      UringOptions uo;
      if (c.depth != 0) uo.queue_depth = c.depth;
      auto io = MakeFileIo(c.mode, nullptr, uo);
      if (!io.ok()) {
        std::fprintf(stderr, "%s\n", io.status().ToString().c_str());
        return 1;
      }
      RewrapKeys keys;
      keys.old_kek = keks.back();
      keys.old_generation = gen;
      if (!c.options.io_only) keks.push_back(*(*table)->Generate());
      keys.new_kek = c.options.io_only ? *(*table)->Generate() : keks.back();
      keys.new_generation = gen + 1;
      SpanVolumeSource source(vols);
      const auto t0 = std::chrono::steady_clock::now();
      auto counters = RewrapVolumes(**io, **table, keys, source, c.options, {});
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!counters.ok() || counters->rewrapped != n) {
        std::fprintf(stderr, "%s: run failed (%s, rewrapped %llu)\n", c.text.c_str(),
                     counters.status().ToString().c_str(),
                     counters.ok() ? static_cast<unsigned long long>(counters->rewrapped) : 0ull);
        return 1;
      }
      if (!c.options.io_only) ++gen;
      rates.push_back(n / secs);
    }
    std::sort(rates.begin(), rates.end());
    std::printf("%-32s %10.0f volumes/s (median of %d)\n", c.text.c_str(),
                rates[rates.size() / 2], repeat);
    std::fflush(stdout);
  }
  return 0;
}
