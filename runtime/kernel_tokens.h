// The tokens the rows of generators/kernels.inc use, as values: kOp_<op>, kDType_<dtype>,
// kDevice_<backend>. For code that expands those rows (the registry, tests, benchmarks).
#ifndef HALIDE_LARS_RUNTIME_KERNEL_TOKENS_H_
#define HALIDE_LARS_RUNTIME_KERNEL_TOKENS_H_

#include "halide_lars/types.h"
#include "runtime/registry.h"

namespace halide_lars {
namespace kernel_tokens {

#define LARS_OP(Name, token, ARGS) constexpr Op kOp_##token = Op::k##Name;
#include "runtime/kernel_ops.inc"
#undef LARS_OP
constexpr DType kDType_f32 = DType::kF32;
constexpr DType kDType_f16 = DType::kF16;
constexpr DType kDType_bf16 = DType::kBF16;
constexpr DeviceType kDevice_cpu = DeviceType::kCPU;
constexpr DeviceType kDevice_cuda = DeviceType::kCUDA;
constexpr DeviceType kDevice_opencl = DeviceType::kOpenCL;

}  // namespace kernel_tokens
}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_KERNEL_TOKENS_H_
