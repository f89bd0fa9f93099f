// FaultInjectingFileIo: a FileIo wrapper for crash tests (LevelDB's
// db/fault_injection_test.cc, through the I/O seam).
//
// Every operation is counted: each IoOp of an Execute call in index order, and each
// SyncFs call, is one op. At op index `plan.op_index` it injects one of:
//   kFail      the op fails with -plan.error and has no effect; later ops run normally.
//              (A close still releases the descriptor, as close(2) does on Linux.)
//   kTear      a write: only its first plan.tear_bytes bytes reach the file. Then the
//              "machine dies": that op and every later op fail with -EIO. Data already
//              written stays (a process crash: the page cache survives). At a non-write
//              op this is a plain crash with no partial effect.
//   kPowerCut  that op and every later op fail with -EIO, and everything not yet
//              durable is dropped: every written range not covered by a later fdatasync
//              of its file or a SyncFs of its file system gets its previous bytes (and
//              size) back, and files created since the last SyncFs are unlinked. The
//              files are left as the disk would hold them after the cut.
// After a crash, Close ops still close their descriptors for real (and report -EIO) so a
// test can run thousands of crash points without leaking descriptors.
//
// op_count() after a clean run (kind kNone) is the number of crash points of that run.
//
// Ownership: wraps `inner`, which must outlive this object. Test-only; not thread-safe.
// It reads old bytes with plain syscalls before each write (bookkeeping, not seam I/O).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "file_io.h"

namespace svmkey {

enum class FaultKind : uint8_t { kNone, kFail, kTear, kPowerCut };

struct FaultPlan {
  FaultKind kind = FaultKind::kNone;
  uint64_t op_index = 0;  // 0-based index of the op to hit
  int error = 5;          // EIO; the errno for kFail
  uint32_t tear_bytes = 256;  // kTear: bytes of the write that reach the file
};

// What kind of op an index was (for picking, say, only write ops to tear).
enum class TracedOp : uint8_t { kOpen, kRead, kWrite, kFdatasync, kClose, kSyncFs };

class FaultInjectingFileIo final : public FileIo {
 public:
  explicit FaultInjectingFileIo(FileIo& inner, FaultPlan plan = {});

  std::string_view name() const override { return name_; }
  Status Execute(std::span<IoOp> ops) override;
  int SyncFs(int fd) override;
  Status RegisterBuffers(std::span<const iovec> buffers) override {
    return inner_.RegisterBuffers(buffers);
  }
  void UnregisterBuffers() override { inner_.UnregisterBuffers(); }

  uint64_t op_count() const { return count_; }
  bool fault_hit() const { return hit_; }
  bool crashed() const { return crashed_; }
  // Every op seen so far, by kind (index = op index).
  const std::vector<TracedOp>& trace() const { return trace_; }
  // Writes rolled back and files unlinked by a power cut.
  size_t rolled_back_writes() const { return rolled_back_writes_; }
  size_t unlinked_files() const { return unlinked_files_; }
  // Writes that are not durable yet (what a power cut now would roll back).
  size_t unsynced_writes() const { return unsynced_.size(); }

 private:
  struct UnsyncedWrite {
    dev_t dev;
    ino_t ino;
    std::string path;
    uint64_t offset;
    std::vector<uint8_t> old_bytes;
    off_t old_size;
  };
  struct CreatedFile {
    dev_t dev;
    std::string path;
  };

  // Runs ops through the inner FileIo, with the bookkeeping for power cuts.
  Status Forward(std::span<IoOp> ops);
  // op `op` is the faulted one.
  Status Inject(IoOp& op);
  void FailAfterCrash(std::span<IoOp> ops);
  void Crash(bool drop_unsynced);
  void Snapshot(const IoOp& write);
  void Trace(const IoOp& op);

  FileIo& inner_;
  FaultPlan plan_;
  std::string name_;
  uint64_t count_ = 0;
  bool hit_ = false;
  bool crashed_ = false;
  std::vector<TracedOp> trace_;
  std::vector<UnsyncedWrite> unsynced_;
  std::vector<CreatedFile> created_;
  std::unordered_map<int, std::string> fd_paths_;  // absolute path of each open fd
  size_t rolled_back_writes_ = 0;
  size_t unlinked_files_ = 0;
};

}  // namespace svmkey
