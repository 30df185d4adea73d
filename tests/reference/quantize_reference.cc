#include "tests/reference/quantize_reference.h"

#include <algorithm>
#include <cmath>

namespace halide_lars {
namespace reference {

std::array<float, 256> DynamicCodebookRef() {
  std::vector<double> v = {0.0, 1.0};
  for (int i = 0; i <= 6; ++i) {
    const int n = (1 << i) + 1;
    std::vector<double> b(n);
    for (int k = 0; k < n; ++k) b[k] = 0.1 + (1.0 - 0.1) * k / (n - 1);
    for (int k = 0; k + 1 < n; ++k) {
      const double mean = (b[k] + b[k + 1]) / 2.0;
      v.push_back(std::pow(10.0, i - 6) * mean);
      v.push_back(-std::pow(10.0, i - 6) * mean);
    }
  }
  std::sort(v.begin(), v.end());
  std::array<float, 256> out{};
  for (int i = 0; i < 256; ++i) out[i] = static_cast<float>(v[i]);
  return out;
}

uint8_t QuantizeValue(const std::array<float, 256>& code, float v) {
  int idx = 255;
  for (int k = 0; k < 255; ++k) {
    const float mid = (code[k] + code[k + 1]) / 2.0f;
    if (v <= mid) {
      idx = k;
      break;
    }
  }
  if (std::signbit(code[idx]) != std::signbit(v)) idx += std::signbit(v) ? -1 : 1;
  return static_cast<uint8_t>(std::clamp(idx, 0, 255));
}

Quantized QuantizeBlockwise(const std::vector<double>& x, int block) {
  const std::array<float, 256> code = DynamicCodebookRef();
  const size_t n = x.size(), blocks = (n + block - 1) / block;
  Quantized q;
  q.codes.resize(n);
  q.absmax.assign(blocks, 0.0f);
  for (size_t b = 0; b < blocks; ++b) {
    const size_t end = std::min(n, (b + 1) * block);
    double amax = 0.0;
    for (size_t i = b * block; i < end; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float a = static_cast<float>(amax);
    q.absmax[b] = a;
    const float inv = 1.0f / a;
    for (size_t i = b * block; i < end; ++i) {
      // Subnormal absmax: the block quantizes as zero (1/absmax would overflow).
      const float v = a >= 1.17549435e-38f ? static_cast<float>(x[i]) * inv : 0.0f;
      q.codes[i] = QuantizeValue(code, v);
    }
  }
  return q;
}

std::vector<double> DequantizeBlockwise(const Quantized& q, int block) {
  const std::array<float, 256> code = DynamicCodebookRef();
  std::vector<double> out(q.codes.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = code[q.codes[i]] * q.absmax[i / block];
  return out;
}

}  // namespace reference
}  // namespace halide_lars
