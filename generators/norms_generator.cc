// Norm reductions of a 1-D tensor: out(0) = Σ x², out(1) = max |x|, fp32 accumulation.
// Deterministic (fixed two-level tree, no atomics): the result depends only on x and n, not on
// the thread count or the device's scheduling.
#include "generators/common.h"

namespace halide_lars {
namespace generators {
namespace {

using namespace Halide;

template <DType D>
class Norms : public Generator<Norms<D>> {
 public:
  LARS_GENERATOR_ALIASES(Norms<D>);

  // CPU: elements per parallel task, fp32 accumulator lanes per task.
  GeneratorParam<int> chunk{"chunk", 1 << 15};
  GeneratorParam<int> vector_width{"vector_width", 16};
  // GPU (CUDA and OpenCL share one schedule): threads per block, elements per thread.
  GeneratorParam<int> gpu_threads{"gpu_threads", 256};
  GeneratorParam<int> gpu_items{"gpu_items", 8};
  GeneratorParam<int> tasks{"tasks", kDefaultTasks};  // CPU: see UnitsPerTask
  // TEST ONLY. Seeds a classic GPU-kernel bug (the tail past the last full block of
  // gpu_threads*gpu_items elements is dropped) so tests can prove the pocl run catches it.
  GeneratorParam<bool> seeded_tail_bug{"seeded_tail_bug", false};

  Input<Buffer<typename Storage<D>::type, 1>> x{"x"};
  Output<Buffer<float, 1>> out{"out"};  // [Σ x², max |x|]

  void generate() {
    Expr n = x.dim(0).extent();
    if (seeded_tail_bug) {
      const int block = static_cast<int>(gpu_threads) * static_cast<int>(gpu_items);
      n = (n / block) * block;
    }
    r_ = RDom(0, n, "r");
    Expr v = ToF32(D, x(r_));
    acc_() = Tuple(0.0f, 0.0f);
    acc_() = Tuple(acc_()[0] + v * v, max(acc_()[1], abs(v)));
    Var c("c");
    out(c) = select(c == 0, acc_()[0], acc_()[1]);
  }

  void schedule() {
    x.dim(0).set_min(0).set_stride(1);
    x.set_estimates({{0, 1 << 24}});
    ConstrainNormsOutput(out, 2);
    if (auto_schedule) return;
    ScheduleNormsKernel(acc_, r_, out, get_target().has_gpu_feature(), chunk, vector_width,
                        gpu_threads, gpu_items, tasks);
  }

 private:
  RDom r_;
  Func acc_{"acc"};
};

}  // namespace
}  // namespace generators
}  // namespace halide_lars

HALIDE_REGISTER_GENERATOR(halide_lars::generators::Norms<halide_lars::generators::DType::kF32>, norms_f32)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Norms<halide_lars::generators::DType::kF16>, norms_f16)
HALIDE_REGISTER_GENERATOR(halide_lars::generators::Norms<halide_lars::generators::DType::kBF16>, norms_bf16)
