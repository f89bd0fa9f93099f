// Writes the seed corpus for metadata_decoder_fuzz: valid files with one or two slots,
// an empty-slot file, and a clone. The checked-in corpus (tests/fuzz/corpus/
// metadata_decoder/) was made with it; it is built beside the fuzz targets.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/volume_metadata.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  svmkey::VolumeIdentity id{*svmkey::Uuid::Parse("11111111-2222-4333-8444-555555555555"),
                            *svmkey::Uuid::Parse("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"), 77};
  for (int variant = 0; variant < 4; ++variant) {
    std::vector<uint8_t> file(svmkey::kMetadataFileSize, 0);
    svmkey::EncodeHeader(id, variant == 3 ? svmkey::kFlagClone : 0, file.data());
    svmkey::VdekSlot a, b;
    a.sequence = 1;
    a.generation = 1;
    b.sequence = 2;
    b.generation = 2;
    if (variant != 2) svmkey::EncodeSlot(a, 0, file.data() + svmkey::kSlotOffset[0]);
    if (variant == 1) svmkey::EncodeSlot(b, 1, file.data() + svmkey::kSlotOffset[1]);
    const std::string path = dir + "/seed-" + std::to_string(variant);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 1;
    std::fwrite(file.data(), 1, file.size(), f);
    std::fclose(f);
  }
  return 0;
}
