// LARS with blockwise 8-bit momentum (bitsandbytes' dynamic codebook, one fp32 absmax per block
// of B elements), same math as the fp32-state kernels (generators/lars_math.h):
//   lars8bit_norms_<dtype>:  reads p, g, codes, absmax; dequantizes m; reduces {Σp², Σu², Σg²}.
//   lars8bit_update_<dtype>: per block: dequantize m -> step -> new absmax -> re-quantize, writing
//                            p, codes and absmax in place. A block's old codes and absmax are
//                            read (into scratch) before that block writes them, and no block
//                            reads another's: one CPU loop iteration / one GPU block per block.
// Traffic for f32 params: 9 B/param for the norms pass, 14 for the update (23 in all).
#include "generators/common.h"
#include "generators/lars_math.h"

namespace halide_lars {
namespace generators {
namespace {

using namespace Halide;

template <DType D>
class Lars8bitNorms : public Generator<Lars8bitNorms<D>> {
 public:
  LARS_GENERATOR_ALIASES(Lars8bitNorms<D>);
  // CPU: decode codes arithmetically (no gather; faster than the table); GPUs read the table.
  GeneratorParam<bool> decode_table_free{"decode_table_free", true};
  using T = typename Storage<D>::type;

  GeneratorParam<int> block{"block", 256};
  // The reduction tree of lars_norms (kNormsChunk; lars8bit_flat_norms builds the same one).
  GeneratorParam<int> vector_width{"vector_width", kNormsCpuLanes};
  GeneratorParam<int> gpu_threads{"gpu_threads", kNormsGpuLanes};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask
  GeneratorParam<bool> specialize_steady{"specialize_steady", true};  // CPU: see common.h

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<uint8_t, 1>> codes{"codes"};
  Input<Buffer<float, 1>> absmax{"absmax"};
  Input<Buffer<float, 1>> code{"code"};
  Input<Buffer<float, 1>> gscale{"gscale"};
  Input<float> momentum{"momentum"};
  Input<float> dampening{"dampening"};
  Input<float> weight_decay{"weight_decay"};
  Input<bool> nesterov{"nesterov"};
  Input<bool> first_step{"first_step"};
  Output<Buffer<float, 1>> out{"out"};  // [Σp², Σu², Σg²]

  void generate() {
    const bool tf = TableFree(get_target(), decode_table_free);
    const int B = block;
    r_ = RDom(0, p.dim(0).extent(), "r");
    Expr pv = ToF32(D, p(r_)), gv = ToF32(D, g(r_));
    Expr m = DecodeCode(codes(r_), code, tf) * absmax(r_ / B);
    LarsElement e = LarsStepElement({momentum, dampening, weight_decay, nesterov, first_step},
                                    pv, gv, m, gscale(0), 1.0f);
    DefineLarsNorms(acc_, out, pv, gv, e.u);
  }

  void schedule() {
    ConstrainBlockState(p, g, codes, absmax, block);
    ConstrainCodebook(code);
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
class Lars8bitUpdate : public Generator<Lars8bitUpdate<D>> {
 public:
  LARS_GENERATOR_ALIASES(Lars8bitUpdate<D>);
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
  GeneratorParam<bool> specialize_steady{"specialize_steady", true};  // CPU: see common.h

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<uint8_t, 1>> codes{"codes"};
  Input<Buffer<float, 1>> absmax{"absmax"};
  Input<Buffer<float, 1>> code{"code"};
  Input<Buffer<float, 1>> mids{"mids"};
  Input<Buffer<uint32_t, 1>> lut{"lut"};
  Input<Buffer<float, 1>> gscale{"gscale"};
  Input<Buffer<float, 1>> norms{"norms"};
  Input<float> lr{"lr"};
  Input<float> momentum{"momentum"};
  Input<float> dampening{"dampening"};
  Input<float> weight_decay{"weight_decay"};
  Input<bool> nesterov{"nesterov"};
  Input<bool> first_step{"first_step"};
  Input<int> trust_mode{"trust_mode"};
  Input<float> max_unorm{"max_unorm"};
  Input<float> trust_coefficient{"trust_coefficient"};
  Input<float> eps{"eps"};
  Output<Func> out{"out", {type_of<T>(), UInt(8)}, 1};  // {p', codes'} in place over {p, codes}
  Output<Buffer<float, 1>> absmax_out{"absmax_out"};     // in place over absmax

  void generate() {
    const bool tf = TableFree(get_target(), decode_table_free);
    const bool tq = TableFree(get_target(), quantize_table_free);
    const int B = block;
    Var i("i");
    Expr s = gscale(0);
    TrustFactors trust = TrustFromNorms(norms(0), norms(1), norms(2), s, lr, trust_mode, weight_decay,
                                        trust_coefficient, eps, max_unorm);
    // Past the end of the tensor (the last block's padding): p = g = 0 and the zero code, so
    // the padding's new momentum is 0 and does not change the block's absmax.
    Func pb = BoundaryConditions::constant_exterior(p, cast<T>(0));
    Func gb = BoundaryConditions::constant_exterior(g, cast<T>(0));
    Func cb = BoundaryConditions::constant_exterior(codes, cast<uint8_t>(127));
    // The clamp keeps bounds inference of the fused GPU block loop (compute_with) within the
    // absmax buffer; i / B is always in range for the elements that are stored.
    Expr m_old = DecodeCode(cb(i), code, tf) * absmax(clamp(i / B, 0, absmax.dim(0).extent() - 1));
    LarsElement e = LarsStepElement({momentum, dampening, weight_decay, nesterov, first_step},
                                    ToF32(D, pb(i)), ToF32(D, gb(i)), m_old, s, trust.ratio,
                                    trust.lr_factor);
    step_(i) = Tuple(e.m_new, e.u);
    r_ = RDom(0, B, "r");
    amax_(i) = 0.0f;
    amax_(i) = max(amax_(i), abs(step_(i * B + r_)[0]));
    Expr q = QuantizeIndex(NormalizeForQuantize(step_(i)[0], amax_(i / B)), mids, code, lut, tq);
    out(i) = Tuple(FromF32(D, ToF32(D, p(i)) - trust.lr * trust.scale * step_(i)[1]), q);
    absmax_out(i) = amax_(i);
  }

  void schedule() {
    const int B = block;
    ConstrainBlockState(p, g, codes, absmax, B);
    ConstrainCodebook(code, mids, lut);
    ConstrainInPlaceTupleOutput(out, p.dim(0).extent());
    ConstrainAbsmaxOutput(absmax_out, absmax, B);
    ConstrainNormsInputs(gscale, norms, 3, lr, momentum, dampening, weight_decay, nesterov,
                         first_step, trust_mode, max_unorm, trust_coefficient, eps);
    if (auto_schedule) return;
    ScheduleBlockwiseUpdate(out, absmax_out, step_, amax_, r_, get_target().has_gpu_feature(), B,
                            gpu_threads, vector_width, blocks_per_task, absmax.dim(0).extent(),
                            tasks, SteadyState(specialize_steady, first_step, nesterov));
  }

 private:
  RDom r_;
  Func step_{"step"}, amax_{"amax"};
};

// bitsandbytes-compatible per-tensor 8-bit state (block_wise=false): one scale for the whole
// tensor. Pass 1 reduces {Σp², Σu², Σg², max|m'|} with m dequantized by the old scale; pass 2
// dequantizes with the old scale and re-quantizes with the new one (norms[3]), writing p and
// codes in place (elementwise: no block structure). Clip and none trust modes only: classic
// scales m' by a ratio that needs |p| and |g| before max|m'| can be known.
template <DType D>
class Lars8bitTensorNorms : public Generator<Lars8bitTensorNorms<D>> {
 public:
  LARS_GENERATOR_ALIASES(Lars8bitTensorNorms<D>);
  // CPU: decode codes arithmetically (no gather; faster than the table); GPUs read the table.
  GeneratorParam<bool> decode_table_free{"decode_table_free", true};
  using T = typename Storage<D>::type;

  GeneratorParam<int> chunk{"chunk", 1 << 15};
  GeneratorParam<int> vector_width{"vector_width", 16};
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};
  GeneratorParam<int> gpu_items{"gpu_items", 8};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<uint8_t, 1>> codes{"codes"};
  Input<Buffer<float, 1>> scale{"scale"};  // [.., .., .., max1]: the previous step's norms
  Input<Buffer<float, 1>> code{"code"};
  Input<Buffer<float, 1>> gscale{"gscale"};
  Input<float> momentum{"momentum"};
  Input<float> dampening{"dampening"};
  Input<float> weight_decay{"weight_decay"};
  Input<bool> nesterov{"nesterov"};
  Input<bool> first_step{"first_step"};
  Output<Buffer<float, 1>> out{"out"};  // [Σp², Σu², Σg², max|m'|] (new_max1)

  void generate() {
    const bool tf = TableFree(get_target(), decode_table_free);
    r_ = RDom(0, p.dim(0).extent(), "r");
    Expr pv = ToF32(D, p(r_)), gv = ToF32(D, g(r_));
    Expr m = DecodeCode(codes(r_), code, tf) * scale(3);
    LarsElement e = LarsStepElement({momentum, dampening, weight_decay, nesterov, first_step},
                                    pv, gv, m, gscale(0), 1.0f);
    acc_() = Tuple(0.0f, 0.0f, 0.0f, 0.0f);
    acc_() = Tuple(acc_()[0] + pv * pv, acc_()[1] + e.u * e.u, acc_()[2] + gv * gv,
                   max(acc_()[3], abs(e.m_new)));
    Var c("c");
    out(c) = select(c == 0, acc_()[0], c == 1, acc_()[1], c == 2, acc_()[2], acc_()[3]);
  }

  void schedule() {
    ConstrainSameLength(p, g, codes);
    ConstrainFixedSize(scale, 4);
    ConstrainCodebook(code);
    ConstrainNormsIO(out, 4, gscale, momentum, dampening, weight_decay, nesterov, first_step);
    if (auto_schedule) return;
    ScheduleNormsKernel(acc_, r_, out, get_target().has_gpu_feature(), chunk, vector_width,
                        gpu_threads, gpu_items, tasks);
  }

 private:
  RDom r_;
  Func acc_{"acc"};
};

template <DType D>
class Lars8bitTensorUpdate : public Generator<Lars8bitTensorUpdate<D>> {
 public:
  LARS_GENERATOR_ALIASES(Lars8bitTensorUpdate<D>);
  // CPU: decode codes arithmetically (no gather; faster), quantize through the bucket table
  // (the exact table-free quantizer is bit-identical but slower here: common.h); GPUs read tables.
  GeneratorParam<bool> decode_table_free{"decode_table_free", true};
  GeneratorParam<bool> quantize_table_free{"quantize_table_free", false};
  using T = typename Storage<D>::type;

  GeneratorParam<int> chunk{"chunk", 1 << 14};
  GeneratorParam<int> vector_width{"vector_width", 8};
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask

  Input<Buffer<T, 1>> p{"p"};
  Input<Buffer<T, 1>> g{"g"};
  Input<Buffer<uint8_t, 1>> codes{"codes"};
  Input<Buffer<float, 1>> scale{"scale"};  // previous norms: [3] = max1
  Input<Buffer<float, 1>> code{"code"};
  Input<Buffer<float, 1>> mids{"mids"};
  Input<Buffer<uint32_t, 1>> lut{"lut"};
  Input<Buffer<float, 1>> gscale{"gscale"};
  Input<Buffer<float, 1>> norms{"norms"};  // this step's: [Σp², Σu², Σg², new_max1]
  Input<float> lr{"lr"};
  Input<float> momentum{"momentum"};
  Input<float> dampening{"dampening"};
  Input<float> weight_decay{"weight_decay"};
  Input<bool> nesterov{"nesterov"};
  Input<bool> first_step{"first_step"};
  Input<int> trust_mode{"trust_mode"};
  Input<float> max_unorm{"max_unorm"};
  Output<Func> out{"out", {type_of<T>(), UInt(8)}, 1};  // {p', codes'} in place

  void generate() {
    const bool tf = TableFree(get_target(), decode_table_free);
    const bool tq = TableFree(get_target(), quantize_table_free);
    Var i("i");
    Expr clip = select(trust_mode == kTrustClip,
                       ClipTrustScale(sqrt(norms(0)), sqrt(norms(1)), max_unorm), 1.0f);
    Expr pv = ToF32(D, p(i));
    Expr m_old = DecodeCode(codes(i), code, tf) * scale(3);
    LarsElement e = LarsStepElement({momentum, dampening, weight_decay, nesterov, first_step},
                                    pv, ToF32(D, g(i)), m_old, gscale(0), 1.0f);
    Expr q = QuantizeIndex(NormalizeForQuantize(e.m_new, norms(3)), mids, code, lut, tq);
    vals_(i) = Tuple(FromF32(D, pv - lr * clip * e.u), q);
    out(i) = Tuple(vals_(i)[0], vals_(i)[1]);
  }

  void schedule() {
    ConstrainSameLength(p, g, codes);
    ConstrainFixedSize(scale, 4);
    ConstrainCodebook(code, mids, lut);
    ConstrainInPlaceTupleOutput(out, p.dim(0).extent());
    ConstrainNormsInputs(gscale, norms, 4, lr, momentum, dampening, weight_decay, nesterov,
                         first_step, trust_mode, max_unorm);
    if (auto_schedule) return;
    ScheduleInPlaceElementwise(out, vals_, get_target().has_gpu_feature(), chunk, vector_width,
                               gpu_threads, p.dim(0).extent(), tasks);
  }

 private:
  Func vals_{"vals"};
};

}  // namespace
}  // namespace generators
}  // namespace halide_lars

using halide_lars::generators::DType;
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitNorms<DType::kF32>, lars8bit_norms_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitNorms<DType::kF16>, lars8bit_norms_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitNorms<DType::kBF16>, lars8bit_norms_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitUpdate<DType::kF32>, lars8bit_update_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitUpdate<DType::kF16>, lars8bit_update_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitUpdate<DType::kBF16>, lars8bit_update_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitTensorNorms<DType::kF32>, lars8bit_tensor_norms_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitTensorNorms<DType::kF16>, lars8bit_tensor_norms_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitTensorNorms<DType::kBF16>, lars8bit_tensor_norms_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitTensorUpdate<DType::kF32>, lars8bit_tensor_update_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitTensorUpdate<DType::kF16>, lars8bit_tensor_update_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Lars8bitTensorUpdate<DType::kBF16>, lars8bit_tensor_update_bf16)
