#include "lars/step.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/codebook.h"
#include "runtime/devices.h"
#include "runtime/halide_call.h"
#include "runtime/norms.h"
#include "runtime/quantize.h"
#include "runtime/registry.h"
#include "runtime/status_macros.h"
#include "runtime/validate.h"

namespace halide_lars {
namespace internal {
namespace {

constexpr int kRing = 100;

bool HasMomentumFirstKernels(DType dtype, DeviceType dev) {
  return FindKernelInfo(Op::kLarsMomentum, dtype, dev).ok() &&
         FindKernelInfo(Op::kLarsApply, dtype, dev).ok();
}

// Momentum-first applies to the clip trust mode (classic needs |g| before the momentum).
bool UseMomentumFirst(const LarsOptions& o, DType dtype, DeviceType dev) {
  return o.trust_mode == TrustMode::kClip && o.max_unorm > 0.0 &&
         o.step_order != StepOrder::kNormsFirst && HasMomentumFirstKernels(dtype, dev);
}

template <typename T>
absl::Status Fill(const DeviceBuffer& b, T value, const ExecContext& exec) {
  std::vector<T> host(b.view().numel, value);
  CallContext ctx;
  LARS_RETURN_IF_ERROR(MakeCallContext(b.view().device, exec, &ctx));
  return CopyHostToTensor(host.data(), b.view(), &ctx);
}

}  // namespace

bool Overlap(const TensorView& a, const TensorView& b) {
  if (a.data == nullptr || b.data == nullptr || a.device != b.device) return false;
  if (a.device.type == DeviceType::kOpenCL) return a.data == b.data;  // cl_mem handles
  const auto* a0 = static_cast<const char*>(a.data);
  const auto* b0 = static_cast<const char*>(b.data);
  return a0 < b0 + b.bytes() && b0 < a0 + a.bytes();
}

bool NeedsNorms(const LarsOptions& o) {
  return o.trust_mode == TrustMode::kClassic ||
         (o.trust_mode == TrustMode::kClip && o.max_unorm > 0.0);
}

absl::StatusOr<DeviceBuffer> AllocFilled(const Device& d, int64_t n, float value) {
  LARS_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(d, DType::kF32, n));
  LARS_RETURN_IF_ERROR(Fill(b, value, {}));
  return b;
}

absl::Status AllocZero8bit(const Device& d, int64_t n, int block, DeviceBuffer* codes,
                           DeviceBuffer* absmax) {
  LARS_ASSIGN_OR_RETURN(DeviceBuffer c, DeviceBuffer::Allocate(d, DType::kU8, n));
  LARS_RETURN_IF_ERROR(Fill<uint8_t>(c, kZeroCode, {}));
  LARS_ASSIGN_OR_RETURN(DeviceBuffer a, AllocFilled(d, NumQuantBlocks(n, block), 0.0f));
  *codes = std::move(c);
  *absmax = std::move(a);
  return absl::OkStatus();
}

namespace {

// 1-based step as the percentile kernel wants it: 1 only on the first step, and the same
// residue mod 100 as the real count (which may exceed int32).
int32_t RingStep(int64_t step) {
  return step == 1 ? 1 : static_cast<int32_t>(step % kRing) + kRing;
}

}  // namespace

StateKind DesiredKind(const LarsOptions& o, int64_t numel) {
  // bitsandbytes: small tensors keep 32-bit state (min_8bit_size, and never below 4096).
  if (o.optim_bits == 8 && numel >= std::max<int64_t>(o.min_8bit_size, 4096)) {
    return o.block_wise ? StateKind::kBlockwise8 : StateKind::kTensor8;
  }
  return StateKind::kFp32;
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
  const DType dtype = slot.param.dtype;
  const DeviceType dev = slot.param.device.type;
  const StateKind kind = DesiredKind(options, FullNumel(slot));
  if (kind == StateKind::kTensor8) {
    if (options.trust_mode == TrustMode::kClassic) {
      return absl::UnimplementedError(absl::StrCat(
          slot.name, ": trust_mode \"classic\" with block_wise=false is not supported (the "
          "per-tensor scale needs max|m'| before the classic ratio is known); use block_wise=true"));
    }
    for (Op op : {Op::kLars8bitTensorNorms, Op::kLars8bitTensorUpdate}) {
      LARS_RETURN_IF_ERROR(FindKernelInfo(op, dtype, dev).status());
    }
  }
  if (kind != slot.kind && slot.step > 0 &&
      (kind == StateKind::kTensor8 || slot.kind == StateKind::kTensor8)) {
    return absl::FailedPreconditionError(absl::StrCat(
        slot.name, ": block_wise cannot change after the first step (per-tensor 8-bit state is "
        "not converted)"));
  }
  if (kind == StateKind::kBlockwise8) {
    const char* variant = QuantBlockVariant(options.block_size);
    for (Op op : {Op::kLars8bitNorms, Op::kLars8bitUpdate, Op::kQuantizeBlockwise}) {
      LARS_RETURN_IF_ERROR(FindKernelInfo(op, dtype, dev, variant).status());
    }
    LARS_RETURN_IF_ERROR(FindKernelInfo(Op::kDequantizeBlockwise, DType::kF32, dev, variant).status());
  }
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

absl::Status AllocateScalarState(ParamSlot* slot, const LarsOptions& options) {
  const Device& d = slot->param.device;
  slot->kind = DesiredKind(options, FullNumel(*slot));
  if (slot->kind == StateKind::kBlockwise8) slot->block_size = options.block_size;
  slot->momentum = DeviceBuffer();
  slot->codes = DeviceBuffer();
  slot->absmax = DeviceBuffer();
  const int norms = slot->kind == StateKind::kTensor8 ? 4 : 3;  // + max1
  LARS_ASSIGN_OR_RETURN(slot->norms, AllocFilled(d, norms, 0.0f));
  LARS_ASSIGN_OR_RETURN(slot->scratch_norms, AllocFilled(d, norms, 0.0f));
  LARS_ASSIGN_OR_RETURN(slot->gscale, AllocFilled(d, 1, 1.0f));
  slot->gscale_is_one = true;
  return absl::OkStatus();
}

absl::Status AllocateState(ParamSlot* slot, const LarsOptions& options) {
  LARS_RETURN_IF_ERROR(AllocateScalarState(slot, options));
  const Device& d = slot->param.device;
  const int64_t n = slot->param.numel;
  if (slot->kind == StateKind::kBlockwise8) {
    return AllocZero8bit(d, n, slot->block_size, &slot->codes, &slot->absmax);
  }
  if (slot->kind == StateKind::kTensor8) {
    LARS_ASSIGN_OR_RETURN(slot->codes, DeviceBuffer::Allocate(d, DType::kU8, n));
    return Fill<uint8_t>(slot->codes, kZeroCode, {});
  }
  LARS_ASSIGN_OR_RETURN(slot->momentum, AllocFilled(d, n, 0.0f));
  return absl::OkStatus();
}

namespace {

// Re-represents the momentum as `kind` (block size `block` for 8-bit): quantizes or
// dequantizes on the device. The old buffers are released only once the new ones are written.
absl::Status ConvertState(ParamSlot* slot, StateKind kind, int block, const ExecContext& exec) {
  const Device& d = slot->param.device;
  const int64_t n = slot->param.numel;
  DeviceBuffer fp32;  // the momentum as fp32, old or new
  if (slot->kind == StateKind::kFp32) {
    fp32 = std::move(slot->momentum);
  } else {
    LARS_ASSIGN_OR_RETURN(fp32, DeviceBuffer::Allocate(d, DType::kF32, n));
    absl::Status s =
        DequantizeBlockwise(slot->codes.view(), slot->absmax.view(), fp32.view(), slot->block_size, exec);
    if (!s.ok()) return s;
  }
  if (kind == StateKind::kFp32) {
    slot->momentum = std::move(fp32);
    slot->codes = DeviceBuffer();
    slot->absmax = DeviceBuffer();
  } else {
    DeviceBuffer codes, absmax;
    absl::Status s = AllocZero8bit(d, n, block, &codes, &absmax);
    if (s.ok()) s = QuantizeBlockwise(fp32.view(), codes.view(), absmax.view(), block, exec);
    if (!s.ok()) {
      if (slot->kind == StateKind::kFp32) slot->momentum = std::move(fp32);  // unchanged
      return s;
    }
    slot->codes = std::move(codes);
    slot->absmax = std::move(absmax);
    slot->momentum = DeviceBuffer();
    slot->block_size = block;
  }
  slot->kind = kind;
  return absl::OkStatus();
}

}  // namespace

absl::Status PrepareStep(ParamSlot* slot, const LarsOptions& options, const ExecContext& exec) {
  const StateKind want = DesiredKind(options, FullNumel(*slot));
  if (want != slot->kind ||
      (want == StateKind::kBlockwise8 && options.block_size != slot->block_size)) {
    if (slot->step == 0 || want == StateKind::kTensor8 || slot->kind == StateKind::kTensor8) {
      // Nothing learned yet (or per-tensor state, which only changes before the first step):
      // a fresh zero state of the new kind.
      LARS_RETURN_IF_ERROR(AllocateState(slot, options));
    } else {
      LARS_RETURN_IF_ERROR(ConvertState(slot, want, options.block_size, exec));
    }
  }
  if (options.percentile_clipping < 100 && slot->ring.view().numel == 0) {
    LARS_ASSIGN_OR_RETURN(slot->ring, AllocFilled(slot->param.device, kRing, 0.0f));
  }
  if ((options.percentile_clipping < 100 || options.nonfinite != Nonfinite::kPropagate) &&
      slot->gnorm.view().numel == 0) {
    LARS_ASSIGN_OR_RETURN(slot->gnorm, AllocFilled(slot->param.device, 2, 0.0f));
  }
  if (options.percentile_clipping == 100 && !slot->gscale_is_one) {
    LARS_RETURN_IF_ERROR(Fill(slot->gscale, 1.0f, exec));
    slot->gscale_is_one = true;
  }
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

// The kernel arguments every pass shares.
struct Scalars {
  float lr, momentum, dampening, weight_decay;
  bool first;
};

Scalars MakeScalars(const LarsOptions& o, int64_t step) {
  return {static_cast<float>(*o.lr), static_cast<float>(o.momentum),
          static_cast<float>(o.dampening), static_cast<float>(o.weight_decay), step == 1};
}

// The state kind's norms pass, writing into slot->scratch_norms (no state is modified).
absl::Status NormsPass(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec) {
  const DType dtype = slot->param.dtype;
  const DeviceType dev = slot->param.device.type;
  const std::string suffix = absl::StrCat("_", DTypeName(dtype), "_", DeviceTypeName(dev));
  const Scalars k = MakeScalars(o, slot->step + 1);
  CallContext ctx;
  LARS_RETURN_IF_ERROR(MakeCallContext(slot->param.device, exec, &ctx));
  BufferView p(slot->param, &ctx), g(slot->grad, &ctx), gscale(slot->gscale.view(), &ctx);
  BufferView out(slot->scratch_norms.view(), &ctx);
  for (BufferView* b : {&p, &g, &gscale, &out}) LARS_RETURN_IF_ERROR(b->status());
  if (slot->kind == StateKind::kFp32) {
    BufferView m(slot->momentum.view(), &ctx);
    LARS_RETURN_IF_ERROR(m.status());
    LARS_ASSIGN_OR_RETURN(auto kernel, FindKernel<Op::kLarsNorms>(dtype, dev));
    return PipelineStatus(absl::StrCat("lars_norms", suffix),
                       kernel(&ctx, p.raw(), g.raw(), m.raw(), gscale.raw(), k.momentum,
                              k.dampening, k.weight_decay, o.nesterov, k.first, out.raw()),
                       ctx);
  }
  LARS_ASSIGN_OR_RETURN(DeviceCodebook book, GetDeviceCodebook(slot->param.device));
  BufferView codes(slot->codes.view(), &ctx), code(book.code, &ctx);
  LARS_RETURN_IF_ERROR(codes.status());
  LARS_RETURN_IF_ERROR(code.status());
  if (slot->kind == StateKind::kTensor8) {
    BufferView prev(slot->norms.view(), &ctx);
    LARS_RETURN_IF_ERROR(prev.status());
    LARS_ASSIGN_OR_RETURN(auto kernel, FindKernel<Op::kLars8bitTensorNorms>(dtype, dev));
    return PipelineStatus(absl::StrCat("lars8bit_tensor_norms", suffix),
                       kernel(&ctx, p.raw(), g.raw(), codes.raw(), prev.raw(), code.raw(),
                              gscale.raw(), k.momentum, k.dampening, k.weight_decay, o.nesterov,
                              k.first, out.raw()),
                       ctx);
  }
  const char* variant = QuantBlockVariant(slot->block_size);
  BufferView absmax(slot->absmax.view(), &ctx);
  LARS_RETURN_IF_ERROR(absmax.status());
  LARS_ASSIGN_OR_RETURN(auto kernel, FindKernel<Op::kLars8bitNorms>(dtype, dev, variant));
  return PipelineStatus(absl::StrCat("lars8bit_norms", suffix, variant[0] ? "_" : "", variant),
                     kernel(&ctx, p.raw(), g.raw(), codes.raw(), absmax.raw(), code.raw(),
                            gscale.raw(), k.momentum, k.dampening, k.weight_decay, o.nesterov,
                            k.first, out.raw()),
                     ctx);
}

// The percentile ring and gradient scale of step `step`, on the device, from Σg² in gnorm.
absl::Status PercentilePass(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec,
                            int64_t step) {
  const DeviceType dev = slot->param.device.type;
  CallContext ctx;
  LARS_RETURN_IF_ERROR(MakeCallContext(slot->param.device, exec, &ctx));
  LARS_ASSIGN_OR_RETURN(auto clip, FindKernel<Op::kPercentileClip>(DType::kF32, dev));
  BufferView ring(slot->ring.view(), &ctx), gnorm(slot->gnorm.view(), &ctx);
  BufferView ring_out(slot->ring.view(), &ctx), gscale(slot->gscale.view(), &ctx);
  for (BufferView* b : {&ring, &gnorm, &ring_out, &gscale}) LARS_RETURN_IF_ERROR(b->status());
  LARS_RETURN_IF_ERROR(PipelineStatus(
      absl::StrCat("percentile_clip_f32_", DeviceTypeName(dev)),
      clip(&ctx, ring.raw(), gnorm.raw(), RingStep(step), o.percentile_clipping, ring_out.raw(),
           gscale.raw()),
      ctx));
  slot->gscale_is_one = false;
  return absl::OkStatus();
}

// Per-tensor 8-bit state always needs its norms pass (it produces the new scale).
bool RunsNormsPass(const ParamSlot& slot, const LarsOptions& o) {
  return slot.kind == StateKind::kTensor8 || NeedsNorms(o);
}

}  // namespace

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
  if (RunsNormsPass(*slot, o)) {
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
  const DType dtype = slot->param.dtype;
  const DeviceType dev = slot->param.device.type;
  const std::string suffix = absl::StrCat("_", DTypeName(dtype), "_", DeviceTypeName(dev));
  const Scalars k = MakeScalars(o, step);
  CallContext ctx;
  LARS_RETURN_IF_ERROR(MakeCallContext(slot->param.device, exec, &ctx));

  // 1. Percentile clipping: the ring and the gradient scale, on the device (Σg² is in gnorm).
  if (o.percentile_clipping < 100 && !plan.clip_done) {
    LARS_RETURN_IF_ERROR(PercentilePass(slot, o, exec, step));
  }

  // 2. Momentum-first (CPU, clip mode, no pending check): m' while reducing, then p.
  if (slot->kind == StateKind::kFp32 && !plan.norms_done &&
      UseMomentumFirst(o, dtype, dev)) {
    LARS_ASSIGN_OR_RETURN(auto lars_momentum, FindKernel<Op::kLarsMomentum>(dtype, dev));
    LARS_ASSIGN_OR_RETURN(auto lars_apply, FindKernel<Op::kLarsApply>(dtype, dev));
    BufferView p(slot->param, &ctx), g(slot->grad, &ctx), m(slot->momentum.view(), &ctx);
    BufferView gscale(slot->gscale.view(), &ctx), norms(slot->scratch_norms.view(), &ctx);
    BufferView m_out(slot->momentum.view(), &ctx), p_out(slot->param, &ctx);
    for (BufferView* b : {&p, &g, &m, &gscale, &norms, &m_out, &p_out}) {
      LARS_RETURN_IF_ERROR(b->status());
    }
    LARS_RETURN_IF_ERROR(PipelineStatus(
        absl::StrCat("lars_momentum", suffix),
        lars_momentum(&ctx, p.raw(), g.raw(), m.raw(), gscale.raw(), k.momentum, k.dampening,
                      k.weight_decay, o.nesterov, k.first, m_out.raw(), norms.raw()),
        ctx));
    LARS_RETURN_IF_ERROR(PipelineStatus(
        absl::StrCat("lars_apply", suffix),
        lars_apply(&ctx, p.raw(), g.raw(), m.raw(), gscale.raw(), norms.raw(), k.lr, k.momentum,
                   k.weight_decay, o.nesterov, static_cast<float>(o.max_unorm), p_out.raw()),
        ctx));
    std::swap(slot->norms, slot->scratch_norms);
    slot->step = step;
    return absl::OkStatus();
  }

  // 3. The norms pass (unless CheckGradient ran it), then the update reading scratch_norms.
  const bool norms_pass = RunsNormsPass(*slot, o);
  if (norms_pass && !plan.norms_done) LARS_RETURN_IF_ERROR(NormsPass(slot, o, exec));
  const float max_unorm = static_cast<float>(o.max_unorm);
  const int32_t trust_mode = static_cast<int32_t>(o.trust_mode);
  BufferView p(slot->param, &ctx), g(slot->grad, &ctx), gscale(slot->gscale.view(), &ctx);
  // Without a norms pass the update reads the previous norms (unused by its trust mode).
  BufferView norms(norms_pass ? slot->scratch_norms.view() : slot->norms.view(), &ctx);
  BufferView p_out(slot->param, &ctx);
  for (BufferView* b : {&p, &g, &gscale, &norms, &p_out}) LARS_RETURN_IF_ERROR(b->status());

  if (slot->kind == StateKind::kFp32) {
    LARS_ASSIGN_OR_RETURN(auto lars_update, FindKernel<Op::kLarsUpdate>(dtype, dev));
    BufferView m(slot->momentum.view(), &ctx), m_out(slot->momentum.view(), &ctx);
    LARS_RETURN_IF_ERROR(m.status());
    LARS_RETURN_IF_ERROR(m_out.status());
    LARS_RETURN_IF_ERROR(PipelineStatus(
        absl::StrCat("lars_update", suffix),
        lars_update(&ctx, p.raw(), g.raw(), m.raw(), gscale.raw(), norms.raw(), k.lr, k.momentum,
                    k.dampening, k.weight_decay, o.nesterov, k.first, trust_mode, max_unorm,
                    static_cast<float>(o.trust_coefficient), static_cast<float>(o.eps),
                    p_out.raw(), m_out.raw()),
        ctx));
  } else {
    LARS_ASSIGN_OR_RETURN(DeviceCodebook book, GetDeviceCodebook(slot->param.device));
    BufferView codes(slot->codes.view(), &ctx), codes_out(slot->codes.view(), &ctx);
    BufferView code(book.code, &ctx), mids(book.mids, &ctx), lut(book.lut, &ctx, kLutType);
    for (BufferView* b : {&codes, &codes_out, &code, &mids, &lut}) {
      LARS_RETURN_IF_ERROR(b->status());
    }
    if (slot->kind == StateKind::kTensor8) {
      BufferView prev(slot->norms.view(), &ctx);
      LARS_RETURN_IF_ERROR(prev.status());
      LARS_ASSIGN_OR_RETURN(auto update, FindKernel<Op::kLars8bitTensorUpdate>(dtype, dev));
      LARS_RETURN_IF_ERROR(PipelineStatus(
          absl::StrCat("lars8bit_tensor_update", suffix),
          update(&ctx, p.raw(), g.raw(), codes.raw(), prev.raw(), code.raw(), mids.raw(),
                 lut.raw(), gscale.raw(), norms.raw(), k.lr, k.momentum, k.dampening,
                 k.weight_decay, o.nesterov, k.first, trust_mode, max_unorm, p_out.raw(),
                 codes_out.raw()),
          ctx));
    } else {
      const char* variant = QuantBlockVariant(slot->block_size);
      BufferView absmax(slot->absmax.view(), &ctx), absmax_out(slot->absmax.view(), &ctx);
      LARS_RETURN_IF_ERROR(absmax.status());
      LARS_RETURN_IF_ERROR(absmax_out.status());
      LARS_ASSIGN_OR_RETURN(auto update, FindKernel<Op::kLars8bitUpdate>(dtype, dev, variant));
      LARS_RETURN_IF_ERROR(PipelineStatus(
          absl::StrCat("lars8bit_update", suffix, variant[0] ? "_" : "", variant),
          update(&ctx, p.raw(), g.raw(), codes.raw(), absmax.raw(), code.raw(), mids.raw(),
                 lut.raw(), gscale.raw(), norms.raw(), k.lr, k.momentum, k.dampening,
                 k.weight_decay, o.nesterov, k.first, trust_mode, max_unorm,
                 static_cast<float>(o.trust_coefficient), static_cast<float>(o.eps), p_out.raw(),
                 codes_out.raw(), absmax_out.raw()),
          ctx));
    }
  }
  if (norms_pass) std::swap(slot->norms, slot->scratch_norms);
  slot->step = step;
  return absl::OkStatus();
}

absl::Status CheckShardable(const ParamSlot& slot, const LarsOptions& o) {
  // The state PrepareStep will give the slot (before it converts anything).
  const StateKind kind = DesiredKind(o, FullNumel(slot));
  if (kind == StateKind::kTensor8) {
    return absl::UnimplementedError(absl::StrCat(
        slot.name, ": per-tensor 8-bit state in a sharded step (use blockwise 8-bit state)"));
  }
  if (kind == StateKind::kBlockwise8 && slot.full_numel >= 0) {
    const int64_t b = o.block_size;
    const bool ends = slot.shard_offset + slot.param.numel == slot.full_numel;
    if (slot.shard_offset % b != 0 || (!ends && slot.param.numel % b != 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          slot.name, ": shard [", slot.shard_offset, ", ", slot.shard_offset + slot.param.numel,
          ") of ", slot.full_numel, " elements does not start and end on a multiple of the 8-bit "
          "block size ", b, " (blocks may not straddle ranks)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ShardPartials(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec,
                           double out[kPartialsPerTensor]) {
  for (int i = 0; i < kPartialsPerTensor; ++i) out[i] = 0.0;
  if (slot->param.numel == 0) return absl::OkStatus();
  float n[3];
  if (o.percentile_clipping == 100) {
    LARS_RETURN_IF_ERROR(NormsPass(slot, o, exec));
    LARS_RETURN_IF_ERROR(slot->scratch_norms.CopyToHost(n));  // synchronizes a CUDA stream
    out[0] = n[0];
    out[1] = n[1];
    out[4] = n[2];
    return absl::OkStatus();
  }
  // Probe scales in a scratch buffer: the slot's gradient scale (state) stays as it is.
  DeviceBuffer probe;
  LARS_ASSIGN_OR_RETURN(probe, DeviceBuffer::Allocate(slot->param.device, DType::kF32, 1));
  std::swap(slot->gscale, probe);
  double u[3];
  absl::Status st;
  const float scales[3] = {0.0f, 1.0f, -1.0f};
  for (int i = 0; i < 3 && st.ok(); ++i) {
    st = slot->gscale.CopyFromHost(&scales[i]);
    if (st.ok()) st = NormsPass(slot, o, exec);
    if (st.ok()) st = slot->scratch_norms.CopyToHost(n);
    u[i] = n[1];
  }
  std::swap(slot->gscale, probe);
  LARS_RETURN_IF_ERROR(st);
  out[0] = n[0];
  out[1] = u[0];                       // A = Σu²(0)
  out[2] = (u[1] - u[2]) / 4.0;        // B: Σu²(1) - Σu²(-1) = 4B
  out[3] = (u[1] + u[2]) / 2.0 - u[0]; // C: Σu²(1) + Σu²(-1) = 2A + 2C
  out[4] = n[2];
  return absl::OkStatus();
}

absl::Status ShardFinish(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec,
                         const double reduced[kPartialsPerTensor]) {
  StepPlan plan;
  plan.norms_done = true;
  if (slot->param.numel > 0) {
    double unorm2 = reduced[1];
    if (o.percentile_clipping < 100) {
      const float gnorm[2] = {static_cast<float>(reduced[4]), 0.0f};
      LARS_RETURN_IF_ERROR(slot->gnorm.CopyFromHost(gnorm));
      LARS_RETURN_IF_ERROR(PercentilePass(slot, o, exec, slot->step + 1));
      plan.clip_done = true;
      float s;
      LARS_RETURN_IF_ERROR(slot->gscale.CopyToHost(&s));  // synchronizes a CUDA stream
      unorm2 = std::max(0.0, reduced[1] + 2.0 * s * reduced[2] + double{s} * s * reduced[3]);
    }
    std::vector<float> n(slot->scratch_norms.view().numel, 0.0f);
    n[0] = static_cast<float>(reduced[0]);
    n[1] = static_cast<float>(unorm2);
    n[2] = static_cast<float>(reduced[4]);
    LARS_RETURN_IF_ERROR(slot->scratch_norms.CopyFromHost(n.data()));
  }
  const bool norms_pass = RunsNormsPass(*slot, o);
  LARS_RETURN_IF_ERROR(FinishStep(slot, o, exec, plan));
  // Without a norms pass FinishStep keeps the previous norms; the sharded ones are the truth.
  if (!norms_pass && slot->param.numel > 0) std::swap(slot->norms, slot->scratch_norms);
  return absl::OkStatus();
}

absl::StatusOr<ParamStateSnapshot> Snapshot(const ParamSlot& slot, const LarsOptions& options) {
  ParamStateSnapshot s;
  s.step = slot.step;
  s.skipped_steps = slot.skipped_steps;
  s.kind = slot.kind;
  s.options = options;
  s.momentum.resize(slot.param.numel);
  if (slot.kind == StateKind::kFp32) {
    LARS_RETURN_IF_ERROR(slot.momentum.CopyToHost(s.momentum.data()));
  } else {
    s.codes.resize(slot.codes.view().numel);
    LARS_RETURN_IF_ERROR(slot.codes.CopyToHost(s.codes.data()));
    int64_t per_scale = slot.block_size;
    if (slot.kind == StateKind::kTensor8) {
      float norms[4];
      LARS_RETURN_IF_ERROR(slot.norms.CopyToHost(norms));
      s.absmax = {norms[3]};  // max1
      per_scale = std::max<int64_t>(slot.param.numel, 1);
    } else {
      s.absmax.resize(slot.absmax.view().numel);
      LARS_RETURN_IF_ERROR(slot.absmax.CopyToHost(s.absmax.data()));
    }
    const std::array<float, 256>& code = DynamicCodebook();
    for (size_t i = 0; i < s.codes.size(); ++i) {
      s.momentum[i] = code[s.codes[i]] * s.absmax[i / per_scale];
    }
  }
  if (slot.ring.view().numel > 0) {
    s.gnorm_vec.resize(kRing);
    LARS_RETURN_IF_ERROR(slot.ring.CopyToHost(s.gnorm_vec.data()));
  }
  if (options.trust_mode == TrustMode::kClip && options.max_unorm > 0.0) {
    float norms[4];
    LARS_RETURN_IF_ERROR(slot.norms.CopyToHost(norms));
    s.unorm = std::sqrt(norms[1]);
  }
  return s;
}

int64_t OwnStateBytes(const ParamSlot& slot) {
  int64_t b = 0;
  for (const DeviceBuffer* d : {&slot.scratch_norms, &slot.gscale, &slot.gnorm, &slot.ring}) {
    b += static_cast<int64_t>(d->view().bytes());
  }
  return b;
}

int64_t StateBytes(const ParamSlot& slot) {
  int64_t b = OwnStateBytes(slot);
  for (const DeviceBuffer* d : {&slot.momentum, &slot.codes, &slot.absmax, &slot.norms}) {
    b += static_cast<int64_t>(d->view().bytes());
  }
  return b;
}

}  // namespace internal
}  // namespace halide_lars
