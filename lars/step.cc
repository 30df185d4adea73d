#include "lars/step.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/devices.h"
#include "runtime/halide_call.h"
#include "runtime/norms.h"
#include "runtime/registry.h"
#include "runtime/status_macros.h"
#include "runtime/validate.h"

namespace halide_lars {
namespace internal {
namespace {

constexpr int kRing = 100;

bool Overlap(const TensorView& a, const TensorView& b) {
  if (a.data == nullptr || b.data == nullptr || a.device != b.device) return false;
  if (a.device.type == DeviceType::kOpenCL) return a.data == b.data;  // cl_mem handles
  const auto* a0 = static_cast<const char*>(a.data);
  const auto* b0 = static_cast<const char*>(b.data);
  return a0 < b0 + b.bytes() && b0 < a0 + a.bytes();
}

// The trust mode's norms pass is needed (classic: |p|, |g|; clip: |p|, |u|).
bool NeedsNorms(const LarsOptions& o) {
  return o.trust_mode == TrustMode::kClassic ||
         (o.trust_mode == TrustMode::kClip && o.max_unorm > 0.0);
}

bool HasMomentumFirstKernels(DType dtype, DeviceType dev) {
  return FindKernelInfo(Op::kLarsMomentum, dtype, dev).ok() &&
         FindKernelInfo(Op::kLarsApply, dtype, dev).ok();
}

// Momentum-first applies to the clip trust mode (classic needs |g| before the momentum).
bool UseMomentumFirst(const LarsOptions& o, DType dtype, DeviceType dev) {
  return o.trust_mode == TrustMode::kClip && o.max_unorm > 0.0 &&
         o.step_order != StepOrder::kNormsFirst && HasMomentumFirstKernels(dtype, dev);
}

absl::Status Fill(const DeviceBuffer& b, float value, const ExecContext& exec) {
  std::vector<float> host(b.view().numel, value);
  CallContext ctx;
  LARS_RETURN_IF_ERROR(MakeCallContext(b.view().device, exec, &ctx));
  return CopyHostToTensor(host.data(), b.view(), &ctx);
}

absl::StatusOr<DeviceBuffer> AllocFilled(const Device& d, int64_t n, float value) {
  LARS_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(d, DType::kF32, n));
  LARS_RETURN_IF_ERROR(Fill(b, value, {}));
  return b;
}

// 1-based step as the percentile kernel wants it: 1 only on the first step, and the same
// residue mod 100 as the real count (which may exceed int32).
int32_t RingStep(int64_t step) {
  return step == 1 ? 1 : static_cast<int32_t>(step % kRing) + kRing;
}

}  // namespace

absl::Status ValidateParamAndGrad(const ParamSlot& slot, const TensorView& grad) {
  const std::string pname = absl::StrCat(slot.name, ": param");
  LARS_RETURN_IF_ERROR(ValidateTensor(pname, slot.param));
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
  if (options.optim_bits == 8) {
    return absl::UnimplementedError(
        absl::StrCat(slot.name, ": optim_bits 8: 8-bit state not built yet (use optim_bits=32)"));
  }
  LARS_RETURN_IF_ERROR(DeviceStatus(slot.param.device));
  for (Op op : {Op::kLarsNorms, Op::kLarsUpdate}) {
    LARS_RETURN_IF_ERROR(FindKernelInfo(op, slot.param.dtype, slot.param.device.type).status());
  }
  LARS_RETURN_IF_ERROR(
      FindKernelInfo(Op::kPercentileClip, DType::kF32, slot.param.device.type).status());
  if (options.step_order == StepOrder::kMomentumFirst &&
      !HasMomentumFirstKernels(slot.param.dtype, slot.param.device.type)) {
    return absl::UnimplementedError(absl::StrCat(
        slot.name, ": step_order \"momentum_first\" has no kernels on ",
        DeviceTypeName(slot.param.device.type), " (CPU only); use \"auto\" or \"norms_first\""));
  }
  return FindKernelInfo(Op::kNorms, slot.param.dtype, slot.param.device.type).status();
}

absl::Status AllocateState(ParamSlot* slot, const LarsOptions& options) {
  const Device& d = slot->param.device;
  LARS_ASSIGN_OR_RETURN(slot->momentum, AllocFilled(d, slot->param.numel, 0.0f));
  LARS_ASSIGN_OR_RETURN(slot->norms, AllocFilled(d, 3, 0.0f));
  LARS_ASSIGN_OR_RETURN(slot->gscale, AllocFilled(d, 1, 1.0f));
  slot->gscale_is_one = true;
  (void)options;
  return absl::OkStatus();
}

absl::Status PrepareStep(ParamSlot* slot, const LarsOptions& options, const ExecContext& exec) {
  if (options.percentile_clipping < 100 && slot->ring.view().numel == 0) {
    LARS_ASSIGN_OR_RETURN(slot->ring, AllocFilled(slot->param.device, kRing, 0.0f));
    LARS_ASSIGN_OR_RETURN(slot->gnorm, AllocFilled(slot->param.device, 2, 0.0f));
  }
  if (options.percentile_clipping == 100 && !slot->gscale_is_one) {
    LARS_RETURN_IF_ERROR(Fill(slot->gscale, 1.0f, exec));
    slot->gscale_is_one = true;
  }
  return absl::OkStatus();
}

absl::Status StepParam(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec) {
  const int64_t step = slot->step + 1;
  if (slot->param.numel == 0) {
    slot->step = step;
    return absl::OkStatus();
  }
  const DType dtype = slot->param.dtype;
  const DeviceType dev = slot->param.device.type;
  const std::string suffix = absl::StrCat("_", DTypeName(dtype), "_", DeviceTypeName(dev));
  CallContext ctx;
  LARS_RETURN_IF_ERROR(MakeCallContext(slot->param.device, exec, &ctx));

  // 1. Percentile clipping: Σg² and the ring -> gscale, all on the device.
  if (o.percentile_clipping < 100) {
    LARS_RETURN_IF_ERROR(SumSqMaxAbs(slot->grad, slot->gnorm.view(), exec));
    LARS_ASSIGN_OR_RETURN(auto clip, FindKernel<Op::kPercentileClip>(DType::kF32, dev));
    BufferView ring(slot->ring.view(), &ctx), gnorm(slot->gnorm.view(), &ctx);
    BufferView ring_out(slot->ring.view(), &ctx), gscale(slot->gscale.view(), &ctx);
    for (BufferView* b : {&ring, &gnorm, &ring_out, &gscale}) LARS_RETURN_IF_ERROR(b->status());
    LARS_RETURN_IF_ERROR(HalideError(
        absl::StrCat("percentile_clip_f32_", DeviceTypeName(dev)),
        clip(&ctx, ring.raw(), gnorm.raw(), RingStep(step), o.percentile_clipping,
             ring_out.raw(), gscale.raw()),
        ctx));
    slot->gscale_is_one = false;
  }

  BufferView p(slot->param, &ctx), g(slot->grad, &ctx), m(slot->momentum.view(), &ctx);
  BufferView gscale(slot->gscale.view(), &ctx), norms(slot->norms.view(), &ctx);
  for (BufferView* b : {&p, &g, &m, &gscale, &norms}) LARS_RETURN_IF_ERROR(b->status());
  const float lr = static_cast<float>(*o.lr), momentum = static_cast<float>(o.momentum);
  const float dampening = static_cast<float>(o.dampening);
  const float weight_decay = static_cast<float>(o.weight_decay);
  const bool first = step == 1;

  if (UseMomentumFirst(o, dtype, dev)) {
    // 2'. m' written while {Σp², Σu², Σg²} are reduced (one pass), then p from m'.
    LARS_ASSIGN_OR_RETURN(auto lars_momentum, FindKernel<Op::kLarsMomentum>(dtype, dev));
    LARS_ASSIGN_OR_RETURN(auto lars_apply, FindKernel<Op::kLarsApply>(dtype, dev));
    BufferView m_out(slot->momentum.view(), &ctx), p_out(slot->param, &ctx);
    LARS_RETURN_IF_ERROR(m_out.status());
    LARS_RETURN_IF_ERROR(p_out.status());
    LARS_RETURN_IF_ERROR(HalideError(
        absl::StrCat("lars_momentum", suffix),
        lars_momentum(&ctx, p.raw(), g.raw(), m.raw(), gscale.raw(), momentum, dampening,
                      weight_decay, o.nesterov, first, m_out.raw(), norms.raw()),
        ctx));
    LARS_RETURN_IF_ERROR(HalideError(
        absl::StrCat("lars_apply", suffix),
        lars_apply(&ctx, p.raw(), g.raw(), m.raw(), gscale.raw(), norms.raw(), lr, momentum,
                   weight_decay, o.nesterov, static_cast<float>(o.max_unorm), p_out.raw()),
        ctx));
    slot->step = step;
    return absl::OkStatus();
  }

  // 2. Norms pass (only when the trust mode needs it): {Σp², Σu², Σg²} before any write.
  if (NeedsNorms(o)) {
    LARS_ASSIGN_OR_RETURN(auto lars_norms, FindKernel<Op::kLarsNorms>(dtype, dev));
    LARS_RETURN_IF_ERROR(HalideError(
        absl::StrCat("lars_norms", suffix),
        lars_norms(&ctx, p.raw(), g.raw(), m.raw(), gscale.raw(), momentum, dampening,
                   weight_decay, o.nesterov, first, norms.raw()),
        ctx));
  }

  // 3. The update, in place: p and m in one loop nest.
  LARS_ASSIGN_OR_RETURN(auto lars_update, FindKernel<Op::kLarsUpdate>(dtype, dev));
  BufferView p_out(slot->param, &ctx), m_out(slot->momentum.view(), &ctx);
  LARS_RETURN_IF_ERROR(p_out.status());
  LARS_RETURN_IF_ERROR(m_out.status());
  LARS_RETURN_IF_ERROR(HalideError(
      absl::StrCat("lars_update", suffix),
      lars_update(&ctx, p.raw(), g.raw(), m.raw(), gscale.raw(), norms.raw(), lr, momentum,
                  dampening, weight_decay, o.nesterov, first, static_cast<int32_t>(o.trust_mode),
                  static_cast<float>(o.max_unorm), static_cast<float>(o.trust_coefficient),
                  static_cast<float>(o.eps), p_out.raw(), m_out.raw()),
      ctx));
  slot->step = step;
  return absl::OkStatus();
}

absl::StatusOr<ParamStateSnapshot> Snapshot(const ParamSlot& slot, const LarsOptions& options) {
  ParamStateSnapshot s;
  s.step = slot.step;
  s.options = options;
  s.momentum.resize(slot.momentum.view().numel);
  LARS_RETURN_IF_ERROR(slot.momentum.CopyToHost(s.momentum.data()));
  if (slot.ring.view().numel > 0) {
    s.gnorm_vec.resize(kRing);
    LARS_RETURN_IF_ERROR(slot.ring.CopyToHost(s.gnorm_vec.data()));
  }
  if (options.trust_mode == TrustMode::kClip && options.max_unorm > 0.0) {
    float norms[3];
    LARS_RETURN_IF_ERROR(slot.norms.CopyToHost(norms));
    s.unorm = std::sqrt(norms[1]);
  }
  return s;
}

int64_t StateBytes(const ParamSlot& slot) {
  int64_t b = 0;
  for (const DeviceBuffer* d : {&slot.momentum, &slot.norms, &slot.gscale, &slot.gnorm, &slot.ring}) {
    b += static_cast<int64_t>(d->view().bytes());
  }
  return b;
}

}  // namespace internal
}  // namespace halide_lars
