// The signed dynamic (tree) quantization codebook of bitsandbytes, create_dynamic_map(signed=True,
// max_exponent_bits=7, total_bits=8), and the midpoints the quantize kernels search.
#ifndef HALIDE_LARS_RUNTIME_CODEBOOK_H_
#define HALIDE_LARS_RUNTIME_CODEBOOK_H_

#include <array>
#include <cstdint>
#include <vector>

namespace halide_lars {

// 256 sorted fp32 codes: for i in 0..6, the 2^i midpoints of linspace(0.1, 1, 2^i + 1) scaled by
// +-10^(i-6); plus 0 and 1. Computed in float64 and rounded once to fp32. (bitsandbytes computes
// it with fp32 torch ops; its values differ from these by at most 1 ulp in 90 of 256 entries on
// an AVX2 torch 1.13, and depend on the machine's vector width. A bitsandbytes checkpoint carries
// its own qmap1, which loading keeps.)
const std::array<float, 256>& DynamicCodebook();

// Index of the code 0.0 (127): what an all-zero block quantizes to.
constexpr int kZeroCode = 127;

// mids[k] = (code[k] + code[k+1]) / 2 for k < 255 (fp32), mids[255] = +Inf. Quantization picks
// the number of midpoints strictly below the value: a value exactly on a midpoint goes to the
// lower code (bitsandbytes' rule), then bitsandbytes' sign fix (see quantize kernels).
std::array<float, 256> CodebookMidpoints(const std::array<float, 256>& code);

// The quantize kernels' bucket table, one uint32 per 16-bit bucket h of floats (the values
// whose top 16 bits are h): bits 16-23 = number of midpoints strictly below the bucket's
// smallest value, bit 24 = a midpoint lies inside the bucket, bits 0-15 = its low 16 bits.
// With at most one midpoint per bucket, count(mids < v) = below + (has_mid && v > mid).
std::vector<uint32_t> CodebookBucketTable(const std::array<float, 256>& mids);

// The largest number of midpoints inside one bucket (must be <= 1 for the table to be exact).
int MaxMidpointsPerBucket(const std::array<float, 256>& mids);

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_CODEBOOK_H_
