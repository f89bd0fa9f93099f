// VolumeBatch: the per-batch bookkeeping of every engine loop over metadata files
// (CreateVolumes, VerifyVolumes, RewrapVolumes): which volumes of the batch are still in
// the pipeline, the descriptor of each opened file, and one IoOp per volume for each
// phase. A batch runs as phases of one FileIo::Execute each (open, then read or write,
// ..., then close), so io_uring keeps the whole batch in flight:
//
//   batch.Begin(n);                       // volumes 0..n-1, all in
//   batch.Open(io, refs, flags, mode, on_open_error);
//   batch.Each(io, make_op, done);        // as many phases as the caller needs
//   batch.Close(io);                      // every file the batch opened
//
// A volume leaves the pipeline when its open fails, when a phase's `done` returns false,
// or by Drop(); it then takes part in no later phase, but its file (if open) is still
// closed by Close(). Per-volume failures are the caller's to record (the callbacks get
// the volume's index in the batch and the op's result, -errno on failure).
//
// Memory: every array is sized by the capacity, allocated once by the constructor; a
// batch allocates nothing per volume. The callbacks are templates, inlined, so they
// allocate nothing either.
//
// Failure of the I/O layer (Execute returned non-OK) in any phase after the opens:
// every file the batch opened is closed, one op at a time and best effort, and the
// phase returns that status, so a broken run does not leak descriptors. (When the opens
// themselves fail that way, which descriptors exist is unknown.)
//
// Thread safety: none; one VolumeBatch per thread, used with that thread's FileIo.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "file_io.h"
#include "status.h"
#include "volume.h"

namespace svmkey {

// The errno VolumeBatch::Open reports for a volume whose path named something other than
// a regular file (IoError turns it into "not a regular file").
inline constexpr int kErrNotRegularFile = ENODEV;
// The errno VolumeBatch::Open reports for a path outside the roots it was given.
inline constexpr int kErrOutsideRoots = EXDEV;

// True when `path` is absolute and normalized (no empty, "." or ".." component, no
// trailing slash) and lies strictly below one of `roots` (each absolute, normalized).
// Lexical only: with the seam following no symlink (file_io.h), an open of such a path
// resolves to exactly that file or fails (docs/ARCHITECTURE.md §4).
bool PathLiesBelow(std::string_view path, std::span<const std::string> roots);

class VolumeBatch {
 public:
  VolumeBatch() = default;
  // Room for batches of up to `capacity` volumes.
  explicit VolumeBatch(size_t capacity);

  // Paths Open accepts: when not empty, a volume whose path is not PathLiesBelow them
  // fails with -kErrOutsideRoots, unopened. The strings must outlive the batch.
  void set_roots(std::span<const std::string> roots) { roots_ = roots; }

  // Starts a batch of volumes 0..n-1 (n <= capacity): none open, all in.
  void Begin(size_t n);

  size_t size() const { return n_; }
  size_t capacity() const { return ops_.size(); }
  // How many volumes are still in the pipeline.
  size_t remaining() const { return remaining_; }
  bool in(size_t i) const { return in_[i] != 0; }
  // The descriptor of volume i (valid once Open succeeded for it), else -1.
  int fd(size_t i) const { return fds_[i]; }
  // Volume i takes part in no later phase (its file, if open, is still closed).
  void Drop(size_t i) {
    if (in_[i] == 0) return;
    in_[i] = 0;
    --remaining_;
  }

  // Phase: one Execute opening refs[i].path (relative to AT_FDCWD) with `flags` and
  // `mode` for every volume still in (the seam adds O_NOFOLLOW | O_NONBLOCK and follows
  // no symlink: file_io.h). A failed open drops the volume and is passed to
  // on_error(i, -errno). So is an open that got anything but a regular file (a FIFO,
  // device, socket or directory in place of a metadata file), with -kErrNotRegularFile:
  // reading a pipe through io_uring would wait for a writer for good. `refs` is the batch
  // (refs.size() >= size()).
  template <typename OnError>
  Status Open(FileIo& io, std::span<const VolumeRef> refs, int flags, mode_t mode,
              OnError&& on_error) {
    if (!roots_.empty()) {
      for (size_t i = 0; i < n_; ++i) {
        if (in_[i] != 0 && !PathLiesBelow(refs[i].path, roots_)) {
          Drop(i);
          on_error(i, -kErrOutsideRoots);
        }
      }
    }
    const size_t m = Collect([&](size_t i) { return OpenOp(refs[i], flags, mode); });
    SVMKEY_RETURN_IF_ERROR(io.Execute({ops_.data(), m}));
    for (size_t k = 0; k < m; ++k) {
      const size_t i = index_[k];
      if (ops_[k].result < 0) {
        Drop(i);
        on_error(i, ops_[k].result);
        continue;
      }
      fds_[i] = ops_[k].result;
      if (!IsRegularFile(fds_[i])) {
        Drop(i);
        on_error(i, -kErrNotRegularFile);
      }
    }
    return Status::Ok();
  }

  // Phase: one Execute of make_op(i) for every volume still in; then done(i, result) for
  // each, in batch order. `done` returns false to drop the volume.
  template <typename MakeOp, typename Done>
  Status Each(FileIo& io, MakeOp&& make_op, Done&& done) {
    const size_t m = Collect(make_op);
    SVMKEY_RETURN_IF_ERROR(CloseOnFailure(io, io.Execute({ops_.data(), m})));
    for (size_t k = 0; k < m; ++k) {
      const size_t i = index_[k];
      if (!done(i, ops_[k].result)) Drop(i);
    }
    return Status::Ok();
  }

  // Phase: one Execute closing every file the batch opened, in the pipeline or not. A
  // close error is not reported: it comes after everything the batch had to make durable
  // was (Linux releases the descriptor either way).
  Status Close(FileIo& io);

 private:
  // Fills ops_/index_ with make_op(i) for every volume still in; returns how many.
  template <typename MakeOp>
  size_t Collect(MakeOp&& make_op) {
    size_t m = 0;
    for (size_t i = 0; i < n_; ++i) {
      if (in_[i] == 0) continue;
      ops_[m] = make_op(i);
      index_[m++] = i;
    }
    return m;
  }
  static IoOp OpenOp(const VolumeRef& ref, int flags, mode_t mode);
  // True when `fd` is a regular file; an error of the check counts as not regular.
  static bool IsRegularFile(int fd);
  // Passes `status` through; when it is not OK, first closes what the batch opened.
  Status CloseOnFailure(FileIo& io, Status status);

  std::span<const std::string> roots_;
  size_t n_ = 0;
  size_t remaining_ = 0;
  std::vector<IoOp> ops_;
  std::vector<size_t> index_;  // ops_[k] belongs to volume index_[k]
  std::vector<int> fds_;
  std::vector<uint8_t> in_;
};

}  // namespace svmkey
