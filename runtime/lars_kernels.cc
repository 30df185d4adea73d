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

// Runs kernel `op` for (dtype, device, variant) with `args` after the user context; errors
// name the kernel (its registry name).
template <Op op, typename... Args>
absl::Status Launch(DType dtype, DeviceType device, const char* variant, Views& views,
                    Args... args) {
  LARS_ASSIGN_OR_RETURN(const KernelInfo* info, FindKernelInfo(op, dtype, device, variant));
  LARS_RETURN_IF_ERROR(views.status());
  auto kernel = reinterpret_cast<typename KernelSignature<op>::type>(info->fn);
  return internal::PipelineStatus(info->name, kernel(views.ctx(), args...), *views.ctx());
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
    return Launch<Op::kLarsNorms>(dtype, dev, "", v, p, g, m, gscale, k.momentum,
                                  k.dampening, k.weight_decay, nesterov, first_step, o);
  }
  LARS_ASSIGN_OR_RETURN(internal::DeviceCodebook book, internal::GetDeviceCodebook(a.param.device));
  halide_buffer_t *codes = v(s.codes), *code = v(book.code);
  if (s.kind == StateKind::kTensor8) {
    halide_buffer_t* prev = v(s.prev_norms);
    return Launch<Op::kLars8bitTensorNorms>(dtype, dev, "", v, p, g, codes, prev, code,
                                            gscale, k.momentum, k.dampening, k.weight_decay,
                                            k.nesterov, k.first_step, o);  // never exact
  }
  halide_buffer_t* absmax = v(s.absmax);
  return Launch<Op::kLars8bitNorms>(dtype, dev, internal::QuantBlockVariant(s.block_size), v,
                                    p, g, codes, absmax, code, gscale, k.momentum, k.dampening,
                                    k.weight_decay, nesterov, first_step, o);
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
    return Launch<Op::kLarsUpdate>(dtype, dev, "", v, p, g, m, gscale, norms, k.lr,
                                   k.momentum, k.dampening, k.weight_decay, k.nesterov,
                                   k.first_step, k.trust_mode, k.max_unorm, k.trust_coefficient,
                                   k.eps, p_out, m_out);
  }
  LARS_ASSIGN_OR_RETURN(internal::DeviceCodebook book, internal::GetDeviceCodebook(a.param.device));
  halide_buffer_t *codes = v(s.codes), *codes_out = v(s.codes);
  halide_buffer_t *code = v(book.code), *mids = v(book.mids), *lut = v(book.lut, internal::kLutType);
  if (s.kind == StateKind::kTensor8) {
    halide_buffer_t* prev = v(s.prev_norms);
    return Launch<Op::kLars8bitTensorUpdate>(dtype, dev, "", v, p, g, codes, prev, code,
                                             mids, lut, gscale, norms, k.lr, k.momentum,
                                             k.dampening, k.weight_decay, k.nesterov,
                                             k.first_step, k.trust_mode, k.max_unorm, p_out,
                                             codes_out);
  }
  halide_buffer_t *absmax = v(s.absmax), *absmax_out = v(s.absmax);
  return Launch<Op::kLars8bitUpdate>(dtype, dev, internal::QuantBlockVariant(s.block_size),
                                     v, p, g, codes, absmax, code, mids, lut, gscale, norms, k.lr,
                                     k.momentum, k.dampening, k.weight_decay, k.nesterov,
                                     k.first_step, k.trust_mode, k.max_unorm, k.trust_coefficient,
                                     k.eps, p_out, codes_out, absmax_out);
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
  LARS_RETURN_IF_ERROR(Launch<Op::kLarsMomentum>(dtype, dev, "", v, p, g, m, gscale,
                                                 k.momentum, k.dampening, k.weight_decay,
                                                 k.nesterov, k.first_step, m_out, norms));
  return Launch<Op::kLarsApply>(dtype, dev, "", v, p, g, m, gscale, norms, k.lr, k.momentum,
                                k.weight_decay, k.nesterov, k.max_unorm, p_out);
}

absl::Status RunPercentileClip(const PercentileArgs& a, const ExecContext& exec) {
  const DeviceType dev = a.ring.device.type;
  Views v;
  LARS_RETURN_IF_ERROR(v.Open(a.ring.device, exec));
  halide_buffer_t *ring = v(a.ring), *gnorm = v(a.gnorm), *ring_out = v(a.ring);
  halide_buffer_t* gscale = v(a.gscale);
  return Launch<Op::kPercentileClip>(DType::kF32, dev, "", v, ring, gnorm, a.ring_step,
                                     a.percentile, a.inv_scale, ring_out, gscale);
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
    return Launch<Op::kLars8bitFlatNorms>(dtype, dev, internal::QuantBlockVariant(a.state.block_size),
                                          v, p, g, codes, absmax, code, opts, tensors,
                                          chunks, a.max_chunks, out);
  }
  halide_buffer_t* m = v(a.state.momentum);
  return Launch<Op::kLarsFlatNorms>(dtype, dev, "", v, p, g, m, opts, tensors, chunks,
                                    a.max_chunks, out);
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
    return Launch<Op::kLars8bitFlatUpdate>(
        dtype, dev, internal::QuantBlockVariant(a.state.block_size), v, p, g, codes, absmax,
        code, mids, lut, opts, tensors, rows, norms, base_row, p_out, codes_out, absmax_out);
  }
  halide_buffer_t *m = v(a.state.momentum), *m_out = v(a.state.momentum);
  return Launch<Op::kLarsFlatUpdate>(dtype, dev, "", v, p, g, m, opts, tensors, rows, norms,
                                     base_row, p_out, m_out);
}

}  // namespace halide_lars
