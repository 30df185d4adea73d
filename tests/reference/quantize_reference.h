// Scalar reference of blockwise 8-bit quantization (bitsandbytes' dynamic codebook), written
// independently of the kernels: a linear scan for the nearest code instead of a binary search.
#ifndef HALIDE_LARS_TESTS_REFERENCE_QUANTIZE_REFERENCE_H_
#define HALIDE_LARS_TESTS_REFERENCE_QUANTIZE_REFERENCE_H_

#include <array>
#include <cstdint>
#include <vector>

namespace halide_lars {
namespace reference {

// The codebook computed here from the formula in docs/spec.md (float64, rounded once).
std::array<float, 256> DynamicCodebookRef();

// Code of one normalized value v (fp32): the lowest index whose upper midpoint (fp32
// (c[k]+c[k+1])/2) is >= v (ties go to the lower code), then bitsandbytes' sign fix.
uint8_t QuantizeValue(const std::array<float, 256>& code, float v);

struct Quantized {
  std::vector<uint8_t> codes;
  std::vector<float> absmax;
};

// Per block of B: absmax = max |x| (exact), v = x * fp32(1/absmax) in fp32 (0 for a block whose
// absmax is zero or subnormal).
Quantized QuantizeBlockwise(const std::vector<double>& x, int block);
std::vector<double> DequantizeBlockwise(const Quantized& q, int block);

}  // namespace reference
}  // namespace halide_lars

#endif  // HALIDE_LARS_TESTS_REFERENCE_QUANTIZE_REFERENCE_H_
