// Where a caller may point RegisterVolumeSet: a directory beneath the volume root or
// beneath a root the administrator configured (svmkeyd --volume-set-root), and how the
// daemon opens the manifest there without following a caller's symlink or blocking on
// a FIFO (docs/ARCHITECTURE.md §4.7).
//
// Locate is lexical only: it never touches the file system, so its refusal cannot tell
// a caller whether some path exists. OpenManifest opens the root with the daemon's
// rights (the administrator chose it), then every component below it with openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, O_NOFOLLOW,
// O_NONBLOCK) and accepts only a regular file. Every refusal is InvalidValue (262185)
// naming `directory`. Plain POSIX: any thread may call.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/status.h"
#include "engine/volset/volume_set_manifest.h"

namespace svmkey::daemon {

struct VolumeSetDirectory {
  std::string root;      // the configured root it lies under (lexically normal, absolute)
  std::string relative;  // below root, "." for the root itself, never with ".."
  std::string path;      // root/relative, lexically normal: what the table records
};

// `directory` lexically normalized must be absolute and lie beneath (or be) one of
// `roots`. Relative roots and empty ones are ignored.
Result<VolumeSetDirectory> LocateVolumeSetDirectory(const std::string& directory,
                                                    const std::vector<std::string>& roots);

// Opens <directory>/volset.manifest as described above and parses its header.
Result<std::unique_ptr<volset::ManifestVolumeSource>> OpenVolumeSetManifest(
    const VolumeSetDirectory& directory);

}  // namespace svmkey::daemon
