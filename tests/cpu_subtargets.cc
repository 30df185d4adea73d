#include "tests/cpu_subtargets.h"

// Declarations of the sub-functions of every default CPU row (GPU rows and variants expand to
// nothing: a variant only changes GeneratorParams of a schedule its default row already tests).
#define LARS_KERNEL_VARIANT(op, dtype, backend, variant)
#define LARS_KERNEL(op, dtype, backend) LARS_KERNEL_##backend(op, dtype)
#define LARS_KERNEL_cuda(op, dtype)
#define LARS_KERNEL_opencl(op, dtype)
#define LARS_KERNEL_cpu(op, dtype)                                                                \
  extern "C" int op##_##dtype##_cpu_avx2(void) __asm__("\"" #op "_" #dtype                       \
                                                      "_cpu-x86-64-linux-avx2-fma-user_context-no_runtime\""); \
  extern "C" int op##_##dtype##_cpu_sse41(void) __asm__("\"" #op "_" #dtype                      \
                                                       "_cpu-x86-64-linux-sse41-user_context-no_runtime\""); \
  extern "C" int op##_##dtype##_cpu_base(void) __asm__("\"" #op "_" #dtype                       \
                                                      "_cpu-x86-64-linux-user_context-no_runtime\"");
#include "runtime/kernels.inc"
#undef LARS_KERNEL_cpu

namespace halide_lars {
namespace testing {
namespace {

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
constexpr DType kDType_f32 = DType::kF32;
constexpr DType kDType_f16 = DType::kF16;
constexpr DType kDType_bf16 = DType::kBF16;

bool HasAvx2Fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool HasSse41() { return __builtin_cpu_supports("sse4.1"); }
bool Always() { return true; }

}  // namespace

const std::vector<CpuSubtarget>& CpuSubtargets() {
  static const std::vector<CpuSubtarget>* all = new std::vector<CpuSubtarget>{
#define LARS_KERNEL_cpu(op, dtype)                                                            \
  {kOp_##op, kDType_##dtype, #op "_" #dtype "_cpu", "avx2-fma", HasAvx2Fma,                   \
   reinterpret_cast<void (*)()>(&op##_##dtype##_cpu_avx2)},                                  \
      {kOp_##op, kDType_##dtype, #op "_" #dtype "_cpu", "sse41", HasSse41,                    \
       reinterpret_cast<void (*)()>(&op##_##dtype##_cpu_sse41)},                             \
      {kOp_##op, kDType_##dtype, #op "_" #dtype "_cpu", "baseline", Always,                   \
       reinterpret_cast<void (*)()>(&op##_##dtype##_cpu_base)},
#include "runtime/kernels.inc"
  };
  return *all;
}

}  // namespace testing
}  // namespace halide_lars
