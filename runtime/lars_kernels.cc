#include "runtime/lars_kernels.h"

#include <deque>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/devices.h"
#include "base/kernel_abi.h"
#include "runtime/halide_call.h"
#include "runtime/quantize.h"
#include "runtime/registry.h"
#include "base/status_macros.h"

namespace halide_lars {
namespace {

using internal::BufferView;
using internal::CallContext;

constexpr halide_type_t kI32{halide_type_int, 32, 1};

// One kernel call's context on a device and its halide_buffer_t views, checked together
// before the launch.
class Views {
 public:
  Views() = default;
  Views(const Views&) = delete;
  Views& operator=(const Views&) = delete;
  absl::Status Open(const Device& device, const ExecContext& exec) {
    return internal::MakeCallContext(device, exec, &ctx_);
  }
  halide_buffer_t* operator()(const TensorView& t) { return views_.emplace_back(t, &ctx_).raw(); }
  halide_buffer_t* operator()(const TensorView& t, halide_type_t type) {
    return views_.emplace_back(t, &ctx_, type).raw();
  }
  // Elements [offset, offset + n) of `t` as a crop (indexed with t's coordinates).
  halide_buffer_t* Crop(const TensorView& t, int64_t offset, int64_t n, halide_type_t type) {
    return views_.emplace_back(BufferView::kCrop, t, offset, n, &ctx_, type).raw();
  }
  absl::Status status() const {
    for (const BufferView& v : views_) LARS_RETURN_IF_ERROR(v.status());
    return absl::OkStatus();
  }
  CallContext* ctx() { return &ctx_; }

 private:
  CallContext ctx_;
  std::deque<BufferView> views_;  // never moved: halide_buffer_t points into itself
};

// Runs the kernel of `args`' op (OpOf) for (dtype, device, variant) with the named arguments
// after the user context; errors name the kernel (its registry name).
template <typename Args>
absl::Status Launch(DType dtype, DeviceType device, const char* variant, Views& views,
                    const Args& args) {
  constexpr Op op = OpOf<Args>::value;
  LARS_ASSIGN_OR_RETURN(const KernelInfo* info, FindKernelInfo(op, dtype, device, variant));
  LARS_RETURN_IF_ERROR(views.status());
  auto kernel = reinterpret_cast<typename KernelSignature<op>::type>(info->fn);
  return internal::PipelineStatus(info->name, KernelSignature<op>::Call(kernel, views.ctx(), args),
                                  *views.ctx());
}

}  // namespace

void FlatOptsRow(const LarsHyper& h, float grad_scale, bool active, bool skip_nonfinite,
                 float* row) {
  row[kFlatLr] = h.lr;
  row[kFlatMomentum] = h.momentum;
  row[kFlatDampening] = h.dampening;
  row[kFlatWeightDecay] = h.weight_decay;
  row[kFlatNesterov] = h.nesterov ? 1.0f : 0.0f;
  row[kFlatFirstStep] = h.first_step ? 1.0f : 0.0f;
  row[kFlatTrustMode] = static_cast<float>(h.trust_mode);
  row[kFlatMaxUnorm] = h.max_unorm;
  row[kFlatTrustCoefficient] = h.trust_coefficient;
  row[kFlatEps] = h.eps;
  row[kFlatGradScale] = grad_scale;
  row[kFlatActive] = active ? 1.0f : 0.0f;
  row[kFlatSkipNonfinite] = skip_nonfinite ? 1.0f : 0.0f;
}

absl::Status RunLarsNorms(const LarsTensorArgs& a, const TensorView& out, const ExecContext& exec) {
  const DType dtype = a.param.dtype;
  const DeviceType dev = a.param.device.type;
  const LarsHyper& k = a.hyper;
  const MomentumState& s = a.state;
  Views v;
  LARS_RETURN_IF_ERROR(v.Open(a.param.device, exec));
  halide_buffer_t *p = v(a.param), *g = v(a.grad), *gscale = v(a.gscale), *o = v(out);
  // The exact trust form needs Σd² (d = s g + wd p) where the others read Σu²: the norms kernels
  // sum u = d when told it is the first step without nesterov (their other sums do not depend on
  // either). The flat norms kernel makes the same substitution from the form itself.
  const bool exact = k.trust_mode % kTrustLrInside == kTrustExact;
  const bool nesterov = k.nesterov && !exact, first_step = k.first_step || exact;
  if (s.kind == StateKind::kFp32) {
    halide_buffer_t* m = v(s.momentum);
    return Launch(dtype, dev, "", v,
                  LarsNormsArgs{.p = p, .g = g, .m = m, .gscale = gscale, .momentum = k.momentum,
                                .dampening = k.dampening, .weight_decay = k.weight_decay,
                                .nesterov = nesterov, .first_step = first_step, .out = o});
  }
  LARS_ASSIGN_OR_RETURN(internal::DeviceCodebook book, internal::GetDeviceCodebook(a.param.device));
  halide_buffer_t *codes = v(s.codes), *code = v(book.code);
  if (s.kind == StateKind::kTensor8) {
    halide_buffer_t* prev = v(s.prev_norms);
    return Launch(dtype, dev, "", v,  // never exact
                  Lars8bitTensorNormsArgs{.p = p, .g = g, .codes = codes, .scale = prev,
                                          .code = code, .gscale = gscale,
                                          .momentum = k.momentum, .dampening = k.dampening,
                                          .weight_decay = k.weight_decay,
                                          .nesterov = k.nesterov, .first_step = k.first_step,
                                          .out = o});
  }
  halide_buffer_t* absmax = v(s.absmax);
  return Launch(dtype, dev, internal::QuantBlockVariant(s.block_size), v,
                Lars8bitNormsArgs{.p = p, .g = g, .codes = codes, .absmax = absmax, .code = code,
                                  .gscale = gscale, .momentum = k.momentum,
                                  .dampening = k.dampening, .weight_decay = k.weight_decay,
                                  .nesterov = nesterov, .first_step = first_step, .out = o});
}

absl::Status RunLarsUpdate(const LarsTensorArgs& a, const TensorView& norms_view,
                           const ExecContext& exec) {
  const DType dtype = a.param.dtype;
  const DeviceType dev = a.param.device.type;
  const LarsHyper& k = a.hyper;
  const MomentumState& s = a.state;
  Views v;
  LARS_RETURN_IF_ERROR(v.Open(a.param.device, exec));
  halide_buffer_t *p = v(a.param), *g = v(a.grad), *gscale = v(a.gscale), *norms = v(norms_view);
  halide_buffer_t* p_out = v(a.param);
  if (s.kind == StateKind::kFp32) {
    halide_buffer_t *m = v(s.momentum), *m_out = v(s.momentum);
    return Launch(dtype, dev, "", v,
                  LarsUpdateArgs{.p = p, .g = g, .m = m, .gscale = gscale, .norms = norms,
                                 .lr = k.lr, .momentum = k.momentum, .dampening = k.dampening,
                                 .weight_decay = k.weight_decay, .nesterov = k.nesterov,
                                 .first_step = k.first_step, .trust_mode = k.trust_mode,
                                 .max_unorm = k.max_unorm,
                                 .trust_coefficient = k.trust_coefficient, .eps = k.eps,
                                 .p_out = p_out, .m_out = m_out});
  }
  LARS_ASSIGN_OR_RETURN(internal::DeviceCodebook book, internal::GetDeviceCodebook(a.param.device));
  halide_buffer_t *codes = v(s.codes), *codes_out = v(s.codes);
  halide_buffer_t *code = v(book.code), *mids = v(book.mids), *lut = v(book.lut, internal::kLutType);
  if (s.kind == StateKind::kTensor8) {
    halide_buffer_t* prev = v(s.prev_norms);
    return Launch(dtype, dev, "", v,
                  Lars8bitTensorUpdateArgs{
                      .p = p, .g = g, .codes = codes, .scale = prev, .code = code, .mids = mids,
                      .lut = lut, .gscale = gscale, .norms = norms, .lr = k.lr,
                      .momentum = k.momentum, .dampening = k.dampening,
                      .weight_decay = k.weight_decay, .nesterov = k.nesterov,
                      .first_step = k.first_step, .trust_mode = k.trust_mode,
                      .max_unorm = k.max_unorm, .p_out = p_out, .codes_out = codes_out});
  }
  halide_buffer_t *absmax = v(s.absmax), *absmax_out = v(s.absmax);
  return Launch(dtype, dev, internal::QuantBlockVariant(s.block_size), v,
                Lars8bitUpdateArgs{
                    .p = p, .g = g, .codes = codes, .absmax = absmax, .code = code, .mids = mids,
                    .lut = lut, .gscale = gscale, .norms = norms, .lr = k.lr,
                    .momentum = k.momentum, .dampening = k.dampening,
                    .weight_decay = k.weight_decay, .nesterov = k.nesterov,
                    .first_step = k.first_step, .trust_mode = k.trust_mode,
                    .max_unorm = k.max_unorm, .trust_coefficient = k.trust_coefficient,
                    .eps = k.eps, .p_out = p_out, .codes_out = codes_out,
                    .absmax_out = absmax_out});
}

absl::Status RunLarsMomentumFirst(const LarsTensorArgs& a, const TensorView& norms_out,
                                  const ExecContext& exec) {
  const DType dtype = a.param.dtype;
  const DeviceType dev = a.param.device.type;
  const LarsHyper& k = a.hyper;
  Views v;
  LARS_RETURN_IF_ERROR(v.Open(a.param.device, exec));
  halide_buffer_t *p = v(a.param), *g = v(a.grad), *m = v(a.state.momentum);
  halide_buffer_t *gscale = v(a.gscale), *norms = v(norms_out);
  halide_buffer_t *m_out = v(a.state.momentum), *p_out = v(a.param);
  LARS_RETURN_IF_ERROR(Launch(
      dtype, dev, "", v,
      LarsMomentumArgs{.p = p, .g = g, .m = m, .gscale = gscale, .momentum = k.momentum,
                       .dampening = k.dampening, .weight_decay = k.weight_decay,
                       .nesterov = k.nesterov, .first_step = k.first_step, .m_out = m_out,
                       .norms = norms}));
  return Launch(dtype, dev, "", v,
                LarsApplyArgs{.p = p, .g = g, .m = m, .gscale = gscale, .norms = norms,
                              .lr = k.lr, .momentum = k.momentum, .weight_decay = k.weight_decay,
                              .nesterov = k.nesterov, .max_unorm = k.max_unorm, .p_out = p_out});
}

absl::Status RunPercentileClip(const PercentileArgs& a, const ExecContext& exec) {
  const DeviceType dev = a.ring.device.type;
  Views v;
  LARS_RETURN_IF_ERROR(v.Open(a.ring.device, exec));
  halide_buffer_t *ring = v(a.ring), *gnorm = v(a.gnorm), *ring_out = v(a.ring);
  halide_buffer_t* gscale = v(a.gscale);
  return Launch(DType::kF32, dev, "", v,
                PercentileClipArgs{.ring = ring, .gnorm = gnorm, .step = a.ring_step,
                                   .percentile = a.percentile, .inv_scale = a.inv_scale,
                                   .ring_out = ring_out, .gscale = gscale});
}

absl::Status RunLarsFlatNorms(const FlatSetArgs& a, int32_t t0, int32_t t1, int32_t c0, int32_t c1,
                              const TensorView& norms, const ExecContext& exec) {
  const DType dtype = a.params.dtype;
  const DeviceType dev = a.params.device.type;
  Views v;
  LARS_RETURN_IF_ERROR(v.Open(a.params.device, exec));
  halide_buffer_t *p = v(a.params), *g = v(a.grads), *opts = v(a.opts);
  halide_buffer_t* tensors = v(a.tensors, kI32);
  halide_buffer_t* chunks =
      v.Crop(a.chunks, kFlatChunkCols * int64_t{c0}, kFlatChunkCols * int64_t{c1 - c0}, kI32);
  halide_buffer_t* out =
      v.Crop(norms, 3 * int64_t{t0}, 3 * int64_t{t1 - t0}, internal::HalideType(DType::kF32));
  if (a.state.kind == StateKind::kBlockwise8) {
    LARS_ASSIGN_OR_RETURN(internal::DeviceCodebook book, internal::GetDeviceCodebook(a.params.device));
    halide_buffer_t *codes = v(a.state.codes), *absmax = v(a.state.absmax), *code = v(book.code);
    return Launch(dtype, dev, internal::QuantBlockVariant(a.state.block_size), v,
                  Lars8bitFlatNormsArgs{.p = p, .g = g, .codes = codes, .absmax = absmax,
                                        .code = code, .opts = opts, .tensors = tensors,
                                        .chunks = chunks, .max_chunks = a.max_chunks, .out = out});
  }
  halide_buffer_t* m = v(a.state.momentum);
  return Launch(dtype, dev, "", v,
                LarsFlatNormsArgs{.p = p, .g = g, .m = m, .opts = opts, .tensors = tensors,
                                  .chunks = chunks, .max_chunks = a.max_chunks, .out = out});
}

absl::Status RunLarsFlatUpdate(const FlatSetArgs& a, int32_t base_row, const TensorView& norms_view,
                               const ExecContext& exec) {
  const DType dtype = a.params.dtype;
  const DeviceType dev = a.params.device.type;
  Views v;
  LARS_RETURN_IF_ERROR(v.Open(a.params.device, exec));
  halide_buffer_t *p = v(a.params), *g = v(a.grads), *p_out = v(a.params);
  halide_buffer_t *opts = v(a.opts), *norms = v(norms_view);
  halide_buffer_t *tensors = v(a.tensors, kI32), *rows = v(a.rows, kI32);
  if (a.state.kind == StateKind::kBlockwise8) {
    LARS_ASSIGN_OR_RETURN(internal::DeviceCodebook book, internal::GetDeviceCodebook(a.params.device));
    halide_buffer_t *codes = v(a.state.codes), *codes_out = v(a.state.codes);
    halide_buffer_t *absmax = v(a.state.absmax), *absmax_out = v(a.state.absmax);
    halide_buffer_t *code = v(book.code), *mids = v(book.mids);
    halide_buffer_t* lut = v(book.lut, internal::kLutType);
    return Launch(dtype, dev, internal::QuantBlockVariant(a.state.block_size), v,
                  Lars8bitFlatUpdateArgs{
                      .p = p, .g = g, .codes = codes, .absmax = absmax, .code = code,
                      .mids = mids, .lut = lut, .opts = opts, .tensors = tensors, .rows = rows,
                      .norms = norms, .base_row = base_row, .p_out = p_out,
                      .codes_out = codes_out, .absmax_out = absmax_out});
  }
  halide_buffer_t *m = v(a.state.momentum), *m_out = v(a.state.momentum);
  return Launch(dtype, dev, "", v,
                LarsFlatUpdateArgs{.p = p, .g = g, .m = m, .opts = opts, .tensors = tensors,
                                   .rows = rows, .norms = norms, .base_row = base_row,
                                   .p_out = p_out, .m_out = m_out});
}

}  // namespace halide_lars
