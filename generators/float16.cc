#include "generators/float16.h"

#include <cstdint>

namespace halide_lars {
namespace generators {

using namespace Halide;

Expr U32(uint32_t v) { return Internal::make_const(UInt(32), v); }

Expr DecodeF16(const Expr& bits) {
  Expr h = cast<uint32_t>(bits);
  Expr sign = (h & U32(0x8000)) << 16;
  Expr em = h & U32(0x7fff);  // exponent and mantissa
  Expr normal = (em << 13) + U32((127 - 15) << 23);
  Expr inf_nan = (em << 13) | U32(0x7f800000);
  // exponent 0: mantissa * 2^-24, a normal f32 (exact).
  Expr subnormal = reinterpret<uint32_t>(cast<float>(h & U32(0x3ff)) * (1.0f / 16777216.0f));
  Expr mag = select(em < U32(0x0400), subnormal, em >= U32(0x7c00), inf_nan, normal);
  return reinterpret<float>(mag | sign);
}

Expr DecodeBF16(const Expr& bits) { return reinterpret<float>(cast<uint32_t>(bits) << 16); }

Expr EncodeF16(const Expr& f) {
  Expr u = reinterpret<uint32_t>(f);
  Expr sign = (u >> 16) & U32(0x8000);
  Expr a = u & U32(0x7fffffff);
  // Normal range: rebias the exponent, round the 13 dropped mantissa bits to nearest even.
  Expr r = a - U32((127 - 15) << 23);
  Expr normal = (r + U32(0x0fff) + ((r >> 13) & U32(1))) >> 13;
  // Below 2^-14: |f| = m * 2^(e-150) with m the 24-bit significand, i.e. m >> (126 - e) units of
  // 2^-24, rounded to nearest even with integer ops (OpenCL's round() is half-away-from-zero,
  // and float tricks do not survive GPU fast-math). Shifts >= 25 give 0 (also for f32 denormals).
  Expr e = cast<int32_t>(a >> 23);
  Expr m = (a & U32(0x7fffff)) | U32(0x800000);
  Expr shift = cast<uint32_t>(clamp(126 - e, 14, 25));
  Expr q = m >> shift;
  Expr rem = m & ((U32(1) << shift) - U32(1));
  Expr half = U32(1) << (shift - U32(1));
  Expr subnormal =
      q + select(rem > half || (rem == half && (q & U32(1)) == U32(1)), U32(1), U32(0));
  Expr mag = select(a > U32(0x7f800000), U32(0x7e00),   // NaN
                    a >= U32(0x477ff000), U32(0x7c00),  // rounds to >= 65520: Inf
                    a >= U32(0x38800000), normal,   // >= 2^-14
                    subnormal);
  return cast<uint16_t>(mag | sign);
}

Expr EncodeBF16(const Expr& f) {
  Expr u = reinterpret<uint32_t>(f);
  Expr rounded = (u + U32(0x7fff) + ((u >> 16) & U32(1))) >> 16;
  Expr nan = (u >> 16) | U32(0x40);
  return cast<uint16_t>(select((u & U32(0x7fffffff)) > U32(0x7f800000), nan, rounded));
}

Expr ToF32(DType d, const Expr& e) {
  switch (d) {
    case DType::kF16:
      return DecodeF16(e);
    case DType::kBF16:
      return DecodeBF16(e);
    case DType::kF32:
      break;
  }
  return cast<float>(e);
}

Expr FromF32(DType d, const Expr& f) {
  switch (d) {
    case DType::kF16:
      return EncodeF16(f);
    case DType::kBF16:
      return EncodeBF16(f);
    case DType::kF32:
      break;
  }
  return cast<float>(f);
}

}  // namespace generators
}  // namespace halide_lars
