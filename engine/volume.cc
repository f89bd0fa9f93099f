#include "volume.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "aead.h"
#include "secure_memory.h"
#include "volume_batch.h"

namespace svmkey {
namespace {

// Volumes per batch of CreateVolumes and VerifyVolumes.
constexpr size_t kBatch = 1024;
// Verify reads a sector past 4096 so an oversized file shows up in the same request.
constexpr size_t kReadStride = kMetadataFileSize + kSectorSize;

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Opens the directory through the seam and syncfs's its file system.
Status SyncFileSystemOf(FileIo& io, const std::string& path) {
  const std::string dir = DirName(path);
  IoOp op = IoOp::Open(AT_FDCWD, dir.c_str(), O_RDONLY | O_DIRECTORY);
  SVMKEY_RETURN_IF_ERROR(io.Execute({&op, 1}));
  if (op.result < 0) return IoError(op.result, true, dir);
  const int rc = io.SyncFs(op.result);
  IoOp close_op = IoOp::Close(op.result);
  SVMKEY_RETURN_IF_ERROR(io.Execute({&close_op, 1}));
  if (rc < 0) return IoError(rc, true, dir);
  return Status::Ok();
}

}  // namespace

Status IoError(int neg_errno, bool write, const std::string& path) {
  const int err = -neg_errno;
  const std::string what = std::string(write ? "write " : "read ") + path + ": ";
  switch (err) {
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOSPC:
    case EDQUOT: {
      // The host ran short, the volume is fine: a rerun with more room succeeds, and
      // nothing about this volume needs repair.
      rlimit nofile{};
      std::string limit;
      if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
        limit = " (RLIMIT_NOFILE soft " + std::to_string(nofile.rlim_cur) + ", hard " +
                std::to_string(nofile.rlim_max) + ")";
      }
      return Status(ErrorCode::kResourceLimit, what + std::strerror(err) + limit);
    }
    case ENOENT:
      return Status(ErrorCode::kVolumeKeyMissing, what + std::strerror(err));
    default:
      break;
  }
  std::string why;
  if (err == kErrOutsideRoots) {
    why = "not a normalized path below the volume roots (refused)";
  } else if (err == kErrNotRegularFile || err == ENXIO || err == EISDIR || err == EAGAIN) {
    why = "not a regular file (a FIFO, device, socket or directory is never read)";
  } else if (err == ELOOP) {
    why = "is a symbolic link or has one in its path (never followed)";
  } else if (err == EXDEV) {
    why = "resolves outside its directory (refused)";
  } else {
    why = std::strerror(err);
  }
  return Status(write ? ErrorCode::kVdekBlobUpdateFailed : ErrorCode::kInvalidEncryptionBlob,
                what + why);
}

void Fingerprint(const uint8_t* vdek, const uint8_t* fingerprint_key, VdekFingerprint* out) {
  crypto_generichash(out->data(), out->size(), vdek, kKeyBytes, fingerprint_key, 32);
}

Result<VdekOpener> VdekOpener::Create(KeyTable& table, const KeyRing& ring) {
  VdekOpener out;
  for (const auto& [generation, key] : ring.keys()) {
    auto ctx = AeadContext::Create(table, key);
    if (!ctx.ok()) return ctx.status();
    out.contexts_.emplace_back(generation, std::move(ctx).value());
  }
  return out;
}

AeadContext* VdekOpener::ContextFor(uint64_t generation) {
  for (auto& [g, ctx] : contexts_) {
    if (g == generation) return &ctx;
  }
  return nullptr;
}

OpenResult VdekOpener::Open(const DecodedMetadata& meta, uint8_t* vdek,
                            const uint8_t* fingerprint_key) {
  OpenResult out;
  int order[2];
  const int n = meta.Candidates(order);
  if (n > 0) {
    out.current_slot = order[0];
    out.current_generation = meta.slot[order[0]]->generation;
  }
  bool tag_failed = false;
  for (int i = 0; i < n; ++i) {
    const VdekSlot& slot = *meta.slot[order[i]];
    AeadContext* ctx = ContextFor(slot.generation);
    if (ctx == nullptr) continue;
    const Aad aad = VdekAad(meta.id, slot.generation);
    Status s = ctx->Open(slot.nonce.data(), aad, slot.wrapped.data(), kKeyBytes, slot.tag.data(),
                         vdek);
    if (!s.ok()) {
      tag_failed = true;
      continue;
    }
    out.generation = slot.generation;
    out.sequence = slot.sequence;
    out.slot = order[i];
    if (fingerprint_key != nullptr) Fingerprint(vdek, fingerprint_key, &out.fingerprint);
    return out;
  }
  if (tag_failed) {
    out.status = Status(ErrorCode::kDecryptFailed, "no slot opens: authentication tag mismatch");
  } else {
    std::string gens;
    for (int i = 0; i < n; ++i) {
      gens += (i ? "," : "") + std::to_string(meta.slot[order[i]]->generation);
    }
    out.status = Status(ErrorCode::kSvmKekUnwrapFailed,
                        "no SVM-KEK held for slot generation " + gens);
  }
  return out;
}

Status CreateVolumes(FileIo& io, KeyTable& table, KeyHandle kek, uint64_t generation,
                     std::span<const VolumeRef> volumes, std::span<CreateResult> results,
                     std::span<const int> clone_of) {
  if (results.size() != volumes.size() || (!clone_of.empty() && clone_of.size() != volumes.size())) {
    return Status(ErrorCode::kInvalidArgument, "result span size mismatch");
  }
  if (volumes.empty()) return Status::Ok();
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  auto ctx = AeadContext::Create(table, kek);
  if (!ctx.ok()) return ctx.status();
  // Plaintext VDEKs of the whole call (clones refer back to earlier volumes).
  auto vdeks = SecureBuffer::Allocate(kKeyBytes * volumes.size());
  if (!vdeks.ok()) return vdeks.status();
  randombytes_buf(vdeks->data(), vdeks->size());
  NoncePool nonces;
  std::vector<uint8_t> files(kMetadataFileSize * std::min(volumes.size(), kBatch));
  VolumeBatch batch(std::min(volumes.size(), kBatch));

  for (size_t base = 0; base < volumes.size(); base += kBatch) {
    const size_t n = std::min(kBatch, volumes.size() - base);
    // CPU: seal and encode every file of the batch.
    for (size_t i = 0; i < n; ++i) {
      const size_t v = base + i;
      const VolumeRef& vol = volumes[v];
      results[v].status = Status::Ok();
      uint8_t* file = files.data() + i * kMetadataFileSize;
      std::memset(file, 0, kMetadataFileSize);
      if (vol.id.volume.IsNil()) {
        results[v].status = Status(ErrorCode::kVolumeUuidMissing, "volume uuid is nil");
        continue;
      }
      if (vol.id.dsid == 0) {
        results[v].status = Status(ErrorCode::kVolumeDsidMissing, "volume DSID is 0");
        continue;
      }
      const int parent = clone_of.empty() ? -1 : clone_of[v];
      if (parent >= static_cast<int>(v)) {
        results[v].status = Status(ErrorCode::kInvalidArgument, "clone parent must come first");
        continue;
      }
      uint8_t* vdek = vdeks->data() + (parent >= 0 ? static_cast<size_t>(parent) : v) * kKeyBytes;
      VdekSlot slot;
      slot.sequence = 1;
      slot.generation = generation;
      std::memcpy(slot.nonce.data(), nonces.Next(), kNonceBytes);
      const Aad aad = VdekAad(vol.id, generation);
      Status s = ctx->Seal(slot.nonce.data(), aad, vdek, kKeyBytes, slot.wrapped.data(),
                           slot.tag.data());
      if (!s.ok()) {
        results[v].status = s;
        continue;
      }
      EncodeHeader(vol.id, parent >= 0 ? kFlagClone : 0, file);
      EncodeSlot(slot, 0, file + kSlotOffset[0]);
      std::memcpy(results[v].blob.data(), file + kSlotOffset[0], kSectorSize);
    }
    // I/O: open (exclusive create), write, close — one Execute each.
    const std::span<const VolumeRef> refs = volumes.subspan(base, n);
    batch.Begin(n);
    for (size_t i = 0; i < n; ++i) {
      if (!results[base + i].status.ok()) batch.Drop(i);
    }
    SVMKEY_RETURN_IF_ERROR(batch.Open(io, refs, O_WRONLY | O_CREAT | O_EXCL, 0600,
                                      [&](size_t i, int32_t err) {
                                        results[base + i].status = IoError(err, true, refs[i].path);
                                      }));
    SVMKEY_RETURN_IF_ERROR(batch.Each(
        io,
        [&](size_t i) {
          return IoOp::Write(batch.fd(i), files.data() + i * kMetadataFileSize,
                             kMetadataFileSize, 0);
        },
        [&](size_t i, int32_t got) {
          if (got == static_cast<int32_t>(kMetadataFileSize)) return true;
          results[base + i].status = IoError(got < 0 ? got : -EIO, true, refs[i].path);
          return false;
        }));
    SVMKEY_RETURN_IF_ERROR(batch.Close(io));
  }
  vdeks->Wipe();
  // COMMIT POINT: after this syncfs every created file is durable. A crash before it
  // can lose files the caller has not yet recorded anywhere, which is harmless: the
  // caller registers volumes only after this returns.
  return SyncFileSystemOf(io, volumes[0].path);
}

Status VerifyVolumes(FileIo& io, KeyTable& table, const KeyRing& ring,
                     std::span<const VolumeRef> volumes, std::span<OpenResult> results,
                     const uint8_t* fingerprint_key, std::span<const std::string> roots) {
  if (results.size() != volumes.size()) {
    return Status(ErrorCode::kInvalidArgument, "result span size mismatch");
  }
  auto opener = VdekOpener::Create(table, ring);
  if (!opener.ok()) return opener.status();
  auto vdek = SecureBuffer::Allocate(kKeyBytes);
  if (!vdek.ok()) return vdek.status();
  std::vector<uint8_t> files(kReadStride * std::min(volumes.size(), kBatch));
  VolumeBatch batch(std::min(volumes.size(), kBatch));
  batch.set_roots(roots);
  for (size_t base = 0; base < volumes.size(); base += kBatch) {
    const size_t n = std::min(kBatch, volumes.size() - base);
    const std::span<const VolumeRef> refs = volumes.subspan(base, n);
    const std::span<OpenResult> out = results.subspan(base, n);
    for (OpenResult& r : out) r = OpenResult{};
    batch.Begin(n);
    SVMKEY_RETURN_IF_ERROR(batch.Open(io, refs, O_RDONLY, 0, [&](size_t i, int32_t err) {
      out[i].status = IoError(err, false, refs[i].path);
    }));
    SVMKEY_RETURN_IF_ERROR(batch.Each(
        io,
        [&](size_t i) {
          return IoOp::ReadToEof(batch.fd(i), files.data() + i * kReadStride, kReadStride, 0);
        },
        [&](size_t i, int32_t got) {
          if (got < 0) {
            out[i].status = IoError(got, false, refs[i].path);
            return false;
          }
          auto meta = DecodeMetadataFile(
              std::span<const uint8_t>(files.data() + i * kReadStride, static_cast<size_t>(got)),
              &refs[i].id);
          if (!meta.ok()) {
            out[i].status = meta.status();
            return false;
          }
          out[i] = opener->Open(*meta, vdek->data(), fingerprint_key);
          vdek->Wipe();
          return true;
        }));
    SVMKEY_RETURN_IF_ERROR(batch.Close(io));
  }
  return Status::Ok();
}

}  // namespace svmkey
