// The optimizer's policy over the kernels: which kernels a tensor's step runs, and its options
// packed into the kernels' scalars -- the one place where LarsOptions meets the kernel ABI
// (runtime/ knows kernels, devices and buffers only; it never sees LarsOptions).
#ifndef HALIDE_LARS_LARS_KERNEL_PLAN_H_
#define HALIDE_LARS_LARS_KERNEL_PLAN_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "halide_lars/options.h"
#include "halide_lars/types.h"
#include "runtime/lars_kernels.h"

namespace halide_lars {

// The trust form a step applies: trust_mode, except that classic, larc_clip and exact become none
// where weight_decay = 0 and always_adapt is off (timm's Lars).
TrustMode EffectiveTrustMode(const LarsOptions& options);
// The trust form reads this step's norms (classic: |p|, |g|; clip: |p|, |u|).
bool NeedsNorms(const LarsOptions& options);
// A step of a state of `kind` runs the norms pass: the trust form needs norms, or the state is
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

// The options of a step as the kernels' scalars: the ONE conversion from LarsOptions, for the
// per-tensor kernels (LarsTensorArgs::hyper) and the flat sets' option rows (FlatOptsRow). The
// trust form is EffectiveTrustMode + kTrustLrInside with lr_in_momentum. options.lr must be set.
LarsHyper MakeLarsHyper(const LarsOptions& options, bool first_step);

}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_KERNEL_PLAN_H_
