// Norm reductions of one tensor on its own device (public: useful on their own, e.g. for
// gradient-norm logging or clipping).
#ifndef HALIDE_LARS_RUNTIME_NORMS_H_
#define HALIDE_LARS_RUNTIME_NORMS_H_

#include "absl/status/status.h"
#include "halide_lars/types.h"

namespace halide_lars {

// Writes {Σ x², max |x|} as two f32 values to `out`, which lives on x's device (so a GPU caller
// never waits for a host round trip). fp32 accumulation; deterministic: bit-identical results
// for the same input on every run and thread count. Any numel in [0, 2^31), f32/f16/bf16.
// Errors (nothing written): null data with numel > 0, out not 2 f32 on x's device, no kernel
// for x's dtype on that device, device unavailable. Thread-safe.
absl::Status SumSqMaxAbs(const TensorView& x, const TensorView& out, const ExecContext& exec = {});

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_NORMS_H_
