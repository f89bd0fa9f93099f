// libFuzzer target: the volume metadata file decoder and the VDEK opener.
// Whatever the bytes, decoding returns a code and never crashes; if a file decodes,
// opening it under a fixed key either succeeds or fails with a code.
#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/volume.h"
#include "engine/volume_metadata.h"

namespace {

struct Fixture {
  Fixture() {
    auto t = svmkey::KeyTable::Create(2);
    table = std::move(t).value();
    auto k = table->Generate();
    ring.Add(1, *k);
    ring.Add(2, *k);
    auto o = svmkey::VdekOpener::Create(*table, ring);
    opener.emplace(std::move(o).value());
    vdek = std::move(svmkey::SecureBuffer::Allocate(svmkey::kKeyBytes)).value();
  }
  std::unique_ptr<svmkey::KeyTable> table;
  svmkey::KeyRing ring;
  std::optional<svmkey::VdekOpener> opener;
  svmkey::SecureBuffer vdek;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fx;
  std::span<const uint8_t> in(data, size);
  auto meta = svmkey::DecodeMetadataFile(in);
  if (meta.ok()) {
    int order[2];
    const int n = meta->Candidates(order);
    if (n < 1 || n > 2) __builtin_trap();
    auto r = fx.opener->Open(*meta, fx.vdek.data(), nullptr);
    if (r.status.ok() && r.slot != order[0] && r.slot != order[1]) __builtin_trap();
  } else if (meta.status().code() == svmkey::ErrorCode::kOk) {
    __builtin_trap();
  }
  // The sector decoders on their own, at every alignment the input allows.
  if (size >= svmkey::kSectorSize) {
    svmkey::VolumeIdentity id;
    uint32_t flags;
    svmkey::DecodeHeader(in.first(svmkey::kSectorSize), &id, &flags).IgnoreError();
    svmkey::VdekSlot slot;
    svmkey::DecodeSlot(in.last(svmkey::kSectorSize), static_cast<int>(size & 1), &slot)
        .IgnoreError();
  }
  return 0;
}
