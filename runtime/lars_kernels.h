// The LARS kernel families as typed calls. Each call takes named arguments, picks the generated
// kernel for the tensors' dtype and device (and the 8-bit block size), runs it on the tensors'
// device (the CUDA stream of `exec`) and names that kernel in its error. lars/ steps parameters
// through these calls and SelectLarsKernel only: it never looks a kernel up itself.
#ifndef HALIDE_LARS_RUNTIME_LARS_KERNELS_H_
#define HALIDE_LARS_RUNTIME_LARS_KERNELS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lars/options.h"
#include "runtime/device_buffer.h"
#include "runtime/types.h"

namespace halide_lars {

// The trust mode reads this step's norms (classic: |p|, |g|; clip: |p|, |u|).
bool NeedsNorms(const LarsOptions& options);
// The trust form a step applies: trust_mode, except that classic, larc_clip and exact become none
// where weight_decay = 0 and always_adapt is off (timm's Lars). MakeLarsHyper and the flat
// set's option rows pack this, not trust_mode.
TrustMode EffectiveTrustMode(const LarsOptions& options);
// The kernels' trust_mode input: EffectiveTrustMode + kTrustLrInside (runtime/flat_abi.h) with
// lr_in_momentum.
int32_t PackedTrustMode(const LarsOptions& options);
// A step of a state of `kind` runs the norms pass: the trust mode needs norms, or the state is
// per-tensor 8-bit (its norms pass makes the new scale).
bool RunsNormsPass(const LarsOptions& options, StateKind kind);

// Which kernels a tensor's step runs, from its options, state kind, dtype and device. The
// variant of blockwise 8-bit state follows its block size (the Run* calls pick it).
struct LarsKernelChoice {
  bool momentum_first = false;  // fp32, clip mode, CPU: lars_momentum + lars_apply
  bool norms_pass = false;      // RunsNormsPass
};

// The choice for `options` and a state of `kind` (DesiredKind). Only momentum-first's kernels
// are looked up (it is taken where they exist): cheap enough for every step.
LarsKernelChoice ChooseLarsKernel(const LarsOptions& options, StateKind kind, DType dtype,
                                  DeviceType device);
// The same after checking that every kernel such a step may run exists: Unimplemented naming the
// missing kernel (or momentum_first asked for on a device without its kernels).
absl::StatusOr<LarsKernelChoice> SelectLarsKernel(const LarsOptions& options, StateKind kind,
                                                  DType dtype, DeviceType device);

// Unimplemented unless the flat-set kernels for a state of `kind` (fp32 or blockwise 8-bit with
// options.block_size) exist for dtype and device.
absl::Status SelectFlatKernels(const LarsOptions& options, StateKind kind, DType dtype,
                               DeviceType device);

// The per-step scalars of a LARS pass.
struct LarsHyper {
  float lr = 0.0f, momentum = 0.0f, dampening = 0.0f, weight_decay = 0.0f;
  bool nesterov = false;
  bool first_step = false;
  int32_t trust_mode = 0;  // TrustMode
  float max_unorm = 0.0f, trust_coefficient = 0.0f, eps = 0.0f;
};
LarsHyper MakeLarsHyper(const LarsOptions& options, bool first_step);

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

// A flat set's passes over its tables (runtime/flat_abi.h).
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
