// The generators' shared schedules: parallel task sizing, the elementwise and in-place loop nests,
// the deterministic reduction trees (their fixed combine order is what keeps results bit-identical
// across per-tensor, flat-set and threaded runs) and the blockwise 8-bit update.
#ifndef HALIDE_LARS_GENERATORS_SCHEDULES_H_
#define HALIDE_LARS_GENERATORS_SCHEDULES_H_

#include <vector>

#include "Halide.h"
#include "base/kernel_abi.h"

namespace halide_lars {
namespace generators {

// CPU parallel loops run as about `tasks` long contiguous ranges of work units (elements,
// chunks, blocks) instead of many short ones handed out in turn: UnitsPerTask = max(min_units,
// ceil(units / tasks)). Measured on the 2-core EPYC, 32M floats in place: an OpenMP triad
// streams 88-91 GB/s in 32K-element dynamic tasks, 110-120 in 1M+ tasks or two halves;
// lars_update 61 -> 80-84 GB/s with 2M-element tasks (same process, interleaved runs). Only
// which thread computes what changes, never a reduction tree: results are bit-identical for any
// value. `tasks` is a GeneratorParam of every CPU kernel (tuned by tools/autotune); a few
// times the core count keeps big machines busy.
constexpr int kDefaultTasks = 16;
Halide::Expr UnitsPerTask(const Halide::Expr& units, int tasks, const Halide::Expr& min_units = 1);
// Chunks of `chunk` elements per task of a loop over n elements: UnitsPerTask(ceil(n / chunk)).
Halide::Expr ChunksPerTask(const Halide::Expr& n, int chunk, int tasks);

// The CPU loop nest of an elementwise Func f(x) over n elements: vectors of `vector_width`
// (loop `xv`, for compute_at), chunks of `chunk` elements made of whole vectors, and ~`tasks`
// parallel ranges of chunks (ChunksPerTask). Vectors are split before chunks so that a vector
// slot past the end is skipped by one test (chunks of elements split into vectors ran every
// slot of the last chunk with masked stores past the end: 0.25 ms for a 64-element tensor when
// that memory is unmapped). Tails: GuardWithIf.
void SplitElementwiseCpu(Halide::Func f, int chunk, int vector_width, const Halide::Expr& n,
                         int tasks, const Halide::Var& xv);

// In-place Tuple outputs ({p', m'} over {p, m}): Halide assumes outputs do not alias inputs,
// so a store of element 0 may precede a re-load of an input for element 1 (seen: bf16 p
// re-loaded after p' was stored). The values are therefore computed into `vals` first, one
// vector (CPU) or one thread's element (GPU) at a time, and only then stored by `out`.
// `vals` must be a Func with out's Var and out(x) = vals(x) elementwise. Tails: GuardWithIf.
// CPU: tasks of whole `chunk`s (UnitsPerTask over the n / chunk chunks of the n elements).
// CPU: SplitElementwiseCpu's loop nest, `vals` one vector at a time.
void ScheduleInPlaceElementwise(Halide::Func out, Halide::Func vals, bool gpu, int chunk,
                                int vector_width, int gpu_threads, const Halide::Expr& n,
                                int tasks, const Halide::Expr& steady = Halide::Expr());

// Σ over the reduction of each of `terms`, as one 0-d Tuple reduction (fp32) rfactor can split:
// acc() = {0...}; acc() = {acc()[i] + terms[i]}.
void DefineSums(Halide::Func acc, const std::vector<Halide::Expr>& terms);

// The norms of a LARS step from its per-element p, g and u (fp32): `acc` = {Σp², Σu², Σg²} as
// DefineSums over the reduction the expressions use, and out(c) = acc()[c] (lars_norms,
// lars8bit_norms).
void DefineLarsNorms(Halide::Func acc, Halide::Func out, const Halide::Expr& p,
                     const Halide::Expr& g, const Halide::Expr& u);

// The reduction tree of lars_norms and lars_flat_norms (they must agree for the flat set step to
// be bit-identical to the per-tensor one): chunks of kNormsChunk elements, each summed in
// `lanes` interleaved lane partials (element j of a chunk goes to lane j % lanes), lanes added
// in order, chunks added in order. Lanes: the vector width on CPUs, threads per block on GPUs.
constexpr int kNormsChunk = kFlatChunk;
constexpr int kNormsCpuLanes = 16;
constexpr int kNormsGpuLanes = 256;

// That tree for a 0-d Tuple reduction `acc` over the single-dimension RDom `r`. CPU: as
// ScheduleReductionCpu. GPU: chunk -> one block, lane -> one thread (coalesced), lanes added
// by the block, chunk partials added in order by a single thread.
// `steady` (CPU): a condition under which the per-element math simplifies (e.g. !first_step &&
// !nesterov); the lane loop gets a specialized copy for it (a loop without the selects: the
// generic one spills vector registers on AVX2). Results are the same either way.
void ScheduleChunkLaneReduction(Halide::Func acc, const Halide::RDom& r, bool gpu, int chunk,
                                int lanes, int tasks,
                                const Halide::Expr& steady = Halide::Expr());

// The `steady` condition of the CPU schedules below (GeneratorParam specialize_steady):
// !first_step && !nesterov when `specialize` is on, else undefined (no specialized copy).
inline Halide::Expr SteadyState(bool specialize, const Halide::Expr& first_step,
                                const Halide::Expr& nesterov) {
  return specialize ? !first_step && !nesterov : Halide::Expr();
}

// The schedule of a norms kernel on that tree (lars_norms, lars8bit_norms): `acc` reduced by
// ScheduleChunkLaneReduction in chunks of kNormsChunk, with `vector_width` lanes on CPUs and
// `gpu_threads` on GPUs, and its small output `out` (gathered from acc) on one GPU thread.
void ScheduleNormsOutput(Halide::Func acc, const Halide::RDom& r, Halide::Func out, bool gpu,
                         int vector_width, int gpu_threads, int tasks,
                         const Halide::Expr& steady = Halide::Expr());

// Deterministic two-level reduction schedules for a 0-d Tuple reduction `acc` over the
// single-dimension RDom `r` (fixed-order combines, no atomics: results depend only on n).
//   CPU: rfactor into chunks of `chunk` elements (a multiple of `lanes`), each into `lanes`
//        vector lanes; the chunks run in parallel as ChunksPerTask contiguous chunks per task.
//        The split is lanes first, then rows: the guard of a row past the end skips the row.
//        (Chunks of elements split into rows ran every row slot of the last chunk with masked
//        vector loads past the end -- on this AMD CPU masked loads of unmapped memory are
//        microcode-assisted: 1.4 ms per call for a 64-element tensor, 40 ms per step for 161
//        such tensors.) Returns the per-chunk Func, whose update's chunk loops are named uo
//        (tasks, parallel) and ui, for a caller that fuses its own loop with it (compute_with).
//   GPU: rfactor into blocks of threads*items elements, each into `threads` coalesced per-thread
//        partials combined in shared memory; then block partials reduced by one block of
//        `threads` threads and a last single-thread combine.
Halide::Func ScheduleReductionCpu(Halide::Func acc, const Halide::RDom& r, int chunk, int lanes,
                                  int tasks, const Halide::Expr& steady = Halide::Expr());
void ScheduleReductionGpu(Halide::Func acc, const Halide::RDom& r, int threads, int items);

// The schedule of a "norms" kernel: `acc` (a 0-d Tuple reduction over r) reduced with the GPU or
// CPU tree above, and its small output `out` (gathered from acc) on one GPU thread.
void ScheduleNormsKernel(Halide::Func acc, const Halide::RDom& r, Halide::Func out, bool gpu,
                         int chunk, int lanes, int gpu_threads, int gpu_items, int tasks);

// The schedule of a blockwise 8-bit update (lars8bit_update, lars8bit_flat_update): `out`
// ({p', codes'} over i) and `absmax_out` (over blocks) split alike so compute_with fuses their
// block loops (it matches loops by name): per block of B, the block's step values (`step`) and
// absmax (`amax`, a max over `r` in [0, B)) are computed into scratch, then p and codes are
// written, then its absmax. CPU: UnitsPerTask(nblocks, tasks, blocks_per_task) blocks per
// parallel task, vectors of `vector_width`; GPU: one block per quantization block. CPU, with
// `steady` defined: a select-free copy of the step loop when it holds (see specialize_steady).
void ScheduleBlockwiseUpdate(Halide::Func out, Halide::Func absmax_out, Halide::Func step,
                             Halide::Func amax, const Halide::RDom& r, bool gpu, int B,
                             int gpu_threads, int vector_width, int blocks_per_task,
                             const Halide::Expr& nblocks, int tasks,
                             const Halide::Expr& steady = Halide::Expr());

}  // namespace generators
}  // namespace halide_lars

#endif  // HALIDE_LARS_GENERATORS_SCHEDULES_H_
