#include "tools/bench/bench_runs.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/aead.h"
#include "engine/secure_memory.h"
#include "engine/volume_metadata.h"
#include "engine/volset/volume_set_manifest.h"

extern char** environ;

namespace svmkey::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kSourceChunk = 1024;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Status Failure(std::string message) {
  return Status(ErrorCode::kUnexpectedException, std::move(message));
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

Result<TimedWork> RunSvmkeyRewrap(const std::string& dir, IoMode io_mode, KeyTable& table,
                                  const RewrapKeys& keys, const RewrapOptions& options,
                                  bool allow_already_current) {
  const auto start = Clock::now();
  auto source = volset::ManifestVolumeSource::Open(dir);
  if (!source.ok()) return source.status();
  std::string note;
  auto io = MakeFileIo(io_mode, &note);
  if (!io.ok()) return io.status();
  RewrapOptions run_options = options;
  run_options.make_io = [io_mode]() { return MakeFileIo(io_mode); };
  auto counters = RewrapVolumes(**io, table, keys, **source, run_options,
                                [](const RewrapBatchReport&) { return true; });
  const double seconds = Since(start);
  if (!counters.ok()) return counters.status();
  const uint64_t n = (*source)->header().count;
  const bool complete = options.io_only
                            ? counters->total == n && counters->failed == 0
                            : counters->failed == 0 && counters->total == n &&
                                  (counters->rewrapped == n ||
                                   (allow_already_current &&
                                    counters->rewrapped + counters->already_current == n));
  if (!complete) {
    return Failure("rewrap (" + std::string((*io)->name()) + ") of " + dir + " incomplete: total " +
                   std::to_string(counters->total) + ", rewrapped " +
                   std::to_string(counters->rewrapped) + ", already current " +
                   std::to_string(counters->already_current) + ", failed " +
                   std::to_string(counters->failed) + " of " + std::to_string(n));
  }
  return TimedWork{seconds, n};
}

Result<TimedWork> RunNaiveLoop(const std::string& dir, KeyTable& table, const RewrapKeys& keys,
                               uint64_t max_volumes) {
  auto source = volset::ManifestVolumeSource::Open(dir);
  if (!source.ok()) return source.status();
  const uint64_t n = (*source)->header().count;
  const uint64_t limit = max_volumes == 0 ? n : std::min(n, max_volumes);
  auto old_ctx = AeadContext::Create(table, keys.old_kek);
  if (!old_ctx.ok()) return old_ctx.status();
  auto new_ctx = AeadContext::Create(table, keys.new_kek);
  if (!new_ctx.ok()) return new_ctx.status();
  auto vdek = SecureBuffer::Allocate(kKeyBytes);
  if (!vdek.ok()) return vdek.status();
  NoncePool nonces;
  std::vector<VolumeRef> refs(kSourceChunk);
  alignas(4096) static uint8_t file[kMetadataFileSize + kSectorSize];
  alignas(512) static uint8_t sector[kSectorSize];

  const auto start = Clock::now();
  uint64_t done = 0;
  while (done < limit) {
    auto got = (*source)->Next(std::span<VolumeRef>(
        refs.data(), static_cast<size_t>(std::min<uint64_t>(kSourceChunk, limit - done))));
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    for (size_t i = 0; i < *got; ++i) {
      const VolumeRef& ref = refs[i];
      const int fd = ::open(ref.path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) return Failure(Errno("naive loop: open " + ref.path));
      const ssize_t len = ::pread(fd, file, sizeof file, 0);
      if (len < 0) {
        ::close(fd);
        return Failure(Errno("naive loop: read " + ref.path));
      }
      auto meta = DecodeMetadataFile({file, static_cast<size_t>(len)}, &ref.id);
      if (!meta.ok()) {
        ::close(fd);
        return Status(meta.status().code(), "naive loop: " + ref.path + ": " + meta.status().message());
      }
      int order[2];
      (void)meta->Candidates(order);
      const int current = order[0];
      const VdekSlot& cur = *meta->slot[current];
      if (cur.generation != keys.old_generation) {
        ::close(fd);
        return Failure("naive loop: " + ref.path + " is at generation " +
                       std::to_string(cur.generation) + ", expected " +
                       std::to_string(keys.old_generation));
      }
      Status s = old_ctx->Open(cur.nonce.data(), VdekAad(ref.id, keys.old_generation),
                               cur.wrapped.data(), kKeyBytes, cur.tag.data(), vdek->data());
      VdekSlot next;
      if (s.ok()) {
        next.sequence = cur.sequence + 1;
        next.generation = keys.new_generation;
        std::memcpy(next.nonce.data(), nonces.Next(), kNonceBytes);
        s = new_ctx->Seal(next.nonce.data(), VdekAad(ref.id, keys.new_generation), vdek->data(),
                          kKeyBytes, next.wrapped.data(), next.tag.data());
      }
      vdek->Wipe();
      if (!s.ok()) {
        ::close(fd);
        return Status(s.code(), "naive loop: " + ref.path + ": " + s.message());
      }
      const int other = 1 - current;
      EncodeSlot(next, other, sector);
      if (::pwrite(fd, sector, kSectorSize, static_cast<off_t>(kSlotOffset[other])) !=
              static_cast<ssize_t>(kSectorSize) ||
          ::fsync(fd) != 0) {
        const std::string what = Errno("naive loop: write+fsync " + ref.path);
        ::close(fd);
        return Failure(what);
      }
      if (::close(fd) != 0) return Failure(Errno("naive loop: close " + ref.path));
    }
    done += *got;
  }
  const double seconds = Since(start);
  if (done != limit) return Failure("naive loop: manifest ended after " + std::to_string(done));
  return TimedWork{seconds, done};
}

Status WriteFioJob(const FioPlan& plan, unsigned iodepth) {
  FILE* f = std::fopen(plan.job_path.c_str(), "we");
  if (f == nullptr) return Failure(Errno("create " + plan.job_path));
  const unsigned long long n = plan.volumes;
  std::fprintf(f,
               "; svmkey-bench: the rewrap access pattern over the set's files.\n"
               "; Job 1 reads 4 KiB of every file; job 2 (after job 1) writes 512 B of zeros\n"
               "; at offset 1536 of every file (the format's zero tail: files stay\n"
               "; byte-identical). svmkey-bench then calls syncfs once.\n"
               "[global]\n"
               "ioengine=io_uring\n"
               "iodepth=%u\n"
               "direct=0\n"
               "invalidate=0\n"
               "fadvise_hint=0\n"
               "opendir=%s\n"
               "allow_file_create=0\n"
               "file_service_type=sequential\n"
               "openfiles=%u\n"
               "group_reporting=1\n"
               "\n"
               "[read-4k]\n"
               "rw=read\n"
               "bs=4k\n"
               "size=%llu\n"
               "\n"
               "[write-512]\n"
               "stonewall\n"
               "rw=write\n"
               "bs=512\n"
               "offset=1536\n"
               "size=%llu\n"
               "zero_buffers=1\n",
               iodepth, plan.volume_dir.c_str(), iodepth, n * 4096ULL, n * 512ULL);
  if (std::fclose(f) != 0) return Failure(Errno("write " + plan.job_path));
  return Status::Ok();
}

Result<TimedWork> RunFio(const FioPlan& plan) {
  // fio's shared-memory pool holds one file record (~400 B) per file per job.
  const std::string alloc = "--alloc-size=" + std::to_string(65536 + plan.volumes * 2);
  const std::string output = "--output=" + plan.output_path;
  std::vector<char*> argv = {const_cast<char*>(plan.fio_binary.c_str()),
                             const_cast<char*>(alloc.c_str()), const_cast<char*>(output.c_str()),
                             const_cast<char*>(plan.job_path.c_str()), nullptr};
  const auto start = Clock::now();
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, plan.fio_binary.c_str(), nullptr, nullptr, argv.data(), environ);
  if (rc != 0) return Failure("spawn " + plan.fio_binary + ": " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Failure("fio failed (wait status " + std::to_string(status) + "), see " + plan.output_path);
  }
  const int dir_fd = ::open(plan.volume_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Failure(Errno("open " + plan.volume_dir));
  const int sync_rc = ::syncfs(dir_fd);
  ::close(dir_fd);
  if (sync_rc != 0) return Failure(Errno("syncfs"));
  return TimedWork{Since(start), plan.volumes};
}

Result<TimedWork> WarmSet(const std::string& dir) {
  auto source = volset::ManifestVolumeSource::Open(dir);
  if (!source.ok()) return source.status();
  std::vector<VolumeRef> refs(kSourceChunk);
  static uint8_t file[kMetadataFileSize];
  const auto start = Clock::now();
  uint64_t done = 0;
  for (;;) {
    auto got = (*source)->Next(refs);
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    for (size_t i = 0; i < *got; ++i) {
      const int fd = ::open(refs[i].path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Failure(Errno("open " + refs[i].path));
      const ssize_t n = ::pread(fd, file, sizeof file, 0);
      ::close(fd);
      if (n < 0) return Failure(Errno("read " + refs[i].path));
    }
    done += *got;
  }
  return TimedWork{Since(start), done};
}

std::string FindExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string paths = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= paths.size()) {
    const size_t colon = paths.find(':', start);
    const std::string part = paths.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    const std::string candidate = (part.empty() ? "." : part) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

}  // namespace svmkey::bench
