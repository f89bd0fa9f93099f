#include "engine/volset/volume_set_manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace svmkey::volset {
namespace {

constexpr size_t kMaxLineBytes = 4096;
constexpr int kGenerationWidth = 20;
constexpr size_t kStreamBufferBytes = 1 << 20;

Status Invalid(std::string message) { return Status(ErrorCode::kInvalidValue, std::move(message)); }

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

bool ParseU64(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// Splits at single spaces; returns false when there are not exactly `n` fields.
bool SplitFields(std::string_view line, std::string_view* fields, size_t n) {
  size_t count = 0;
  size_t start = 0;
  while (start <= line.size()) {
    const size_t space = line.find(' ', start);
    const size_t end = space == std::string_view::npos ? line.size() : space;
    if (count == n) return false;
    fields[count++] = line.substr(start, end - start);
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  if (count != n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (fields[i].empty()) return false;
  }
  return true;
}

bool TakeKey(std::string_view field, std::string_view key, std::string_view* value) {
  if (field.size() <= key.size() || field.substr(0, key.size()) != key ||
      field[key.size()] != '=') {
    return false;
  }
  *value = field.substr(key.size() + 1);
  return true;
}

std::string PaddedDecimal(uint64_t value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llu", kGenerationWidth, static_cast<unsigned long long>(value));
  return buf;
}

bool SafeRelativePath(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "..") return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  for (char c : path) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0') return false;
  }
  return true;
}

Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status(ErrorCode::kUnexpectedException, Errno("open " + dir));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc < 0) {
    errno = saved;
    return Status(ErrorCode::kUnexpectedException, Errno("fsync " + dir));
  }
  return Status::Ok();
}

}  // namespace

std::string FormatManifestHeader(const ManifestHeader& header) {
  std::string out;
  out += kManifestMagic;
  out += ' ';
  out += kManifestVersion;
  out += " svm=" + header.svm.ToString();
  out += " generation=" + PaddedDecimal(header.generation);
  out += " count=" + PaddedDecimal(header.count);
  return out;
}

Status ParseManifestHeader(std::string_view line, ManifestHeader* header) {
  std::string_view f[5];
  if (!SplitFields(line, f, 5) || f[0] != kManifestMagic) {
    return Invalid("not a svmkey-volset manifest (header line is not \"" +
                   std::string(kManifestMagic) + " v1 svm=... generation=... count=...\")");
  }
  if (f[1] != kManifestVersion) {
    return Invalid("unsupported manifest version '" + std::string(f[1]) + "'");
  }
  std::string_view svm, generation, count;
  if (!TakeKey(f[2], "svm", &svm) || !TakeKey(f[3], "generation", &generation) ||
      !TakeKey(f[4], "count", &count)) {
    return Invalid("manifest header fields must be svm=, generation=, count= in that order");
  }
  auto svm_uuid = Uuid::Parse(svm);
  if (!svm_uuid || svm_uuid->IsNil()) return Invalid("manifest header: bad svm uuid");
  ManifestHeader out;
  out.svm = *svm_uuid;
  if (!ParseU64(generation, &out.generation)) return Invalid("manifest header: bad generation");
  if (!ParseU64(count, &out.count)) return Invalid("manifest header: bad count");
  *header = out;
  return Status::Ok();
}

Status ParseManifestVolumeLine(std::string_view line, const Uuid& svm, VolumeIdentity* id,
                               std::string_view* relative_path) {
  std::string_view f[3];
  if (!SplitFields(line, f, 3)) {
    return Invalid("expected \"<volume uuid> <dsid> <relative path>\"");
  }
  auto volume = Uuid::Parse(f[0]);
  if (!volume || volume->IsNil()) return Invalid("bad volume uuid");
  uint64_t dsid = 0;
  if (!ParseU64(f[1], &dsid) || dsid == 0) return Invalid("bad DSID (decimal, non-zero)");
  if (!SafeRelativePath(f[2])) return Invalid("bad path (must be relative, without \"..\")");
  id->volume = *volume;
  id->svm = svm;
  id->dsid = dsid;
  *relative_path = f[2];
  return Status::Ok();
}

std::string RelativeVolumePath(const Uuid& volume) {
  const std::string text = volume.ToString();
  std::string out;
  out.reserve(kVolumeSubdir.size() + 4 + text.size() + 5);
  out += kVolumeSubdir;
  out += '/';
  out += text.substr(0, 2);
  out += '/';
  out += text;
  out += ".meta";
  return out;
}

std::string ManifestPath(const std::string& dir) { return dir + "/" + std::string(kManifestFileName); }

// ---- ManifestWriter ----

Result<std::unique_ptr<ManifestWriter>> ManifestWriter::Create(const std::string& dir,
                                                               const ManifestHeader& header) {
  std::unique_ptr<ManifestWriter> writer(new ManifestWriter());
  writer->dir_ = dir;
  writer->header_ = header;
  writer->tmp_path_ = ManifestPath(dir) + ".tmp";
  const int fd = ::open(writer->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status(ErrorCode::kUnexpectedException, Errno("create " + writer->tmp_path_));
  writer->file_ = ::fdopen(fd, "w");
  if (writer->file_ == nullptr) {
    ::close(fd);
    return Status(ErrorCode::kUnexpectedException, Errno("fdopen " + writer->tmp_path_));
  }
  std::setvbuf(writer->file_, nullptr, _IOFBF, kStreamBufferBytes);
  const std::string line = FormatManifestHeader(header) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), writer->file_) != line.size()) {
    return Status(ErrorCode::kUnexpectedException, Errno("write " + writer->tmp_path_));
  }
  return writer;
}

ManifestWriter::~ManifestWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    ::unlink(tmp_path_.c_str());
  }
}

Status ManifestWriter::Add(const VolumeIdentity& id, std::string_view relative_path) {
  if (file_ == nullptr) return Status(ErrorCode::kInvalidArgument, "manifest already finished");
  if (!SafeRelativePath(relative_path)) {
    return Status(ErrorCode::kInvalidArgument, "bad relative path " + std::string(relative_path));
  }
  const std::string uuid = id.volume.ToString();
  const int n = std::fprintf(file_, "%s %llu %.*s\n", uuid.c_str(),
                             static_cast<unsigned long long>(id.dsid),
                             static_cast<int>(relative_path.size()), relative_path.data());
  if (n < 0) return Status(ErrorCode::kUnexpectedException, Errno("write " + tmp_path_));
  ++added_;
  return Status::Ok();
}

Status ManifestWriter::Finish() {
  if (file_ == nullptr) return Status(ErrorCode::kInvalidArgument, "manifest already finished");
  if (added_ != header_.count) {
    return Status(ErrorCode::kInvalidArgument, "manifest has " + std::to_string(added_) +
                                                   " volumes, header says " +
                                                   std::to_string(header_.count));
  }
  FILE* file = file_;
  file_ = nullptr;
  const bool flushed = std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  const int saved = errno;
  if (std::fclose(file) != 0 || !flushed) {
    errno = saved;
    Status s(ErrorCode::kUnexpectedException, Errno("flush " + tmp_path_));
    ::unlink(tmp_path_.c_str());
    return s;
  }
  // COMMIT POINT: after the rename (and the directory fsync) the manifest exists whole.
  // A crash before it leaves only the .tmp file, which no reader opens.
  if (::rename(tmp_path_.c_str(), ManifestPath(dir_).c_str()) != 0) {
    return Status(ErrorCode::kUnexpectedException, Errno("rename " + tmp_path_));
  }
  return SyncDirectory(dir_);
}

// ---- ManifestVolumeSource ----

Result<std::unique_ptr<ManifestVolumeSource>> ManifestVolumeSource::Open(const std::string& dir) {
  const std::string path = ManifestPath(dir);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status(errno == ENOENT ? ErrorCode::kEntryNotFound : ErrorCode::kUnexpectedException,
                  Errno("open " + path));
  }
  return FromFd(fd, dir);
}

Result<std::unique_ptr<ManifestVolumeSource>> ManifestVolumeSource::FromFd(int fd,
                                                                           const std::string& dir) {
  std::unique_ptr<ManifestVolumeSource> source(new ManifestVolumeSource());
  source->dir_ = dir;
  source->path_ = ManifestPath(dir);
  source->file_ = ::fdopen(fd, "r");
  if (source->file_ == nullptr) {
    ::close(fd);
    return Status(ErrorCode::kUnexpectedException, Errno("fdopen " + source->path_));
  }
  std::setvbuf(source->file_, nullptr, _IOFBF, kStreamBufferBytes);
  SVMKEY_RETURN_IF_ERROR(source->ReadHeader());
  return source;
}

Status ManifestVolumeSource::ReadHeader() {
  if (std::fseek(file_, 0, SEEK_SET) != 0) {
    return Status(ErrorCode::kUnexpectedException, Errno("seek " + path_));
  }
  const ssize_t n = ::getline(&line_, &line_capacity_, file_);
  if (n <= 0 || line_[n - 1] != '\n') {
    return Status(ErrorCode::kInvalidValue, path_ + " line 1: missing or unterminated header");
  }
  Status s = ParseManifestHeader(std::string_view(line_, static_cast<size_t>(n - 1)), &header_);
  if (!s.ok()) return Status(s.code(), path_ + " line 1: " + s.message());
  line_number_ = 1;
  volumes_read_ = 0;
  done_ = false;
  return Status::Ok();
}

Status ManifestVolumeSource::Rewind() {
  const ManifestHeader before = header_;
  SVMKEY_RETURN_IF_ERROR(ReadHeader());
  if (!(header_.svm == before.svm) || header_.generation != before.generation ||
      header_.count != before.count) {
    return Invalid(path_ + " line 1: the header changed while the manifest was read");
  }
  return Status::Ok();
}

ManifestVolumeSource::~ManifestVolumeSource() {
  if (file_ != nullptr) std::fclose(file_);
  std::free(line_);
}

Result<size_t> ManifestVolumeSource::Next(std::span<VolumeRef> out) {
  size_t filled = 0;
  while (!done_ && filled < out.size()) {
    errno = 0;
    const ssize_t n = ::getline(&line_, &line_capacity_, file_);
    if (n < 0) {
      if (errno != 0) return Status(ErrorCode::kUnexpectedException, Errno("read " + path_));
      done_ = true;
      if (volumes_read_ != header_.count) {
        return Invalid(path_ + ": " + std::to_string(volumes_read_) +
                       " volume lines, header says count=" + std::to_string(header_.count) +
                       " (truncated or padded manifest)");
      }
      break;
    }
    ++line_number_;
    const std::string where = path_ + " line " + std::to_string(line_number_) + ": ";
    if (static_cast<size_t>(n) > kMaxLineBytes) return Invalid(where + "line too long");
    if (line_[n - 1] != '\n') return Invalid(where + "unterminated last line (truncated manifest)");
    if (volumes_read_ == header_.count) {
      return Invalid(where + "more volume lines than the header's count=" +
                     std::to_string(header_.count));
    }
    VolumeRef& ref = out[filled];
    std::string_view relative;
    Status s = ParseManifestVolumeLine(std::string_view(line_, static_cast<size_t>(n - 1)),
                                       header_.svm, &ref.id, &relative);
    if (!s.ok()) return Status(s.code(), where + s.message());
    ref.path.assign(dir_);
    ref.path += '/';
    ref.path.append(relative);
    ++volumes_read_;
    ++filled;
  }
  return filled;
}

Status UpdateManifestGeneration(const std::string& dir, uint64_t generation) {
  const std::string path = ManifestPath(dir);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status(ErrorCode::kUnexpectedException, Errno("open " + path));
  char buf[512];
  const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  Status result;
  const char* newline = n > 0 ? static_cast<const char*>(std::memchr(buf, '\n', static_cast<size_t>(n))) : nullptr;
  ManifestHeader header;
  if (newline == nullptr) {
    result = Invalid(path + " line 1: missing header");
  } else if (result = ParseManifestHeader(std::string_view(buf, static_cast<size_t>(newline - buf)), &header);
             result.ok()) {
    header.generation = generation;
    const std::string line = FormatManifestHeader(header);
    // Same width as before (fixed-width fields), so the volume lines are untouched.
    if (line.size() != static_cast<size_t>(newline - buf)) {
      result = Invalid(path + ": header width changed");
    } else if (::pwrite(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()) ||
               ::fdatasync(fd) != 0) {
      result = Status(ErrorCode::kUnexpectedException, Errno("update " + path));
    }
  }
  ::close(fd);
  return result;
}

}  // namespace svmkey::volset
