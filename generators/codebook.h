// Blockwise 8-bit quantization in the kernels: the codebook index of a value, a code's value, and
// the normalization by a block's absmax (table-free or by lookup; runtime/codebook.h has the tables).
#ifndef HALIDE_LARS_GENERATORS_CODEBOOK_H_
#define HALIDE_LARS_GENERATORS_CODEBOOK_H_

#include "Halide.h"

namespace halide_lars {
namespace generators {

// Blockwise 8-bit quantization with a 256-entry sorted codebook (runtime/codebook.h).
// Index of the code nearest to v (a value already divided by its block's absmax): the number of
// midpoints strictly below v, then bitsandbytes' sign fix (if the code's sign bit differs from
// v's, step one code towards v's side, so a small non-zero momentum never flips sign).
// table_free (GeneratorParam quantize_table_free of the CPU kernels; off by default): vector
// arithmetic only, no division -- a linear estimate inside v's decade of the codebook settled by
// two exact midpoint compares (common.cc); bit-identical to the table for all 2^32 floats
// (//tests/kernels:quantize_exhaustive_test), but its ~100 vector operations per element make the 8-bit
// step slower than the scalarized lookup on the 2-core EPYC (0.24-0.30 of the triad vs 0.43-0.48).
// Otherwise ONE lookup: lut[top 16 bits of v] packs the number
// of midpoints below the bucket (bits 16-23), whether a midpoint lies inside it (bit 24) and that
// midpoint's low 16 bits (it shares v's top 16), so an integer compare finishes the count. At
// most one midpoint lies in any bucket (checked by //tests/kernels:quantize_test). `lut`: u32 x 65536;
// `mids` (f32 x 256) is not read (kept for the kernels' stable signature).
Halide::Expr QuantizeIndex(const Halide::Expr& v, const Halide::Func& mids, const Halide::Func& code,
                           const Halide::Func& lut, bool table_free);

// Whether a kernel for `target` computes the codebook (CPU, when its GeneratorParam says so).
inline bool TableFree(const Halide::Target& target, bool param) {
  return param && !target.has_gpu_feature();
}

// The code value of index c (uint8): code(c), or table_free (GeneratorParam decode_table_free of
// the CPU kernels, on by default: no gather, the 8-bit step 0.47 instead of 0.43 of the triad),
// one correctly rounded division (the codes are rationals N / (256 * 5^(7-i)): see common.cc).
Halide::Expr DecodeCode(const Halide::Expr& c, const Halide::Func& code, bool table_free);

// v = x / absmax as the quantizer wants it: +0 for an all-zero block (absmax 0) -- and for a
// block whose absmax is subnormal (< 2^-126, where 1/absmax overflows) -- so such a block
// quantizes to the zero code and dequantizes to exactly 0.
Halide::Expr NormalizeForQuantize(const Halide::Expr& x, const Halide::Expr& absmax);

}  // namespace generators
}  // namespace halide_lars

#endif  // HALIDE_LARS_GENERATORS_CODEBOOK_H_
