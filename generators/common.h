// Shared Halide helpers for the halide_lars generators (build time only; includes Halide.h).
#ifndef HALIDE_LARS_GENERATORS_COMMON_H_
#define HALIDE_LARS_GENERATORS_COMMON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "Halide.h"
#include "base/kernel_abi.h"

// Brings the Generator<Self> members templated generator classes use into scope (dependent
// base: unqualified Input/Output would otherwise name Halide's unrelated Halide::Output enum).
#define LARS_GENERATOR_ALIASES(Self)                     \
  using Base = Generator<Self>;                          \
  using Base::auto_schedule;                             \
  using Base::get_target;                                \
  template <typename T2>                                 \
  using Input = typename Base::template Input<T2>;       \
  template <typename T2>                                 \
  using Output = typename Base::template Output<T2>;     \
  template <typename T2>                                 \
  using GeneratorParam = typename Base::template GeneratorParam<T2>

namespace halide_lars {
namespace generators {

// The contract of a kernel's same-length tensors: dense, 1-D, starting at 0, every one with
// `first`'s extent (Halide checks it at run time); estimates of 2^24 for the autoscheduler.
template <typename First, typename... Rest>
void ConstrainSameLength(First& first, Rest&... rest) {
  first.dim(0).set_min(0).set_stride(1);
  first.set_estimates({{0, 1 << 24}});
  (rest.dim(0).set_min(0).set_stride(1).set_extent(first.dim(0).extent()), ...);
  (rest.set_estimates({{0, 1 << 24}}), ...);
}

// Estimates of scalar inputs for the autoschedulers (Adams2019 needs one for every scalar):
// typical values by input name (lr 0.1, momentum 0.9, weight_decay 1e-4, max_unorm 0.02,
// trust_coefficient 1e-3, eps 1e-8; anything else 0 / false).
float TypicalScalar(const std::string& name);
template <typename T>
void EstimateScalar(Halide::GeneratorInput<T>& in) {
  in.set_estimate(static_cast<T>(TypicalScalar(in.name())));
}
template <typename... Scalars>
void EstimateScalars(Scalars&... scalars) {
  (EstimateScalar(scalars), ...);
}

// Blockwise 8-bit state: p, g and codes of one length; absmax one float per block of `block`.
template <typename P, typename G, typename C, typename A>
void ConstrainBlockState(P& p, G& g, C& codes, A& absmax, int block) {
  ConstrainSameLength(p, g, codes);
  absmax.dim(0).set_min(0).set_stride(1).set_extent((p.dim(0).extent() + block - 1) / block);
  absmax.set_estimates({{0, (1 << 24) / block}});
}

// A small input of exactly `count` elements from 0 (the gradient scale [s], a step's norms, the
// 8-bit codebook tables), with the same estimate.
template <typename Buf>
void ConstrainFixedSize(Buf& buf, int count) {
  buf.dim(0).set_bounds(0, count);
  buf.set_estimates({{0, count}});
}

// The codebook inputs of the 8-bit kernels: `code` (256 sorted codes) and, for the kernels that
// quantize, `mids` (256 midpoints) and `lut` (65536 packed entries: QuantizeIndex).
template <typename Code>
void ConstrainCodebook(Code& code) {
  ConstrainFixedSize(code, 256);
}
template <typename Code, typename Mids, typename Lut>
void ConstrainCodebook(Code& code, Mids& mids, Lut& lut) {
  ConstrainFixedSize(code, 256);
  ConstrainFixedSize(mids, 256);
  ConstrainFixedSize(lut, 65536);
}

// The output of a norms kernel: `count` dense floats from 0 ([Σp², Σu², Σg²], ...).
template <typename Out>
void ConstrainNormsOutput(Out& out, int count) {
  out.dim(0).set_bounds(0, count).set_stride(1);
  out.set_estimates({{0, count}});
}

// The IO a LARS norms kernel (lars_norms, lars8bit_norms, lars8bit_tensor_norms, lars_momentum)
// has besides its tensors: its output of `count` floats (ConstrainNormsOutput), the gradient
// scale [s] and the estimates of the step's scalars.
template <typename Out, typename GScale, typename... Scalars>
void ConstrainNormsIO(Out& out, int count, GScale& gscale, Scalars&... scalars) {
  ConstrainNormsOutput(out, count);
  ConstrainFixedSize(gscale, 1);
  EstimateScalars(scalars...);
}

// The other side, in an update kernel (lars_update, lars_apply, lars8bit_update,
// lars8bit_tensor_update): the gradient scale [s] and the norms pass's `count` floats, read;
// and the estimates of the step's scalars.
template <typename GScale, typename Norms, typename... Scalars>
void ConstrainNormsInputs(GScale& gscale, Norms& norms, int count, Scalars&... scalars) {
  ConstrainFixedSize(gscale, 1);
  ConstrainFixedSize(norms, count);
  EstimateScalars(scalars...);
}

// A Tuple output written in place over same-length inputs ({p', m'} over {p, m}): its buffers
// dense, the first from 0 with extent n (Halide checks that the others share the first's min and
// extent); estimate 2^24.
template <typename Out>
void ConstrainInPlaceTupleOutput(Out& out, const Halide::Expr& n) {
  Halide::Func out_func = out;
  std::vector<Halide::OutputImageParam> outs = out_func.output_buffers();
  outs[0].dim(0).set_min(0).set_extent(n);
  for (Halide::OutputImageParam& o : outs) o.dim(0).set_stride(1);
  out.set_estimates({{0, 1 << 24}});
}

// The absmax a blockwise update writes in place: dense from 0, as long as the `absmax` input
// (one float per block of `block` elements).
template <typename Out, typename In>
void ConstrainAbsmaxOutput(Out& absmax_out, In& absmax, int block) {
  absmax_out.dim(0).set_min(0).set_stride(1).set_extent(absmax.dim(0).extent());
  absmax_out.set_estimates({{0, (1 << 24) / block}});
}

// Tensor element types. 16-bit floats travel as their uint16 bit patterns on every backend and
// are converted with the exact integer helpers below: OpenCL devices without cl_khr_fp16 (pocl,
// NVIDIA) cannot load `half`, and one storage type keeps the kernel ABI identical across CPU,
// CUDA and OpenCL.
enum class DType { kF32, kF16, kBF16 };

template <DType D>
struct Storage {
  using type = uint16_t;
};
template <>
struct Storage<DType::kF32> {
  using type = float;
};

// f16 bits (uint16) -> f32. Exact for all 65536 patterns: subnormals become normal f32 values
// (so GPU flush-to-zero cannot touch them), Inf and NaN payloads are kept.
Halide::Expr DecodeF16(const Halide::Expr& bits);
// bf16 bits (uint16) -> f32. Exact (a shift).
Halide::Expr DecodeBF16(const Halide::Expr& bits);
// f32 -> f16 bits, round to nearest even; overflow -> Inf, NaN -> quiet NaN, sign kept.
// f32 subnormal inputs round to (signed) zero, as they do under FTZ.
Halide::Expr EncodeF16(const Halide::Expr& f);
// f32 -> bf16 bits, round to nearest even; NaN -> quiet NaN.
Halide::Expr EncodeBF16(const Halide::Expr& f);

// Element of storage type `d` (as loaded) -> f32, and back (rounded to nearest even).
Halide::Expr ToF32(DType d, const Halide::Expr& e);
Halide::Expr FromF32(DType d, const Halide::Expr& f);

// Blockwise 8-bit quantization with a 256-entry sorted codebook (runtime/codebook.h).
// Index of the code nearest to v (a value already divided by its block's absmax): the number of
// midpoints strictly below v, then bitsandbytes' sign fix (if the code's sign bit differs from
// v's, step one code towards v's side, so a small non-zero momentum never flips sign).
// table_free (GeneratorParam quantize_table_free of the CPU kernels; off by default): vector
// arithmetic only, no division -- a linear estimate inside v's decade of the codebook settled by
// two exact midpoint compares (common.cc); bit-identical to the table for all 2^32 floats
// (//tests/kernels:quantize_exhaustive_test), but its ~100 vector operations per element make the 8-bit
// step slower than the scalarized lookup on the 2-core EPYC (0.24-0.30 of the triad vs 0.43-0.48).
// Otherwise ONE lookup: lut[top 16 bits of v] packs the number
// of midpoints below the bucket (bits 16-23), whether a midpoint lies inside it (bit 24) and that
// midpoint's low 16 bits (it shares v's top 16), so an integer compare finishes the count. At
// most one midpoint lies in any bucket (checked by //tests/kernels:quantize_test). `lut`: u32 x 65536;
// `mids` (f32 x 256) is not read (kept for the kernels' stable signature).
Halide::Expr QuantizeIndex(const Halide::Expr& v, const Halide::Func& mids, const Halide::Func& code,
                           const Halide::Func& lut, bool table_free);

// Whether a kernel for `target` computes the codebook (CPU, when its GeneratorParam says so).
inline bool TableFree(const Halide::Target& target, bool param) {
  return param && !target.has_gpu_feature();
}

// The code value of index c (uint8): code(c), or table_free (GeneratorParam decode_table_free of
// the CPU kernels, on by default: no gather, the 8-bit step 0.47 instead of 0.43 of the triad),
// one correctly rounded division (the codes are rationals N / (256 * 5^(7-i)): see common.cc).
Halide::Expr DecodeCode(const Halide::Expr& c, const Halide::Func& code, bool table_free);

// v = x / absmax as the quantizer wants it: +0 for an all-zero block (absmax 0) -- and for a
// block whose absmax is subnormal (< 2^-126, where 1/absmax overflows) -- so such a block
// quantizes to the zero code and dequantizes to exactly 0.
Halide::Expr NormalizeForQuantize(const Halide::Expr& x, const Halide::Expr& absmax);

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

#endif  // HALIDE_LARS_GENERATORS_COMMON_H_
