// Shared fixtures for the table tests: an Rdb in a private temporary directory, and
// builders for the rows most tests need (a data SVM with an enabled Barbican key store
// and an active SVM-KEK, volumes).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "daemon/table/job_table.h"
#include "daemon/table/key_store_table.h"
#include "daemon/table/rdb.h"
#include "daemon/table/svm_kek_table.h"
#include "daemon/table/svm_table.h"
#include "daemon/table/volume_table.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace svmkey::table::testing {

using ::svmkey::testing::TempDir;

inline std::string ReadAllBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline Uuid U(const char* text) { return *Uuid::Parse(text); }

// Deterministic UUIDs for bulk rows: prefix ‖ counter.
inline Uuid NumberedUuid(uint32_t prefix, uint64_t n) {
  Uuid u;
  for (int i = 0; i < 4; ++i) u.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(prefix >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) u.bytes[static_cast<size_t>(8 + i)] = static_cast<uint8_t>(n >> (56 - 8 * i));
  u.bytes[6] = 0x40;  // version 4 nibble, so the text form looks like any other uuid
  u.bytes[8] = static_cast<uint8_t>(0x80 | (u.bytes[8] & 0x3f));
  return u;
}

inline WrappedSvmKek FakeWrapped(uint8_t fill) {
  WrappedSvmKek w;
  w.fill(fill);
  return w;
}

inline SlotSector FakeBlob(uint64_t generation, uint64_t n) {
  SlotSector b{};
  std::memcpy(b.data(), "SVMKSLT1", 8);
  std::memcpy(b.data() + 16, &generation, 8);
  std::memcpy(b.data() + 48, &n, 8);
  return b;
}

inline constexpr char kKeyId[] = "https://barbican.test:9311/v1/secrets/5d1c7a2e-0000-4000-8000-000000000001";
inline constexpr char kKeystone[] = "https://keystone.test:5000/v3/auth/tokens";

// An Rdb in a fresh directory, with an optional fake clock.
class RdbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    Reopen();
  }

  RdbOptions Options() {
    RdbOptions o;
    o.path = dir_ / "rdb.sqlite";
    o.clock = [this] { return now_ms_.load(); };
    return o;
  }
  void Reopen() {
    rdb_.reset();
    Result<std::unique_ptr<Rdb>> r = Rdb::Open(Options());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    rdb_ = std::move(r).value();
  }

  // A data SVM with an enabled, active Barbican key store and SVM-KEK generation 1.
  struct Setup {
    Uuid svm;
    Uuid key_store;
  };
  Setup MakeDataSvm(const std::string& name, uint32_t tag) {
    Setup s{NumberedUuid(tag, 1), NumberedUuid(tag, 2)};
    EXPECT_OK(SvmTable(*rdb_).Create({s.svm, name, SvmKind::kData}));
    NewBarbicanConfig c;
    c.uuid = s.key_store;
    c.name = name + "-barbican";
    c.svm = s.svm;
    c.key_id = kKeyId;
    c.keystone_url = kKeystone;
    c.application_cred_id = "cred-" + name;
    EXPECT_OK(KeyStoreTable(*rdb_).CreateBarbicanConfig(c, "not-a-real-secret"));
    Result<EnableOutcome> e = KeyStoreTable(*rdb_).Enable(s.key_store);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_OK(SvmKekTable(*rdb_).InsertInitialActive(s.svm, 1, FakeWrapped(1), kKeyId));
    return s;
  }

  static VolumeRow MakeVolume(const Uuid& svm, uint64_t n, uint64_t generation = 1) {
    VolumeRow v;
    v.uuid = NumberedUuid(0x766f6c00, n);
    v.svm = svm;
    v.name = "vol" + std::to_string(n);
    v.dsid = 1000 + n;
    v.metadata_path = "/srv/volumes/vol" + std::to_string(n) + ".meta";
    v.generation = generation;
    v.blob = FakeBlob(generation, n);
    return v;
  }

  TempDir dir_;
  std::atomic<int64_t> now_ms_{1'700'000'000'000};
  std::unique_ptr<Rdb> rdb_;
};

}  // namespace svmkey::table::testing
