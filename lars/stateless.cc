#include "halide_lars/stateless.h"

#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "lars/param_state.h"
#include "lars/sharding.h"
#include "lars/step.h"
#include "runtime/device_buffer.h"
#include "runtime/quantize.h"
#include "base/status_macros.h"
#include "runtime/validate.h"

namespace halide_lars {

absl::StatusOr<StateKind> StatelessStateKind(const LarsOptions& options, int64_t numel) {
  const StateKind kind = internal::DesiredKind(options, numel);
  if (kind == StateKind::kTensor8) {
    return absl::UnimplementedError(
        "block_wise=false (per-tensor 8-bit state) needs a Lars optimizer; the stateless step "
        "takes fp32 or blockwise 8-bit state");
  }
  return kind;
}

namespace {

// One state buffer of the caller's: dtype, element count, device, no overlap with p or g.
absl::Status CheckState(const char* what, const TensorView& s, DType dtype, int64_t numel,
                        const TensorStep& t) {
  if (s.data == nullptr && numel > 0) return absl::InvalidArgumentError(absl::StrCat(what, ": null"));
  LARS_RETURN_IF_ERROR(internal::ValidateTensor(what, s));
  if (s.dtype != dtype || s.numel != numel) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", DTypeName(s.dtype), " x ", s.numel,
                                                   ", expected ", DTypeName(dtype), " x ", numel));
  }
  LARS_RETURN_IF_ERROR(internal::ValidateSameDevice(what, s, "param", t.param));
  if (numel > 0 && (internal::Overlap(s, t.param) || internal::Overlap(s, t.grad))) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": overlaps the parameter or gradient"));
  }
  return absl::OkStatus();
}

// A slot borrowing t's buffers, prepared for a step (its small scalars are its own).
absl::StatusOr<std::unique_ptr<internal::ParamSlot>> BorrowSlot(const LarsOptions& o,
                                                                const TensorStep& t,
                                                                const ExecContext& exec) {
  LARS_RETURN_IF_ERROR(ValidateOptions(o));
  if (!o.lr.has_value()) return absl::InvalidArgumentError("lr: not set");
  if (o.percentile_clipping < 100) {
    return absl::InvalidArgumentError(
        "percentile_clipping < 100 keeps a history of 100 gradient norms: use a Lars optimizer");
  }
  LARS_ASSIGN_OR_RETURN(const float grad_unscale, GradUnscale(t.grad_scale));
  if (t.step < 0) return absl::InvalidArgumentError(absl::StrCat("step: ", t.step, ", expected >= 0"));
  auto slot = std::make_unique<internal::ParamSlot>();
  slot->name = "tensor";
  slot->param = t.param;
  if (t.grad.data == nullptr && t.param.numel > 0) return absl::InvalidArgumentError("grad: null");
  LARS_RETURN_IF_ERROR(internal::ValidateParamAndGrad(*slot, t.grad));
  slot->grad = t.grad;
  if (t.full_numel >= 0) {
    if (t.shard_offset < 0 || t.shard_offset + t.param.numel > t.full_numel) {
      return absl::InvalidArgumentError(absl::StrCat("shard: elements [", t.shard_offset, ", ",
                                                     t.shard_offset + t.param.numel,
                                                     ") of a tensor of ", t.full_numel));
    }
    slot->shard_offset = t.shard_offset;
    slot->full_numel = t.full_numel;
  }
  LARS_ASSIGN_OR_RETURN(const StateKind kind, StatelessStateKind(o, internal::FullNumel(*slot)));
  LARS_RETURN_IF_ERROR(internal::CheckSupported(*slot, o));
  if (t.full_numel >= 0) LARS_RETURN_IF_ERROR(internal::CheckShardable(*slot, o));
  LARS_RETURN_IF_ERROR(internal::AllocateScalarState(slot.get(), o));
  const int64_t n = t.param.numel;
  if (kind == StateKind::kFp32) {
    if (t.state.codes.data != nullptr || t.state.absmax.data != nullptr) {
      return absl::InvalidArgumentError(
          "state: 8-bit codes given, but these options give the tensor fp32 state");
    }
    LARS_RETURN_IF_ERROR(CheckState("momentum", t.state.momentum, DType::kF32, n, t));
    slot->momentum = DeviceBuffer::Borrow(t.state.momentum, 0, n, exec);
  } else {
    if (t.state.momentum.data != nullptr) {
      return absl::InvalidArgumentError(
          "state: fp32 momentum given, but these options give the tensor blockwise 8-bit state");
    }
    LARS_RETURN_IF_ERROR(CheckState("codes", t.state.codes, DType::kU8, n, t));
    LARS_RETURN_IF_ERROR(CheckState("absmax", t.state.absmax, DType::kF32,
                                    NumQuantBlocks(n, o.block_size), t));
    if (n > 0 && internal::Overlap(t.state.codes, t.state.absmax)) {
      return absl::InvalidArgumentError("absmax: overlaps the codes");
    }
    slot->codes = DeviceBuffer::Borrow(t.state.codes, 0, n, exec);
    slot->absmax = DeviceBuffer::Borrow(t.state.absmax, 0, t.state.absmax.numel, exec);
  }
  slot->step = t.step;
  LARS_RETURN_IF_ERROR(internal::PrepareStep(slot.get(), o, exec, grad_unscale));
  return slot;
}

}  // namespace

absl::StatusOr<bool> StepTensor(const LarsOptions& o, const TensorStep& t,
                                const ExecContext& exec) {
  LARS_ASSIGN_OR_RETURN(auto slot, BorrowSlot(o, t, exec));
  if (t.full_numel >= 0 && t.full_numel != t.param.numel) {
    return absl::InvalidArgumentError(
        "a shard of a larger tensor steps with StepTensorBegin / StepTensorFinish");
  }
  internal::StepPlan plan;
  LARS_ASSIGN_OR_RETURN(const bool finite, internal::CheckGradient(slot.get(), o, exec, &plan));
  if (!finite) {
    if (o.nonfinite == Nonfinite::kError) {
      return absl::InvalidArgumentError("gradient has NaN or Inf (nonfinite=error): not updated");
    }
    return false;
  }
  LARS_RETURN_IF_ERROR(internal::FinishStep(slot.get(), o, exec, plan));
  return true;
}

absl::Status StepTensorBegin(const LarsOptions& o, const TensorStep& t, double partials[5],
                             const ExecContext& exec) {
  if (partials == nullptr) return absl::InvalidArgumentError("partials: null");
  LARS_ASSIGN_OR_RETURN(auto slot, BorrowSlot(o, t, exec));
  return internal::ShardPartials(slot.get(), o, exec, partials);
}

absl::StatusOr<bool> StepTensorFinish(const LarsOptions& o, const TensorStep& t,
                                      const double reduced[5], const ExecContext& exec) {
  if (reduced == nullptr) return absl::InvalidArgumentError("reduced: null");
  if (reduced[0] < 0 || reduced[1] < 0 || reduced[4] < 0) {
    return absl::InvalidArgumentError(
        "reduced partial sums of squares are negative (not an all-reduce SUM of "
        "StepTensorBegin's output?)");
  }
  LARS_ASSIGN_OR_RETURN(auto slot, BorrowSlot(o, t, exec));
  if (o.nonfinite != Nonfinite::kPropagate && !std::isfinite(static_cast<float>(reduced[4]))) {
    if (o.nonfinite == Nonfinite::kError) {
      return absl::InvalidArgumentError(
          "gradient has NaN or Inf on some shard (nonfinite=error): not updated");
    }
    return false;
  }
  LARS_RETURN_IF_ERROR(internal::ShardFinish(slot.get(), o, exec, reduced));
  return true;
}

}  // namespace halide_lars
