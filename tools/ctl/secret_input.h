// Secrets for svmkeyctl (application credential secret, proxy password): never from the
// command line, never in a bus message. They are read from a file, stdin or a no-echo
// prompt and handed to svmkeyd as the read end of a pipe (docs/ARCHITECTURE.md §9).
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <string>

namespace svmkey::ctl {

// Reads the secret called `what` from `file` ("-" = stdin) or, when `file` is empty,
// from the terminal with echo off. Returns a pipe's read end holding it; the copies in
// this process are zeroed. Throws CtlExit (status 2) when there is nothing to read.
sdbus::UnixFd SecretPipe(const std::string& what, const std::string& file);

}  // namespace svmkey::ctl
