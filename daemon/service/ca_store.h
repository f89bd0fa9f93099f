// CaStore: the CA bundles callers hand over for their Barbican configurations, kept by
// the daemon in files it creates itself: <ca_dir>/<config uuid>.pem, mode 0600.
//
// A caller passes a bundle as bytes (ca_pem) or a descriptor (ca_fd), never as a path:
// a path would be opened with the daemon's rights, and a relative one would be resolved
// against the daemon's working directory at the next enable or rekey. The table's
// ca_file column names the daemon's copy (docs/ARCHITECTURE.md §9).
//
// Plain POSIX; call from the control worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/status.h"
#include "engine/uuid.h"

namespace svmkey::daemon {

// True when `data` holds at least one PEM block ("-----BEGIN " ... "-----END ").
bool LooksLikePem(const uint8_t* data, size_t len);

// Writes the bundle (which must look like PEM: InvalidValue naming `what` otherwise) to
// <ca_dir>/<config>.pem, replacing a previous one whole: a temporary file, fsync, rename,
// fsync of the directory. Returns the path to store as ca_file.
Result<std::string> StoreCaBundle(const std::string& ca_dir, const Uuid& config,
                                  const uint8_t* data, size_t len, const std::string& what);

// Removes the daemon's copy of `config`'s bundle, if there is one.
void RemoveCaBundle(const std::string& ca_dir, const Uuid& config);

}  // namespace svmkey::daemon
