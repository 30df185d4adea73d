#include "bench/model_shapes.h"

namespace halide_lars {

std::vector<int64_t> ResNet50Sizes() {
  std::vector<int64_t> sizes = {64 * 3 * 7 * 7, 64, 64};  // conv1, bn1
  int in = 64;
  const int blocks[4] = {3, 4, 6, 3}, mids[4] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    const int mid = mids[stage], out = 4 * mid;
    for (int b = 0; b < blocks[stage]; ++b) {
      for (int64_t s : {int64_t{in} * mid, int64_t{mid}, int64_t{mid}, int64_t{mid} * mid * 9,
                        int64_t{mid}, int64_t{mid}, int64_t{mid} * out, int64_t{out}, int64_t{out}}) {
        sizes.push_back(s);
      }
      if (b == 0) {  // downsample conv + bn
        for (int64_t s : {int64_t{in} * out, int64_t{out}, int64_t{out}}) sizes.push_back(s);
      }
      in = out;
    }
  }
  sizes.push_back(1000 * 2048);  // fc
  sizes.push_back(1000);
  return sizes;
}

std::vector<int64_t> BertBaseSizes() {
  const int64_t h = 768, ff = 3072;
  std::vector<int64_t> sizes = {30522 * h, 512 * h, 2 * h, h, h};  // embeddings + LayerNorm
  for (int layer = 0; layer < 12; ++layer) {
    for (int i = 0; i < 4; ++i) {  // query, key, value, attention output: weight + bias
      sizes.push_back(h * h);
      sizes.push_back(h);
    }
    for (int64_t s : {h, h, h * ff, ff, ff * h, h, h, h}) sizes.push_back(s);
  }
  sizes.push_back(h * h);  // pooler
  sizes.push_back(h);
  return sizes;
}

}  // namespace halide_lars
