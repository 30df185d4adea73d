// The fp32-state LARS step (docs/spec.md), as two pipelines per dtype:
//   lars_norms_<dtype>:  reads p, g, m; writes {Σp², Σu², Σg²} (u = the update the step will
//                        apply, before the trust scale) — deterministic two-level reduction.
//   lars_update_<dtype>: reads p, g, m and the norms; writes p and m in place in ONE loop nest
//                        (a Tuple output). The trust scale is computed from the norms on the
//                        device, so a GPU step never waits for the host.
// p and g are f32, f16 or bf16 (16-bit as bit patterns, fp32 math, rounded to nearest even on
// store); m is always fp32.
#include <stdexcept>

#include "generators/common.h"
#include "generators/lars_math.h"

namespace halide_lars {
namespace generators {
namespace {

using namespace Halide;

template <DType D>
class LarsNorms : public Generator<LarsNorms<D>> {
 public:
  LARS_GENERATOR_ALIASES(LarsNorms<D>);
  using T = typename Storage<D>::type;

  // The reduction tree (must equal lars_flat_norms': see kNormsChunk). The chunk is part of the
  // flat set ABI (the runtime's chunk tables), so not a GeneratorParam; the lanes are (the build
  // gives lars_flat_norms the same values).
  GeneratorParam<int> vector_width{"vector_width", kNormsCpuLanes};
  GeneratorParam<int> gpu_threads{"gpu_threads", kNormsGpuLanes};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask
  GeneratorParam<bool> specialize_steady{"specialize_steady", true};  // CPU: see common.h

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<float, 1>> m{"m"};
  Input<Buffer<float, 1>> gscale{"gscale"};  // [s]: percentile-clipping gradient scale
  Input<float> momentum{"momentum"};
  Input<float> dampening{"dampening"};
  Input<float> weight_decay{"weight_decay"};
  Input<bool> nesterov{"nesterov"};
  Input<bool> first_step{"first_step"};
  Output<Buffer<float, 1>> out{"out"};  // [Σp², Σu², Σg²]

  void generate() {
    r_ = RDom(0, p.dim(0).extent(), "r");
    Expr pv = ToF32(D, p(r_)), gv = ToF32(D, g(r_));
    LarsElement e = LarsStepElement({momentum, dampening, weight_decay, nesterov, first_step},
                                    pv, gv, m(r_), gscale(0), 1.0f);
    DefineLarsNorms(acc_, out, pv, gv, e.u);
  }

  void schedule() {
    ConstrainSameLength(p, g, m);
    ConstrainNormsIO(out, 3, gscale, momentum, dampening, weight_decay, nesterov, first_step);
    if (auto_schedule) return;
    ScheduleNormsOutput(acc_, r_, out, get_target().has_gpu_feature(), vector_width, gpu_threads,
                        tasks, SteadyState(specialize_steady, first_step, nesterov));
  }

 private:
  RDom r_;
  Func acc_{"acc"};
};

template <DType D>
class LarsUpdate : public Generator<LarsUpdate<D>> {
 public:
  LARS_GENERATOR_ALIASES(LarsUpdate<D>);
  using T = typename Storage<D>::type;

  GeneratorParam<int> chunk{"chunk", 1 << 14};
  GeneratorParam<int> vector_width{"vector_width", 16};
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask
  GeneratorParam<bool> specialize_steady{"specialize_steady", true};  // CPU: see common.h

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<float, 1>> m{"m"};
  Input<Buffer<float, 1>> gscale{"gscale"};  // [s]
  Input<Buffer<float, 1>> norms{"norms"};    // [Σp², Σu², Σg²] from lars_norms
  Input<float> lr{"lr"};
  Input<float> momentum{"momentum"};
  Input<float> dampening{"dampening"};
  Input<float> weight_decay{"weight_decay"};
  Input<bool> nesterov{"nesterov"};
  Input<bool> first_step{"first_step"};
  Input<int> trust_mode{"trust_mode"};  // kTrustClip, kTrustClassic, kTrustNone
  Input<float> max_unorm{"max_unorm"};
  Input<float> trust_coefficient{"trust_coefficient"};
  Input<float> eps{"eps"};
  Output<Func> out{"out", {type_of<T>(), Float(32)}, 1};  // {p', m'}, in place over {p, m}

  void generate() {
    Var x("x");
    Expr s = gscale(0);
    TrustFactors trust = TrustFromNorms(norms(0), norms(1), norms(2), s, lr, trust_mode, weight_decay,
                                        trust_coefficient, eps, max_unorm);
    Expr pv = ToF32(D, p(x));
    LarsElement e = LarsStepElement({momentum, dampening, weight_decay, nesterov, first_step},
                                    pv, ToF32(D, g(x)), m(x), s, trust.ratio, trust.lr_factor);
    vals_(x) = Tuple(FromF32(D, ApplyUpdate(pv, StepSize(trust.lr, trust.scale), e.u)), e.m_new);
    out(x) = Tuple(vals_(x)[0], vals_(x)[1]);
  }

  void schedule() {
    ConstrainSameLength(p, g, m);
    ConstrainInPlaceTupleOutput(out, p.dim(0).extent());
    ConstrainNormsInputs(gscale, norms, 3, lr, momentum, dampening, weight_decay, nesterov,
                         first_step, trust_mode, max_unorm, trust_coefficient, eps);
    if (auto_schedule) return;
    // In place: every element must be computed exactly once, so tails are GuardWithIf (never
    // ShiftInwards, which recomputes overlapping elements from already-updated inputs), and
    // every input is loaded before p' and m' are stored.
    ScheduleInPlaceElementwise(out, vals_, get_target().has_gpu_feature(), chunk, vector_width,
                               gpu_threads, p.dim(0).extent(), tasks,
                               SteadyState(specialize_steady, first_step, nesterov));
  }

 private:
  Func vals_{"vals"};
};

// Momentum-first order, pass 1 (clip trust mode): reads p, g, m once; writes the new momentum
// in place AND reduces {Σp², Σu², Σg²} in ONE loop: per row of vector_width elements, the
// lanes' sums take the row's terms (old m), then the row's new momentum is stored (16 B/param
// of DRAM traffic for fp32, reads and writes interleaved as in a hand-written loop). Until
// 2026-11-26 a chunk was reduced in one loop and its momentum written in a second one over the
// cached chunk: 0.85-0.86 of the triad paired against 0.89-0.90 now, and 0.64 in
// high-bandwidth phases where a hand-written fused loop reaches 0.86 (a read-only loop runs
// well below one that also writes on this VM). Halide 14's compute_with will not fuse an RVar
// row loop with a pure Var loop, so both are updates over the same RDom (lane, row, chunk).
// Tree: per chunk of `chunk` elements, per lane, its rows in order; lanes; chunks.
template <DType D>
class LarsMomentum : public Generator<LarsMomentum<D>> {
 public:
  LARS_GENERATOR_ALIASES(LarsMomentum<D>);
  using T = typename Storage<D>::type;

  GeneratorParam<int> chunk{"chunk", 1 << 16};
  GeneratorParam<int> vector_width{"vector_width", 16};
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask
  GeneratorParam<int> gpu_items{"gpu_items", 8};

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<float, 1>> m{"m"};
  Input<Buffer<float, 1>> gscale{"gscale"};
  Input<float> momentum{"momentum"};
  Input<float> dampening{"dampening"};
  Input<float> weight_decay{"weight_decay"};
  Input<bool> nesterov{"nesterov"};
  Input<bool> first_step{"first_step"};
  Output<Buffer<float, 1>> m_out{"m_out"};  // in place over m
  Output<Buffer<float, 1>> norms{"norms"};  // [Σp², Σu², Σg²]

  void generate() {
    const int ch = chunk, vw = vector_width;
    if (vw < 1 || ch % vw != 0) throw std::invalid_argument("chunk must be a multiple of vector_width");
    const LarsScalars k{momentum, dampening, weight_decay, nesterov, first_step};
    Var x("x"), c("c"), l("l"), u("u");
    const Expr n = p.dim(0).extent(), full = n / ch, base = full * ch;
    std::vector<Expr> zeros(3, Expr(0.0f));
    lanes_(l) = Tuple(zeros);  // lane l % vw of chunk l / vw
    m_out(x) = undef<float>();
    // Stage 0: the full chunks (R.x lane, R.y row, R.z chunk). Stage 1: the last, partial
    // chunk's full rows (T.x lane, T.y row). Stage 2: its last, partial row (U.x lane). No
    // element is touched past the end, so no stage needs a test or a masked access.
    const Expr tail_rows = (n - base) / vw, last = base + tail_rows * vw;
    R_ = RDom(0, vw, 0, ch / vw, 0, full, "R");
    T_ = RDom(0, vw, 0, tail_rows, "T");
    U_ = RDom(0, n - last, "U");
    for (const auto& [xe, lane] : {std::pair{R_.z * ch + R_.y * vw + R_.x, R_.z * vw + R_.x},
                                   {base + T_.y * vw + T_.x, full * vw + T_.x},
                                   {last + U_.x, full * vw + U_.x}}) {
      Expr pv = ToF32(D, p(xe)), gv = ToF32(D, g(xe));
      LarsElement e = LarsStepElement(k, pv, gv, m(xe), gscale(0), 1.0f);
      const Expr terms[3] = {pv * pv, e.u * e.u, gv * gv};
      std::vector<Expr> sums;
      for (int i = 0; i < 3; ++i) sums.push_back(strict_float(lanes_(lane)[i] + terms[i]));
      lanes_(lane) = Tuple(sums);
      m_out(xe) = e.m_new;
    }
    RDom rl(0, vw, "rl");
    std::vector<Expr> by_lane;
    per_chunk_(u) = Tuple(zeros);
    for (int i = 0; i < 3; ++i) {
      by_lane.push_back(strict_float(per_chunk_(u)[i] + lanes_(u * vw + rl)[i]));
    }
    per_chunk_(u) = Tuple(by_lane);
    RDom ru(0, (n + (ch - 1)) / ch, "ru");
    DefineSums(acc_, {per_chunk_(ru)[0], per_chunk_(ru)[1], per_chunk_(ru)[2]});
    norms(c) = select(c == 0, acc_()[0], c == 1, acc_()[1], acc_()[2]);
  }

  void schedule() {
    ConstrainSameLength(p, g, m, m_out);
    ConstrainNormsIO(norms, 3, gscale, momentum, dampening, weight_decay, nesterov, first_step);
    if (auto_schedule) return;
    if (get_target().has_gpu_feature()) {
      throw std::invalid_argument(
          "lars_momentum is CPU-only; GPU steps use lars_norms + lars_update");
    }
    const Expr per_task = ChunksPerTask(p.dim(0).extent(), chunk, tasks);
    RVar zo("zo"), zi("zi");
    lanes_.compute_root();
    per_chunk_.compute_root();
    // Race-free by construction: (R.x, R.y, R.z) -> element R.z*ch + R.y*vw + R.x is one-to-one,
    // and lane R.z*vw + R.x belongs to one chunk, whose rows R.y accumulate in order in the
    // serial row loop. Halide cannot prove it for these scatters, hence allow_race_conditions.
    for (Stage s : {lanes_.update(0), m_out.update(0)}) {
      s.allow_race_conditions().vectorize(R_.x).split(R_.z, zo, zi, per_task,
                                                      TailStrategy::GuardWithIf);
      s.parallel(zo);
    }
    m_out.update(0).compute_with(lanes_.update(0), R_.y);
    for (Stage s : {lanes_.update(1), m_out.update(1)}) s.allow_race_conditions().vectorize(T_.x);
    m_out.update(1).compute_with(lanes_.update(1), T_.y);
    lanes_.update(2).unscheduled();  // scalar: fewer than vector_width elements
    m_out.update(2).compute_with(lanes_.update(2), U_.x);
  }

 private:
  RDom R_, T_, U_;
  Func lanes_{"lanes"}, per_chunk_{"per_chunk"}, acc_{"acc"};
};

// Momentum-first order, pass 2: p -= lr * scale * u with u = m' (or d + momentum*m' with
// nesterov, which also reads g). Reads p and m' (12 B/param), writes p in place.
template <DType D>
class LarsApply : public Generator<LarsApply<D>> {
 public:
  LARS_GENERATOR_ALIASES(LarsApply<D>);
  using T = typename Storage<D>::type;

  GeneratorParam<int> chunk{"chunk", 1 << 16};
  GeneratorParam<int> vector_width{"vector_width", 16};
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<float, 1>> m{"m"};  // the new momentum (pass 1's m_out)
  Input<Buffer<float, 1>> gscale{"gscale"};
  Input<Buffer<float, 1>> norms{"norms"};
  Input<float> lr{"lr"};
  Input<float> momentum{"momentum"};
  Input<float> weight_decay{"weight_decay"};
  Input<bool> nesterov{"nesterov"};
  Input<float> max_unorm{"max_unorm"};
  Output<Buffer<T, 1>> p_out{"p_out"};  // in place over p

  void generate() {
    Var x("x");
    // The step math of lars_math (LarsStepElement's d and u, ApplyUpdate), with m = pass 1's m'.
    const LarsScalars k{momentum, Expr(), weight_decay, nesterov, Expr()};
    Expr scale = ClipTrustScale(sqrt(norms(0)), sqrt(norms(1)), max_unorm);
    Expr pv = ToF32(D, p(x));
    Expr u = UpdateDirection(k, DecayedGradient(k, pv, ToF32(D, g(x)), gscale(0)), m(x));
    p_out(x) = FromF32(D, ApplyUpdate(pv, StepSize(lr, scale), u));
  }

  void schedule() {
    ConstrainSameLength(p, g, m, p_out);
    ConstrainNormsInputs(gscale, norms, 3, lr, momentum, weight_decay, nesterov, max_unorm);
    if (auto_schedule) return;
    Var x = p_out.args()[0], xo("xo"), xi("xi"), xv("xv");
    if (get_target().has_gpu_feature()) {
      p_out.gpu_tile(x, xo, xi, gpu_threads, TailStrategy::GuardWithIf);
    } else {
      SplitElementwiseCpu(p_out, chunk, vector_width, p.dim(0).extent(), tasks, xv);
    }
    // Without nesterov g is not read at all (12 B/param instead of 16). Specialized AFTER the
    // schedule: a specialization copies the schedule as it stands when it is made, so made
    // first (as it was until 2026-11-26) the common !nesterov case ran as one serial scalar
    // loop (0.56 of the triad where lars_update reaches 1.0).
    p_out.specialize(!nesterov);
  }
};

}  // namespace
}  // namespace generators
}  // namespace halide_lars

using halide_lars::generators::DType;
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsNorms<DType::kF32>, lars_norms_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsNorms<DType::kF16>, lars_norms_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsNorms<DType::kBF16>, lars_norms_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsUpdate<DType::kF32>, lars_update_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsUpdate<DType::kF16>, lars_update_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsUpdate<DType::kBF16>, lars_update_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsMomentum<DType::kF32>, lars_momentum_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsMomentum<DType::kF16>, lars_momentum_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsMomentum<DType::kBF16>, lars_momentum_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsApply<DType::kF32>, lars_apply_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsApply<DType::kF16>, lars_apply_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsApply<DType::kBF16>, lars_apply_bf16)
