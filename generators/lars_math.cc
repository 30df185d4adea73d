#include "generators/lars_math.h"

namespace halide_lars {
namespace generators {

using namespace Halide;

LarsElement LarsStepElement(const LarsScalars& k, const Expr& p, const Expr& g, const Expr& m,
                            const Expr& s, const Expr& ratio) {
  LarsElement e;
  e.d = ratio * (s * g + k.weight_decay * p);
  e.m_new = select(k.first_step, e.d, k.momentum * m + (1.0f - k.dampening) * e.d);
  e.u = select(k.nesterov, e.d + k.momentum * e.m_new, e.m_new);
  return e;
}

Expr ClassicTrustRatio(const Expr& pnorm, const Expr& gnorm, const Expr& weight_decay,
                       const Expr& trust_coefficient, const Expr& eps) {
  return select(pnorm > 0.0f && gnorm > 0.0f,
                trust_coefficient * pnorm / (gnorm + weight_decay * pnorm + eps), 1.0f);
}

Expr ClipTrustScale(const Expr& pnorm, const Expr& unorm, const Expr& max_unorm) {
  Expr limit = max_unorm * pnorm;
  // unorm > limit >= 0 implies unorm > 0: the division is safe where it is selected.
  return select(max_unorm > 0.0f && unorm > limit, limit / max(unorm, 1e-30f), 1.0f);
}

}  // namespace generators
}  // namespace halide_lars
