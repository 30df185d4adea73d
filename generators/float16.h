// The kernels' element types and their exact conversions to and from fp32 (f16 and bf16 as
// uint16 bit patterns on every backend).
#ifndef HALIDE_LARS_GENERATORS_FLOAT16_H_
#define HALIDE_LARS_GENERATORS_FLOAT16_H_

#include <cstdint>

#include "Halide.h"

namespace halide_lars {
namespace generators {

// Tensor element types. 16-bit floats travel as their uint16 bit patterns on every backend and
// are converted with the exact integer helpers below: OpenCL devices without cl_khr_fp16 (pocl,
// NVIDIA) cannot load `half`, and one storage type keeps the kernel ABI identical across CPU,
// CUDA and OpenCL.
enum class DType { kF32, kF16, kBF16 };

template <DType D>
struct Storage {
  using type = uint16_t;
};
template <>
struct Storage<DType::kF32> {
  using type = float;
};

// A uint32 constant (Halide's operators take only signed int literals): the bit-pattern
// arithmetic of the conversions below and of the table-free codebook (codebook.cc).
Halide::Expr U32(uint32_t v);

// f16 bits (uint16) -> f32. Exact for all 65536 patterns: subnormals become normal f32 values
// (so GPU flush-to-zero cannot touch them), Inf and NaN payloads are kept.
Halide::Expr DecodeF16(const Halide::Expr& bits);
// bf16 bits (uint16) -> f32. Exact (a shift).
Halide::Expr DecodeBF16(const Halide::Expr& bits);
// f32 -> f16 bits, round to nearest even; overflow -> Inf, NaN -> quiet NaN, sign kept.
// f32 subnormal inputs round to (signed) zero, as they do under FTZ.
Halide::Expr EncodeF16(const Halide::Expr& f);
// f32 -> bf16 bits, round to nearest even; NaN -> quiet NaN.
Halide::Expr EncodeBF16(const Halide::Expr& f);

// Element of storage type `d` (as loaded) -> f32, and back (rounded to nearest even).
Halide::Expr ToF32(DType d, const Halide::Expr& e);
Halide::Expr FromF32(DType d, const Halide::Expr& f);

}  // namespace generators
}  // namespace halide_lars

#endif  // HALIDE_LARS_GENERATORS_FLOAT16_H_
