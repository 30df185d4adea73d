// The multi-tensor fp32-state LARS step: every tensor of one (dtype, device) group in
// one flat buffer, stepped by TWO pipelines per call whatever the tensor count (the per-tensor
// path runs two per tensor). Tables: base/kernel_abi.h.
//   lars_flat_norms_<dtype>:  per-tensor {Σp², Σu², Σg²} by a segmented reduction: chunk c
//       (of one tensor) is reduced into `lanes` lane partials, those are added in lane order,
//       and a tensor's chunk partials in chunk order -- exactly the tree lars_norms builds for
//       one tensor with the same chunk and lane count, so the flat set step is bit-identical to
//       the per-tensor one.
//   lars_flat_update_<dtype>: p and m in place (one loop nest, Tuple output); row x/64 of the
//       flat set names the tensor, whose per-tensor coefficients (trust ratio, lr * trust scale,
//       whether it is stepped) are computed once per tensor and gathered per row.
// Both take crops: the norms of tensors [t0, t1) from chunks [c0, c1) (out and chunks with
// mins 3*t0 and 3*c0), the update of elements [64*base_row, 64*base_row + extent) (p, g, m
// and out are that slice, indexed from 0: a known-aligned origin keeps the row lookup one
// scalar load per vector), so the CPU runtime can step a flat set segment by segment while each
// segment is still in cache.
// The same LarsStepElement / trust expressions as lars_update: identical per-element rounding.
#include "generators/flat_common.h"

namespace halide_lars {
namespace generators {
namespace {

using namespace Halide;

template <DType D>
class LarsFlatNorms : public Generator<LarsFlatNorms<D>> {
 public:
  LARS_GENERATOR_ALIASES(LarsFlatNorms<D>);
  using T = typename Storage<D>::type;

  // Must equal lars_norms' (the reduction tree is defined by them); the chunk is the runtime's
  // kFlatChunk (its chunk tables), not a GeneratorParam.
  GeneratorParam<int> vector_width{"vector_width", kNormsCpuLanes};
  GeneratorParam<int> gpu_threads{"gpu_threads", kNormsGpuLanes};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask

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
    DefineFlatNorms<D>(f_, out, p, g, [&](const Expr& x) { return m(x); }, opts, tensors, chunks,
                        max_chunks, lanes);
  }

  void schedule() {
    ConstrainSameLength(p, g, m);
    ConstrainFlatNormsTables(opts, tensors, chunks, out, max_chunks);
    if (auto_schedule) return;
    ScheduleFlatNorms(f_, out, get_target().has_gpu_feature(), tasks);
  }

 private:
  FlatNormsFuncs f_;
};

template <DType D>
class LarsFlatUpdate : public Generator<LarsFlatUpdate<D>> {
 public:
  LARS_GENERATOR_ALIASES(LarsFlatUpdate<D>);
  using T = typename Storage<D>::type;

  GeneratorParam<int> chunk{"chunk", 1 << 14};
  GeneratorParam<int> vector_width{"vector_width", 16};
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<float, 1>> m{"m"};
  Input<Buffer<float, 1>> opts{"opts"};
  Input<Buffer<int32_t, 1>> tensors{"tensors"};
  Input<Buffer<int32_t, 1>> rows{"rows"};
  Input<Buffer<float, 1>> norms{"norms"};  // [3T] from lars_flat_norms
  Input<int32_t> base_row{"base_row"};      // element 0 of p, g, m is flat set element 64*base_row
  Output<Func> out{"out", {type_of<T>(), Float(32)}, 1};  // {p', m'}, in place over {p, m}

  void generate() {
    Var x("x"), t("t");
    Expr ntensors = opts.dim(0).extent() / kFlatOpts;
    DefineFlatCoefficients(coef_, opts, norms);
    Expr row_t = rows(clamp(base_row + x / kFlatAlign, 0, rows.dim(0).extent() - 1));
    Expr tx = clamp(row_t, 0, ntensors - 1);
    FlatTensorOptions o = LoadOptions(opts, tx);
    Expr offset = tensors(kFlatTensorCols * tx + kFlatOffset);
    Expr numel = tensors(kFlatTensorCols * tx + kFlatNumel);
    Expr ax = base_row * kFlatAlign + x;  // the flat set index
    Expr valid = row_t >= 0 && ax >= offset && ax < offset + numel && coef_(2, tx) == 1.0f;
    Expr pv = ToF32(D, p(x));
    LarsElement e = LarsStepElement({o.momentum, o.dampening, o.weight_decay, o.nesterov,
                                     o.first_step},
                                    pv, ToF32(D, g(x)), m(x), o.gscale, coef_(0, tx),
                                    coef_(3, tx));
    vals_(x) = Tuple(select(valid, FromF32(D, ApplyUpdate(pv, coef_(1, tx), e.u)), p(x)),
                     select(valid, e.m_new, m(x)));
    out(x) = Tuple(vals_(x)[0], vals_(x)[1]);
  }

  void schedule() {
    ConstrainSameLength(p, g, m);
    ConstrainInPlaceTupleOutput(out, p.dim(0).extent());
    ConstrainFlatUpdateTables(opts, tensors, rows, norms, base_row);
    if (auto_schedule) return;
    const bool gpu = get_target().has_gpu_feature();
    // CPU: the coefficients of all tensors first (a few hundred scalars); GPU: per thread, so
    // the update stays one kernel.
    // CPU: per vector (row-level variants -- a row loop with the vectors unrolled, per-row
    // values computed once -- measured 1.1-3.4x slower: guarded three-level splits scalarize).
    if (!gpu) coef_.compute_root();
    ScheduleInPlaceElementwise(out, vals_, gpu, chunk, vector_width, gpu_threads,
                               p.dim(0).extent(), tasks);
  }

 private:
  Func vals_{"vals"}, coef_{"coef"};
};

// Blockwise 8-bit state in a flat set: tensor offsets are multiples of the block size B, so
// quantization blocks never straddle tensors. Norms: the same segmented tree with m dequantized
// from codes and absmax (block x / B of the flat set). Update: lars8bit_update's per-block loop,
// with the block's tensor, options and coefficients from the tables; elements of a tensor's last
// block past its end count as p = g = 0 and the zero code (as lars8bit_update's boundary), and
// are not written; blocks of tensors not stepped keep p, codes and absmax.
template <DType D>
class Lars8bitFlatNorms : public Generator<Lars8bitFlatNorms<D>> {
 public:
  LARS_GENERATOR_ALIASES(Lars8bitFlatNorms<D>);
  // CPU: decode codes arithmetically (no gather; faster than the table); GPUs read the table.
  GeneratorParam<bool> decode_table_free{"decode_table_free", true};
  using T = typename Storage<D>::type;

  GeneratorParam<int> block{"block", 256};
  // Must equal lars8bit_norms' (the reduction tree is defined by them).
  GeneratorParam<int> vector_width{"vector_width", kNormsCpuLanes};
  GeneratorParam<int> gpu_threads{"gpu_threads", kNormsGpuLanes};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<uint8_t, 1>> codes{"codes"};
  Input<Buffer<float, 1>> absmax{"absmax"};
  Input<Buffer<float, 1>> code{"code"};
  Input<Buffer<float, 1>> opts{"opts"};
  Input<Buffer<int32_t, 1>> tensors{"tensors"};
  Input<Buffer<int32_t, 1>> chunks{"chunks"};
  Input<int32_t> max_chunks{"max_chunks"};
  Output<Buffer<float, 1>> out{"out"};  // [3T]

  void generate() {
    const bool tf = TableFree(get_target(), decode_table_free);
    const int lanes = get_target().has_gpu_feature() ? int(gpu_threads) : int(vector_width);
    const int B = block;
    DefineFlatNorms<D>(
        f_, out, p, g,
        [&](const Expr& x) { return DecodeCode(codes(x), code, tf) * absmax(x / B); }, opts,
        tensors, chunks, max_chunks, lanes);
  }

  void schedule() {
    ConstrainBlockState(p, g, codes, absmax, block);
    ConstrainCodebook(code);
    ConstrainFlatNormsTables(opts, tensors, chunks, out, max_chunks);
    if (auto_schedule) return;
    ScheduleFlatNorms(f_, out, get_target().has_gpu_feature(), tasks);
  }

 private:
  FlatNormsFuncs f_;
};

template <DType D>
class Lars8bitFlatUpdate : public Generator<Lars8bitFlatUpdate<D>> {
 public:
  LARS_GENERATOR_ALIASES(Lars8bitFlatUpdate<D>);
  // CPU: decode codes arithmetically (no gather; faster), quantize through the bucket table
  // (the exact table-free quantizer is bit-identical but slower here: common.h); GPUs read tables.
  GeneratorParam<bool> decode_table_free{"decode_table_free", true};
  GeneratorParam<bool> quantize_table_free{"quantize_table_free", false};
  using T = typename Storage<D>::type;

  GeneratorParam<int> block{"block", 256};
  GeneratorParam<int> blocks_per_task{"blocks_per_task", 64};  // CPU: the least per task
  GeneratorParam<int> vector_width{"vector_width", 8};
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<uint8_t, 1>> codes{"codes"};
  Input<Buffer<float, 1>> absmax{"absmax"};
  Input<Buffer<float, 1>> code{"code"};
  Input<Buffer<float, 1>> mids{"mids"};
  Input<Buffer<uint32_t, 1>> lut{"lut"};
  Input<Buffer<float, 1>> opts{"opts"};
  Input<Buffer<int32_t, 1>> tensors{"tensors"};
  Input<Buffer<int32_t, 1>> rows{"rows"};
  Input<Buffer<float, 1>> norms{"norms"};
  Input<int32_t> base_row{"base_row"};  // element 0 of p, g, codes is flat set element 64*base_row
  Output<Func> out{"out", {type_of<T>(), UInt(8)}, 1};  // {p', codes'} in place over {p, codes}
  Output<Buffer<float, 1>> absmax_out{"absmax_out"};     // in place over absmax

  void generate() {
    const bool tf = TableFree(get_target(), decode_table_free);
    const bool tq = TableFree(get_target(), quantize_table_free);
    const int B = block;
    Var i("i"), b("b");
    DefineFlatCoefficients(coef_, opts, norms);
    Expr ntensors = opts.dim(0).extent() / kFlatOpts;
    auto tensor_of = [&](const Expr& x) {  // the table row of local element x (-1: none)
      return rows(clamp(base_row + x / kFlatAlign, 0, rows.dim(0).extent() - 1));
    };
    // A block is one tensor's (offsets are multiples of B): its table row, once per block.
    blk_(b) = tensor_of(b * B);
    // Element x of the flat set slice with its block's tensor, options and coefficients; written
    // over (j, b) for the step values, so the per-block lookups are invariant in the j loop.
    struct Element {
      Expr tx, inside, live;
      LarsElement e;
    };
    Func pb = BoundaryConditions::constant_exterior(p, cast<T>(0));
    Func gb = BoundaryConditions::constant_exterior(g, cast<T>(0));
    Func cb = BoundaryConditions::constant_exterior(codes, cast<uint8_t>(127));
    auto element = [&](const Expr& x, const Expr& blk) {
      Element el;
      Expr row_t = blk_(blk);
      el.tx = clamp(row_t, 0, ntensors - 1);
      FlatTensorOptions o = LoadOptions(opts, el.tx);
      Expr offset = tensors(kFlatTensorCols * el.tx + kFlatOffset);
      Expr numel = tensors(kFlatTensorCols * el.tx + kFlatNumel);
      Expr ax = base_row * kFlatAlign + x;
      el.inside = row_t >= 0 && ax >= offset && ax < offset + numel;
      el.live = el.inside && coef_(2, el.tx) == 1.0f;
      Expr cin = select(el.inside, cb(x), cast<uint8_t>(127));
      Expr m_old = DecodeCode(cin, code, tf) * absmax(clamp(blk, 0, absmax.dim(0).extent() - 1));
      el.e = LarsStepElement({o.momentum, o.dampening, o.weight_decay, o.nesterov, o.first_step},
                             select(el.inside, ToF32(D, pb(x)), 0.0f),
                             select(el.inside, ToF32(D, gb(x)), 0.0f), m_old, o.gscale,
                             coef_(0, el.tx), coef_(3, el.tx));
      return el;
    };
    Var j("j");
    Element ej = element(b * B + j, b);
    step_(j, b) = Tuple(ej.e.m_new, ej.e.u);
    r_ = RDom(0, B, "r");
    amax_(b) = 0.0f;
    amax_(b) = max(amax_(b), abs(step_(r_, b)[0]));
    Expr bi = i / B, ji = i % B;
    Element ei = element(i, bi);
    Expr q = QuantizeIndex(NormalizeForQuantize(step_(ji, bi)[0], amax_(bi)), mids, code, lut, tq);
    out(i) = Tuple(select(ei.live, FromF32(D, ApplyUpdate(ToF32(D, p(i)), coef_(1, ei.tx),
                                                          step_(ji, bi)[1])),
                          p(i)),
                   select(ei.live, q, codes(i)));
    // A block is rewritten when its tensor is stepped.
    Expr bt = blk_(i);
    Expr block_live = bt >= 0 && coef_(2, clamp(bt, 0, ntensors - 1)) == 1.0f;
    absmax_out(i) = select(block_live, amax_(i), absmax(i));
  }

  void schedule() {
    const int B = block;
    ConstrainBlockState(p, g, codes, absmax, B);
    ConstrainCodebook(code, mids, lut);
    ConstrainFlatUpdateTables(opts, tensors, rows, norms, base_row);
    ConstrainInPlaceTupleOutput(out, p.dim(0).extent());
    ConstrainAbsmaxOutput(absmax_out, absmax, B);
    if (auto_schedule) return;
    const bool gpu = get_target().has_gpu_feature();
    if (!gpu) {
      coef_.compute_root();
      blk_.compute_root();  // one int per block
    }
    ScheduleBlockwiseUpdate(out, absmax_out, step_, amax_, r_, gpu, B, gpu_threads, vector_width,
                            blocks_per_task, absmax.dim(0).extent(), tasks);
  }

 private:
  RDom r_;
  Func step_{"step"}, amax_{"amax"}, coef_{"coef"}, blk_{"blk"};
};

}  // namespace
}  // namespace generators
}  // namespace halide_lars

using halide_lars::generators::DType;
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsFlatNorms<DType::kF32>, lars_flat_norms_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsFlatNorms<DType::kF16>, lars_flat_norms_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsFlatNorms<DType::kBF16>, lars_flat_norms_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsFlatUpdate<DType::kF32>, lars_flat_update_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsFlatUpdate<DType::kF16>, lars_flat_update_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::LarsFlatUpdate<DType::kBF16>, lars_flat_update_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitFlatNorms<DType::kF32>, lars8bit_flat_norms_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitFlatNorms<DType::kF16>, lars8bit_flat_norms_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitFlatNorms<DType::kBF16>, lars8bit_flat_norms_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitFlatUpdate<DType::kF32>, lars8bit_flat_update_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitFlatUpdate<DType::kF16>, lars8bit_flat_update_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitFlatUpdate<DType::kBF16>, lars8bit_flat_update_bf16)
