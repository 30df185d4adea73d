#include "lars/step.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/devices.h"
#include "lars/kernel_plan.h"
#include "runtime/lars_kernels.h"
#include "runtime/norms.h"
#include "base/status_macros.h"
#include "runtime/validate.h"

namespace halide_lars {
namespace internal {

bool Overlap(const TensorView& a, const TensorView& b) {
  if (a.data == nullptr || b.data == nullptr || a.device != b.device) return false;
  if (a.device.type == DeviceType::kOpenCL) return a.data == b.data;  // cl_mem handles
  const auto* a0 = static_cast<const char*>(a.data);
  const auto* b0 = static_cast<const char*>(b.data);
  return a0 < b0 + b.bytes() && b0 < a0 + a.bytes();
}

int32_t RingStep(int64_t step) {
  return step == 1 ? 1 : static_cast<int32_t>(step % kRing) + kRing;
}


absl::Status ValidateParamAndGrad(const ParamSlot& slot, const TensorView& grad) {
  const std::string pname = absl::StrCat(slot.name, ": param");
  LARS_RETURN_IF_ERROR(ValidateTensor(pname, slot.param));
  if (!IsParamDType(slot.param.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(pname, ": dtype ", DTypeName(slot.param.dtype),
                                                   ", expected f32, f16 or bf16"));
  }
  if (grad.data == nullptr && slot.param.numel > 0) return absl::OkStatus();  // no gradient
  const std::string gname = absl::StrCat(slot.name, ": grad");
  LARS_RETURN_IF_ERROR(ValidateTensor(gname, grad));
  if (grad.dtype != slot.param.dtype) {
    return absl::InvalidArgumentError(absl::StrCat(gname, ": dtype ", DTypeName(grad.dtype),
                                                   ", param is ", DTypeName(slot.param.dtype)));
  }
  if (grad.numel != slot.param.numel) {
    return absl::InvalidArgumentError(absl::StrCat(gname, ": ", grad.numel, " elements, param has ",
                                                   slot.param.numel));
  }
  LARS_RETURN_IF_ERROR(ValidateSameDevice(gname, grad, "param", slot.param));
  if (Overlap(grad, slot.param)) {
    return absl::InvalidArgumentError(absl::StrCat(gname, ": overlaps the parameter's memory"));
  }
  return absl::OkStatus();
}

absl::Status CheckSupported(const ParamSlot& slot, const LarsOptions& options) {
  LARS_RETURN_IF_ERROR(DeviceStatus(slot.param.device));
  const StateKind kind = DesiredKind(options, FullNumel(slot));
  const TrustMode mode = EffectiveTrustMode(options);
  if (kind == StateKind::kTensor8 &&
      ((mode != TrustMode::kClip && mode != TrustMode::kNone) || options.lr_in_momentum)) {
    return absl::UnimplementedError(absl::StrCat(
        slot.name, ": trust_mode \"", TrustModeName(options.trust_mode), "\"",
        options.lr_in_momentum ? " with lr_in_momentum" : "",
        " with block_wise=false is not supported (the per-tensor scale needs max|m'| before "
        "the trust ratio is known); use block_wise=true"));
  }
  if (kind != slot.kind && slot.step > 0 &&
      (kind == StateKind::kTensor8 || slot.kind == StateKind::kTensor8)) {
    return absl::FailedPreconditionError(absl::StrCat(
        slot.name, ": block_wise cannot change after the first step (per-tensor 8-bit state is "
        "not converted)"));
  }
  absl::Status s =
      SelectLarsKernel(options, kind, slot.param.dtype, slot.param.device.type).status();
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(slot.name, ": ", s.message()));
  return absl::OkStatus();
}

namespace {

// Σg² of the gradient into slot->gnorm ({Σg², max|g|}).
absl::Status GradNormPass(ParamSlot* slot, const ExecContext& exec) {
  return SumSqMaxAbs(slot->grad, slot->gnorm.view(), exec);
}

absl::StatusOr<float> ReadFloat(const DeviceBuffer& b, int index) {
  std::vector<float> v(b.view().numel);
  LARS_RETURN_IF_ERROR(b.CopyToHost(v.data()));
  return v[index];
}

// The kernel arguments of the slot's passes for step `step` (1-based).
LarsTensorArgs TensorArgs(const ParamSlot& slot, const LarsOptions& o, int64_t step) {
  LarsTensorArgs a;
  a.param = slot.param;
  a.grad = slot.grad;
  a.gscale = slot.gscale.view();
  a.state.kind = slot.kind;
  a.state.momentum = slot.momentum.view();
  a.state.codes = slot.codes.view();
  a.state.absmax = slot.absmax.view();
  a.state.block_size = slot.block_size;
  a.state.prev_norms = slot.norms.view();
  a.hyper = MakeLarsHyper(o, step == 1);
  return a;
}

}  // namespace

// The state kind's norms pass, writing into slot->scratch_norms (no state is modified).
absl::Status NormsPass(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec) {
  return RunLarsNorms(TensorArgs(*slot, o, slot->step + 1), slot->scratch_norms.view(), exec);
}

// The percentile ring and gradient scale of step `step`, on the device, from Σg² in gnorm.
absl::Status PercentilePass(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec,
                            int64_t step) {
  PercentileArgs a;
  a.ring = slot->ring.view();
  a.gnorm = slot->gnorm.view();
  a.gscale = slot->gscale.view();
  a.ring_step = RingStep(step);
  a.percentile = o.percentile_clipping;
  a.inv_scale = slot->grad_unscale;
  LARS_RETURN_IF_ERROR(RunPercentileClip(a, exec));
  slot->gscale_filled = std::numeric_limits<float>::quiet_NaN();
  return absl::OkStatus();
}



absl::StatusOr<bool> CheckGradient(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec,
                                   StepPlan* plan) {
  *plan = StepPlan();
  if (slot->param.numel == 0) return true;
  const bool check = o.nonfinite != Nonfinite::kPropagate;
  if (o.percentile_clipping < 100) {
    // Σg² is needed first anyway; the ring is only written in FinishStep.
    LARS_RETURN_IF_ERROR(GradNormPass(slot, exec));
    if (!check) return true;
    LARS_ASSIGN_OR_RETURN(float gsq, ReadFloat(slot->gnorm, 0));
    return std::isfinite(gsq);
  }
  if (!check) return true;
  if (RunsNormsPass(o, slot->kind)) {
    LARS_RETURN_IF_ERROR(NormsPass(slot, o, exec));
    plan->norms_done = true;
    LARS_ASSIGN_OR_RETURN(float gsq, ReadFloat(slot->scratch_norms, 2));
    return std::isfinite(gsq);
  }
  LARS_RETURN_IF_ERROR(GradNormPass(slot, exec));
  LARS_ASSIGN_OR_RETURN(float gsq, ReadFloat(slot->gnorm, 0));
  return std::isfinite(gsq);
}

absl::Status FinishStep(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec,
                        const StepPlan& plan) {
  const int64_t step = slot->step + 1;
  if (slot->param.numel == 0) {
    slot->step = step;
    return absl::OkStatus();
  }
  // The kernels exist (CheckSupported ran before the step).
  const LarsKernelChoice choice =
      ChooseLarsKernel(o, slot->kind, slot->param.dtype, slot->param.device.type);

  // 1. Percentile clipping: the ring and the gradient scale, on the device (Σg² is in gnorm).
  if (o.percentile_clipping < 100 && !plan.clip_done) {
    LARS_RETURN_IF_ERROR(PercentilePass(slot, o, exec, step));
  }

  // 2. Momentum-first (CPU, clip mode, no pending check): m' while reducing, then p.
  if (choice.momentum_first && !plan.norms_done) {
    LARS_RETURN_IF_ERROR(
        RunLarsMomentumFirst(TensorArgs(*slot, o, step), slot->scratch_norms.view(), exec));
    std::swap(slot->norms, slot->scratch_norms);
    slot->step = step;
    return absl::OkStatus();
  }

  // 3. The norms pass (unless CheckGradient ran it), then the update reading scratch_norms.
  // Without a norms pass the update reads the previous norms (unused by its trust mode).
  const bool norms_pass = choice.norms_pass;
  if (norms_pass && !plan.norms_done) LARS_RETURN_IF_ERROR(NormsPass(slot, o, exec));
  LARS_RETURN_IF_ERROR(RunLarsUpdate(TensorArgs(*slot, o, step),
                                     (norms_pass ? slot->scratch_norms : slot->norms).view(), exec));
  if (norms_pass) std::swap(slot->norms, slot->scratch_norms);
  slot->step = step;
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace halide_lars
