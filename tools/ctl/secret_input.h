// What svmkeyctl hands svmkeyd instead of paths: svmkeyd opens no file on a caller's word
// (docs/ARCHITECTURE.md §9), so svmkeyctl opens every file with the caller's own rights.
// Secrets (application credential secret, proxy password): never from the command line,
// never in a bus message; read from a file, stdin or a no-echo prompt and handed over as
// the read end of a pipe. Other files (a KEK file) as an open descriptor; a CA bundle as
// bytes.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <cstdint>
#include <string>
#include <vector>

namespace svmkey::ctl {

// svmkeyd's bound on a CA bundle (ca_pem, ipc/org.svmkey.KeyManager1.xml).
inline constexpr size_t kMaxCaBundleBytes = size_t{1} << 20;

// Reads the secret called `what` from `file` ("-" = stdin) or, when `file` is empty,
// from the terminal with echo off. Returns a pipe's read end holding it; the copies in
// this process are zeroed. Throws CtlExit (status 2) when there is nothing to read.
sdbus::UnixFd SecretPipe(const std::string& what, const std::string& file);

// Opens `file` for reading with the caller's rights, for an `h` argument. Throws CtlExit
// (status 2) when it cannot be opened.
sdbus::UnixFd OpenForDaemon(const std::string& what, const std::string& file);

// The contents of `file` (at most `max_bytes`), for an `ay` argument. Throws CtlExit
// (status 2) when it cannot be read or is larger.
std::vector<uint8_t> ReadSmallFile(const std::string& what, const std::string& file,
                                   size_t max_bytes);

}  // namespace svmkey::ctl
