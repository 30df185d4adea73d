// Kernel registry: (op, dtype, device type) -> generated function. Callers never name
// generated symbols. Thread-safe (immutable after static initialization).
#ifndef HALIDE_LARS_RUNTIME_REGISTRY_H_
#define HALIDE_LARS_RUNTIME_REGISTRY_H_

#include <vector>

#include "HalideRuntime.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "halide_lars/types.h"

namespace halide_lars {

// Signatures of the generated pipelines, per op (user_context first: every pipeline has it).
enum class Op {
  kNorms,
  kLarsNorms,
  kLarsUpdate,
  kPercentileClip,
  kLarsMomentum,
  kLarsApply,
  kQuantizeBlockwise,
  kDequantizeBlockwise,
  kLars8bitNorms,
  kLars8bitUpdate,
  kLars8bitTensorNorms,
  kLars8bitTensorUpdate,
  kLarsFlatNorms,
  kLarsFlatUpdate,
  kLars8bitFlatNorms,
  kLars8bitFlatUpdate,
};
absl::string_view OpName(Op op);  // "norms"

template <Op op>
struct KernelSignature;
template <>
struct KernelSignature<Op::kNorms> {
  // (user_context, x, out[2] = {Σx², max|x|})
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*);
};

template <>
struct KernelSignature<Op::kLarsNorms> {
  // (uc, p, g, m, gscale[1], momentum, dampening, weight_decay, nesterov, first_step,
  //  out[3] = {Σp², Σu², Σg²})
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, float, float, float, bool, bool, halide_buffer_t*);
};
template <>
struct KernelSignature<Op::kLarsUpdate> {
  // (uc, p, g, m, gscale[1], norms[3], lr, momentum, dampening, weight_decay, nesterov,
  //  first_step, trust_mode, max_unorm, trust_coefficient, eps, p_out, m_out)
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, float, float, float, float, bool, bool,
                       int32_t, float, float, float, halide_buffer_t*, halide_buffer_t*);
};
// FlatSet (multi-tensor) step; tables: base/kernel_abi.h.
template <>
struct KernelSignature<Op::kLarsFlatNorms> {
  // (uc, p, g, m, opts, tensors, chunks, max_chunks, out[3T])
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, int32_t,
                       halide_buffer_t*);
};
template <>
struct KernelSignature<Op::kLarsFlatUpdate> {
  // (uc, p, g, m, opts, tensors, rows, norms[3T], base_row, p_out, m_out); p, g, m, p_out,
  // m_out: flat set elements [64*base_row, 64*base_row + n), indexed from 0
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       int32_t, halide_buffer_t*, halide_buffer_t*);
};
template <>
struct KernelSignature<Op::kLars8bitFlatNorms> {
  // (uc, p, g, codes, absmax, code[256], opts, tensors, chunks, max_chunks, out[3T])
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, int32_t, halide_buffer_t*);
};
template <>
struct KernelSignature<Op::kLars8bitFlatUpdate> {
  // (uc, p, g, codes, absmax, code, mids, lut, opts, tensors, rows, norms, base_row, p_out,
  //  codes_out, absmax_out); p .. codes: a block-aligned slice indexed from 0
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       int32_t, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*);
};
template <>
struct KernelSignature<Op::kPercentileClip> {
  // (uc, ring[100], gnorm[>=1], step, percentile, inv_scale, ring_out[100], gscale[1])
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, int32_t, int32_t, float,
                       halide_buffer_t*, halide_buffer_t*);
};

template <>
struct KernelSignature<Op::kLarsMomentum> {
  // (uc, p, g, m, gscale[1], momentum, dampening, weight_decay, nesterov, first_step,
  //  m_out (in place over m), norms[3] = {Σp², Σu², Σg²})
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, float, float, float, bool, bool, halide_buffer_t*,
                       halide_buffer_t*);
};
template <>
struct KernelSignature<Op::kLarsApply> {
  // (uc, p, g, m (new), gscale[1], norms[3], lr, momentum, weight_decay, nesterov, max_unorm,
  //  p_out (in place over p))
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, float, float, float, bool, float,
                       halide_buffer_t*);
};

template <>
struct KernelSignature<Op::kQuantizeBlockwise> {
  // (uc, x, code[256], mids[256], lut[65536], q_out (u8, n), absmax_out (f32, ceil(n/B)))
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*);
};
template <>
struct KernelSignature<Op::kDequantizeBlockwise> {
  // (uc, q (u8, n), absmax (f32, ceil(n/B)), code[256], x_out)
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*);
};

template <>
struct KernelSignature<Op::kLars8bitNorms> {
  // (uc, p, g, codes, absmax, code[256], gscale[1], momentum, dampening, weight_decay, nesterov,
  //  first_step, out[3])
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, float, float, float,
                       bool, bool, halide_buffer_t*);
};
template <>
struct KernelSignature<Op::kLars8bitUpdate> {
  // (uc, p, g, codes, absmax, code, mids, lut, gscale, norms, lr, momentum, dampening,
  //  weight_decay, nesterov, first_step, trust_mode, max_unorm, trust_coefficient, eps, p_out,
  //  codes_out, absmax_out) -- outputs in place over p, codes, absmax
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, float, float, float, float, bool, bool,
                       int32_t, float, float, float, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*);
};

template <>
struct KernelSignature<Op::kLars8bitTensorNorms> {
  // (uc, p, g, codes, scale[4] (previous norms; [3] = max1), code, gscale, momentum, dampening,
  //  weight_decay, nesterov, first_step, out[4] = {Σp², Σu², Σg², new_max1})
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, float, float, float,
                       bool, bool, halide_buffer_t*);
};
template <>
struct KernelSignature<Op::kLars8bitTensorUpdate> {
  // (uc, p, g, codes, scale[4], code, mids, lut, gscale, norms[4], lr, momentum, dampening,
  //  weight_decay, nesterov, first_step, trust_mode, max_unorm, p_out, codes_out)
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*,
                       halide_buffer_t*, halide_buffer_t*, float, float, float, float, bool, bool,
                       int32_t, float, halide_buffer_t*, halide_buffer_t*);
};

struct KernelInfo {
  Op op;
  DType dtype;
  DeviceType device;
  const char* variant;  // "" for the default build of the op, e.g. "b2048"
  const char* name;     // <op>_<dtype>_<backend>[_<variant>]: the Bazel target and C symbol
  void (*fn)();         // cast to KernelSignature<op>::type by FindKernel
};

// Every registered kernel, in kernels.inc order.
const std::vector<KernelInfo>& AllKernels();

// The kernel for (dtype, device type, variant), or Unimplemented naming what is missing.
absl::StatusOr<const KernelInfo*> FindKernelInfo(Op op, DType dtype, DeviceType device,
                                                 absl::string_view variant = "");

template <Op op>
absl::StatusOr<typename KernelSignature<op>::type> FindKernel(DType dtype, DeviceType device,
                                                              absl::string_view variant = "") {
  absl::StatusOr<const KernelInfo*> info = FindKernelInfo(op, dtype, device, variant);
  if (!info.ok()) return info.status();
  return reinterpret_cast<typename KernelSignature<op>::type>((*info)->fn);
}

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_REGISTRY_H_
