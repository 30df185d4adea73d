// The LARS step of docs/spec.md as Halide expressions: the one definition of the
// optimizer math in the generators (tests/reference/ holds the float64 twin). fp32 throughout.
#ifndef HALIDE_LARS_GENERATORS_LARS_MATH_H_
#define HALIDE_LARS_GENERATORS_LARS_MATH_H_

#include "Halide.h"
#include "base/kernel_abi.h"

namespace halide_lars {
namespace generators {

// The trust form (KernelTrustForm, base/kernel_abi.h) of a packed trust_mode kernel input.
inline Halide::Expr TrustForm(const Halide::Expr& packed) { return packed % kTrustLrInside; }

// The per-step scalars every LARS kernel takes (runtime Params, same names as the options).
struct LarsScalars {
  Halide::Expr momentum, dampening, weight_decay, nesterov, first_step;
};

// Per-element values of one step given p, g, m (fp32), the gradient scale s (percentile
// clipping, 1 when off) and the classic trust ratio (1 in the other modes):
//   d = ratio * (s*g + wd*p);  m' = first ? d : momentum*m + (1-dampening)*d
//   u = nesterov ? d + momentum*m' : m'
struct LarsElement {
  Halide::Expr d, m_new, u;
};
// lr_factor: the lr with lr_in_momentum (d = lr (ratio (s g + wd p)), optax's order), else 1.
// Built from the two expressions below, which the momentum-first kernels (lars_momentum,
// lars_apply) also use where they need d or u alone.
LarsElement LarsStepElement(const LarsScalars& k, const Halide::Expr& p, const Halide::Expr& g,
                            const Halide::Expr& m, const Halide::Expr& s,
                            const Halide::Expr& ratio,
                            const Halide::Expr& lr_factor = Halide::Expr(1.0f));

// s*g + wd*p: the decayed gradient (d before the trust ratio and lr_factor).
Halide::Expr DecayedGradient(const LarsScalars& k, const Halide::Expr& p, const Halide::Expr& g,
                             const Halide::Expr& s);
// u = nesterov ? d + momentum*m' : m' (m' the new momentum).
Halide::Expr UpdateDirection(const LarsScalars& k, const Halide::Expr& d, const Halide::Expr& m_new);

// Classic (You et al. 2017) local learning-rate ratio: eta*|p| / (|s*g| + wd*|p| + eps), or 1
// when |p| or |g| is 0 (as timm/apex).
Halide::Expr ClassicTrustRatio(const Halide::Expr& pnorm, const Halide::Expr& gnorm,
                               const Halide::Expr& weight_decay,
                               const Halide::Expr& trust_coefficient, const Halide::Expr& eps);

// bitsandbytes' clip: max_unorm*|p|/|u| when |u| > max_unorm*|p|, else 1 (0 when |p| = 0 and
// |u| > 0; 1 when |u| = 0, so never NaN); 1 when max_unorm <= 0.
Halide::Expr ClipTrustScale(const Halide::Expr& pnorm, const Halide::Expr& unorm,
                            const Halide::Expr& max_unorm);

// The trust factors of a step from its norms n0 = Σp², n1 = Σu², n2 = Σg² and the gradient scale
// s: `ratio` is ClassicTrustRatio in classic mode, min(that / lr, 1) in larc_clip mode, the exact
// form eta |p| / (|d| + eps) in exact mode (n1 is then Σd², d = s g + wd p: the norms pass sums d
// instead of u -- runtime/lars_kernels RunLarsNorms, DefineFlatNorms), else 1; `scale` is ClipTrustScale in clip mode (else 1).
// One expression for lars_update, lars8bit_update and the flat set coefficients.
// With lr_in_momentum (packed mode >= kTrustLrInside) `lr_factor` is lr (LarsStepElement puts it
// into d) and `lr` is 1; else lr_factor is 1 and `lr` is lr. The update is
// p - StepSize(lr, scale) * u either way.
struct TrustFactors {
  Halide::Expr ratio, scale, lr, lr_factor;
};
TrustFactors TrustFromNorms(const Halide::Expr& n0, const Halide::Expr& n1, const Halide::Expr& n2,
                            const Halide::Expr& s, const Halide::Expr& lr,
                            const Halide::Expr& trust_mode,
                            const Halide::Expr& weight_decay, const Halide::Expr& trust_coefficient,
                            const Halide::Expr& eps, const Halide::Expr& max_unorm);

// lr * trust scale, and p - step_size * u (fp32, unfused).
Halide::Expr StepSize(const Halide::Expr& lr, const Halide::Expr& scale);
Halide::Expr ApplyUpdate(const Halide::Expr& p, const Halide::Expr& step_size,
                         const Halide::Expr& u);

}  // namespace generators
}  // namespace halide_lars

#endif  // HALIDE_LARS_GENERATORS_LARS_MATH_H_
