#include "runtime/codebook.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <limits>
#include <vector>

namespace halide_lars {

const std::array<float, 256>& DynamicCodebook() {
  static const std::array<float, 256> code = [] {
    std::vector<double> data;
    for (int i = 0; i < 7; ++i) {
      const int n = (1 << i) + 1;  // linspace(0.1, 1, 2^i + 1)
      const double scale = std::pow(10.0, i - 6);
      for (int k = 0; k + 1 < n; ++k) {
        const double a = 0.1 + 0.9 * k / (n - 1), b = 0.1 + 0.9 * (k + 1) / (n - 1);
        const double mean = (a + b) / 2.0;
        data.push_back(scale * mean);
        data.push_back(-scale * mean);
      }
    }
    data.push_back(0.0);
    data.push_back(1.0);
    std::sort(data.begin(), data.end());
    std::array<float, 256> out{};
    for (size_t i = 0; i < 256; ++i) out[i] = static_cast<float>(data[i]);
    return out;
  }();
  return code;
}

std::array<float, 256> CodebookMidpoints(const std::array<float, 256>& code) {
  std::array<float, 256> mids{};
  for (int k = 0; k < 255; ++k) mids[k] = (code[k] + code[k + 1]) / 2.0f;
  mids[255] = std::numeric_limits<float>::infinity();
  return mids;
}

namespace {

// The smallest and largest float whose top 16 bits are h.
std::pair<float, float> BucketRange(uint32_t h) {
  const uint32_t a = h << 16, b = (h << 16) | 0xffffu;
  float fa, fb;
  std::memcpy(&fa, &a, 4);
  std::memcpy(&fb, &b, 4);
  return (h & 0x8000u) ? std::make_pair(fb, fa) : std::make_pair(fa, fb);
}

int CountBelow(const std::array<float, 256>& mids, float v) {
  return static_cast<int>(std::lower_bound(mids.begin(), mids.end(), v) - mids.begin());
}

}  // namespace

std::vector<uint32_t> CodebookBucketTable(const std::array<float, 256>& mids) {
  std::vector<uint32_t> lut(65536, 0);
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto [lo, hi] = BucketRange(h);
    if (std::isnan(lo)) continue;
    const int below = std::min(CountBelow(mids, lo), 255);
    uint32_t entry = static_cast<uint32_t>(below) << 16;
    // The (single) midpoint m with lo <= m <= hi, if any: v > m adds one to the count.
    if (below < 255 && mids[below] <= hi) {
      uint32_t m;
      std::memcpy(&m, &mids[below], 4);
      entry |= (1u << 24) | (m & 0xffffu);
    }
    lut[h] = entry;
  }
  return lut;
}

int MaxMidpointsPerBucket(const std::array<float, 256>& mids) {
  int worst = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto [lo, hi] = BucketRange(h);
    if (std::isnan(lo) || std::isnan(hi)) continue;
    // midpoints m with lo <= m <= hi, i.e. those that can fall strictly below some v in range
    const int inside = static_cast<int>(std::upper_bound(mids.begin(), mids.end(), hi) -
                                        std::lower_bound(mids.begin(), mids.end(), lo));
    worst = std::max(worst, inside);
  }
  return worst;
}

}  // namespace halide_lars
