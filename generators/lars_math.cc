#include "generators/lars_math.h"

namespace halide_lars {
namespace generators {

using namespace Halide;

LarsElement LarsStepElement(const LarsScalars& k, const Expr& p, const Expr& g, const Expr& m,
                            const Expr& s, const Expr& ratio, const Expr& lr_factor) {
  // strict_float: no fused multiply-adds, so a vector lane, a scalar tail and a GPU thread
  // round every element alike (the flat set step is bit-identical to the per-tensor one).
  LarsElement e;
  // lr_factor 1 (lr outside): 1 * x = x, the same bits as before lr_in_momentum existed.
  e.d = strict_float(lr_factor * (ratio * DecayedGradient(k, p, g, s)));
  e.m_new = strict_float(select(k.first_step, e.d, k.momentum * m + (1.0f - k.dampening) * e.d));
  e.u = UpdateDirection(k, e.d, e.m_new);
  return e;
}

Expr DecayedGradient(const LarsScalars& k, const Expr& p, const Expr& g, const Expr& s) {
  return strict_float(s * g + k.weight_decay * p);
}

Expr UpdateDirection(const LarsScalars& k, const Expr& d, const Expr& m_new) {
  return strict_float(select(k.nesterov, d + k.momentum * m_new, m_new));
}

Expr ClassicTrustRatio(const Expr& pnorm, const Expr& gnorm, const Expr& weight_decay,
                       const Expr& trust_coefficient, const Expr& eps) {
  return strict_float(select(pnorm > 0.0f && gnorm > 0.0f,
                             trust_coefficient * pnorm / (gnorm + weight_decay * pnorm + eps), 1.0f));
}

Expr StepSize(const Expr& lr, const Expr& scale) { return strict_float(lr * scale); }

Expr ApplyUpdate(const Expr& p, const Expr& step_size, const Expr& u) {
  return strict_float(p - step_size * u);
}

Expr ClipTrustScale(const Expr& pnorm, const Expr& unorm, const Expr& max_unorm) {
  Expr limit = max_unorm * pnorm;
  // unorm > limit >= 0 implies unorm > 0: the division is safe where it is selected.
  return strict_float(select(max_unorm > 0.0f && unorm > limit, limit / max(unorm, 1e-30f), 1.0f));
}

TrustFactors TrustFromNorms(const Expr& n0, const Expr& n1, const Expr& n2, const Expr& s,
                            const Expr& lr, const Expr& trust_mode, const Expr& weight_decay,
                            const Expr& trust_coefficient, const Expr& eps, const Expr& max_unorm) {
  Expr pnorm = sqrt(n0), unorm = sqrt(n1), gnorm = s * sqrt(n2);
  Expr lr_inside = trust_mode >= kTrustLrInside;
  Expr mode = TrustForm(trust_mode);
  TrustFactors f;
  Expr classic = ClassicTrustRatio(pnorm, gnorm, weight_decay, trust_coefficient, eps);
  // lr = 0: classic / 0 = inf, clamped to 1 (the step is 0 anyway).
  Expr larc = strict_float(min(classic / lr, 1.0f));
  Expr exact = strict_float(select(pnorm > 0.0f && unorm > 0.0f,
                                   trust_coefficient * pnorm / (unorm + eps), 1.0f));
  Expr q = select(mode == kTrustClassic, classic, mode == kTrustLarcClip, larc,
                  mode == kTrustExact, exact, 1.0f);
  f.ratio = q;
  f.lr = select(lr_inside, 1.0f, lr);
  f.lr_factor = select(lr_inside, lr, 1.0f);
  f.scale = select(mode == kTrustClip, ClipTrustScale(pnorm, unorm, max_unorm), 1.0f);
  return f;
}

}  // namespace generators
}  // namespace halide_lars
