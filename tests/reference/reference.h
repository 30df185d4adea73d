// The float64 scalar reference every test compares against. The only place besides the Halide
// generators where halide_lars math is written down (see docs/spec.md).
#ifndef HALIDE_LARS_TESTS_REFERENCE_REFERENCE_H_
#define HALIDE_LARS_TESTS_REFERENCE_REFERENCE_H_

#include <cstdint>
#include <vector>

namespace halide_lars {
namespace reference {

// Σ x² and max |x| in float64.
struct SumSqMaxAbs {
  double sumsq = 0.0;
  double maxabs = 0.0;
};
SumSqMaxAbs Norms(const std::vector<double>& x);

// Element conversions, round to nearest even (IEEE binary16 and bfloat16 bit patterns).
uint16_t F32ToF16Bits(float f);
float F16BitsToF32(uint16_t h);
uint16_t F32ToBF16Bits(float f);
float BF16BitsToF32(uint16_t b);

}  // namespace reference
}  // namespace halide_lars

#endif  // HALIDE_LARS_TESTS_REFERENCE_REFERENCE_H_
