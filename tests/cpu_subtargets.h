// Every ISA sub-function of the CPU multitarget kernels in generators/kernels.inc. The dispatch
// wrapper caches its choice at the first call, so each variant is reached through its own
// symbol ("<name>-<target>", quoted asm labels because of the '-').
#ifndef HALIDE_LARS_TESTS_CPU_SUBTARGETS_H_
#define HALIDE_LARS_TESTS_CPU_SUBTARGETS_H_

#include <vector>

#include "runtime/registry.h"

namespace halide_lars {
namespace testing {

struct CpuSubtarget {
  Op op;
  DType dtype;
  const char* name;    // the dispatching kernel
  const char* target;  // "avx512_skylake", "avx2-fma", "baseline"
  bool (*supported)();
  void (*fn)();
};

const std::vector<CpuSubtarget>& CpuSubtargets();

}  // namespace testing
}  // namespace halide_lars

#endif  // HALIDE_LARS_TESTS_CPU_SUBTARGETS_H_
