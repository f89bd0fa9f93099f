// SVM-KEK files for performance volume sets: 32 raw key bytes, mode 0600.
//
// These exist only so a volume set made by svmkey-volset can be verified, rekeyed and
// benchmarked across runs. A real SVM-KEK never touches disk unwrapped: the daemon keeps
// it wrapped under the Barbican key in the table. Key bytes pass only through a
// SecureBuffer (locked, wiped) on their way into a KeyTable; nothing here prints them.
#pragma once

#include <string>
#include <string_view>

#include "engine/key_table.h"
#include "engine/secure_memory.h"
#include "engine/status.h"

namespace svmkey::volset {

inline constexpr std::string_view kKekFileName = "kek.bin";

// Reads exactly kKeyBytes from `path` into secure memory and imports them into `table`.
// Fails with InvalidValue when the file is not exactly 32 bytes, EntryNotFound when it
// does not exist.
Result<KeyHandle> ImportKekFile(KeyTable& table, const std::string& path);

// The same from an open, readable descriptor (not closed here); `name` names the file in
// messages. Reads at most one byte more than a key, so any size of file costs nothing.
Result<KeyHandle> ImportKekFd(KeyTable& table, int fd, const std::string& name);

// The same from bytes already read (the daemon's kek_fd): exactly kKeyBytes, else
// InvalidValue naming `name`.
Result<KeyHandle> ImportKekBytes(KeyTable& table, const SecureBuffer& bytes, const std::string& name);

// Draws a fresh random key in secure memory, writes it to `path` (0600, fsync'd;
// through a temporary file and rename, so an existing file is replaced only whole),
// and imports it into `table`. With `replace` false an existing file is an error
// (DuplicateEntry).
Result<KeyHandle> GenerateKekFile(KeyTable& table, const std::string& path, bool replace);

}  // namespace svmkey::volset
