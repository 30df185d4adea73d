// The LARS kernel families as typed calls. Each call takes named arguments, picks the generated
// kernel for the tensors' dtype and device (and the 8-bit block size), runs it on the tensors'
// device (the CUDA stream of `exec`) and names that kernel in its error. lars/ steps parameters
// through these calls and its kernel plan (lars/kernel_plan.h) only.
#ifndef HALIDE_LARS_RUNTIME_LARS_KERNELS_H_
#define HALIDE_LARS_RUNTIME_LARS_KERNELS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/device_buffer.h"
#include "halide_lars/types.h"

namespace halide_lars {

// The per-step scalars of a LARS pass (lars/kernel_plan.h MakeLarsHyper fills them).
struct LarsHyper {
  float lr = 0.0f, momentum = 0.0f, dampening = 0.0f, weight_decay = 0.0f;
  bool nesterov = false;
  bool first_step = false;
  int32_t trust_mode = 0;  // KernelTrustForm + kTrustLrInside (base/kernel_abi.h)
  float max_unorm = 0.0f, trust_coefficient = 0.0f, eps = 0.0f;
};
// A flat set's option row of one tensor (opts[kFlatOpts * t ...], base/kernel_abi.h): `hyper`
// laid out as the flat kernels read it, with the gradient scale (percentile clip x AMP unscale),
// whether the tensor steps this call and whether a non-finite Σg² leaves it unchanged.
void FlatOptsRow(const LarsHyper& hyper, float grad_scale, bool active, bool skip_nonfinite,
                 float* row);

// One tensor's momentum, in the representation of its state kind.
struct MomentumState {
  StateKind kind = StateKind::kFp32;
  TensorView momentum;       // fp32: f32 x n
  TensorView codes;          // 8-bit: u8 x n
  TensorView absmax;         // blockwise 8-bit: f32 x ceil(n / block_size)
  int block_size = 0;        // blockwise 8-bit
  TensorView prev_norms;     // per-tensor 8-bit: the last step's norms[4] (max1 at [3])
};

// One tensor's pass: p, g, the gradient scale (f32 x 1; 1 without percentile clipping), state.
struct LarsTensorArgs {
  TensorView param, grad, gscale;
  MomentumState state;
  LarsHyper hyper;
};

// {Σp², Σu², Σg²} of the step (per-tensor 8-bit: + new max1) into `out`; no state is written.
absl::Status RunLarsNorms(const LarsTensorArgs& a, const TensorView& out, const ExecContext& exec);
// The update of p and the state, in place, with `norms` as the trust ratio's norms.
absl::Status RunLarsUpdate(const LarsTensorArgs& a, const TensorView& norms,
                           const ExecContext& exec);
// Momentum first (fp32): m' in place while reducing into `norms_out`, then p from them.
absl::Status RunLarsMomentumFirst(const LarsTensorArgs& a, const TensorView& norms_out,
                                  const ExecContext& exec);

// Percentile clipping: the ring (f32 x 100, in place) and the gradient scale of 1-based step
// `ring_step` (RingStep) from Σg² in gnorm[0] -- the gradient's as read, times inv_scale² (an AMP
// loss scale's inverse, fused: the ring holds unscaled norms and gscale = inv_scale * clip).
struct PercentileArgs {
  TensorView ring, gnorm, gscale;
  int32_t ring_step = 1;
  int32_t percentile = 100;
  float inv_scale = 1.0f;
};
absl::Status RunPercentileClip(const PercentileArgs& a, const ExecContext& exec);

// A flat set's passes over its tables (base/kernel_abi.h).
struct FlatSetArgs {
  TensorView params, grads;
  MomentumState state;
  TensorView opts, tensors, chunks, rows;  // f32 / i32 tables
  int32_t max_chunks = 1;
};
// The norms of tensors [t0, t1), whose chunks are [c0, c1), into their triples of `norms`
// (f32 x 3T); p, g and the state are the whole flat set's. No state is written.
absl::Status RunLarsFlatNorms(const FlatSetArgs& a, int32_t t0, int32_t t1, int32_t c0, int32_t c1,
                              const TensorView& norms, const ExecContext& exec);
// The update of a segment: params, grads and the state are its slice, element 0 being flat
// element kFlatAlign * base_row (for 8-bit state a multiple of the block size).
absl::Status RunLarsFlatUpdate(const FlatSetArgs& a, int32_t base_row, const TensorView& norms,
                               const ExecContext& exec);

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_LARS_KERNELS_H_
