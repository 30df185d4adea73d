#include "generators/schedules.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace halide_lars {
namespace generators {

using namespace Halide;

void ScheduleNormsOutput(Func acc, const RDom& r, Func out, bool gpu, int vector_width,
                         int gpu_threads, int tasks, const Expr& steady) {
  ScheduleChunkLaneReduction(acc, r, gpu, kNormsChunk, gpu ? gpu_threads : vector_width, tasks,
                             steady);
  if (gpu) out.gpu_single_thread();
}

void ScheduleNormsKernel(Func acc, const RDom& r, Func out, bool gpu, int chunk, int lanes,
                         int gpu_threads, int gpu_items, int tasks) {
  if (gpu) {
    ScheduleReductionGpu(acc, r, gpu_threads, gpu_items);
    out.gpu_single_thread();
  } else {
    ScheduleReductionCpu(acc, r, chunk, lanes, tasks);
  }
}

Expr UnitsPerTask(const Expr& units, int tasks, const Expr& min_units) {
  if (tasks < 1) throw std::invalid_argument("tasks must be >= 1");
  return max(min_units, (units + (tasks - 1)) / tasks);
}

Expr ChunksPerTask(const Expr& n, int chunk, int tasks) {
  return UnitsPerTask((n + (chunk - 1)) / chunk, tasks);
}

void SplitElementwiseCpu(Func f, int chunk, int vector_width, const Expr& n, int tasks,
                         const Var& xv) {
  Var x = f.args()[0], xo("xo"), xl("xl"), t("t");
  const int vw = vector_width, chunk_vectors = std::max(1, chunk / vw);
  f.split(x, xv, xl, vw, TailStrategy::GuardWithIf)
      .vectorize(xl)
      .split(xv, xo, xv, chunk_vectors, TailStrategy::GuardWithIf)
      .split(xo, t, xo, ChunksPerTask(n, chunk_vectors * vw, tasks), TailStrategy::GuardWithIf)
      .parallel(t);
}

void ScheduleInPlaceElementwise(Func out, Func vals, bool gpu, int chunk, int vector_width,
                                int gpu_threads, const Expr& n, int tasks, const Expr& steady) {
  Var x = out.args()[0], xo("xo"), xi("xi"), xv("xv");
  Var vx = vals.args()[0];
  if (gpu) {
    out.gpu_tile(x, xo, xi, gpu_threads, TailStrategy::GuardWithIf);
    vals.compute_at(out, xi);
    return;
  }
  // Constant inner splits (a non-constant one makes `vals` a heap allocation per vector); the
  // chunk loop is what is grouped into tasks.
  SplitElementwiseCpu(out, chunk, vector_width, n, tasks, xv);
  vals.compute_at(out, xv)
      .vectorize(vx, vector_width, TailStrategy::GuardWithIf)
      .bound_storage(vx, vector_width);  // one vector (the task split hides that from bounds)
  if (steady.defined()) vals.specialize(steady);
}

void DefineSums(Func acc, const std::vector<Expr>& terms) {
  std::vector<Expr> zeros(terms.size(), Expr(0.0f)), updates;
  acc() = Tuple(zeros);
  for (size_t i = 0; i < terms.size(); ++i) updates.push_back(strict_float(acc()[i] + terms[i]));
  acc() = Tuple(updates);
}

void DefineLarsNorms(Func acc, Func out, const Expr& p, const Expr& g, const Expr& u) {
  DefineSums(acc, {p * p, u * u, g * g});
  Var c("c");
  out(c) = select(c == 0, acc()[0], c == 1, acc()[1], acc()[2]);
}

Func ScheduleReductionCpu(Func acc, const RDom& r, int chunk, int lanes, int tasks,
                          const Expr& steady) {
  if (chunk % lanes != 0) throw std::invalid_argument("chunk must be a multiple of lanes");
  const int rows = chunk / lanes;
  RVar rv("rv"), rl("rl"), ro("ro"), ri("ri");
  Var u("u"), l("l"), uo("uo"), ui("ui");
  // Tails: RVar splits are GuardWithIf (never over-read), so any n works, including 0.
  Func per_chunk = acc.update()
                       .split(r.x, rv, rl, lanes, TailStrategy::GuardWithIf)
                       .split(rv, ro, ri, rows, TailStrategy::GuardWithIf)
                       .rfactor(ro, u);
  // rfactor the lanes BEFORE splitting u: splitting first makes rfactor add a serial u loop
  // around everything (every chunk's lanes recomputed per chunk).
  Func per_lane = per_chunk.update().rfactor(rl, l);
  per_chunk.compute_root()
      .update()
      .split(u, uo, ui, ChunksPerTask(r.x.extent(), chunk, tasks), TailStrategy::GuardWithIf)
      .parallel(uo);
  per_lane.compute_at(per_chunk, ui).vectorize(l).update().vectorize(l);
  if (steady.defined()) per_lane.update().specialize(steady);
  return per_chunk;
}

void ScheduleChunkLaneReduction(Func acc, const RDom& r, bool gpu, int chunk, int lanes,
                                int tasks, const Expr& steady) {
  if (!gpu) {
    ScheduleReductionCpu(acc, r, chunk, lanes, tasks, steady);
    return;
  }
  RVar ro("ro"), ri("ri"), rio("rio"), rii("rii");
  Var u("u"), l("l");
  Func per_chunk = acc.update().split(r.x, ro, ri, chunk).rfactor(ro, u);
  Func per_lane = per_chunk.update().split(ri, rio, rii, lanes).rfactor(rii, l);
  per_chunk.compute_root().gpu_blocks(u).update().gpu_blocks(u);
  per_lane.compute_at(per_chunk, u).gpu_threads(l).update().gpu_threads(l);
  acc.compute_root().gpu_single_thread().update().gpu_single_thread();
}

void ScheduleReductionGpu(Func acc, const RDom& r, int threads, int items) {
  RVar ro("ro"), ri("ri"), rio("rio"), rii("rii"), so("so"), si("si");
  Var u("u"), t("t"), w("w"), wb("wb"), wt("wt");
  // Level 1: block u reduces threads*items elements; thread t reads t, t+threads, ... (coalesced).
  Func per_block = acc.update().split(r.x, ro, ri, threads * items).rfactor(ro, u);
  Func per_thread = per_block.update().split(ri, rio, rii, threads).rfactor(rii, t);
  per_block.compute_root().gpu_blocks(u).update().gpu_blocks(u);
  per_thread.compute_at(per_block, u).gpu_threads(t).update().gpu_threads(t);
  // Level 2: one block of `threads` threads folds the block partials (strided, coalesced).
  Func folded = acc.update().split(ro, so, si, threads).rfactor(si, w);
  folded.compute_root()
      .split(w, wb, wt, threads)
      .gpu_blocks(wb)
      .gpu_threads(wt)
      .update()
      .split(w, wb, wt, threads)
      .gpu_blocks(wb)
      .gpu_threads(wt);
  // Level 3: a single thread adds the `threads` folded values in a fixed order.
  acc.compute_root().gpu_single_thread().update().gpu_single_thread();
}

void ScheduleBlockwiseUpdate(Func out, Func absmax_out, Func step, Func amax, const RDom& r,
                             bool gpu, int B, int gpu_threads, int vector_width,
                             int blocks_per_task, const Expr& nblocks, int tasks,
                             const Expr& steady) {
  Var i = out.args()[0], b("b"), bo("bo"), ii("ii"), io("io"), t("t"), unit("unit");
  if (gpu) {
    const int threads = std::min(B, gpu_threads);
    out.split(i, b, ii, B, TailStrategy::GuardWithIf)
        .split(ii, io, t, threads, TailStrategy::GuardWithIf)
        .gpu_blocks(b)
        .gpu_threads(t);
    Var si = step.args()[0], so("so"), st("st");
    step.compute_at(out, b).split(si, so, st, threads, TailStrategy::RoundUp).gpu_threads(st);
    amax.compute_at(out, b);
    absmax_out.split(i, b, unit, 1).gpu_blocks(b);
    absmax_out.compute_with(out, b);
    return;
  }
  const int vw = vector_width;
  const Expr per_task = UnitsPerTask(nblocks, tasks, blocks_per_task);
  out.split(i, b, ii, B, TailStrategy::GuardWithIf)
      .split(b, bo, b, per_task, TailStrategy::GuardWithIf)
      .vectorize(ii, vw, TailStrategy::GuardWithIf)
      .parallel(bo);
  // Per-block scratch on the stack (a heap allocation per 256-element block costs more than
  // the block's arithmetic).
  // bound_storage: with a non-constant task size (UnitsPerTask) bounds inference no longer sees
  // that a block's scratch is B elements, and the allocations went to the heap (halide_malloc
  // per block).
  step.compute_at(out, b)
      .vectorize(step.args()[0], vw)
      .store_in(MemoryType::Stack)
      .bound_storage(step.args()[0], B);
  if (steady.defined()) step.specialize(steady);  // after its schedule: the copy inherits it
  // The flat set's step is (j, block): one block per compute_at iteration.
  if (step.dimensions() == 2) step.bound_storage(step.args()[1], 1);
  amax.compute_at(out, b).store_in(MemoryType::Stack).bound_storage(amax.args()[0], 1);
  RVar ro("ro"), ri("ri");
  Var l("l");
  Func lanes = amax.update().split(r.x, ro, ri, vw).rfactor(ri, l);
  // The lanes are the innermost storage dimension: dense vector loads/stores.
  lanes.reorder_storage(l, lanes.args()[0]);
  lanes.compute_at(out, b)
      .store_in(MemoryType::Stack)
      .bound_storage(lanes.args()[0], 1)
      .vectorize(l)
      .update()
      .vectorize(l);
  absmax_out.split(i, b, unit, 1).split(b, bo, b, per_task, TailStrategy::GuardWithIf).parallel(bo);
  absmax_out.compute_with(out, b);
}

}  // namespace generators
}  // namespace halide_lars
