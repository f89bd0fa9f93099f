// CallerInputReader: reads the file descriptors a bus caller passes (secrets, a CA
// bundle, a KEK), bounded in size and time, off the bus loop and off the control worker.
//
// The daemon opens no file on a caller's word (docs/ARCHITECTURE.md §9): every file a
// call needs arrives as a descriptor the caller opened with its own rights. Such a
// descriptor may be anything: a pipe whose writer never writes, a FIFO, /dev/zero, a
// 10 GB file. So each is read on a short-lived reader thread of its own, in non-blocking
// mode, with poll(2) against one deadline per call (kCallerInputTimeout) and a cancel
// eventfd, and at most `max_bytes` + 1 bytes are read. A silent descriptor fails with
// InvalidValue "<argument>: no data within 5 s", an oversized one with "<argument>:
// longer than N bytes"; nothing of the contents appears in a message.
//
// Setting O_NONBLOCK changes the open file description the caller shared with us; a
// caller that clears it again and races us for the data can make one read block. Such a
// reader is abandoned at Shutdown (it holds nothing of the daemon's but its own state)
// rather than waited for, so SIGTERM still stops the daemon.
//
// Threads: Start and Shutdown on the loop thread (the owner's); `done` runs on the reader
// thread and must only hand its result on (ControlWorker::Submit, EventLoop::Post).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/secure_memory.h"
#include "engine/status.h"

namespace svmkey::daemon {

// Everything of one call's descriptors must have arrived within this time.
inline constexpr std::chrono::seconds kCallerInputTimeout{5};
// Size bounds per argument: a secret (application credential secret, proxy password),
// a PEM CA bundle, a raw SVM-KEK (32 bytes; one more is read to catch a longer file).
inline constexpr size_t kMaxSecretBytes = 4096;
inline constexpr size_t kMaxCaBundleBytes = size_t{1} << 20;
inline constexpr size_t kKekBytes = 32;
// Reader threads at once; a call beyond it is refused with ResourceLimit.
inline constexpr size_t kMaxPendingCallerReads = 16;

// One descriptor argument of a call. Owns `fd` (a dup of the caller's) and closes it.
struct CallerFd {
  CallerFd(std::string name, int fd, size_t max_bytes);
  CallerFd(CallerFd&& other) noexcept;
  CallerFd& operator=(CallerFd&&) = delete;
  CallerFd(const CallerFd&) = delete;
  ~CallerFd();

  std::string name;  // the argument, e.g. "application_cred_secret_fd"
  int fd = -1;
  size_t max_bytes = 0;
};

// What was read, in secure memory, one entry per CallerFd in the order given.
using CallerBytes = std::vector<SecureBuffer>;

// Reads every descriptor of `args` until end of file, by `deadline`, unless `cancel_fd`
// (an eventfd) becomes readable first (ResourceInUse: the daemon is stopping). Blocks the calling thread; used by
// CallerInputReader and directly by tests.
Result<CallerBytes> ReadCallerFds(std::vector<CallerFd>& args,
                                  std::chrono::steady_clock::time_point deadline, int cancel_fd);

// A secret as read: one trailing newline (and CR) stripped; empty is InvalidValue naming
// `what`.
Result<SecureBuffer> TrimSecret(const SecureBuffer& raw, const std::string& what);

class CallerInputReader {
 public:
  using Done = std::function<void(Result<CallerBytes>)>;

  CallerInputReader();
  ~CallerInputReader();
  CallerInputReader(const CallerInputReader&) = delete;
  CallerInputReader& operator=(const CallerInputReader&) = delete;

  // Starts a reader thread for `args`; `done` gets the bytes or the first failure.
  // ResourceLimit (nothing started) when kMaxPendingCallerReads are pending.
  Status Start(std::vector<CallerFd> args, Done done);

  // Cancels every pending read: each `done` still pending gets ResourceInUse within about a
  // second, or is dropped (destroyed here, on the calling thread) if its reader does not
  // answer. After Shutdown no `done` runs. Idempotent.
  void Shutdown();

 private:
  struct Core;
  std::shared_ptr<Core> core_;
};

}  // namespace svmkey::daemon
