// Bulk paths of the volume table at 10^6 rows (docs/ARCHITECTURE.md §5: "10^6 rows in seconds").
//
//   BM_RegisterVolumes/N/B   N volumes in InsertMany calls of B rows (one transaction
//                            each), into a fresh table
//   BM_UpdateBlobs/N/B       N blob updates (new generation + 512-byte slot sector) in
//                            UpdateBlobs calls of B rows, after a rewrap
//   BM_StreamVolumes/N/P     every volume of the SVM by keyset pages of P rows
//
// Each iteration is one full run on a fresh file in $TMPDIR (tmpfs vs disk changes the
// fsync cost: say which you used when quoting numbers). Run:
//   build-table/tests/daemon/table/svmkey-table-bench --benchmark_filter=.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "daemon/table/key_store_table.h"
#include "daemon/table/rdb.h"
#include "daemon/table/svm_kek_table.h"
#include "daemon/table/svm_table.h"
#include "daemon/table/volume_table.h"
#include "tests/support/temp_dir.h"

namespace svmkey::table {
namespace {

Uuid Numbered(uint32_t prefix, uint64_t n) {
  Uuid u;
  for (int i = 0; i < 4; ++i) u.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(prefix >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) u.bytes[static_cast<size_t>(8 + i)] = static_cast<uint8_t>(n >> (56 - 8 * i));
  u.bytes[6] = 0x40;
  u.bytes[8] = static_cast<uint8_t>(0x80 | (u.bytes[8] & 0x3f));
  return u;
}

struct Fixture {
  ::svmkey::testing::TempDir dir{{.prefix = "svmkey-bench"}};  // outlives rdb
  std::unique_ptr<Rdb> rdb;
  Uuid svm = Numbered(0xbe, 1);
  Uuid key_store = Numbered(0xbe, 2);

  Fixture() {
    RdbOptions o;
    o.path = dir / "rdb.sqlite";
    rdb = std::move(Rdb::Open(o)).value();
    SvmTable(*rdb).Create({svm, "vs-bench", SvmKind::kData}).IgnoreError();
    NewBarbicanConfig c;
    c.uuid = key_store;
    c.name = "bench";
    c.svm = svm;
    c.key_id = "https://barbican.test/v1/secrets/bench";
    c.keystone_url = "https://keystone.test/v3/auth/tokens";
    c.application_cred_id = "bench";
    KeyStoreTable(*rdb).CreateBarbicanConfig(c, "bench-secret").IgnoreError();
    KeyStoreTable(*rdb).Enable(key_store).status().IgnoreError();
    WrappedSvmKek w{};
    SvmKekTable(*rdb).InsertInitialActive(svm, 1, w, c.key_id).IgnoreError();
  }
  ~Fixture() { rdb.reset(); }

  VolumeRow Volume(uint64_t n) const {
    VolumeRow v;
    v.uuid = Numbered(0x766f6c00, n);
    v.svm = svm;
    v.name = "vol" + std::to_string(n);
    v.dsid = n + 1;
    v.metadata_path = "/srv/volset/" + std::to_string(n) + ".meta";
    v.generation = 1;
    v.blob.emplace();
    std::memcpy(v.blob->data() + 48, &n, sizeof n);
    return v;
  }

  bool Register(uint64_t total, uint64_t per_txn) {
    std::vector<VolumeRow> batch;
    batch.reserve(per_txn);
    for (uint64_t base = 0; base < total; base += per_txn) {
      batch.clear();
      for (uint64_t i = base; i < std::min(total, base + per_txn); ++i) batch.push_back(Volume(i));
      if (!VolumeTable(*rdb).InsertMany(batch).ok()) return false;
    }
    return true;
  }
};

void BM_RegisterVolumes(benchmark::State& state) {
  const uint64_t total = static_cast<uint64_t>(state.range(0));
  const uint64_t per_txn = static_cast<uint64_t>(state.range(1));
  for (auto _ : state) {
    state.PauseTiming();
    Fixture f;
    state.ResumeTiming();
    if (!f.Register(total, per_txn)) state.SkipWithError("InsertMany failed");
    state.PauseTiming();
    f.rdb.reset();  // teardown outside the measurement
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * total));
}

void BM_UpdateBlobs(benchmark::State& state) {
  const uint64_t total = static_cast<uint64_t>(state.range(0));
  const uint64_t per_txn = static_cast<uint64_t>(state.range(1));
  for (auto _ : state) {
    state.PauseTiming();
    Fixture f;
    if (!f.Register(total, 50'000)) state.SkipWithError("register failed");
    std::vector<VolumeBlobUpdate> batch;
    batch.reserve(per_txn);
    state.ResumeTiming();
    for (uint64_t base = 0; base < total; base += per_txn) {
      batch.clear();
      for (uint64_t i = base; i < std::min(total, base + per_txn); ++i) {
        VolumeBlobUpdate u{Numbered(0x766f6c00, i), 2, {}};
        std::memcpy(u.blob.data() + 48, &i, sizeof i);
        batch.push_back(u);
      }
      if (!VolumeTable(*f.rdb).UpdateBlobs(batch).ok()) state.SkipWithError("update failed");
    }
    state.PauseTiming();
    f.rdb.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * total));
}

void BM_StreamVolumes(benchmark::State& state) {
  const uint64_t total = static_cast<uint64_t>(state.range(0));
  const size_t page = static_cast<size_t>(state.range(1));
  Fixture f;
  if (!f.Register(total, 50'000)) state.SkipWithError("register failed");
  std::vector<VolumeRow> buf;
  for (auto _ : state) {
    uint64_t seen = 0;
    int64_t cursor = 0;
    for (;;) {
      if (!VolumeTable(*f.rdb).ListPage(f.svm, cursor, page, &buf).ok()) {
        state.SkipWithError("ListPage failed");
        break;
      }
      if (buf.empty()) break;
      seen += buf.size();
      cursor = buf.back().id;
    }
    if (seen != total) state.SkipWithError("wrong row count");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * total));
}

BENCHMARK(BM_RegisterVolumes)
    ->Args({1'000'000, 50'000})
    ->Args({1'000'000, 1'000'000})
    ->Args({100'000, 1'000})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_UpdateBlobs)
    ->Args({1'000'000, 50'000})
    ->Args({1'000'000, 10'000})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_StreamVolumes)
    ->Args({1'000'000, 10'000})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace svmkey::table

BENCHMARK_MAIN();
