// The kernels' ABI below every layer (plain C++: the generators, runtime/ and lars/ include it):
// the packed trust form and the flat-set tables. The flat set (multi-tensor) LARS kernels read
// these tables, filled by lars/. One flat set = the parameters
// of one (dtype, device) in one flat buffer, their gradients in another, the fp32 momentum in a
// third, all with the same offsets. Every table is a 1-D buffer:
//   opts    f32 [kFlatOpts * T]   per-tensor options of this step, opts[k + kFlatOpts * t]
//   tensors i32 [kFlatTensorCols * T]  offset, numel, first chunk, chunk count of tensor t
//   chunks  i32 [kFlatChunkCols * C]   start, length, tensor of chunk c (length <= chunk size;
//           chunk k of a tensor starts at its offset + k * chunk size: each tensor's reduction
//           tree is the one the per-tensor lars_norms kernel builds, so the results agree bit
//           for bit)
//   rows    i32 [ceil(N / kFlatAlign)]  tensor owning row r (elements [r*A, r*A + A)), -1: none
//   norms   f32 [3 * T]             {Σp², Σu², Σg²} of tensor t at 3t..3t+2
#ifndef HALIDE_LARS_BASE_KERNEL_ABI_H_
#define HALIDE_LARS_BASE_KERNEL_ABI_H_

namespace halide_lars {

// Tensor offsets in a flat set are multiples of this many elements (256 B of fp32), so a row of
// kFlatAlign elements belongs to at most one tensor.
constexpr int kFlatAlign = 64;

// Elements per reduction chunk (lars_norms and lars_flat_norms: the shared reduction tree).
constexpr int kFlatChunk = 1 << 15;

// The trust forms as the kernels read them (docs/spec.md "Trust forms"; generators/lars_math
// has the math). TrustMode (include/halide_lars/options.h) and LARS_TRUST_* (lars_c.h) are these
// values: static_asserts in lars/kernel_plan.cc and c_api/lars_c.cc hold them together.
enum KernelTrustForm {
  kTrustClip = 0,      // bitsandbytes: the update's norm clipped to max_unorm * |p|
  kTrustClassic = 1,   // You et al. / timm: q = eta |p| / (|g| + wd |p| + eps) on g + wd p
  kTrustNone = 2,
  kTrustLarcClip = 3,  // LARC clip / timm trust_clip: q = min(classic q / lr, 1)
  kTrustExact = 4,     // SSL / optax: q = eta |p| / (|g + wd p| + eps) (1 where a norm is 0)
};

// The kernels' packed trust_mode input (per-tensor update kernels and kFlatTrustMode): the trust
// form plus kTrustLrInside when lr_in_momentum (the lr multiplies d before the momentum and the
// step size is 1: optax's order).
constexpr int kTrustLrInside = 8;

enum FlatOpt {
  kFlatLr = 0,
  kFlatMomentum,
  kFlatDampening,
  kFlatWeightDecay,
  kFlatNesterov,      // 0 or 1
  kFlatFirstStep,     // 0 or 1
  kFlatTrustMode,     // the packed trust mode (kTrustLrInside above)
  kFlatMaxUnorm,
  kFlatTrustCoefficient,
  kFlatEps,
  kFlatGradScale,     // the gradient scale s (1: no percentile clipping)
  kFlatActive,        // 1: stepped this call; 0: left bit-identical (no gradient)
  kFlatSkipNonfinite, // 1: a tensor whose Σg² is not finite is left bit-identical
  kFlatOpts,
};

enum FlatTensorCol { kFlatOffset = 0, kFlatNumel, kFlatFirstChunk, kFlatChunkCount,
                      kFlatTensorCols };
enum FlatChunkCol { kFlatChunkStart = 0, kFlatChunkLength, kFlatChunkTensor, kFlatChunkCols };

}  // namespace halide_lars

#endif  // HALIDE_LARS_BASE_KERNEL_ABI_H_
