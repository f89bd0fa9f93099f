// The volumes of an SVM: creating one encrypted volume, registering a volume set made
// offline by svmkey-volset, and paging through them. Every function takes the table
// connection of the calling thread (the control worker's for the writes).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/service/key_service.h"
#include "daemon/service/volume_set_directory.h"
#include "daemon/table/rdb.h"
#include "daemon/table/states.h"
#include "daemon/table/volume_table.h"
#include "engine/secure_memory.h"
#include "engine/status.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

struct NewVolume {
  Uuid svm;
  std::string name;
  uint64_t dsid = 0;  // 0: a random 56-bit DSID
  table::KeyManager key_manager = table::KeyManager::kData;
};

// Creates the volume's metadata file under <volume_root>/<svm uuid>/ with a fresh VDEK
// wrapped by the SVM's active SVM-KEK, then its row. Refused (ResourceInUse) while the
// SVM's key store is not active. Returns the new volume's uuid.
Result<Uuid> CreateVolume(table::Rdb& rdb, KeyService& keys, const std::string& volume_root,
                          const NewVolume& volume);

struct VolumeSetImport {
  Uuid svm;
  VolumeSetDirectory directory;  // where the manifest is (volume_set_directory.h)
  // The set's SVM-KEK as the caller passed it (kek_fd, the kek.bin svmkey-volset wrote);
  // shared so the import can be copied into a control-worker task.
  std::shared_ptr<const SecureBuffer> kek;
};

// Adopts the KEK (exactly 32 bytes, InvalidValue naming kek_fd otherwise) as the SVM's
// initial SVM-KEK (wrapped under its enabled key store) and inserts a row per volume of
// the set. Only for an SVM without an SVM-KEK (DuplicateEntry otherwise). All or
// nothing: the manifest (opened as OpenVolumeSetManifest says) is validated whole first
// (every line parses, as many lines as the header's count, no volume or file twice),
// then the SVM-KEK and every row are inserted in one transaction; any failure, or a
// crash, leaves the table as it was. The daemon never removes the caller's kek.bin: it
// did not create it. Returns the number of volumes registered.
Result<uint64_t> RegisterVolumeSet(table::Rdb& rdb, KeyService& keys, const VolumeSetImport& set);

}  // namespace svmkey::daemon
