// Halide helpers shared by the flat set (flat-parameter) generators: the per-tensor option table,
// the segmented norms reduction (lars_norms' tree), and the per-tensor coefficients.
#ifndef HALIDE_LARS_GENERATORS_FLAT_COMMON_H_
#define HALIDE_LARS_GENERATORS_FLAT_COMMON_H_

#include <functional>
#include <vector>

#include "base/kernel_abi.h"
#include "generators/common.h"
#include "generators/lars_math.h"

namespace halide_lars {
namespace generators {

using namespace Halide;  // NOLINT: a generator helper header, included only by generators

// Per-tensor options of tensor `t` from the opts table.
struct FlatTensorOptions {
  Expr lr, momentum, dampening, weight_decay, nesterov, first_step, trust_mode, max_unorm,
      trust_coefficient, eps, gscale, active, skip_nonfinite;
};

template <typename OptsBuffer>
FlatTensorOptions LoadOptions(const OptsBuffer& opts, const Expr& t) {
  auto o = [&](int k) { return opts(k + kFlatOpts * t); };
  return {o(kFlatLr),          o(kFlatMomentum),        o(kFlatDampening),
          o(kFlatWeightDecay), o(kFlatNesterov) > 0.5f, o(kFlatFirstStep) > 0.5f,
          cast<int32_t>(o(kFlatTrustMode)), o(kFlatMaxUnorm), o(kFlatTrustCoefficient),
          o(kFlatEps),         o(kFlatGradScale),       o(kFlatActive) > 0.5f,
          o(kFlatSkipNonfinite) > 0.5f};
}

// The flat set norms reduction (see LarsFlatNorms) into lane -> chunk_sums -> tensor_sums -> out,
// with the momentum of flat set element x given by `momentum(x)` (fp32 state, or 8-bit codes).
struct FlatNormsFuncs {
  Func lane{"lane"}, chunk_sums{"chunk_sums"}, tensor_sums{"tensor_sums"};
  Expr chunk_rows;  // how many chunk-table rows this call reduces (the table crop's)
};

template <DType D, typename PBuf, typename OBuf, typename IBuf>
void DefineFlatNorms(FlatNormsFuncs& f, Func out, const PBuf& p, const PBuf& g,
                      const std::function<Expr(const Expr&)>& momentum, const OBuf& opts,
                      const IBuf& tensors, const IBuf& chunks, const Expr& max_chunks, int lanes) {
  Func lane_ = f.lane, chunk_ = f.chunk_sums, tensor_ = f.tensor_sums;
  Var l("l"), c("c"), t("t"), i("i");
  Expr c_lo = chunks.dim(0).min() / kFlatChunkCols;
  Expr c_hi = (chunks.dim(0).min() + chunks.dim(0).extent()) / kFlatChunkCols - 1;
  f.chunk_rows = chunks.dim(0).extent() / kFlatChunkCols;
  // Chunk starts are tensor offsets (multiples of kFlatAlign) plus multiples of kFlatChunk:
  // saying so lets Halide prove a vector never crosses a row or an 8-bit block (aligned loads,
  // one absmax per vector instead of a gather). The value is unchanged.
  Expr start = (chunks(kFlatChunkCols * c + kFlatChunkStart) / kFlatAlign) * kFlatAlign;
  Expr len = chunks(kFlatChunkCols * c + kFlatChunkLength);
  Expr tc = clamp(chunks(kFlatChunkCols * c + kFlatChunkTensor), 0, opts.dim(0).extent() / kFlatOpts - 1);
  FlatTensorOptions o = LoadOptions(opts, tc);
  // Exact trust form: Σd² in u's place (d = s g + wd p: u with first_step on, nesterov off --
  // the same substitution the per-tensor norms call gets from runtime/lars_kernels).
  Expr exact = TrustForm(o.trust_mode) == kTrustExact;
  const LarsScalars ks{o.momentum, o.dampening, o.weight_decay, o.nesterov && !exact,
                       o.first_step || exact};
  auto add_terms = [&](const Expr& pv, const Expr& gv, const Expr& mv) {
    LarsElement e = LarsStepElement(ks, pv, gv, mv, o.gscale, 1.0f);
    const Expr terms[3] = {pv * pv, e.u * e.u, gv * gv};
    std::vector<Expr> sums;
    for (int q = 0; q < 3; ++q) sums.push_back(strict_float(lane_(l, c)[q] + terms[q]));
    lane_(l, c) = Tuple(sums);
  };
  lane_(l, c) = Tuple(0.0f, 0.0f, 0.0f);
  // Element j of the chunk goes to lane j % lanes, in order. Full rows of `lanes` elements
  // first, with plain loads (they lie inside the tensor, so inside the buffer)...
  RDom rj(0, kFlatChunk / lanes, "rj");
  rj.where(rj < len / lanes);
  Expr x = unsafe_promise_clamped(start + rj * lanes + l, 0, p.dim(0).extent() - 1);
  add_terms(ToF32(D, p(x)), ToF32(D, g(x)), momentum(x));
  // ...then the tail (len % lanes elements, lanes 0..): last, as in lars_norms' guarded loop.
  // Lanes past the end add the terms of zero inputs, which are exactly 0.
  Expr jt = (len / lanes) * lanes + l;
  Expr vt = jt < len;
  Expr xt = clamp(start + jt, 0, p.dim(0).extent() - 1);
  add_terms(select(vt, ToF32(D, p(xt)), 0.0f), select(vt, ToF32(D, g(xt)), 0.0f),
            select(vt, momentum(xt), 0.0f));
  RDom rl(0, lanes, "rl");
  chunk_(c) = Tuple(0.0f, 0.0f, 0.0f);
  chunk_(c) = Tuple(chunk_(c)[0] + lane_(rl, c)[0], chunk_(c)[1] + lane_(rl, c)[1],
                    chunk_(c)[2] + lane_(rl, c)[2]);
  RDom rc(0, max_chunks, "rc");
  rc.where(rc < tensors(kFlatTensorCols * t + kFlatChunkCount));
  Expr cc = clamp(tensors(kFlatTensorCols * t + kFlatFirstChunk) + rc, c_lo, c_hi);
  tensor_(t) = Tuple(0.0f, 0.0f, 0.0f);
  tensor_(t) = Tuple(tensor_(t)[0] + chunk_(cc)[0], tensor_(t)[1] + chunk_(cc)[1],
                     tensor_(t)[2] + chunk_(cc)[2]);
  Expr k = i % 3, ti = i / 3;
  out(i) = select(k == 0, tensor_(ti)[0], k == 1, tensor_(ti)[1], tensor_(ti)[2]);
}

// Buffer constraints and estimates of the flat set norms' tables (before the auto_schedule check).
template <typename OBuf, typename IBuf, typename Out, typename Scalar>
void ConstrainFlatNormsTables(OBuf& opts, IBuf& tensors, IBuf& chunks, Out& out,
                               Scalar& max_chunks) {
  opts.dim(0).set_min(0).set_stride(1);
  tensors.dim(0).set_min(0).set_stride(1);
  chunks.dim(0).set_stride(1);  // a crop: chunks [c0, c1) of the table
  out.dim(0).set_stride(1);     // a crop: tensors [t0, t1) of the norms
  opts.set_estimates({{0, kFlatOpts * 200}});
  tensors.set_estimates({{0, kFlatTensorCols * 200}});
  chunks.set_estimates({{0, kFlatChunkCols * 1000}});
  out.set_estimates({{0, 600}});
  max_chunks.set_estimate(64);
}

// Buffer constraints and estimates of the flat set update's tables (lars_flat_update,
// lars8bit_flat_update; before the auto_schedule check).
template <typename OBuf, typename IBuf, typename NBuf, typename Scalar>
void ConstrainFlatUpdateTables(OBuf& opts, IBuf& tensors, IBuf& rows, NBuf& norms,
                               Scalar& base_row) {
  opts.dim(0).set_min(0).set_stride(1);
  tensors.dim(0).set_min(0).set_stride(1);
  rows.dim(0).set_min(0).set_stride(1);
  norms.dim(0).set_min(0).set_stride(1);
  opts.set_estimates({{0, kFlatOpts * 200}});
  tensors.set_estimates({{0, kFlatTensorCols * 200}});
  rows.set_estimates({{0, (1 << 24) / kFlatAlign}});
  norms.set_estimates({{0, 600}});
  base_row.set_estimate(0);
}

// CPU: the chunks of this call in contiguous groups (UnitsPerTask).
inline void ScheduleFlatNorms(FlatNormsFuncs& f, Func out, bool gpu, int tasks) {
  Func lane_ = f.lane, chunk_ = f.chunk_sums, tensor_ = f.tensor_sums;
  Var l = lane_.args()[0], c = chunk_.args()[0], i = out.args()[0], io("io"), ii("ii");
  Var co("co"), ci("ci");
  if (gpu) {
    // Chunk c: one block; lane l: one thread (coalesced reads). Tensor t's sum: one thread.
    chunk_.compute_root().gpu_blocks(c).update().gpu_blocks(c);
    lane_.compute_at(chunk_, c).gpu_threads(l);
    lane_.update(0).gpu_threads(l);
    lane_.update(1).gpu_threads(l);
    out.gpu_tile(i, io, ii, 64, TailStrategy::GuardWithIf);
    tensor_.compute_at(out, ii);
  } else {
    chunk_.compute_root()
        .update()
        .split(c, co, ci, UnitsPerTask(f.chunk_rows, tasks), TailStrategy::GuardWithIf)
        .parallel(co);
    lane_.compute_at(chunk_, ci).vectorize(l);
    lane_.update(0).vectorize(l);
    lane_.update(1).vectorize(l);
    tensor_.compute_root();
  }
}

// Per tensor t, once: coef(k, t) = the trust ratio (k = 0), lr * trust scale (1; 1 * scale with
// lr_in_momentum), the lr inside the momentum (3; 1 without lr_in_momentum), 1 if
// stepped this call (active and, with skip_nonfinite, a finite Σg²) else 0 (2) -- the same strict fp32 expressions as
// lars_update / lars8bit_update, so the products round alike.
template <typename OBuf, typename NBuf>
void DefineFlatCoefficients(Func coef, const OBuf& opts, const NBuf& norms) {
  Var t("t");
  FlatTensorOptions o = LoadOptions(opts, t);
  Expr n0 = norms(3 * t), n1 = norms(3 * t + 1), n2 = norms(3 * t + 2);
  TrustFactors trust = TrustFromNorms(n0, n1, n2, o.gscale, o.lr, o.trust_mode, o.weight_decay,
                                      o.trust_coefficient, o.eps, o.max_unorm);
  Expr skipped = o.skip_nonfinite && !is_finite(n2);
  Var k("k");
  coef(k, t) = select(k == 0, trust.ratio, k == 1, StepSize(trust.lr, trust.scale),
                      k == 3, trust.lr_factor, select(o.active && !skipped, 1.0f, 0.0f));
}

}  // namespace generators
}  // namespace halide_lars

#endif  // HALIDE_LARS_GENERATORS_FLAT_COMMON_H_
