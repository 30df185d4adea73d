#include "lars/kernel_plan.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "base/kernel_abi.h"
#include "base/status_macros.h"
#include "runtime/quantize.h"
#include "runtime/registry.h"

namespace halide_lars {

static_assert(static_cast<int>(TrustMode::kClip) == kTrustClip &&
                  static_cast<int>(TrustMode::kClassic) == kTrustClassic &&
                  static_cast<int>(TrustMode::kNone) == kTrustNone &&
                  static_cast<int>(TrustMode::kLarcClip) == kTrustLarcClip &&
                  static_cast<int>(TrustMode::kExact) == kTrustExact,
              "TrustMode (halide_lars/options.h) and the kernels' KernelTrustForm disagree");

namespace {

bool HasMomentumFirstKernels(DType dtype, DeviceType dev) {
  return FindKernelInfo(Op::kLarsMomentum, dtype, dev).ok() &&
         FindKernelInfo(Op::kLarsApply, dtype, dev).ok();
}

}  // namespace

TrustMode EffectiveTrustMode(const LarsOptions& o) {
  if (o.trust_mode != TrustMode::kClip && !o.always_adapt && o.weight_decay == 0.0) {
    return TrustMode::kNone;
  }
  return o.trust_mode;
}

bool NeedsNorms(const LarsOptions& o) {
  const TrustMode mode = EffectiveTrustMode(o);
  return mode == TrustMode::kClassic || mode == TrustMode::kLarcClip ||
         mode == TrustMode::kExact || (mode == TrustMode::kClip && o.max_unorm > 0.0);
}

bool RunsNormsPass(const LarsOptions& o, StateKind kind) {
  return kind == StateKind::kTensor8 || NeedsNorms(o);
}

LarsKernelChoice ChooseLarsKernel(const LarsOptions& o, StateKind kind, DType dtype,
                                  DeviceType dev) {
  LarsKernelChoice c;
  c.norms_pass = RunsNormsPass(o, kind);
  // Momentum-first applies to the clip trust mode (classic needs |g| before the momentum).
  c.momentum_first = kind == StateKind::kFp32 && o.trust_mode == TrustMode::kClip &&
                     o.max_unorm > 0.0 && o.step_order != StepOrder::kNormsFirst &&
                     HasMomentumFirstKernels(dtype, dev);
  return c;
}

absl::StatusOr<LarsKernelChoice> SelectLarsKernel(const LarsOptions& o, StateKind kind,
                                                  DType dtype, DeviceType dev) {
  if (kind == StateKind::kTensor8) {
    for (Op op : {Op::kLars8bitTensorNorms, Op::kLars8bitTensorUpdate}) {
      LARS_RETURN_IF_ERROR(FindKernelInfo(op, dtype, dev).status());
    }
  }
  if (kind == StateKind::kBlockwise8) {
    const char* variant = internal::QuantBlockVariant(o.block_size);
    for (Op op : {Op::kLars8bitNorms, Op::kLars8bitUpdate, Op::kQuantizeBlockwise}) {
      LARS_RETURN_IF_ERROR(FindKernelInfo(op, dtype, dev, variant).status());
    }
    LARS_RETURN_IF_ERROR(
        FindKernelInfo(Op::kDequantizeBlockwise, DType::kF32, dev, variant).status());
  }
  for (Op op : {Op::kLarsNorms, Op::kLarsUpdate}) {
    LARS_RETURN_IF_ERROR(FindKernelInfo(op, dtype, dev).status());
  }
  LARS_RETURN_IF_ERROR(FindKernelInfo(Op::kPercentileClip, DType::kF32, dev).status());
  if (o.step_order == StepOrder::kMomentumFirst && !HasMomentumFirstKernels(dtype, dev)) {
    return absl::UnimplementedError(absl::StrCat(
        "step_order \"momentum_first\" has no kernels on ", DeviceTypeName(dev),
        " (CPU only); use \"auto\" or \"norms_first\""));
  }
  LARS_RETURN_IF_ERROR(FindKernelInfo(Op::kNorms, dtype, dev).status());
  return ChooseLarsKernel(o, kind, dtype, dev);
}

absl::Status SelectFlatKernels(const LarsOptions& o, StateKind kind, DType dtype, DeviceType dev) {
  const bool eight = kind == StateKind::kBlockwise8;
  const char* variant = eight ? internal::QuantBlockVariant(o.block_size) : "";
  for (Op op : eight ? std::vector<Op>{Op::kLars8bitFlatNorms, Op::kLars8bitFlatUpdate}
                     : std::vector<Op>{Op::kLarsFlatNorms, Op::kLarsFlatUpdate}) {
    LARS_RETURN_IF_ERROR(FindKernelInfo(op, dtype, dev, variant).status());
  }
  return absl::OkStatus();
}

LarsHyper MakeLarsHyper(const LarsOptions& o, bool first_step) {
  LarsHyper h;
  h.lr = static_cast<float>(*o.lr);
  h.momentum = static_cast<float>(o.momentum);
  h.dampening = static_cast<float>(o.dampening);
  h.weight_decay = static_cast<float>(o.weight_decay);
  h.nesterov = o.nesterov;
  h.first_step = first_step;
  h.trust_mode =
      static_cast<int32_t>(EffectiveTrustMode(o)) + (o.lr_in_momentum ? kTrustLrInside : 0);
  h.max_unorm = static_cast<float>(o.max_unorm);
  h.trust_coefficient = static_cast<float>(o.trust_coefficient);
  h.eps = static_cast<float>(o.eps);
  return h;
}

}  // namespace halide_lars
