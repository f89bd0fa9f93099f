#include "engine/volset/volume_set.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/uring_file_io.h"
#include "engine/volume.h"

namespace svmkey::volset {
namespace {

constexpr size_t kFailureSamples = 10;

// Like mkdir -p.
Status MakeDirectory(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (!ec) return Status::Ok();
  return Status(ErrorCode::kUnexpectedException, "mkdir " + path + ": " + ec.message());
}

}  // namespace

Result<std::unique_ptr<FileIo>> MakeFileIoByName(std::string_view name, std::string* note) {
  IoMode mode;
  if (!ParseIoMode(name, &mode)) {
    return Status(ErrorCode::kInvalidValue,
                  "unknown I/O mode '" + std::string(name) + "' (expected auto, uring or sync)");
  }
  return MakeFileIo(mode, note);
}

Result<RewrapCounters> RekeyVolumeSet(FileIo& io, KeyTable& table, const RewrapKeys& keys,
                                      ManifestVolumeSource& source, const RewrapOptions& options,
                                      const RewrapProgress& progress) {
  if (source.header().generation != keys.old_generation) {
    return Status(ErrorCode::kInvalidArgument,
                  "manifest says generation " + std::to_string(source.header().generation) +
                      ", rekey asked from " + std::to_string(keys.old_generation));
  }
  auto counters = RewrapVolumes(io, table, keys, source, options, progress);
  if (!counters.ok()) return counters;
  if (counters->failed == 0 && !counters->stopped && counters->total == source.header().count) {
    // COMMIT POINT: every volume is durable at g+1 (RewrapVolumes returned); only now
    // does the manifest say so. A crash before this leaves the manifest at g with the
    // volumes at g+1: a rerun of the same rekey skips them all and updates it.
    SVMKEY_RETURN_IF_ERROR(UpdateManifestGeneration(source.dir(), keys.new_generation));
  }
  return counters;
}

Result<CreateVolumeSetReport> CreateVolumeSet(FileIo& io, KeyTable& table, KeyHandle kek,
                                              const CreateVolumeSetOptions& options) {
  if (options.count == 0) return Status(ErrorCode::kInvalidArgument, "count must be > 0");
  if (options.svm.IsNil()) return Status(ErrorCode::kInvalidArgument, "svm uuid is nil");
  if (options.first_dsid == 0) return Status(ErrorCode::kInvalidArgument, "first DSID must be > 0");
  if (options.batch_size == 0) return Status(ErrorCode::kInvalidArgument, "batch size must be > 0");
  SVMKEY_RETURN_IF_ERROR(MakeDirectory(options.dir));
  if (::access(ManifestPath(options.dir).c_str(), F_OK) == 0) {
    return Status(ErrorCode::kDuplicateEntry,
                  options.dir + " already holds a volume set (" + std::string(kManifestFileName) + ")");
  }
  const std::string vol_dir = options.dir + "/" + std::string(kVolumeSubdir);
  SVMKEY_RETURN_IF_ERROR(MakeDirectory(vol_dir));
  for (int i = 0; i < 256; ++i) {
    char sub[4];
    std::snprintf(sub, sizeof sub, "%02x", i);
    SVMKEY_RETURN_IF_ERROR(MakeDirectory(vol_dir + "/" + sub));
  }

  ManifestHeader header;
  header.svm = options.svm;
  header.generation = options.generation;
  header.count = options.count;
  auto writer = ManifestWriter::Create(options.dir, header);
  if (!writer.ok()) return writer.status();

  const size_t batch = static_cast<size_t>(std::min<uint64_t>(options.batch_size, options.count));
  std::vector<VolumeRef> refs(batch);
  std::vector<CreateResult> results(batch);
  std::vector<int> clone_of(batch, -1);
  std::vector<std::string> relative(batch);
  std::vector<Uuid> uuids(batch);
  CreateVolumeSetReport report;
  for (uint64_t base = 0; base < options.count; base += batch) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(batch, options.count - base));
    // Random uuids, sorted within the batch: the path starts with the uuid's first
    // byte, so volumes of one subdirectory come out adjacent in the manifest (runs of
    // ~batch/256). Readers in manifest order then touch one directory (and, on ext4, one
    // block group) at a time, and the rewrap finds the same directory from one volume to
    // the next.
    for (size_t j = 0; j < n; ++j) uuids[j] = Uuid::Random();
    std::sort(uuids.begin(), uuids.begin() + static_cast<long>(n),
              [](const Uuid& a, const Uuid& b) { return a.bytes < b.bytes; });
    for (size_t j = 0; j < n; ++j) {
      const uint64_t index = base + j;
      VolumeRef& ref = refs[j];
      ref.id.volume = uuids[j];
      ref.id.svm = options.svm;
      ref.id.dsid = options.first_dsid + index;
      relative[j] = RelativeVolumePath(ref.id.volume);
      ref.path.assign(options.dir);
      ref.path += '/';
      ref.path += relative[j];
      const bool clone = options.clone_every > 0 && (index + 1) % options.clone_every == 0 && j > 0;
      clone_of[j] = clone ? static_cast<int>(j - 1) : -1;
      if (clone) ++report.clones;
    }
    SVMKEY_RETURN_IF_ERROR(CreateVolumes(io, table, kek, options.generation,
                                         std::span<const VolumeRef>(refs.data(), n),
                                         std::span<CreateResult>(results.data(), n),
                                         std::span<const int>(clone_of.data(), n)));
    size_t failed = 0;
    const Status* first = nullptr;
    size_t first_index = 0;
    for (size_t j = 0; j < n; ++j) {
      if (results[j].status.ok()) continue;
      if (first == nullptr) {
        first = &results[j].status;
        first_index = j;
      }
      ++failed;
    }
    if (first != nullptr) {
      return Status(first->code(), std::to_string(failed) + " of " + std::to_string(n) +
                                       " volumes in a batch failed; first " +
                                       refs[first_index].path + ": " + first->ToString());
    }
    for (size_t j = 0; j < n; ++j) {
      SVMKEY_RETURN_IF_ERROR((*writer)->Add(refs[j].id, relative[j]));
    }
    report.created += n;
    if (options.progress) options.progress(report.created);
  }
  // COMMIT POINT: every volume file is durable (CreateVolumes ends with a syncfs);
  // the manifest appears only now, whole.
  SVMKEY_RETURN_IF_ERROR((*writer)->Finish());
  return report;
}

Result<VerifyVolumeSetReport> VerifyVolumeSet(FileIo& io, KeyTable& table, KeyHandle kek,
                                              uint64_t generation, ManifestVolumeSource& source,
                                              size_t batch_size) {
  if (batch_size == 0) return Status(ErrorCode::kInvalidArgument, "batch size must be > 0");
  KeyRing ring;
  ring.Add(generation, kek);
  std::vector<VolumeRef> refs(batch_size);
  std::vector<OpenResult> results(batch_size);
  VerifyVolumeSetReport report;
  auto fail = [&report](const VolumeRef& ref, const Status& status) {
    ++report.failed;
    ++report.failures_by_code[status.numeric_code()];
    if (report.failure_samples.size() < kFailureSamples) {
      report.failure_samples.push_back(ref.path + ": " + status.ToString());
    }
  };
  for (;;) {
    auto got = source.Next(refs);
    if (!got.ok()) return got.status();
    const size_t n = *got;
    if (n == 0) break;
    report.total += n;
    SVMKEY_RETURN_IF_ERROR(VerifyVolumes(io, table, ring, {refs.data(), n}, {results.data(), n}));
    for (size_t i = 0; i < n; ++i) {
      const OpenResult& r = results[i];
      // The CURRENT slot (highest sequence) must be at `generation` and open under it; an
      // older slot at `generation` behind a newer one does not count.
      if (r.current_slot < 0) {
        fail(refs[i], r.status);  // not read or not decoded
      } else if (r.current_generation != generation) {
        fail(refs[i], Status(ErrorCode::kSvmKekUnwrapFailed,
                             "current slot is at generation " + std::to_string(r.current_generation)));
      } else if (!r.status.ok()) {
        fail(refs[i], r.status);
      } else if (r.slot != r.current_slot) {
        fail(refs[i], Status(ErrorCode::kDecryptFailed, "current slot does not open"));
      } else {
        ++report.opened;
      }
    }
  }
  return report;
}

}  // namespace svmkey::volset
