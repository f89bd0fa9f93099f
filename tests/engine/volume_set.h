// Test helper shared by the rewrap and crash tests: a directory of encrypted volumes
// under SVM-KEK generation g, the key for g+1, and ways to prove every VDEK unchanged
// (keyed fingerprints, never key bytes).
//
// Ownership: a VolumeSet owns its KeyTable, its key handles and its directory (removed
// in the destructor). Single-threaded, test-only.
#pragma once

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/file_io.h"
#include "engine/key_table.h"
#include "engine/rewrap.h"
#include "engine/uring_file_io.h"
#include "engine/volume.h"
#include "engine/volume_metadata.h"
#include "tests/support/temp_dir.h"

namespace svmkey::testing {

inline std::vector<uint8_t> ReadWholeFile(const std::string& path) {
  std::vector<uint8_t> out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  uint8_t buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

inline bool WriteWholeFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const bool ok = ::pwrite(fd, bytes.data(), bytes.size(), 0) ==
                  static_cast<ssize_t>(bytes.size());
  ::close(fd);
  return ok;
}

inline std::unique_ptr<FileIo> MakeIo(IoMode mode) {
  auto io = MakeFileIo(mode);
  EXPECT_TRUE(io.ok()) << io.status().ToString();
  return io.ok() ? std::move(io).value() : MakeSyncFileIo();
}

inline const char* IoModeName(IoMode mode) {
  return mode == IoMode::kSync ? "sync" : mode == IoMode::kUring ? "uring" : "auto";
}

class VolumeSet {
 public:
  static constexpr uint64_t kOldGen = 7;
  static constexpr uint64_t kNewGen = 8;

  VolumeSet(bool prefer_memory = false)
      : dir_({.prefix = "svmkey-rw", .base = TempBase(prefer_memory)}) {
    auto t = KeyTable::Create(16);
    EXPECT_TRUE(t.ok());
    table_ = std::move(t).value();
    old_kek_ = *table_->Generate();
    new_kek_ = *table_->Generate();
    other_kek_ = *table_->Generate();
    for (size_t i = 0; i < fingerprint_key_.size(); ++i) {
      fingerprint_key_[i] = static_cast<uint8_t>(0xA5 ^ i);
    }
    svm_ = Uuid::Random();
  }

  // Adds n volumes, created durable under `kek`/`generation` (default: old key, g).
  // clone_of entries are indices within this call (-1 = own VDEK).
  void Add(size_t n, std::vector<int> clone_of = {}, std::optional<KeyHandle> kek = {},
           uint64_t generation = kOldGen) {
    std::vector<VolumeRef> refs(n);
    for (size_t i = 0; i < n; ++i) {
      refs[i].id.volume = Uuid::Random();
      refs[i].id.svm = svm_;
      refs[i].id.dsid = 1000 + volumes_.size() + i;
      char name[32];
      std::snprintf(name, sizeof name, "/vol-%06zu.meta", volumes_.size() + i);
      refs[i].path = dir_.path() + name;
    }
    std::vector<CreateResult> results(n);
    auto io = MakeSyncFileIo();
    Status s = CreateVolumes(*io, *table_, kek.value_or(old_kek_), generation, refs, results,
                             clone_of);
    EXPECT_TRUE(s.ok()) << s.ToString();
    for (const auto& r : results) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    volumes_.insert(volumes_.end(), refs.begin(), refs.end());
  }

  // Opens every volume under {g, g+1}; one result per volume.
  std::vector<OpenResult> Verify(const KeyRing& ring) {
    std::vector<OpenResult> out(volumes_.size());
    auto io = MakeSyncFileIo();
    Status s = VerifyVolumes(*io, *table_, ring, volumes_, out, fingerprint_key_.data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  std::vector<OpenResult> VerifyBoth() { return Verify(Ring(true, true)); }

  KeyRing Ring(bool with_old, bool with_new) const {
    KeyRing ring;
    if (with_old) ring.Add(kOldGen, old_kek_);
    if (with_new) ring.Add(kNewGen, new_kek_);
    return ring;
  }

  RewrapKeys Keys() const {
    RewrapKeys k;
    k.old_kek = old_kek_;
    k.old_generation = kOldGen;
    k.new_kek = new_kek_;
    k.new_generation = kNewGen;
    return k;
  }

  Result<RewrapCounters> Rewrap(FileIo& io, const RewrapOptions& options = {},
                                const RewrapProgress& progress = {}) {
    SpanVolumeSource source(volumes_);
    return RewrapVolumes(io, *table_, Keys(), source, options, progress);
  }

  std::vector<std::vector<uint8_t>> Snapshot() const {
    std::vector<std::vector<uint8_t>> out;
    for (const auto& v : volumes_) out.push_back(ReadWholeFile(v.path));
    return out;
  }
  void Restore(const std::vector<std::vector<uint8_t>>& files) const {
    for (size_t i = 0; i < volumes_.size(); ++i) {
      if (files[i].empty()) {
        ::unlink(volumes_[i].path.c_str());
      } else {
        ASSERT_TRUE(WriteWholeFile(volumes_[i].path, files[i]));
      }
    }
  }

  KeyTable& table() { return *table_; }
  KeyHandle old_kek() const { return old_kek_; }
  KeyHandle new_kek() const { return new_kek_; }
  KeyHandle other_kek() const { return other_kek_; }
  std::vector<VolumeRef>& volumes() { return volumes_; }
  const std::string& dir() const { return dir_.path(); }
  const Uuid& svm() const { return svm_; }

 private:
  TempDir dir_;
  std::unique_ptr<KeyTable> table_;
  KeyHandle old_kek_, new_kek_, other_kek_;
  std::array<uint8_t, 32> fingerprint_key_{};
  Uuid svm_;
  std::vector<VolumeRef> volumes_;
};

}  // namespace svmkey::testing
