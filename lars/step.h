// The kernel sequence of one LARS step of a parameter (internal to lars/).
#ifndef HALIDE_LARS_LARS_STEP_H_
#define HALIDE_LARS_LARS_STEP_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "halide_lars/options.h"
#include "lars/param_state.h"
#include "runtime/lars_kernels.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace internal {

// `grad` against the parameter: same dtype, numel, device; not overlapping p. An empty view
// (data == nullptr) is accepted as "no gradient".
absl::Status ValidateParamAndGrad(const ParamSlot& slot, const TensorView& grad);

// Unimplemented when no kernel (or state kind) exists for this parameter and these options.
absl::Status CheckSupported(const ParamSlot& slot, const LarsOptions& options);

// Whether two tensors share memory (cl_mem handles on OpenCL: the same handle).
bool Overlap(const TensorView& a, const TensorView& b);

// A step in two phases. CheckGradient modifies no state: it runs the passes that read the
// gradient before anything is written (Σg² for percentile clipping, or the norms pass into
// scratch, or a Σg² pass) and reports whether the gradient is finite (true when options say
// nonfinite=propagate, without reading anything back). FinishStep runs the rest (percentile
// ring, remaining passes, the update) and counts the step.
struct StepPlan {
  bool norms_done = false;  // the norms pass already ran into scratch_norms
  bool clip_done = false;   // the percentile pass already ran (gscale is this step's)
};
absl::StatusOr<bool> CheckGradient(ParamSlot* slot, const LarsOptions& options,
                                   const ExecContext& exec, StepPlan* plan);
absl::Status FinishStep(ParamSlot* slot, const LarsOptions& options, const ExecContext& exec,
                        const StepPlan& plan);

// The passes a step is made of (also run by sharded steps): the state kind's norms pass into
// slot->scratch_norms (no state is modified); the percentile ring and gradient scale of step
// `step` from Σg² in slot->gnorm. Whether a step runs the norms pass: RunsNormsPass
// (lars/kernel_plan.h).
absl::Status NormsPass(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec);
absl::Status PercentilePass(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec,
                            int64_t step);
// 1-based step as the percentile kernel wants it (its ring_step): 1 only on the first step, and
// the same residue mod 100 as the real count (which may exceed int32).
int32_t RingStep(int64_t step);

}  // namespace internal
}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_STEP_H_
