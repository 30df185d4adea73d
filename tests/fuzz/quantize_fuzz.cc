// Fuzz target: blockwise quantize/dequantize of arbitrary float bit patterns (NaN, Inf,
// denormals, huge values). Invariants: no crash; every absmax is max|x| of its block; an
// all-zero block has code 127 and dequantizes to 0; for finite blocks every dequantized value is
// finite, at most absmax in magnitude, and has x's sign or is zero.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/quantize.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int block = (data[0] & 1) ? 2048 : 256;
  const size_t n = (size - 1) / 4;
  std::vector<float> x(n);
  if (n > 0) std::memcpy(x.data(), data + 1, n * 4);
  const int64_t blocks = halide_lars::NumQuantBlocks(static_cast<int64_t>(n), block);
  std::vector<uint8_t> q(n);
  std::vector<float> absmax(blocks), back(n);
  using halide_lars::DType;
  const halide_lars::Device cpu = halide_lars::Device::Cpu();
  const int64_t nn = static_cast<int64_t>(n);
  if (!halide_lars::QuantizeBlockwise({x.data(), DType::kF32, nn, cpu},
                                      {q.data(), DType::kU8, nn, cpu},
                                      {absmax.data(), DType::kF32, blocks, cpu}, block)
           .ok() ||
      !halide_lars::DequantizeBlockwise({q.data(), DType::kU8, nn, cpu},
                                        {absmax.data(), DType::kF32, blocks, cpu},
                                        {back.data(), DType::kF32, nn, cpu}, block)
           .ok()) {
    std::fprintf(stderr, "quantize/dequantize returned an error\n");
    std::abort();
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const size_t lo = b * block, hi = std::min(n, lo + block);
    bool finite = true;
    float amax = 0.0f;
    for (size_t i = lo; i < hi; ++i) {
      finite &= std::isfinite(x[i]);
      amax = std::max(amax, std::fabs(x[i]));
    }
    if (!finite) continue;  // NaN/Inf blocks: only "no crash" is promised
    if (absmax[b] != amax) {
      std::fprintf(stderr, "block %lld: absmax %g, max|x| %g\n", (long long)b, absmax[b], amax);
      std::abort();
    }
    for (size_t i = lo; i < hi; ++i) {
      const char* broken = nullptr;
      if (amax < 1.17549435e-38f && (q[i] != 127 || back[i] != 0.0f)) broken = "zero block";
      if (!std::isfinite(back[i]) || std::fabs(back[i]) > amax) broken = "magnitude";
      if (back[i] != 0.0f && std::signbit(back[i]) != std::signbit(x[i])) broken = "sign";
      if (broken != nullptr) {
        std::fprintf(stderr, "%s: x[%zu] = %a, code %d, dequantized %a, absmax %a\n", broken, i,
                     x[i], q[i], back[i], amax);
        std::abort();
      }
    }
  }
  return 0;
}
