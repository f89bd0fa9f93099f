#include "daemon/service/volume_service.h"

#include <unistd.h>

#include <filesystem>

#include "daemon/core/log.h"
#include "daemon/service/prechecks.h"
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

// Adopts the KEK bytes as generation `generation` of the SVM's SVM-KEK: wrapped under the
// key store `config`, stored as the active row, installed in the key table.
Status AdoptKek(table::Rdb& rdb, KeyService& keys, const Uuid& config, const Uuid& svm,
                uint64_t generation, const SecureBuffer& kek_bytes) {
  KeyTable& kt = keys.key_table();
  auto kek = volset::ImportKekBytes(kt, kek_bytes, "kek_fd");
  if (!kek.ok()) return kek.status();
  std::string key_id;
  auto wrapped = keys.WrapSvmKek(rdb, config, svm, generation, *kek, &key_id);
  Status s = wrapped.ok()
                 ? table::SvmKekTable(rdb).InsertInitialActive(svm, generation, *wrapped, key_id)
                 : wrapped.status();
  if (!s.ok()) {
    kt.Release(*kek).IgnoreError();
    return s;
  }
  keys.Install(svm, generation, *kek);
  return Status::Ok();
}

// Inserts a row for every volume of `source`; returns how many.
Result<uint64_t> InsertVolumeRows(table::Rdb& rdb, VolumeSource& source, const Uuid& svm,
                                  uint64_t generation) {
  table::VolumeTable volumes(rdb);
  std::vector<VolumeRef> refs(kRegisterBatch);
  std::vector<table::VolumeRow> rows;
  rows.reserve(refs.size());
  uint64_t count = 0;
  for (;;) {
    auto n = source.Next(refs);
    if (!n.ok()) return n.status();
    if (*n == 0) return count;
    rows.clear();
    for (size_t i = 0; i < *n; ++i) {
      table::VolumeRow row;
      row.uuid = refs[i].id.volume;
      row.svm = svm;
      row.name = refs[i].id.volume.ToString();
      row.dsid = refs[i].id.dsid;
      row.metadata_path = refs[i].path;
      row.generation = generation;
      rows.push_back(std::move(row));
    }
    SVMKEY_RETURN_IF_ERROR(volumes.InsertMany(rows));
    count += *n;
  }
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
  auto source = volset::ManifestVolumeSource::Open(set.directory);
  if (!source.ok()) return source.status();
  const auto& header = (*source)->header();
  if (!(header.svm == set.svm)) {
    return Status(ErrorCode::kInvalidValue, "the volume set in " + set.directory +
                                                " belongs to SVM " + header.svm.ToString());
  }
  auto enabled = EnabledKeyStore(rdb, set.svm);
  if (!enabled.ok()) return enabled.status();
  if (table::SvmKekTable(rdb).GetActive(set.svm).ok()) {
    return Status(ErrorCode::kDuplicateEntry,
                  "SVM already has an SVM-KEK; a volume set can be "
                  "registered only on an SVM without encrypted volumes");
  }
  SVMKEY_RETURN_IF_ERROR(AdoptKek(rdb, keys, enabled->uuid, set.svm, header.generation, *set.kek));
  auto count = InsertVolumeRows(rdb, **source, set.svm, header.generation);
  if (!count.ok()) return count.status();
  LogInfo("registered " + std::to_string(*count) + " volumes of " + set.directory + " for SVM " +
          set.svm.ToString() + " at generation " + std::to_string(header.generation));
  return count;
}

}  // namespace svmkey::daemon
