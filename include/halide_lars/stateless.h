// A LARS step of one tensor whose state the caller owns (JAX arrays under XLA's FFI, another
// framework's tensors, a C caller's memory): nothing is kept between calls. It runs the step
// Lars::Step runs -- lars/step.h's CheckGradient + FinishStep (and lars/sharding.h's partials
// for sharded tensors) on a slot that borrows the caller's buffers -- so a sequence of calls is
// bit-identical to a Lars optimizer with the same options fed the same gradients.
#ifndef HALIDE_LARS_LARS_STATELESS_H_
#define HALIDE_LARS_LARS_STATELESS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "halide_lars/lars.h"
#include "halide_lars/options.h"
#include "halide_lars/types.h"

namespace halide_lars {

// The state of one tensor, in the caller's memory on the parameter's device. Its kind is the
// one the options give the tensor (Lars's rule: blockwise 8-bit when optim_bits = 8, block_wise
// and numel >= max(min_8bit_size, 4096); else fp32).
struct TensorState {
  TensorView momentum;  // fp32 state: f32 x numel (the state1 of bitsandbytes)
  TensorView codes;     // blockwise 8-bit state: u8 x numel (state1) ...
  TensorView absmax;    // ... and f32 x ceil(numel / block_size) (absmax1)
};

struct TensorStep {
  TensorView param;  // updated in place
  TensorView grad;
  TensorState state;      // updated in place
  int64_t step = 0;       // steps this tensor took before this one (0: this is its first)
  double grad_scale = 1.0;  // an AMP loss scale: gradients read as g / grad_scale (GradUnscale)
  // A shard of a larger tensor (StepTensorBegin/Finish): its first element there, and the
  // tensor's element count (-1: param is the whole tensor).
  int64_t shard_offset = 0;
  int64_t full_numel = -1;
};

// The state kind `options` give a tensor of `numel` elements (kFp32 or kBlockwise8; per-tensor
// 8-bit state is Lars's only).
absl::StatusOr<StateKind> StatelessStateKind(const LarsOptions& options, int64_t numel);

// One step of t. true: stepped; false: the gradient was non-finite and options.nonfinite = skip
// (nothing changed; the caller does not count the step). Errors (nothing changed): options
// invalid or without lr, buffers of the wrong dtype/size/device or overlapping, state of another
// kind than the options give, percentile clipping (its history is Lars's), nonfinite = error
// with a non-finite gradient.
absl::StatusOr<bool> StepTensor(const LarsOptions& options, const TensorStep& t,
                                const ExecContext& exec = {});

// A sharded tensor's step in two calls around the caller's all-reduce (sum) of 5 partials
// (lars/sharding.h's {Σp², A, B, C, Σg²}; the same on every shard's call of Finish). Begin
// changes nothing. Finish returns what StepTensor returns (the finiteness comes from the
// reduced Σg²: every shard decides alike).
absl::Status StepTensorBegin(const LarsOptions& options, const TensorStep& t, double partials[5],
                             const ExecContext& exec = {});
absl::StatusOr<bool> StepTensorFinish(const LarsOptions& options, const TensorStep& t,
                                      const double reduced[5], const ExecContext& exec = {});

}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_STATELESS_H_
