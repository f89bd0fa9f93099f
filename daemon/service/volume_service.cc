#include "daemon/service/volume_service.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include "daemon/core/log.h"
#include "daemon/service/prechecks.h"
#include "daemon/service/volume_set_directory.h"
#include "daemon/table/svm_kek_table.h"
#include "engine/file_io.h"
#include "engine/svm_kek.h"
#include "engine/volume.h"
#include "engine/volset/kek_file.h"
#include "engine/volset/volume_set_manifest.h"

namespace svmkey::daemon {
namespace {

// Volume rows written per InsertMany transaction while registering a volume set.
constexpr size_t kRegisterBatch = 50000;

// A new volume's identity and metadata path: <volume_root>/<svm uuid>/<uuid>.meta, the
// directory created if needed.
Result<VolumeRef> NewVolumeRef(const std::string& volume_root, const NewVolume& volume) {
  VolumeRef ref;
  ref.id.volume = Uuid::Random();
  ref.id.svm = volume.svm;
  ref.id.dsid = volume.dsid;
  if (ref.id.dsid == 0) {  // a random 56-bit DSID, never 0
    for (int i = 0; i < 7; ++i) ref.id.dsid = ref.id.dsid << 8 | ref.id.volume.bytes[i + 9];
    ref.id.dsid |= 1;
  }
  const std::string dir = volume_root + "/" + volume.svm.ToString();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status(ErrorCode::kVdekBlobUpdateFailed, "cannot create " + dir + ": " + ec.message());
  }
  ref.path = dir + "/" + ref.id.volume.ToString() + ".meta";
  return ref;
}

// New keys are refused while the SVM's key store is not active (svm_kek_rekey);
// VolumeTable::Insert checks again inside its transaction.
Status RefuseNewKeysUnlessActive(table::Rdb& rdb, const Uuid& svm) {
  auto enabled = EnabledKeyStore(rdb, svm);
  if (!enabled.ok()) return enabled.status();
  if (enabled->state != table::KeyStoreState::kActive) {
    return Status(ErrorCode::kResourceInUse, "key store is " +
                                                 std::string(table::ToString(enabled->state)) +
                                                 ": new volume keys cannot be created now");
  }
  return Status::Ok();
}

// Two independent 64-bit hashes of a path (FNV-1a and std::hash): equal digests of
// different paths are as unlikely as a 128-bit collision.
std::pair<uint64_t, uint64_t> PathDigest(std::string_view path) {
  uint64_t fnv = 14695981039346656037ull;
  for (unsigned char c : path) fnv = (fnv ^ c) * 1099511628211ull;
  return {fnv, std::hash<std::string_view>{}(path)};
}

// The table's rows for the next batch of `source`'s volumes, for
// SvmKekTable::InsertInitialActiveWithVolumes.
table::SvmKekTable::VolumeRowBatches VolumeRowBatches(VolumeSource& source, const Uuid& svm,
                                                      uint64_t generation) {
  auto refs = std::make_shared<std::vector<VolumeRef>>(kRegisterBatch);
  return [&source, svm, generation, refs](std::vector<table::VolumeRow>* rows) -> Status {
    auto n = source.Next(*refs);
    if (!n.ok()) return n.status();
    rows->reserve(*n);
    for (size_t i = 0; i < *n; ++i) {
      const VolumeRef& ref = (*refs)[i];
      table::VolumeRow row;
      row.uuid = ref.id.volume;
      row.svm = svm;
      row.name = ref.id.volume.ToString();
      row.dsid = ref.id.dsid;
      row.metadata_path = ref.path;
      row.generation = generation;
      rows->push_back(std::move(row));
    }
    return Status::Ok();
  };
}

// The check pass over a whole manifest, before anything is adopted: every line parses,
// the number of lines is the header's count (the source checks both), no volume uuid
// or path appears twice, every DSID fits the table's signed 64-bit column. Memory: 32
// bytes per volume (a uuid and a 128-bit digest of the path).
Status ValidateManifest(volset::ManifestVolumeSource& source) {
  std::vector<std::array<uint8_t, 16>> uuids;
  std::vector<std::pair<uint64_t, uint64_t>> paths;
  // The header's count is the caller's word: reserve no more than a bounded guess, the
  // vectors grow with the lines actually read.
  const size_t expected = static_cast<size_t>(std::min<uint64_t>(source.header().count, 1 << 20));
  uuids.reserve(expected);
  paths.reserve(expected);
  std::vector<VolumeRef> refs(kRegisterBatch);
  for (;;) {
    auto n = source.Next(refs);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    for (size_t i = 0; i < *n; ++i) {
      if (refs[i].id.dsid > static_cast<uint64_t>(INT64_MAX)) {
        return Status(ErrorCode::kInvalidValue, source.dir() + "/volset.manifest: volume " +
                                                    refs[i].id.volume.ToString() +
                                                    ": DSID must be below 2^63");
      }
      uuids.push_back(refs[i].id.volume.bytes);
      paths.push_back(PathDigest(refs[i].path));
    }
  }
  std::sort(uuids.begin(), uuids.end());
  if (auto d = std::adjacent_find(uuids.begin(), uuids.end()); d != uuids.end()) {
    Uuid dup;
    dup.bytes = *d;
    return Status(ErrorCode::kInvalidValue,
                  source.dir() + "/volset.manifest: volume " + dup.ToString() + " is listed twice");
  }
  std::sort(paths.begin(), paths.end());
  if (std::adjacent_find(paths.begin(), paths.end()) != paths.end()) {
    return Status(ErrorCode::kInvalidValue,
                  source.dir() + "/volset.manifest: two volumes name the same file");
  }
  return Status::Ok();
}

// Adopts the KEK bytes as generation `generation` of the SVM's SVM-KEK: wrapped under the
// key store `config`, stored as the active row together with a row per volume of
// `volumes` (one transaction), installed in the key table. Sets `*count` to the rows.
Status AdoptKek(table::Rdb& rdb, KeyService& keys, const Uuid& config, const Uuid& svm,
                uint64_t generation, const SecureBuffer& kek_bytes, VolumeSource& volumes,
                uint64_t* count) {
  KeyTable& kt = keys.key_table();
  auto kek = volset::ImportKekBytes(kt, kek_bytes, "kek_fd");
  if (!kek.ok()) return kek.status();
  std::string key_id;
  auto wrapped = keys.WrapSvmKek(rdb, config, svm, generation, *kek, &key_id);
  Status s = wrapped.status();
  if (s.ok()) {
    auto inserted = table::SvmKekTable(rdb).InsertInitialActiveWithVolumes(
        svm, generation, *wrapped, key_id, VolumeRowBatches(volumes, svm, generation));
    s = inserted.status();
    if (inserted.ok()) *count = *inserted;
  }
  if (!s.ok()) {
    kt.Release(*kek).IgnoreError();
    return s;
  }
  keys.Install(svm, generation, *kek);
  return Status::Ok();
}

}  // namespace

Result<Uuid> CreateVolume(table::Rdb& rdb, KeyService& keys, const std::string& volume_root,
                          const NewVolume& volume) {
  SVMKEY_RETURN_IF_ERROR(RefuseNewKeysUnlessActive(rdb, volume.svm));
  auto kek = keys.ActiveSvmKek(rdb, volume.svm);
  if (!kek.ok()) return kek.status();
  auto ref = NewVolumeRef(volume_root, volume);
  if (!ref.ok()) return ref.status();
  auto io = MakeSyncFileIo();
  CreateResult created;
  SVMKEY_RETURN_IF_ERROR(CreateVolumes(*io, keys.key_table(), kek->handle, kek->generation,
                                       {&*ref, 1}, {&created, 1}));
  SVMKEY_RETURN_IF_ERROR(created.status);
  table::VolumeRow row;
  row.uuid = ref->id.volume;
  row.svm = volume.svm;
  row.name = volume.name;
  row.dsid = ref->id.dsid;
  row.metadata_path = ref->path;
  row.generation = kek->generation;
  row.key_manager = volume.key_manager;
  row.blob = created.blob;
  // COMMIT POINT: the row makes the volume exist. Before it, a crash leaves an orphan
  // metadata file no one refers to (harmless); after it, the volume is rekeyed with its
  // SVM.
  Status s = table::VolumeTable(rdb).Insert(row);
  if (!s.ok()) {
    ::unlink(ref->path.c_str());
    return s;
  }
  LogInfo("created encrypted volume " + volume.name + " (" + row.uuid.ToString() + ") of SVM " +
          volume.svm.ToString() + " at generation " + std::to_string(kek->generation));
  return row.uuid;
}

Result<uint64_t> RegisterVolumeSet(table::Rdb& rdb, KeyService& keys, const VolumeSetImport& set) {
  auto source = OpenVolumeSetManifest(set.directory);
  if (!source.ok()) return source.status();
  const auto& header = (*source)->header();
  if (!(header.svm == set.svm)) {
    return Status(ErrorCode::kInvalidValue, "the volume set in " + set.directory.path +
                                                " belongs to SVM " + header.svm.ToString());
  }
  auto enabled = EnabledKeyStore(rdb, set.svm);
  if (!enabled.ok()) return enabled.status();
  if (table::SvmKekTable(rdb).GetActive(set.svm).ok()) {
    return Status(ErrorCode::kDuplicateEntry,
                  "SVM already has an SVM-KEK; a volume set can be "
                  "registered only on an SVM without encrypted volumes");
  }
  // Check, then commit: the whole manifest is read and validated before the KEK is
  // touched, then read again inside the one transaction that adopts the KEK and inserts
  // every row (which fails, and leaves the table as it was, if the file changed).
  SVMKEY_RETURN_IF_ERROR(ValidateManifest(**source));
  SVMKEY_RETURN_IF_ERROR((*source)->Rewind());
  uint64_t count = 0;
  SVMKEY_RETURN_IF_ERROR(AdoptKek(rdb, keys, enabled->uuid, set.svm, header.generation, *set.kek,
                                  **source, &count));
  LogInfo("registered " + std::to_string(count) + " volumes of " + set.directory.path + " for SVM " +
          set.svm.ToString() + " at generation " + std::to_string(header.generation));
  return count;
}

}  // namespace svmkey::daemon
