// The tokens the rows of runtime/kernels.inc use, as values: kOp_<op>, kDType_<dtype>,
// kDevice_<backend>. For code that expands those rows (the registry, tests, benchmarks).
#ifndef HALIDE_LARS_RUNTIME_KERNEL_TOKENS_H_
#define HALIDE_LARS_RUNTIME_KERNEL_TOKENS_H_

#include "runtime/registry.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace kernel_tokens {

constexpr Op kOp_norms = Op::kNorms;
constexpr Op kOp_lars_norms = Op::kLarsNorms;
constexpr Op kOp_lars_update = Op::kLarsUpdate;
constexpr Op kOp_percentile_clip = Op::kPercentileClip;
constexpr Op kOp_lars_momentum = Op::kLarsMomentum;
constexpr Op kOp_lars_apply = Op::kLarsApply;
constexpr Op kOp_quantize_blockwise = Op::kQuantizeBlockwise;
constexpr Op kOp_dequantize_blockwise = Op::kDequantizeBlockwise;
constexpr Op kOp_lars8bit_norms = Op::kLars8bitNorms;
constexpr Op kOp_lars8bit_update = Op::kLars8bitUpdate;
constexpr Op kOp_lars8bit_tensor_norms = Op::kLars8bitTensorNorms;
constexpr Op kOp_lars8bit_tensor_update = Op::kLars8bitTensorUpdate;
constexpr Op kOp_lars_flat_norms = Op::kLarsFlatNorms;
constexpr Op kOp_lars_flat_update = Op::kLarsFlatUpdate;
constexpr Op kOp_lars8bit_flat_norms = Op::kLars8bitFlatNorms;
constexpr Op kOp_lars8bit_flat_update = Op::kLars8bitFlatUpdate;
constexpr DType kDType_f32 = DType::kF32;
constexpr DType kDType_f16 = DType::kF16;
constexpr DType kDType_bf16 = DType::kBF16;
constexpr DeviceType kDevice_cpu = DeviceType::kCPU;
constexpr DeviceType kDevice_cuda = DeviceType::kCUDA;
constexpr DeviceType kDevice_opencl = DeviceType::kOpenCL;

}  // namespace kernel_tokens
}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_KERNEL_TOKENS_H_
