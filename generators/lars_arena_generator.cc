// The multi-tensor ("arena") fp32-state LARS step: every tensor of one (dtype, device) group in
// one flat buffer, stepped by TWO pipelines per call whatever the tensor count (the per-tensor
// path runs two per tensor). Tables: generators/arena_abi.h.
//   lars_arena_norms_<dtype>:  per-tensor {Σp², Σu², Σg²} by a segmented reduction: chunk c
//       (of one tensor) is reduced into `lanes` lane partials, those are added in lane order,
//       and a tensor's chunk partials in chunk order -- exactly the tree lars_norms builds for
//       one tensor with the same chunk and lane count, so the arena step is bit-identical to
//       the per-tensor one.
//   lars_arena_update_<dtype>: p and m in place (one loop nest, Tuple output); row x/64 of the
//       arena names the tensor, whose options, norms and trust scale are gathered per row.
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

  // Must equal lars_norms' (the reduction tree is defined by them).
  GeneratorParam<int> chunk{"chunk", kNormsChunk};
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
    Expr start = chunks(kArenaChunkCols * c + kArenaChunkStart);
    Expr len = chunks(kArenaChunkCols * c + kArenaChunkLength);
    Expr tc = clamp(chunks(kArenaChunkCols * c + kArenaChunkTensor), 0, opts.dim(0).extent() / kArenaOpts - 1);
    RDom rj(0, int(chunk) / lanes, "rj");
    rj.where(rj < (len + (lanes - 1)) / lanes);
    Expr j = rj * lanes + l;
    Expr valid = j < len;
    Expr x = clamp(start + j, 0, p.dim(0).extent() - 1);
    // Past the chunk's end the inputs are zero (adding 0 to a sum of squares is exact), so the
    // lane sums equal those of lars_norms, whose guarded loop skips those elements.
    Expr pv = select(valid, ToF32(D, p(x)), 0.0f);
    Expr gv = select(valid, ToF32(D, g(x)), 0.0f);
    Expr mv = select(valid, m(x), 0.0f);
    ArenaTensorOptions o = LoadOptions(opts, tc);
    LarsElement e = LarsStepElement({o.momentum, o.dampening, o.weight_decay, o.nesterov,
                                     o.first_step},
                                    pv, gv, mv, o.gscale, 1.0f);
    DefineSums(lane_, {pv * pv, e.u * e.u, gv * gv}, {l, c});
    RDom rl(0, lanes, "rl");
    chunk_(c) = Tuple(0.0f, 0.0f, 0.0f);
    chunk_(c) = Tuple(chunk_(c)[0] + lane_(rl, c)[0], chunk_(c)[1] + lane_(rl, c)[1],
                      chunk_(c)[2] + lane_(rl, c)[2]);
    RDom rc(0, max_chunks, "rc");
    rc.where(rc < tensors(kArenaTensorCols * t + kArenaChunkCount));
    Expr cc = clamp(tensors(kArenaTensorCols * t + kArenaFirstChunk) + rc, 0,
                    chunks.dim(0).extent() / kArenaChunkCols - 1);
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
    chunks.dim(0).set_min(0).set_stride(1);
    out.dim(0).set_min(0).set_stride(1);
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
      lane_.compute_at(chunk_, c).gpu_threads(l).update().gpu_threads(l);
      out.gpu_tile(i, io, ii, 64, TailStrategy::GuardWithIf);
      tensor_.compute_at(out, ii);
    } else {
      chunk_.compute_root().update().parallel(c);
      lane_.compute_at(chunk_, c).vectorize(l).update().vectorize(l);
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
  Output<Func> out{"out", {type_of<T>(), Float(32)}, 1};  // {p', m'}, in place over {p, m}

  void generate() {
    Var x("x");
    Expr ntensors = opts.dim(0).extent() / kArenaOpts;
    Expr row_t = rows(clamp(x / kArenaAlign, 0, rows.dim(0).extent() - 1));
    Expr t = clamp(row_t, 0, ntensors - 1);
    ArenaTensorOptions o = LoadOptions(opts, t);
    Expr n0 = norms(3 * t), n1 = norms(3 * t + 1), n2 = norms(3 * t + 2);
    Expr offset = tensors(kArenaTensorCols * t + kArenaOffset);
    Expr numel = tensors(kArenaTensorCols * t + kArenaNumel);
    Expr inside = row_t >= 0 && x >= offset && x < offset + numel;
    Expr skipped = o.skip_nonfinite && !is_finite(n2);
    Expr valid = inside && o.active && !skipped;
    Expr s = o.gscale;
    Expr pnorm = sqrt(n0), unorm = sqrt(n1), gnorm = s * sqrt(n2);
    Expr ratio = select(o.trust_mode == kTrustClassic,
                        ClassicTrustRatio(pnorm, gnorm, o.weight_decay, o.trust_coefficient, o.eps),
                        1.0f);
    Expr scale = select(o.trust_mode == kTrustClip, ClipTrustScale(pnorm, unorm, o.max_unorm), 1.0f);
    Expr pv = ToF32(D, p(x));
    LarsElement e = LarsStepElement({o.momentum, o.dampening, o.weight_decay, o.nesterov,
                                     o.first_step},
                                    pv, ToF32(D, g(x)), m(x), s, ratio);
    vals_(x) = Tuple(select(valid, FromF32(D, ApplyUpdate(pv, o.lr, scale, e.u)), p(x)),
                     select(valid, e.m_new, m(x)));
    out(x) = Tuple(vals_(x)[0], vals_(x)[1]);
  }

  void schedule() {
    ConstrainSameLength(p, g, m);
    opts.dim(0).set_min(0).set_stride(1);
    tensors.dim(0).set_min(0).set_stride(1);
    rows.dim(0).set_min(0).set_stride(1);
    norms.dim(0).set_min(0).set_stride(1);
    Func out_func = out;
    std::vector<OutputImageParam> outs = out_func.output_buffers();
    outs[0].dim(0).set_min(0).set_extent(p.dim(0).extent());
    for (OutputImageParam& b : outs) b.dim(0).set_stride(1);
    out.set_estimates({{0, 1 << 24}});
    opts.set_estimates({{0, kArenaOpts * 200}});
    tensors.set_estimates({{0, kArenaTensorCols * 200}});
    rows.set_estimates({{0, (1 << 24) / kArenaAlign}});
    norms.set_estimates({{0, 600}});
    if (auto_schedule) return;
    ScheduleInPlaceElementwise(out, vals_, get_target().has_gpu_feature(), chunk, vector_width,
                               gpu_threads);
  }

 private:
  Func vals_{"vals"};
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
