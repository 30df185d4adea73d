// The sharded (two-phase: StepBegin + StepFinish) step against the one-call step of the same
// set, paired, on ResNet-50's tensors and on four tensors of 8M elements, each larger than the
// last-level cache (docs/benchmarks.md#sharded-steps).
#include <cstdint>
#include <string>
#include <vector>

#include "bench/benchmarks.h"
#include "bench/tensor_set.h"

namespace halide_lars {
namespace bench {

void RegisterShardedBenchmarks(const std::string& model, const std::vector<int64_t>& sizes) {
  if (model != "resnet50") return;
  RegisterPairedVsOneTensor("BM_Paired/resnet50_two_phase_vs_one_call", sizes, SetMode::kTwoPhase,
                            32, true);
  RegisterPairedVsOneTensor("BM_Paired/4x8M_two_phase_vs_one_call",
                            std::vector<int64_t>(4, int64_t{1} << 23), SetMode::kTwoPhase, 32,
                            true);
}

}  // namespace bench
}  // namespace halide_lars
