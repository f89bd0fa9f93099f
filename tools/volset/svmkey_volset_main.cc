// svmkey-volset: makes, verifies and rekeys volume sets for performance work.
// See volume_set.h for the set layout and volume_set_manifest.h for the manifest.
#include <CLI/CLI.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <string>

#include "engine/key_table.h"
#include "engine/rewrap.h"
#include "engine/secure_memory.h"
#include "engine/volset/kek_file.h"
#include "engine/volset/volume_set.h"
#include "engine/volset/volume_set_manifest.h"

namespace svmkey::volset {
namespace {

constexpr char kDescription[] =
    "svmkey-volset: makes volume sets of N encrypted volumes of one SVM for performance "
    "work (svmkey-bench, the daemon's register-volume-set call), verifies them and rekeys "
    "them.\n"
    "PERFORMANCE SETS ONLY: without --kek-file, `create` generates the SVM-KEK and writes it "
    "UNWRAPPED to <dir>/kek.bin (32 raw bytes, mode 0600) so later runs can open the set. "
    "A real SVM-KEK never touches disk unwrapped; do not use these sets for real data.";

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Fail(const Status& status) {
  std::fprintf(stderr, "svmkey-volset: %s\n", status.ToString().c_str());
  return 1;
}

struct CreateArgs {
  std::string dir, svm_uuid, kek_file, io = "auto";
  uint64_t count = 0, generation = 1, clone_every = 0, first_dsid = 1;
  size_t batch_size = 8192;
};

int RunCreate(const CreateArgs& args) {
  auto svm = Uuid::Parse(args.svm_uuid);
  if (!svm || svm->IsNil()) {
    return Fail(Status(ErrorCode::kInvalidValue, "--svm-uuid is not a uuid: " + args.svm_uuid));
  }
  auto table = KeyTable::Create(4);
  if (!table.ok()) return Fail(table.status());
  auto io = MakeFileIoByName(args.io);
  if (!io.ok()) return Fail(io.status());
  if (::access(ManifestPath(args.dir).c_str(), F_OK) == 0) {
    return Fail(Status(ErrorCode::kDuplicateEntry, args.dir + " already holds a volume set"));
  }
  Result<KeyHandle> kek = Status(ErrorCode::kInvalidArgument, "unset");
  if (!args.kek_file.empty()) {
    kek = ImportKekFile(**table, args.kek_file);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(args.dir, ec);
    if (ec) return Fail(Status(ErrorCode::kUnexpectedException, "mkdir " + args.dir + ": " + ec.message()));
    const std::string path = args.dir + "/" + std::string(kKekFileName);
    kek = GenerateKekFile(**table, path, /*replace=*/false);
    if (kek.ok()) std::printf("generated SVM-KEK file %s (mode 0600)\n", path.c_str());
  }
  if (!kek.ok()) return Fail(kek.status());

  CreateVolumeSetOptions options;
  options.dir = args.dir;
  options.svm = *svm;
  options.count = args.count;
  options.generation = args.generation;
  options.clone_every = args.clone_every;
  options.first_dsid = args.first_dsid;
  options.batch_size = args.batch_size;
  const uint64_t step = std::max<uint64_t>(args.count / 10, 1);
  uint64_t next_report = step;
  options.progress = [&](uint64_t created) {
    if (created >= next_report && created < args.count) {
      std::fprintf(stderr, "created %llu/%llu\n", static_cast<unsigned long long>(created),
                   static_cast<unsigned long long>(args.count));
      next_report += step;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  auto report = CreateVolumeSet(**io, **table, *kek, options);
  if (!report.ok()) return Fail(report.status());
  const double seconds = SecondsSince(start);
  std::printf(
      "created %llu volumes (%llu clones) for SVM %s under generation %llu in %s/ "
      "(io=%s): %.1f s, %.0f volumes/s\nmanifest: %s\n",
      static_cast<unsigned long long>(report->created),
      static_cast<unsigned long long>(report->clones), svm->ToString().c_str(),
      static_cast<unsigned long long>(args.generation), args.dir.c_str(),
      std::string((*io)->name()).c_str(), seconds, report->created / std::max(seconds, 1e-9),
      ManifestPath(args.dir).c_str());
  return 0;
}

struct VerifyArgs {
  std::string dir, kek_file, io = "auto";
  int64_t generation = -1;
  size_t batch_size = 4096;
};

int RunVerify(const VerifyArgs& args) {
  auto source = ManifestVolumeSource::Open(args.dir);
  if (!source.ok()) return Fail(source.status());
  const uint64_t generation = args.generation >= 0 ? static_cast<uint64_t>(args.generation)
                                                   : (*source)->header().generation;
  auto table = KeyTable::Create(4);
  if (!table.ok()) return Fail(table.status());
  auto io = MakeFileIoByName(args.io);
  if (!io.ok()) return Fail(io.status());
  const std::string kek_path =
      args.kek_file.empty() ? args.dir + "/" + std::string(kKekFileName) : args.kek_file;
  auto kek = ImportKekFile(**table, kek_path);
  if (!kek.ok()) return Fail(kek.status());
  const auto start = std::chrono::steady_clock::now();
  auto report = VerifyVolumeSet(**io, **table, *kek, generation, **source, args.batch_size);
  if (!report.ok()) return Fail(report.status());
  const double seconds = SecondsSince(start);
  std::printf("verified %llu volumes of SVM %s: %llu open under generation %llu, %llu failed "
              "(%.1f s, io=%s)\n",
              static_cast<unsigned long long>(report->total),
              (*source)->header().svm.ToString().c_str(),
              static_cast<unsigned long long>(report->opened),
              static_cast<unsigned long long>(generation),
              static_cast<unsigned long long>(report->failed), seconds,
              std::string((*io)->name()).c_str());
  for (const auto& [code, n] : report->failures_by_code) {
    const ErrorInfo* info = FindError(static_cast<ErrorCode>(code));
    std::printf("  %llu volumes failed with %u (%s)\n", static_cast<unsigned long long>(n), code,
                info ? std::string(info->name).c_str() : "?");
  }
  for (const std::string& sample : report->failure_samples) std::printf("  %s\n", sample.c_str());
  return report->failed == 0 ? 0 : 1;
}

struct RekeyArgs {
  std::string dir, old_kek_file, new_kek_file, io = "auto";
  size_t batch_size = RewrapOptions{}.batch_size;
};

int RunRekey(const RekeyArgs& args) {
  auto source = ManifestVolumeSource::Open(args.dir);
  if (!source.ok()) return Fail(source.status());
  auto table = KeyTable::Create(4);
  if (!table.ok()) return Fail(table.status());
  auto io = MakeFileIoByName(args.io);
  if (!io.ok()) return Fail(io.status());
  const std::string old_path =
      args.old_kek_file.empty() ? args.dir + "/" + std::string(kKekFileName) : args.old_kek_file;
  auto old_kek = ImportKekFile(**table, old_path);
  if (!old_kek.ok()) return Fail(old_kek.status());
  Result<KeyHandle> new_kek = ImportKekFile(**table, args.new_kek_file);
  if (!new_kek.ok() && new_kek.status().code() == ErrorCode::kEntryNotFound) {
    new_kek = GenerateKekFile(**table, args.new_kek_file, /*replace=*/false);
    if (new_kek.ok()) std::printf("generated SVM-KEK file %s (mode 0600)\n", args.new_kek_file.c_str());
  }
  if (!new_kek.ok()) return Fail(new_kek.status());
  RewrapKeys keys;
  keys.old_kek = *old_kek;
  keys.old_generation = (*source)->header().generation;
  keys.new_kek = *new_kek;
  keys.new_generation = keys.old_generation + 1;
  RewrapOptions options;
  options.batch_size = args.batch_size;
  const auto start = std::chrono::steady_clock::now();
  auto counters = RekeyVolumeSet(**io, **table, keys, **source, options,
                                 [](const RewrapBatchReport&) { return true; });
  if (!counters.ok()) return Fail(counters.status());
  const double seconds = SecondsSince(start);
  std::printf("rekeyed %s from generation %llu to %llu: %llu rewrapped, %llu already current, "
              "%llu failed of %llu (%.1f s, %.0f volumes/s, io=%s)\n",
              args.dir.c_str(), static_cast<unsigned long long>(keys.old_generation),
              static_cast<unsigned long long>(keys.new_generation),
              static_cast<unsigned long long>(counters->rewrapped),
              static_cast<unsigned long long>(counters->already_current),
              static_cast<unsigned long long>(counters->failed),
              static_cast<unsigned long long>(counters->total), seconds,
              counters->total / std::max(seconds, 1e-9), std::string((*io)->name()).c_str());
  if (counters->failed != 0) {
    std::printf("the manifest stays at generation %llu; rerun the same command to finish\n",
                static_cast<unsigned long long>(keys.old_generation));
    return 1;
  }
  std::printf("the manifest now says generation %llu; the new key is %s (the old key file is "
              "left as it was)\n",
              static_cast<unsigned long long>(keys.new_generation), args.new_kek_file.c_str());
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app(kDescription, "svmkey-volset");
  app.require_subcommand(1);

  CreateArgs create;
  CLI::App* create_cmd = app.add_subcommand("create", "make N encrypted volumes and a manifest");
  create_cmd->add_option("--dir", create.dir, "set directory (created if missing)")->required();
  create_cmd->add_option("--svm-uuid", create.svm_uuid, "SVM uuid")->required();
  create_cmd->add_option("--count", create.count, "number of volumes")->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
  create_cmd->add_option("--kek-file", create.kek_file,
                         "SVM-KEK, 32 raw bytes; default: generate <dir>/kek.bin (0600)");
  create_cmd->add_option("--generation", create.generation, "SVM-KEK generation")
      ->capture_default_str();
  create_cmd->add_option("--clone-every", create.clone_every,
                         "every K-th volume is a clone sharing the previous volume's VDEK (0: none)")
      ->capture_default_str();
  create_cmd->add_option("--first-dsid", create.first_dsid, "DSID of the first volume")
      ->capture_default_str()->check(CLI::PositiveNumber);
  create_cmd->add_option("--io", create.io, "I/O implementation: auto, uring or sync")
      ->capture_default_str();
  create_cmd->add_option("--batch-size", create.batch_size, "volumes per engine call")
      ->capture_default_str()->check(CLI::Range(size_t{1}, size_t{65536}));

  VerifyArgs verify;
  CLI::App* verify_cmd =
      app.add_subcommand("verify", "check every volume's VDEK opens under one generation");
  verify_cmd->add_option("--dir", verify.dir, "set directory")->required();
  verify_cmd->add_option("--kek-file", verify.kek_file, "SVM-KEK file (default <dir>/kek.bin)");
  verify_cmd->add_option("--generation", verify.generation,
                         "generation to open under (default: the manifest's)");
  verify_cmd->add_option("--io", verify.io, "I/O implementation: auto, uring or sync")
      ->capture_default_str();
  verify_cmd->add_option("--batch-size", verify.batch_size, "volumes per engine call")
      ->capture_default_str()->check(CLI::Range(size_t{1}, size_t{65536}));

  RekeyArgs rekey;
  CLI::App* rekey_cmd = app.add_subcommand(
      "rekey", "rewrap every volume from the manifest's generation g to g+1 under a new SVM-KEK");
  rekey_cmd->add_option("--dir", rekey.dir, "set directory")->required();
  rekey_cmd->add_option("--old-kek-file", rekey.old_kek_file,
                        "SVM-KEK of generation g (default <dir>/kek.bin)");
  rekey_cmd->add_option("--new-kek-file", rekey.new_kek_file,
                        "SVM-KEK of generation g+1; generated (0600) when the file does not exist")
      ->required();
  rekey_cmd->add_option("--io", rekey.io, "I/O implementation: auto, uring or sync")
      ->capture_default_str();
  rekey_cmd->add_option("--batch-size", rekey.batch_size, "volumes per rewrap batch")
      ->capture_default_str()->check(CLI::Range(size_t{1}, size_t{65536}));

  CLI11_PARSE(app, argc, argv);
  if (Status s = EngineInit(); !s.ok()) return Fail(s);
  if (create_cmd->parsed()) return RunCreate(create);
  if (verify_cmd->parsed()) return RunVerify(verify);
  if (rekey_cmd->parsed()) return RunRekey(rekey);
  return 2;
}

}  // namespace
}  // namespace svmkey::volset

int main(int argc, char** argv) { return svmkey::volset::Main(argc, argv); }
