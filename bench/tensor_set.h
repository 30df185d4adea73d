// One optimizer over a set of tensors, registered per tensor, as a flat set or in two phases:
// the harness of the tensor-set, sharded and roofline benchmarks.
#ifndef HALIDE_LARS_BENCH_TENSOR_SET_H_
#define HALIDE_LARS_BENCH_TENSOR_SET_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"

namespace halide_lars {
namespace bench {

// How a TensorSet registers and steps its tensors.
enum class SetMode {
  kPerTensor,  // AddParam per tensor (each its own allocation), Step()
  kTwoPhase,   // the same, every tensor a shard of itself: StepBegin + StepFinish (the sharded
               // path minus the all-reduce), to measure what the split costs on one process
  kFlat,      // AllocateFlatParams: one flat buffer, two pipelines per step
};

// One optimizer over tensors of the given sizes, default options, registered as `mode` says.
struct TensorSet {
  std::vector<DeviceBuffer> p, g;  // kPerTensor / kTwoPhase: one allocation per tensor
  std::unique_ptr<Lars> opt;
  std::vector<double> partials;    // kTwoPhase
  SetMode mode = SetMode::kPerTensor;
  int64_t total = 0;

  static absl::StatusOr<TensorSet> Make(const std::vector<int64_t>& sizes, SetMode mode,
                                        int optim_bits = 32,
                                        Nonfinite nonfinite = Nonfinite::kSkip);

  absl::Status Step();
};

}  // namespace bench
}  // namespace halide_lars

#endif  // HALIDE_LARS_BENCH_TENSOR_SET_H_
