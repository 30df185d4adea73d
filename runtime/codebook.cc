#include "runtime/codebook.h"

#include <algorithm>
#include <cmath>
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

}  // namespace halide_lars
