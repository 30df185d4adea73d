#include "tests/cpu_subtargets.h"

#include "runtime/kernel_tokens.h"

// Declarations of the sub-functions of every default CPU row (GPU rows and variants expand to
// nothing: a variant only changes GeneratorParams of a schedule its default row already tests).
#define LARS_KERNEL_VARIANT(op, dtype, backend, variant)
#define LARS_KERNEL(op, dtype, backend) LARS_KERNEL_##backend(op, dtype)
#define LARS_KERNEL_cuda(op, dtype)
#define LARS_KERNEL_opencl(op, dtype)
#define LARS_KERNEL_cpu(op, dtype)                                                                \
  extern "C" int op##_##dtype##_cpu_avx2(void) __asm__("\"" #op "_" #dtype                       \
                                                      "_cpu-x86-64-linux-avx2-fma-user_context-no_runtime-strict_float\""); \
  extern "C" int op##_##dtype##_cpu_avx512(void) __asm__("\"" #op "_" #dtype                     \
                                                        "_cpu-x86-64-linux-avx512_skylake-user_context-no_runtime-strict_float\""); \
  extern "C" int op##_##dtype##_cpu_base(void) __asm__("\"" #op "_" #dtype                       \
                                                      "_cpu-x86-64-linux-user_context-no_runtime-strict_float\"");
#include "generators/kernels.inc"
#undef LARS_KERNEL_cpu

namespace halide_lars {
namespace testing {
namespace {

using namespace kernel_tokens;  // NOLINT: kernels.inc rows name tokens

bool HasAvx2Fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool HasAvx512Skylake() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}
bool Always() { return true; }

}  // namespace

const std::vector<CpuSubtarget>& CpuSubtargets() {
  static const std::vector<CpuSubtarget>* all = new std::vector<CpuSubtarget>{
#define LARS_KERNEL_cpu(op, dtype)                                                            \
  {kOp_##op, kDType_##dtype, #op "_" #dtype "_cpu", "avx512_skylake", HasAvx512Skylake,       \
   reinterpret_cast<void (*)()>(&op##_##dtype##_cpu_avx512)},                                \
      {kOp_##op, kDType_##dtype, #op "_" #dtype "_cpu", "avx2-fma", HasAvx2Fma,               \
       reinterpret_cast<void (*)()>(&op##_##dtype##_cpu_avx2)},                              \
      {kOp_##op, kDType_##dtype, #op "_" #dtype "_cpu", "baseline", Always,                   \
       reinterpret_cast<void (*)()>(&op##_##dtype##_cpu_base)},
#include "generators/kernels.inc"
  };
  return *all;
}

}  // namespace testing
}  // namespace halide_lars
