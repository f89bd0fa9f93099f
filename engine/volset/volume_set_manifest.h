// The volume-set manifest: the list of volumes `svmkey-volset create` made, read back
// by `svmkey-volset verify`, svmkey-bench and the daemon's "register volume set" call.
//
// File D/volset.manifest, text, one line per record, '\n'-terminated:
//
//   svmkey-volset-manifest v1 svm=<svm uuid> generation=<20 digits> count=<20 digits>
//   <volume uuid> <dsid> <path relative to D>
//   ...                                  (exactly `count` volume lines)
//
// Example volume line:
//   3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11 17 vol/3f/3f0c9d4e-8a51-4b8e-9c1e-2d7f6a0b4c11.meta
//
// `generation` is the SVM-KEK generation every volume's current slot is wrapped under.
// Its fixed width lets a rekey rewrite it in place (UpdateManifestGeneration) without
// rewriting the volume lines. Volume paths never contain spaces, are relative, and have
// no ".." component. The manifest holds no key material.
//
// Memory: the writer and the reader stream; neither holds more than one line.
// Thread safety: one object per thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "engine/rewrap.h"
#include "engine/status.h"
#include "engine/uuid.h"
#include "engine/volume.h"

namespace svmkey::volset {

inline constexpr std::string_view kManifestFileName = "volset.manifest";
inline constexpr std::string_view kManifestMagic = "svmkey-volset-manifest";
inline constexpr std::string_view kManifestVersion = "v1";

struct ManifestHeader {
  Uuid svm;
  uint64_t generation = 0;
  uint64_t count = 0;
};

// "svmkey-volset-manifest v1 svm=... generation=... count=..." (no newline).
std::string FormatManifestHeader(const ManifestHeader& header);
// Fails with InvalidValue (262185) naming the defect.
Status ParseManifestHeader(std::string_view line, ManifestHeader* header);

// Parses "<uuid> <dsid> <relative path>"; `svm` fills id->svm. Fails with InvalidValue.
Status ParseManifestVolumeLine(std::string_view line, const Uuid& svm, VolumeIdentity* id,
                               std::string_view* relative_path);

// Where `create` puts a volume's file: "vol/<first byte of uuid, 2 hex>/<uuid>.meta".
// 256 subdirectories keep each directory near N/256 entries.
std::string RelativeVolumePath(const Uuid& volume);
inline constexpr std::string_view kVolumeSubdir = "vol";

std::string ManifestPath(const std::string& dir);

// Writes D/volset.manifest.tmp, then on Finish fsyncs it and renames it to
// D/volset.manifest (so a manifest exists only complete), and fsyncs D.
class ManifestWriter {
 public:
  static Result<std::unique_ptr<ManifestWriter>> Create(const std::string& dir,
                                                        const ManifestHeader& header);
  ~ManifestWriter();
  ManifestWriter(const ManifestWriter&) = delete;
  ManifestWriter& operator=(const ManifestWriter&) = delete;

  Status Add(const VolumeIdentity& id, std::string_view relative_path);
  // Fails when the number of Add calls differs from header.count.
  Status Finish();

 private:
  ManifestWriter() = default;
  std::string dir_;
  std::string tmp_path_;
  FILE* file_ = nullptr;
  ManifestHeader header_;
  uint64_t added_ = 0;
};

// A VolumeSource over a manifest: streams volume lines, bounded memory. Paths handed
// out are "<dir>/<relative path>". Fails (InvalidValue, with the line number) on a
// malformed line, and at the end when the number of volume lines differs from the
// header's count (a truncated or padded manifest).
class ManifestVolumeSource final : public VolumeSource {
 public:
  // Opens <dir>/volset.manifest and parses its header.
  static Result<std::unique_ptr<ManifestVolumeSource>> Open(const std::string& dir);
  // The same over a manifest the caller opened (and checked) itself: takes ownership of
  // `fd`, reads it from offset 0; paths are still "<dir>/<relative path>".
  static Result<std::unique_ptr<ManifestVolumeSource>> FromFd(int fd, const std::string& dir);

  // Back to the first volume line, for a second pass over the same file. The header is
  // read again and must be unchanged (InvalidValue otherwise).
  Status Rewind();
  ~ManifestVolumeSource() override;
  ManifestVolumeSource(const ManifestVolumeSource&) = delete;
  ManifestVolumeSource& operator=(const ManifestVolumeSource&) = delete;

  const ManifestHeader& header() const { return header_; }
  const std::string& dir() const { return dir_; }
  uint64_t volumes_read() const { return volumes_read_; }

  Result<size_t> Next(std::span<VolumeRef> out) override;

 private:
  ManifestVolumeSource() = default;
  Status ReadHeader();
  std::string dir_;
  std::string path_;
  FILE* file_ = nullptr;
  char* line_ = nullptr;
  size_t line_capacity_ = 0;
  uint64_t line_number_ = 1;  // the header is line 1
  uint64_t volumes_read_ = 0;
  bool done_ = false;
  ManifestHeader header_;
};

// Rewrites the header's generation field in place and fsyncs the manifest.
Status UpdateManifestGeneration(const std::string& dir, uint64_t generation);

}  // namespace svmkey::volset
