#include "tests/reference/lars_reference.h"

#include <algorithm>
#include <cmath>

#include "tests/reference/reference.h"

namespace halide_lars {
namespace reference {

double RoundTo(DType dtype, double v) {
  const float f = static_cast<float>(v);
  switch (dtype) {
    case DType::kF16:
      return F16BitsToF32(F32ToF16Bits(f));
    case DType::kBF16:
      return BF16BitsToF32(F32ToBF16Bits(f));
    case DType::kF32:
    case DType::kU8:
      break;
  }
  return f;
}

double PercentileClip(double n2, int64_t step, int percentile, std::vector<double>* ring) {
  if (step == 1) {
    ring->assign(100, n2);
  } else {
    (*ring)[step % 100] = n2;
  }
  std::vector<double> sorted = *ring;
  std::sort(sorted.begin(), sorted.end());
  const double clip = std::sqrt(sorted[percentile]);
  const double current = std::sqrt(n2);
  return current > clip ? clip / current : 1.0;
}

void LarsStep(const LarsOptions& o, DType dtype, const std::vector<double>& g,
              std::vector<double>* p, LarsRefState* st) {
  const size_t n = p->size();
  const int64_t step = ++st->step;
  if (st->m.size() != n) st->m.assign(n, 0.0);

  // Percentile clipping: ring of squared gradient norms.
  double s = 1.0;
  double gsq = 0.0;
  for (double v : g) gsq += v * v;
  if (o.percentile_clipping < 100) {
    s = PercentileClip(static_cast<float>(gsq), step, o.percentile_clipping, &st->gnorm_vec);
  }

  double psq = 0.0;
  for (double v : *p) psq += v * v;
  const double pnorm = std::sqrt(psq);
  const double gnorm = s * std::sqrt(gsq);

  // The trust forms of docs/spec.md; classic, larc_clip and exact only where weight_decay != 0
  // unless always_adapt (timm).
  TrustMode mode = o.trust_mode;
  if (mode != TrustMode::kClip && !o.always_adapt && o.weight_decay == 0.0) mode = TrustMode::kNone;
  double ratio = 1.0;
  if ((mode == TrustMode::kClassic || mode == TrustMode::kLarcClip) && pnorm > 0.0 &&
      gnorm > 0.0) {
    ratio = o.trust_coefficient * pnorm / (gnorm + o.weight_decay * pnorm + o.eps);
  }
  if (mode == TrustMode::kLarcClip) ratio = std::min(ratio / *o.lr, 1.0);
  if (mode == TrustMode::kExact) {
    double dsq = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double d = s * g[i] + o.weight_decay * (*p)[i];
      dsq += d * d;
    }
    const double dnorm = std::sqrt(dsq);
    if (pnorm > 0.0 && dnorm > 0.0) ratio = o.trust_coefficient * pnorm / (dnorm + o.eps);
  }
  std::vector<double> u(n), m_new(n);
  double usq = 0.0;
  for (size_t i = 0; i < n; ++i) {
    // lr_in_momentum: the lr multiplies d before the momentum, the step size is 1.
    const double d = (o.lr_in_momentum ? *o.lr : 1.0) * ratio *
                     (s * g[i] + o.weight_decay * (*p)[i]);
    m_new[i] = step == 1 ? d : o.momentum * st->m[i] + (1.0 - o.dampening) * d;
    u[i] = o.nesterov ? d + o.momentum * m_new[i] : m_new[i];
    usq += u[i] * u[i];
  }
  const double unorm = std::sqrt(usq);
  double scale = 1.0;
  if (o.trust_mode == TrustMode::kClip && o.max_unorm > 0.0) {
    st->unorm = unorm;
    if (unorm > o.max_unorm * pnorm) scale = o.max_unorm * pnorm / unorm;
  }
  for (size_t i = 0; i < n; ++i) {
    (*p)[i] = RoundTo(dtype, (*p)[i] - (o.lr_in_momentum ? 1.0 : *o.lr) * scale * u[i]);
    st->m[i] = static_cast<float>(m_new[i]);
  }
}

}  // namespace reference
}  // namespace halide_lars
