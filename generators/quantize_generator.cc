// Blockwise 8-bit quantization (bitsandbytes' dynamic codebook, one fp32 absmax per block of B):
//   quantize_blockwise_<dtype>:   x -> codes (uint8), absmax (ceil(n/B) fp32)
//   dequantize_blockwise_<dtype>: codes, absmax -> x (rounded to dtype)
// B is a GeneratorParam (256 default, 2048 also built). An all-zero block gets absmax 0 and the
// zero code, and dequantizes to exactly 0.
#include "generators/common.h"

namespace halide_lars {
namespace generators {
namespace {

using namespace Halide;

template <DType D>
class QuantizeBlockwise : public Generator<QuantizeBlockwise<D>> {
 public:
  LARS_GENERATOR_ALIASES(QuantizeBlockwise<D>);
  // CPU: quantize through the bucket table; the exact table-free quantizer is bit-identical but
  // slower on the 2-core EPYC (common.h). GPUs read the table.
  GeneratorParam<bool> quantize_table_free{"quantize_table_free", false};
  using T = typename Storage<D>::type;

  GeneratorParam<int> block{"block", 256};
  GeneratorParam<int> blocks_per_task{"blocks_per_task", 64};
  GeneratorParam<int> vector_width{"vector_width", 8};

  Input<Buffer<T, 1>> x{"x"};
  Input<Buffer<float, 1>> code{"code"};  // 256 sorted codes
  Input<Buffer<float, 1>> mids{"mids"};  // 256 midpoints, mids[255] = +Inf
  Input<Buffer<uint32_t, 1>> lut{"lut"};  // 65536 packed entries (common.h QuantizeIndex)
  Output<Buffer<uint8_t, 1>> q{"q"};
  Output<Buffer<float, 1>> absmax{"absmax"};

  void generate() {
    const bool tq = TableFree(get_target(), quantize_table_free);
    const int B = block;
    Var i("i"), b("b");
    // Zero past the end: the last, partial block's max ignores the padding.
    Func xb = BoundaryConditions::constant_exterior(x, cast<T>(0));
    ax_(i) = abs(ToF32(D, xb(i)));
    r_ = RDom(0, B, "r");
    amax_(b) = 0.0f;
    amax_(b) = max(amax_(b), ax_(b * B + r_));
    // absmax is defined over the same Var as q so their block loops can be fused by name.
    absmax(i) = amax_(i);
    q(i) = QuantizeIndex(NormalizeForQuantize(ToF32(D, x(i)), amax_(i / B)), mids, code, lut, tq);
  }

  void schedule() {
    const int B = block;
    x.dim(0).set_min(0).set_stride(1);
    q.dim(0).set_min(0).set_stride(1).set_extent(x.dim(0).extent());
    absmax.dim(0).set_min(0).set_stride(1);
    ConstrainCodebook(code, mids, lut);
    x.set_estimates({{0, 1 << 24}});
    q.set_estimates({{0, 1 << 24}});
    absmax.set_estimates({{0, (1 << 24) / B}});
    if (auto_schedule) return;
    Var i = q.args()[0], b("b"), t("t"), io("io"), ii("ii"), unit("unit");
    if (get_target().has_gpu_feature()) {
      // One GPU block per quant block: absmax in the block, then every thread quantizes.
      const int threads = std::min(B, 256);
      q.split(i, b, ii, B, TailStrategy::GuardWithIf)
          .split(ii, io, t, threads, TailStrategy::GuardWithIf)
          .gpu_blocks(b)
          .gpu_threads(t);
      amax_.compute_at(q, b);
      // absmax(b) is written by the block that reduced it (fused block loops).
      absmax.split(i, b, unit, 1).gpu_blocks(b);
      absmax.compute_with(q, b);
      return;
    }
    const int vw = vector_width, per_task = blocks_per_task;
    Var bo("bo");
    // A task quantizes blocks_per_task blocks; each block's absmax is reduced (vector lanes) just
    // before its codes are written, while the block is in L1.
    q.split(i, b, ii, B, TailStrategy::GuardWithIf)
        .split(b, bo, b, per_task, TailStrategy::GuardWithIf)
        .vectorize(ii, vw, TailStrategy::GuardWithIf)
        .parallel(bo);
    amax_.compute_at(q, b).store_in(MemoryType::Stack);
    RVar ro("ro"), ri("ri");
    Var l("l");
    Func lanes = amax_.update().split(r_.x, ro, ri, vw).rfactor(ri, l);
    // The lanes are the innermost storage dimension: dense vector loads/stores.
    lanes.reorder_storage(l, lanes.args()[0]);
    lanes.compute_at(q, b).store_in(MemoryType::Stack).vectorize(l).update().vectorize(l);
    // absmax(b) is written in the same block iteration, right after the block's codes.
    absmax.split(i, b, unit, 1)
        .split(b, bo, b, per_task, TailStrategy::GuardWithIf)
        .parallel(bo);
    absmax.compute_with(q, b);
  }

 private:
  RDom r_;
  Func ax_{"ax"}, amax_{"amax"};
};

template <DType D>
class DequantizeBlockwise : public Generator<DequantizeBlockwise<D>> {
 public:
  LARS_GENERATOR_ALIASES(DequantizeBlockwise<D>);
  // CPU: decode codes arithmetically (no gather; faster than the table); GPUs read the table.
  GeneratorParam<bool> decode_table_free{"decode_table_free", true};
  using T = typename Storage<D>::type;

  GeneratorParam<int> block{"block", 256};
  GeneratorParam<int> chunk{"chunk", 1 << 14};
  GeneratorParam<int> vector_width{"vector_width", 8};
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};

  Input<Buffer<uint8_t, 1>> q{"q"};
  Input<Buffer<float, 1>> absmax{"absmax"};
  Input<Buffer<float, 1>> code{"code"};
  Output<Buffer<T, 1>> x{"x"};

  void generate() {
    const bool tf = TableFree(get_target(), decode_table_free);
    const int B = block;
    Var i("i");
    x(i) = FromF32(D, DecodeCode(q(i), code, tf) * absmax(i / B));
  }

  void schedule() {
    q.dim(0).set_min(0).set_stride(1);
    x.dim(0).set_min(0).set_stride(1).set_extent(q.dim(0).extent());
    absmax.dim(0).set_min(0).set_stride(1);
    ConstrainCodebook(code);
    q.set_estimates({{0, 1 << 24}});
    absmax.set_estimates({{0, 1 << 16}});
    x.set_estimates({{0, 1 << 24}});
    if (auto_schedule) return;
    Var i = x.args()[0], io("io"), ii("ii");
    if (get_target().has_gpu_feature()) {
      x.gpu_tile(i, io, ii, gpu_threads, TailStrategy::GuardWithIf);
    } else {
      x.split(i, io, ii, chunk, TailStrategy::GuardWithIf)
          .parallel(io)
          .vectorize(ii, vector_width, TailStrategy::GuardWithIf);
    }
  }
};

// TEST ONLY (//tests/kernels:quantize_exhaustive_test): the CPU kernels' table-free QuantizeIndex on
// raw float bit patterns (all 2^32 of them there) and DecodeCode on codes.
class QuantizeIndexProbe : public Generator<QuantizeIndexProbe> {
 public:
  GeneratorParam<int> chunk{"chunk", 1 << 16};
  GeneratorParam<int> vector_width{"vector_width", 16};

  Input<Buffer<uint32_t, 1>> bits{"bits"};
  Input<Buffer<uint8_t, 1>> codes{"codes"};
  Output<Buffer<uint8_t, 1>> q{"q"};
  Output<Buffer<float, 1>> values{"values"};

  void generate() {
    Var i("i");
    const Func none;  // no table: the arithmetic codebook only
    q(i) = QuantizeIndex(reinterpret<float>(bits(i)), none, none, none, /*table_free=*/true);
    values(i) = DecodeCode(codes(i), none, /*table_free=*/true);
  }

  void schedule() {
    bits.dim(0).set_min(0).set_stride(1);
    q.dim(0).set_min(0).set_stride(1).set_extent(bits.dim(0).extent());
    codes.dim(0).set_min(0).set_stride(1);
    values.dim(0).set_min(0).set_stride(1).set_extent(codes.dim(0).extent());
    bits.set_estimates({{0, 1 << 24}});
    codes.set_estimates({{0, 256}});
    q.set_estimates({{0, 1 << 24}});
    values.set_estimates({{0, 256}});
    if (auto_schedule) return;
    SplitElementwiseCpu(q, chunk, vector_width, bits.dim(0).extent(), kDefaultTasks, Var("qv"));
  }
};

}  // namespace
}  // namespace generators
}  // namespace halide_lars

using halide_lars::generators::DType;
HALIDE_REGISTER_GENERATOR(halide_lars::generators::QuantizeBlockwise<DType::kF32>, quantize_blockwise_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::QuantizeBlockwise<DType::kF16>, quantize_blockwise_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::QuantizeBlockwise<DType::kBF16>, quantize_blockwise_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::DequantizeBlockwise<DType::kF32>, dequantize_blockwise_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::DequantizeBlockwise<DType::kF16>, dequantize_blockwise_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::DequantizeBlockwise<DType::kBF16>, dequantize_blockwise_bf16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::QuantizeIndexProbe, quantize_index_probe)
