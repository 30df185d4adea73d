// The multi-tensor ("arena") fp32-state LARS step: every tensor of one (dtype, device) group in
// one flat buffer, stepped by TWO pipelines per call whatever the tensor count (the per-tensor
// path runs two per tensor). Tables: generators/arena_abi.h.
//   lars_arena_norms_<dtype>:  per-tensor {Σp², Σu², Σg²} by a segmented reduction: chunk c
//       (of one tensor) is reduced into `lanes` lane partials, those are added in lane order,
//       and a tensor's chunk partials in chunk order -- exactly the tree lars_norms builds for
//       one tensor with the same chunk and lane count, so the arena step is bit-identical to
//       the per-tensor one.
//   lars_arena_update_<dtype>: p and m in place (one loop nest, Tuple output); row x/64 of the
//       arena names the tensor, whose per-tensor coefficients (trust ratio, lr * trust scale,
//       whether it is stepped) are computed once per tensor and gathered per row.
// Both take crops: the norms of tensors [t0, t1) from chunks [c0, c1) (out and chunks with
// mins 3*t0 and 3*c0), the update of elements [64*base_row, 64*base_row + extent) (p, g, m
// and out are that slice, indexed from 0: a known-aligned origin keeps the row lookup one
// scalar load per vector), so the CPU runtime can step an arena segment by segment while each
// segment is still in cache.
// The same LarsStepElement / trust expressions as lars_update: identical per-element rounding.
#include "generators/arena_abi.h"
#include "generators/common.h"
#include "generators/lars_math.h"

namespace halide_lars {
namespace generators {
namespace {

using namespace Halide;

// Per-tensor options of tensor `t` from the opts table.
struct ArenaTensorOptions {
  Expr lr, momentum, dampening, weight_decay, nesterov, first_step, trust_mode, max_unorm,
      trust_coefficient, eps, gscale, active, skip_nonfinite;
};

template <typename OptsBuffer>
ArenaTensorOptions LoadOptions(const OptsBuffer& opts, const Expr& t) {
  auto o = [&](int k) { return opts(k + kArenaOpts * t); };
  return {o(kArenaLr),          o(kArenaMomentum),        o(kArenaDampening),
          o(kArenaWeightDecay), o(kArenaNesterov) > 0.5f, o(kArenaFirstStep) > 0.5f,
          cast<int32_t>(o(kArenaTrustMode)), o(kArenaMaxUnorm), o(kArenaTrustCoefficient),
          o(kArenaEps),         o(kArenaGradScale),       o(kArenaActive) > 0.5f,
          o(kArenaSkipNonfinite) > 0.5f};
}

template <DType D>
class LarsArenaNorms : public Generator<LarsArenaNorms<D>> {
 public:
  LARS_GENERATOR_ALIASES(LarsArenaNorms<D>);
  using T = typename Storage<D>::type;

  // Must equal lars_norms' (the reduction tree is defined by them); the chunk is the runtime's
  // kArenaChunk (its chunk tables), not a GeneratorParam.
  GeneratorParam<int> vector_width{"vector_width", kNormsCpuLanes};
  GeneratorParam<int> gpu_threads{"gpu_threads", kNormsGpuLanes};

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<float, 1>> m{"m"};
  Input<Buffer<float, 1>> opts{"opts"};
  Input<Buffer<int32_t, 1>> tensors{"tensors"};
  Input<Buffer<int32_t, 1>> chunks{"chunks"};
  Input<int32_t> max_chunks{"max_chunks"};  // the most chunks any tensor has
  Output<Buffer<float, 1>> out{"out"};      // [3T]: {Σp², Σu², Σg²} per tensor

  void generate() {
    const int lanes = get_target().has_gpu_feature() ? int(gpu_threads) : int(vector_width);
    Var l("l"), c("c"), t("t"), i("i");
    Expr c_lo = chunks.dim(0).min() / kArenaChunkCols;
    Expr c_hi = (chunks.dim(0).min() + chunks.dim(0).extent()) / kArenaChunkCols - 1;
    Expr start = chunks(kArenaChunkCols * c + kArenaChunkStart);
    Expr len = chunks(kArenaChunkCols * c + kArenaChunkLength);
    Expr tc = clamp(chunks(kArenaChunkCols * c + kArenaChunkTensor), 0, opts.dim(0).extent() / kArenaOpts - 1);
    ArenaTensorOptions o = LoadOptions(opts, tc);
    const LarsScalars ks{o.momentum, o.dampening, o.weight_decay, o.nesterov, o.first_step};
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
    RDom rj(0, kArenaChunk / lanes, "rj");
    rj.where(rj < len / lanes);
    Expr x = unsafe_promise_clamped(start + rj * lanes + l, 0, p.dim(0).extent() - 1);
    add_terms(ToF32(D, p(x)), ToF32(D, g(x)), m(x));
    // ...then the tail (len % lanes elements, lanes 0..): last, as in lars_norms' guarded loop.
    // Lanes past the end add the terms of zero inputs, which are exactly 0.
    Expr jt = (len / lanes) * lanes + l;
    Expr vt = jt < len;
    Expr xt = clamp(start + jt, 0, p.dim(0).extent() - 1);
    add_terms(select(vt, ToF32(D, p(xt)), 0.0f), select(vt, ToF32(D, g(xt)), 0.0f),
              select(vt, m(xt), 0.0f));
    RDom rl(0, lanes, "rl");
    chunk_(c) = Tuple(0.0f, 0.0f, 0.0f);
    chunk_(c) = Tuple(chunk_(c)[0] + lane_(rl, c)[0], chunk_(c)[1] + lane_(rl, c)[1],
                      chunk_(c)[2] + lane_(rl, c)[2]);
    RDom rc(0, max_chunks, "rc");
    rc.where(rc < tensors(kArenaTensorCols * t + kArenaChunkCount));
    Expr cc = clamp(tensors(kArenaTensorCols * t + kArenaFirstChunk) + rc, c_lo, c_hi);
    tensor_(t) = Tuple(0.0f, 0.0f, 0.0f);
    tensor_(t) = Tuple(tensor_(t)[0] + chunk_(cc)[0], tensor_(t)[1] + chunk_(cc)[1],
                       tensor_(t)[2] + chunk_(cc)[2]);
    Expr k = i % 3, ti = i / 3;
    out(i) = select(k == 0, tensor_(ti)[0], k == 1, tensor_(ti)[1], tensor_(ti)[2]);
  }

  void schedule() {
    ConstrainSameLength(p, g, m);
    opts.dim(0).set_min(0).set_stride(1);
    tensors.dim(0).set_min(0).set_stride(1);
    chunks.dim(0).set_stride(1);  // a crop: chunks [c0, c1) of the table
    out.dim(0).set_stride(1);     // a crop: tensors [t0, t1) of the norms
    opts.set_estimates({{0, kArenaOpts * 200}});
    tensors.set_estimates({{0, kArenaTensorCols * 200}});
    chunks.set_estimates({{0, kArenaChunkCols * 1000}});
    out.set_estimates({{0, 600}});
    max_chunks.set_estimate(64);
    if (auto_schedule) return;
    Var l = lane_.args()[0], c = chunk_.args()[0], i = out.args()[0], io("io"), ii("ii");
    if (get_target().has_gpu_feature()) {
      // Chunk c: one block; lane l: one thread (coalesced reads). Tensor t's sum: one thread.
      chunk_.compute_root().gpu_blocks(c).update().gpu_blocks(c);
      lane_.compute_at(chunk_, c).gpu_threads(l);
      lane_.update(0).gpu_threads(l);
      lane_.update(1).gpu_threads(l);
      out.gpu_tile(i, io, ii, 64, TailStrategy::GuardWithIf);
      tensor_.compute_at(out, ii);
    } else {
      chunk_.compute_root().update().parallel(c);
      lane_.compute_at(chunk_, c).vectorize(l);
      lane_.update(0).vectorize(l);
      lane_.update(1).vectorize(l);
      tensor_.compute_root();
    }
  }

 private:
  Func lane_{"lane"}, chunk_{"chunk_sums"}, tensor_{"tensor_sums"};
};

template <DType D>
class LarsArenaUpdate : public Generator<LarsArenaUpdate<D>> {
 public:
  LARS_GENERATOR_ALIASES(LarsArenaUpdate<D>);
  using T = typename Storage<D>::type;

  GeneratorParam<int> chunk{"chunk", 1 << 14};
  GeneratorParam<int> vector_width{"vector_width", 16};
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<float, 1>> m{"m"};
  Input<Buffer<float, 1>> opts{"opts"};
  Input<Buffer<int32_t, 1>> tensors{"tensors"};
  Input<Buffer<int32_t, 1>> rows{"rows"};
  Input<Buffer<float, 1>> norms{"norms"};  // [3T] from lars_arena_norms
  Input<int32_t> base_row{"base_row"};      // element 0 of p, g, m is arena element 64*base_row
  Output<Func> out{"out", {type_of<T>(), Float(32)}, 1};  // {p', m'}, in place over {p, m}

  void generate() {
    Var x("x"), t("t");
    Expr ntensors = opts.dim(0).extent() / kArenaOpts;
    // Per tensor, once: the classic trust ratio, lr * trust scale, and whether it is stepped
    // (the same strict fp32 expressions as lars_update, so the products round alike).
    {
      ArenaTensorOptions o = LoadOptions(opts, t);
      Expr n0 = norms(3 * t), n1 = norms(3 * t + 1), n2 = norms(3 * t + 2);
      Expr pnorm = sqrt(n0), unorm = sqrt(n1), gnorm = o.gscale * sqrt(n2);
      Expr ratio = select(o.trust_mode == kTrustClassic,
                          ClassicTrustRatio(pnorm, gnorm, o.weight_decay, o.trust_coefficient, o.eps),
                          1.0f);
      Expr scale = select(o.trust_mode == kTrustClip, ClipTrustScale(pnorm, unorm, o.max_unorm), 1.0f);
      Expr skipped = o.skip_nonfinite && !is_finite(n2);
      coef_(t) = Tuple(ratio, StepSize(o.lr, scale), select(o.active && !skipped, 1, 0));
    }
    Expr row_t = rows(clamp(base_row + x / kArenaAlign, 0, rows.dim(0).extent() - 1));
    Expr tx = clamp(row_t, 0, ntensors - 1);
    ArenaTensorOptions o = LoadOptions(opts, tx);
    Expr offset = tensors(kArenaTensorCols * tx + kArenaOffset);
    Expr numel = tensors(kArenaTensorCols * tx + kArenaNumel);
    Expr ax = base_row * kArenaAlign + x;  // the arena index
    Expr valid = row_t >= 0 && ax >= offset && ax < offset + numel && coef_(tx)[2] == 1;
    Expr pv = ToF32(D, p(x));
    LarsElement e = LarsStepElement({o.momentum, o.dampening, o.weight_decay, o.nesterov,
                                     o.first_step},
                                    pv, ToF32(D, g(x)), m(x), o.gscale, coef_(tx)[0]);
    vals_(x) = Tuple(select(valid, FromF32(D, ApplyUpdate(pv, coef_(tx)[1], e.u)), p(x)),
                     select(valid, e.m_new, m(x)));
    out(x) = Tuple(vals_(x)[0], vals_(x)[1]);
  }

  void schedule() {
    ConstrainSameLength(p, g, m);
    Func out_func = out;
    std::vector<OutputImageParam> outs = out_func.output_buffers();
    outs[0].dim(0).set_min(0).set_extent(p.dim(0).extent());
    for (OutputImageParam& b : outs) b.dim(0).set_stride(1);
    opts.dim(0).set_min(0).set_stride(1);
    tensors.dim(0).set_min(0).set_stride(1);
    rows.dim(0).set_min(0).set_stride(1);
    norms.dim(0).set_min(0).set_stride(1);
    out.set_estimates({{0, 1 << 24}});
    base_row.set_estimate(0);
    opts.set_estimates({{0, kArenaOpts * 200}});
    tensors.set_estimates({{0, kArenaTensorCols * 200}});
    rows.set_estimates({{0, (1 << 24) / kArenaAlign}});
    norms.set_estimates({{0, 600}});
    if (auto_schedule) return;
    const bool gpu = get_target().has_gpu_feature();
    // CPU: the coefficients of all tensors first (a few hundred scalars); GPU: per thread, so
    // the update stays one kernel.
    // CPU: per vector (row-level variants -- a row loop with the vectors unrolled, per-row
    // values computed once -- measured 1.1-3.4x slower: guarded three-level splits scalarize).
    if (!gpu) coef_.compute_root();
    ScheduleInPlaceElementwise(out, vals_, gpu, chunk, vector_width, gpu_threads);
  }

 private:
  Func vals_{"vals"}, coef_{"coef"};
};

}  // namespace
}  // namespace generators
}  // namespace halide_lars

using halide_lars::generators::DType;
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsArenaNorms<DType::kF32>, lars_arena_norms_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsArenaNorms<DType::kF16>, lars_arena_norms_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsArenaNorms<DType::kBF16>, lars_arena_norms_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsArenaUpdate<DType::kF32>, lars_arena_update_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsArenaUpdate<DType::kF16>, lars_arena_update_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsArenaUpdate<DType::kBF16>, lars_arena_update_bf16)
