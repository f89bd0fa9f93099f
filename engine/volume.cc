#include "volume.h"

#include <fcntl.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "aead.h"
#include "secure_memory.h"

namespace svmkey {
namespace {

constexpr size_t kCreateBatch = 1024;
// Verify reads one byte past 4096 so an oversized file is caught; keep 512 alignment.
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
  const std::string what = std::string(write ? "write " : "read ") + path + ": " +
                           std::strerror(-neg_errno);
  if (neg_errno == -ENOENT) return Status(ErrorCode::kVolumeKeyMissing, what);
  return Status(write ? ErrorCode::kVdekBlobUpdateFailed : ErrorCode::kInvalidEncryptionBlob,
                what);
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
  std::vector<uint8_t> files(kMetadataFileSize * std::min(volumes.size(), kCreateBatch));
  std::vector<IoOp> ops(std::min(volumes.size(), kCreateBatch));

  for (size_t base = 0; base < volumes.size(); base += kCreateBatch) {
    const size_t n = std::min(kCreateBatch, volumes.size() - base);
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
    // I/O: open (exclusive create), write, close — each a batch through the seam.
    size_t m = 0;
    std::vector<size_t> idx;
    idx.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (!results[base + i].status.ok()) continue;
      ops[m++] = IoOp::Open(AT_FDCWD, volumes[base + i].path.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL, 0600);
      idx.push_back(i);
    }
    SVMKEY_RETURN_IF_ERROR(io.Execute({ops.data(), m}));
    std::vector<int> fds(m, -1);
    size_t w = 0;
    std::vector<size_t> widx;
    widx.reserve(m);
    for (size_t j = 0; j < m; ++j) {
      const size_t v = base + idx[j];
      if (ops[j].result < 0) {
        results[v].status = IoError(ops[j].result, true, volumes[v].path);
        continue;
      }
      fds[j] = ops[j].result;
      widx.push_back(j);
    }
    for (size_t j : widx) {
      ops[w++] = IoOp::Write(fds[j], files.data() + idx[j] * kMetadataFileSize, kMetadataFileSize, 0);
    }
    SVMKEY_RETURN_IF_ERROR(io.Execute({ops.data(), w}));
    for (size_t k = 0; k < w; ++k) {
      const size_t v = base + idx[widx[k]];
      if (ops[k].result != static_cast<int32_t>(kMetadataFileSize)) {
        results[v].status =
            IoError(ops[k].result < 0 ? ops[k].result : -EIO, true, volumes[v].path);
      }
    }
    size_t c = 0;
    for (size_t j : widx) ops[c++] = IoOp::Close(fds[j]);
    SVMKEY_RETURN_IF_ERROR(io.Execute({ops.data(), c}));
  }
  vdeks->Wipe();
  // COMMIT POINT: after this syncfs every created file is durable. A crash before it
  // can lose files the caller has not yet recorded anywhere, which is harmless: the
  // caller registers volumes only after this returns.
  return SyncFileSystemOf(io, volumes[0].path);
}

Status VerifyVolumes(FileIo& io, KeyTable& table, const KeyRing& ring,
                     std::span<const VolumeRef> volumes, std::span<OpenResult> results,
                     const uint8_t* fingerprint_key) {
  if (results.size() != volumes.size()) {
    return Status(ErrorCode::kInvalidArgument, "result span size mismatch");
  }
  auto opener = VdekOpener::Create(table, ring);
  if (!opener.ok()) return opener.status();
  auto vdek = SecureBuffer::Allocate(kKeyBytes);
  if (!vdek.ok()) return vdek.status();
  const size_t batch = std::min(volumes.size(), kCreateBatch);
  std::vector<uint8_t> files(kReadStride * batch);
  std::vector<IoOp> ops(batch);
  std::vector<int> fds(batch);
  for (size_t base = 0; base < volumes.size(); base += kCreateBatch) {
    const size_t n = std::min(kCreateBatch, volumes.size() - base);
    for (size_t i = 0; i < n; ++i) {
      ops[i] = IoOp::Open(AT_FDCWD, volumes[base + i].path.c_str(), O_RDONLY);
    }
    SVMKEY_RETURN_IF_ERROR(io.Execute({ops.data(), n}));
    for (size_t i = 0; i < n; ++i) {
      fds[i] = ops[i].result;
      results[base + i] = OpenResult{};
      if (fds[i] < 0) results[base + i].status = IoError(fds[i], false, volumes[base + i].path);
    }
    size_t m = 0;
    std::vector<size_t> ridx;
    for (size_t i = 0; i < n; ++i) {
      if (fds[i] < 0) continue;
      ops[m++] = IoOp::Read(fds[i], files.data() + i * kReadStride, kMetadataFileSize + 1, 0);
      ridx.push_back(i);
    }
    SVMKEY_RETURN_IF_ERROR(io.Execute({ops.data(), m}));
    for (size_t k = 0; k < m; ++k) {
      const size_t i = ridx[k];
      OpenResult& r = results[base + i];
      if (ops[k].result < 0) {
        r.status = IoError(ops[k].result, false, volumes[base + i].path);
        continue;
      }
      auto meta = DecodeMetadataFile(
          std::span<const uint8_t>(files.data() + i * kReadStride,
                                   static_cast<size_t>(ops[k].result)),
          &volumes[base + i].id);
      if (!meta.ok()) {
        r.status = meta.status();
        continue;
      }
      r = opener->Open(*meta, vdek->data(), fingerprint_key);
      vdek->Wipe();
    }
    size_t c = 0;
    for (size_t i = 0; i < n; ++i) {
      if (fds[i] >= 0) ops[c++] = IoOp::Close(fds[i]);
    }
    SVMKEY_RETURN_IF_ERROR(io.Execute({ops.data(), c}));
  }
  return Status::Ok();
}

}  // namespace svmkey
