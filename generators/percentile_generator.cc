// bitsandbytes percentile clipping (docs/spec.md), on the tensor's device:
//   ring' = every slot <- n2 on the first step, else ring'[step % 100] <- n2   (n2 = Σg²)
//   clip  = sqrt(sorted(ring')[percentile]);  s = clip/sqrt(n2) if sqrt(n2) > clip else 1
// with n2 = Σg² of the unscaled gradient: an AMP loss scale's inverse `inv_scale` multiplies the
// kernel's Σg² by inv_scale² and the written scale by inv_scale (the unscale fused into the step;
// exact for GradScaler's power-of-two scales, bit-identical to unscaling g first).
// The order statistic is found by ranking (ties broken by index), so no sort and no host round
// trip: 100x100 compares, negligible next to any tensor pass.
#include "generators/common.h"

namespace halide_lars {
namespace generators {
namespace {

using namespace Halide;

constexpr int kRing = 100;

class PercentileClip : public Generator<PercentileClip> {
 public:
  LARS_GENERATOR_ALIASES(PercentileClip);

  Input<Buffer<float, 1>> ring{"ring"};      // gnorm_vec: 100 squared gradient norms
  Input<Buffer<float, 1>> gnorm{"gnorm"};    // [Σg², ...] (SumSqMaxAbs output)
  Input<int> step{"step"};                   // 1-based step count of this parameter
  Input<int> percentile{"percentile"};       // in [1, 99]
  Input<float> inv_scale{"inv_scale"};       // 1 / the AMP loss scale (1: none)
  Output<Buffer<float, 1>> ring_out{"ring_out"};  // in place over ring
  Output<Buffer<float, 1>> gscale{"gscale"};      // [s]

  void generate() {
    Var i("i"), x("x");
    Expr n2 = gnorm(0) * inv_scale * inv_scale;
    updated_(i) = select(step == 1 || i == step % kRing, n2, ring(i));
    RDom r(0, kRing, "r");
    rank_(i) = sum(select(updated_(r) < updated_(i) || (updated_(r) == updated_(i) && r < i), 1, 0));
    RDom q(0, kRing, "q");
    kth_() = sum(select(rank_(q) == percentile, updated_(q), 0.0f));
    Expr clip = sqrt(kth_()), current = sqrt(n2);
    gscale(x) = inv_scale * select(current > clip, clip / current, 1.0f);
    ring_out(i) = updated_(i);
  }

  void schedule() {
    ring.dim(0).set_bounds(0, kRing);
    ring_out.dim(0).set_bounds(0, kRing);
    gnorm.dim(0).set_min(0);
    gscale.dim(0).set_bounds(0, 1);
    ring.set_estimates({{0, kRing}});
    gnorm.set_estimates({{0, 2}});
    ring_out.set_estimates({{0, kRing}});
    gscale.set_estimates({{0, 1}});
    if (auto_schedule) return;
    // ring_out may alias ring: the updated ring and the scale are computed from the old ring
    // into scratch before ring_out is written.
    updated_.compute_root();
    rank_.compute_root();
    kth_.compute_root();
    if (get_target().has_gpu_feature()) {
      updated_.gpu_single_thread();
      rank_.gpu_single_thread();
      kth_.gpu_single_thread();
      gscale.gpu_single_thread();
      ring_out.gpu_single_thread();
    }
  }

 private:
  Func updated_{"updated"}, rank_{"rank"}, kth_{"kth"};
};

}  // namespace
}  // namespace generators
}  // namespace halide_lars

HALIDE_REGISTER_GENERATOR(halide_lars::generators::PercentileClip, percentile_clip)
