// Repair of damaged metadata files (see volume_repair.h for the contract).
//
//   per batch of volumes:
//     lstat ──▶ open (O_NOFOLLOW | O_NONBLOCK) + read 4096 (+slack) of the regular files
//       ──▶ decode + open under the active SVM-KEK (Candidates + VdekOpener::Open, the
//           same slot selection as open, verify and rewrap) ──▶ close
//     then, one volume at a time, for each damaged one: check the table's copy, write
//     one slot in place or a fresh file by rename, make it durable.
//
// Damage is rare, so the repair writes are done one op at a time (ordered); the check
// pass is the batched part, as in VerifyVolumes. A file that is not a regular file is
// never opened (a FIFO would block an open or a read), only replaced.
#include "volume_repair.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "aead.h"
#include "secure_memory.h"
#include "volume_batch.h"
#include "volume_metadata.h"

namespace svmkey {
namespace {

constexpr size_t kBatch = 1024;
// A sector past 4096 so an oversized file shows up in the same read.
constexpr size_t kReadStride = kMetadataFileSize + kSectorSize;
constexpr const char* kTempSuffix = ".repair";
const char kSlotName[2] = {'A', 'B'};

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "directory";
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISLNK(mode)) return "symlink";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode)) return "character device";
  if (S_ISBLK(mode)) return "block device";
  return "unknown file type";
}

// What the check pass decided for one volume.
struct Plan {
  bool damaged = false;
  bool fresh = false;   // write a whole new file by rename
  int target = -1;      // in place: the slot to write
  uint64_t sequence = 0;  // in place: the sequence of the written slot
};

// The slot an in-place repair writes: never one that still opens, so a torn write
// cannot make the file worse. `opened` is the slot that opened under the active
// SVM-KEK (-1: none), `current` the current slot (Candidates()[0]).
//   - one valid slot: the other one (empty or corrupt);
//   - both valid, the older one opened: the current one (it claims to be newest and
//     does not open);
//   - both valid, none opened: the current one if it claims the active generation
//     (a tag failure: foreign or forged), else the older one (the current one is a
//     legitimate older generation and is kept as the fallback).
int PickTarget(const DecodedMetadata& meta, int current, int opened, uint64_t generation) {
  const int other = 1 - current;
  if (!meta.slot[other]) return other;
  if (opened == other) return current;
  return meta.slot[current]->generation == generation ? current : other;
}

// Runs one op through the seam; a broken I/O layer is returned, the op's own result
// is in op.result.
Status Run(FileIo& io, IoOp& op) { return io.Execute({&op, 1}); }

class Repairer {
 public:
  Repairer(FileIo& io, AeadContext& ctx, uint64_t generation, uint8_t* vdek, bool dry_run)
      : io_(io), ctx_(ctx), generation_(generation), vdek_(vdek), dry_run_(dry_run) {}

  // Checks the table's copy and, unless dry run, writes it per `plan`.
  Status Repair(const RepairTarget& t, const Plan& plan, RepairVolumeResult* r) {
    VdekSlot copy;
    Status s = CheckTableCopy(t, &copy);
    if (!s.ok()) return Fail(r, std::move(s));
    SlotSector sector{};
    if (plan.fresh) {
      copy.sequence = std::max<uint64_t>(copy.sequence, 1);
      EncodeSlot(copy, 0, sector.data());
    } else {
      copy.sequence = plan.sequence;
      EncodeSlot(copy, plan.target, sector.data());
    }
    if (!dry_run_) {
      Status w = plan.fresh ? WriteFresh(t, sector, r) : WriteSlot(t, plan.target, sector, r);
      if (!w.ok()) return w;  // the I/O layer broke
      if (r->outcome == RepairOutcome::kFailed) return Status::Ok();
    }
    r->outcome = RepairOutcome::kRepaired;
    r->status = Status::Ok();
    r->blob = sector;
    return Status::Ok();
  }

 private:
  static Status Fail(RepairVolumeResult* r, Status s) {
    r->outcome = RepairOutcome::kFailed;
    r->status = std::move(s);
    return Status::Ok();
  }

  // The copy must decode (its checksum is keyed by the slot it was written to, which
  // the table does not record: A or B), be at the active generation and open under the
  // active SVM-KEK with this volume's AAD.
  Status CheckTableCopy(const RepairTarget& t, VdekSlot* copy) {
    const std::string& path = t.ref.path;
    if (!t.has_blob) {
      return Status(ErrorCode::kBlobNotInTable, path + ": the table holds no copy of the blob");
    }
    Status d = DecodeSlot(t.blob, 0, copy);
    if (!d.ok()) d = DecodeSlot(t.blob, 1, copy);
    if (!d.ok()) {
      return Status(ErrorCode::kInvalidEncryptionBlob,
                    path + ": the table's copy does not decode: " + d.message());
    }
    if (copy->generation != generation_) {
      return Status(ErrorCode::kSvmKekUnwrapFailed,
                    path + ": the table's copy is at generation " +
                        std::to_string(copy->generation) + ", the active one is " +
                        std::to_string(generation_));
    }
    const Aad aad = VdekAad(t.ref.id, generation_);
    Status o = ctx_.Open(copy->nonce.data(), aad, copy->wrapped.data(), kKeyBytes,
                         copy->tag.data(), vdek_);
    sodium_memzero(vdek_, kKeyBytes);
    if (!o.ok()) {
      return Status(ErrorCode::kDecryptFailed,
                    path + ": the table's copy does not open under the active SVM-KEK");
    }
    return Status::Ok();
  }

  // Opens `path` with `flags`, writes `len` bytes at `offset`, fdatasyncs and closes,
  // one op at a time. *err: 0, or the first -errno (a short write is -EIO); *opened:
  // whether the open succeeded. Returns non-OK only when the I/O layer broke.
  Status WriteDurably(const std::string& path, int flags, mode_t mode, uint8_t* buf, uint32_t len,
                      uint64_t offset, int32_t* err, bool* opened) {
    IoOp open = IoOp::Open(AT_FDCWD, path.c_str(), flags, mode);
    SVMKEY_RETURN_IF_ERROR(Run(io_, open));
    *opened = open.result >= 0;
    *err = open.result < 0 ? open.result : 0;
    if (*err < 0) return Status::Ok();
    const int fd = open.result;
    IoOp write = IoOp::Write(fd, buf, len, offset);
    Status s = Run(io_, write);
    *err = write.result == static_cast<int32_t>(len) ? 0 : write.result < 0 ? write.result : -EIO;
    if (s.ok() && *err == 0) {
      IoOp sync = IoOp::Fdatasync(fd);
      s = Run(io_, sync);
      *err = sync.result;
    }
    IoOp close = IoOp::Close(fd);
    Status c = Run(io_, close);
    SVMKEY_RETURN_IF_ERROR(s);
    return c;
  }

  // Writes one slot sector in place and fdatasyncs it.
  Status WriteSlot(const RepairTarget& t, int target, SlotSector& sector, RepairVolumeResult* r) {
    int32_t err = 0;
    bool opened = false;
    SVMKEY_RETURN_IF_ERROR(WriteDurably(t.ref.path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK, 0,
                                        sector.data(), kSectorSize, kSlotOffset[target], &err,
                                        &opened));
    // COMMIT POINT: after the fdatasync the new slot, with the highest sequence, is
    // current. A crash before it leaves the written slot old, lost or torn; PickTarget
    // chose a slot that did not open, so the file is no worse than before.
    if (err < 0) return Fail(r, IoError(err, true, t.ref.path));
    return Status::Ok();
  }

  // Writes a whole new file next to the path and renames it over the path.
  Status WriteFresh(const RepairTarget& t, const SlotSector& slot, RepairVolumeResult* r) {
    const std::string& path = t.ref.path;
    const std::string temp = path + kTempSuffix;
    file_.fill(0);
    EncodeHeader(t.ref.id, t.flags, file_.data());
    std::memcpy(file_.data() + kSlotOffset[0], slot.data(), kSectorSize);

    // O_TRUNC, not O_EXCL: a temp file left by a crash mid-repair is reused.
    int32_t err = 0;
    bool opened = false;
    SVMKEY_RETURN_IF_ERROR(WriteDurably(temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600,
                                        file_.data(), kMetadataFileSize, 0, &err, &opened));
    if (err < 0) {
      if (opened) ::unlink(temp.c_str());  // our own temp file (what failed to open is not)
      return Fail(r, IoError(err, true, temp));
    }
    // rename(2) cannot replace a directory with a file: an empty one is removed (rmdir
    // removes nothing else), a non-empty one is left for the operator.
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && ::rmdir(path.c_str()) != 0) {
      const int e = errno;
      ::unlink(temp.c_str());
      return Fail(r, Status(ErrorCode::kVdekBlobUpdateFailed,
                            path + ": a directory is in the file's place and cannot be removed: " +
                                std::strerror(e)));
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      const int e = errno;
      ::unlink(temp.c_str());
      return Fail(r, IoError(-e, true, path));
    }
    // The rename is durable once the directory is.
    const std::string dir = DirName(path);
    IoOp dir_open = IoOp::Open(AT_FDCWD, dir.c_str(), O_RDONLY | O_DIRECTORY);
    SVMKEY_RETURN_IF_ERROR(Run(io_, dir_open));
    if (dir_open.result < 0) return Fail(r, IoError(dir_open.result, true, dir));
    IoOp dir_sync = IoOp::Fdatasync(dir_open.result);
    Status s = Run(io_, dir_sync);
    IoOp dir_close = IoOp::Close(dir_open.result);
    Status c = Run(io_, dir_close);
    SVMKEY_RETURN_IF_ERROR(s);
    SVMKEY_RETURN_IF_ERROR(c);
    // COMMIT POINT: after the directory sync the new file is the volume's file. A crash
    // before the rename leaves the damaged file as it was (and perhaps the temp file,
    // reused by the next repair); after the rename but before the sync, the path holds
    // either the damaged file or the complete new one (the temp was fdatasync'd first).
    if (dir_sync.result < 0) return Fail(r, IoError(dir_sync.result, true, dir));
    return Status::Ok();
  }

  FileIo& io_;
  AeadContext& ctx_;
  const uint64_t generation_;
  uint8_t* vdek_;
  const bool dry_run_;
  std::array<uint8_t, kMetadataFileSize> file_{};
};

}  // namespace

Status RepairVolumes(FileIo& io, KeyTable& table, KeyHandle kek, uint64_t generation,
                     std::span<const RepairTarget> volumes, std::span<RepairVolumeResult> results,
                     const RepairOptions& options) {
  if (results.size() != volumes.size()) {
    return Status(ErrorCode::kInvalidArgument, "result span size mismatch");
  }
  if (generation == 0) return Status(ErrorCode::kInvalidArgument, "generation must be > 0");
  if (volumes.empty()) return Status::Ok();
  SVMKEY_RETURN_IF_ERROR(EngineInit());
  KeyRing ring;
  ring.Add(generation, kek);
  auto opener = VdekOpener::Create(table, ring);
  if (!opener.ok()) return opener.status();
  auto vdek = SecureBuffer::Allocate(kKeyBytes);
  if (!vdek.ok()) return vdek.status();
  Repairer repairer(io, *opener->ContextFor(generation), generation, vdek->data(),
                    options.dry_run);

  const size_t cap = std::min(volumes.size(), kBatch);
  std::vector<uint8_t> files(kReadStride * cap);
  std::vector<Plan> plans(cap);
  std::vector<VolumeRef> refs(cap);
  VolumeBatch batch(cap);
  for (size_t base = 0; base < volumes.size(); base += kBatch) {
    const size_t n = std::min(kBatch, volumes.size() - base);
    const std::span<const RepairTarget> in = volumes.subspan(base, n);
    const std::span<RepairVolumeResult> out = results.subspan(base, n);
    auto fresh = [&](size_t i, std::string damage) {
      plans[i].damaged = true;
      plans[i].fresh = true;
      out[i].damage = std::move(damage);
    };
    auto fail = [&](size_t i, Status s) {
      out[i].outcome = RepairOutcome::kFailed;
      out[i].status = std::move(s);
    };

    // Check pass: only regular files are opened.
    batch.Begin(n);
    for (size_t i = 0; i < n; ++i) {
      out[i] = RepairVolumeResult{};
      out[i].outcome = RepairOutcome::kHealthy;
      plans[i] = Plan{};
      refs[i] = in[i].ref;
      struct stat st;
      if (::lstat(in[i].ref.path.c_str(), &st) != 0) {
        const int e = errno;
        if (e == ENOENT) {
          fresh(i, "missing");
        } else {
          fail(i, IoError(-e, false, in[i].ref.path));
        }
        batch.Drop(i);
      } else if (!S_ISREG(st.st_mode)) {
        fresh(i, std::string("not a regular file (") + FileKind(st.st_mode) + ")");
        batch.Drop(i);
      }
    }
    SVMKEY_RETURN_IF_ERROR(batch.Open(
        io, {refs.data(), n}, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, [&](size_t i, int32_t err) {
          if (err == -ENOENT) return fresh(i, "missing");
          if (err == -ELOOP) return fresh(i, "not a regular file (symlink)");
          fail(i, IoError(err, false, refs[i].path));
        }));
    SVMKEY_RETURN_IF_ERROR(batch.Each(
        io,
        [&](size_t i) {
          return IoOp::ReadToEof(batch.fd(i), files.data() + i * kReadStride, kReadStride, 0);
        },
        [&](size_t i, int32_t got) {
          if (got < 0) {
            fail(i, IoError(got, false, refs[i].path));
            return false;
          }
          const std::span<const uint8_t> file(files.data() + i * kReadStride,
                                              static_cast<size_t>(got));
          if (file.size() != kMetadataFileSize) {
            fresh(i, std::to_string(file.size()) + " bytes long, not " +
                         std::to_string(kMetadataFileSize));
            return false;
          }
          auto meta = DecodeMetadataFile(file, &refs[i].id);
          if (!meta.ok()) {
            fresh(i, "unreadable: " + meta.status().message());
            return false;
          }
          const OpenResult r = opener->Open(*meta, vdek->data(), nullptr);
          vdek->Wipe();
          if (r.status.ok() && r.slot == r.current_slot) return true;  // healthy
          Plan& p = plans[i];
          p.damaged = true;
          p.target = PickTarget(*meta, r.current_slot, r.slot, generation);
          out[i].damage = std::string("current slot ") + kSlotName[r.current_slot] +
                          " does not open under generation " + std::to_string(generation) +
                          (r.status.ok() ? "" : ": " + r.status.message()) + "; repair writes slot " +
                          kSlotName[p.target];
          uint64_t max_seq = 0;
          for (const auto& slot : meta->slot) {
            if (slot) max_seq = std::max(max_seq, slot->sequence);
          }
          if (max_seq == UINT64_MAX) {
            p.damaged = false;
            fail(i, Status(ErrorCode::kInvalidEncryptionBlob, refs[i].path + ": sequence exhausted"));
            return false;
          }
          p.sequence = max_seq + 1;
          return true;
        }));
    SVMKEY_RETURN_IF_ERROR(batch.Close(io));

    // Repair pass, one damaged volume at a time.
    for (size_t i = 0; i < n; ++i) {
      if (!plans[i].damaged) continue;
      SVMKEY_RETURN_IF_ERROR(repairer.Repair(in[i], plans[i], &out[i]));
    }
  }
  return Status::Ok();
}

}  // namespace svmkey
