// HALIDE_LARS_CPU_ISA=avx2 (set by the BUILD rule): after the runtime's first call context,
// Halide's multitarget dispatch refuses AVX-512 feature sets and still accepts AVX2 and the
// baseline (where the CPU has them), so every CPU kernel runs its AVX2 code.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "HalideRuntime.h"
#include "gtest/gtest.h"
#include "runtime/halide_call.h"

namespace halide_lars {
namespace {

int CanUse(std::initializer_list<int> features) {
  uint64_t mask[2] = {0, 0};
  for (int f : features) mask[f / 64] |= uint64_t{1} << (f % 64);
  return halide_can_use_target_features(2, mask);
}

TEST(CpuIsaCap, Avx2CapRefusesAvx512) {
  ASSERT_STREQ(std::getenv("HALIDE_LARS_CPU_ISA"), "avx2");
  internal::CallContext ctx;
  ASSERT_TRUE(internal::MakeCallContext(Device::Cpu(), {}, &ctx).ok());
  EXPECT_EQ(CanUse({halide_target_feature_avx512, halide_target_feature_avx512_skylake}), 0);
  EXPECT_EQ(CanUse({}), 1);  // the baseline
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_EQ(CanUse({halide_target_feature_avx, halide_target_feature_avx2,
                      halide_target_feature_fma, halide_target_feature_sse41}), 1);
  }
}

}  // namespace
}  // namespace halide_lars
