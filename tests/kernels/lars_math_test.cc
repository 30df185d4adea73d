// generators/lars_math.{h,cc}: the step math every LARS kernel shares (LarsStepElement,
// TrustFromNorms, StepSize, ApplyUpdate, DecayedGradient, UpdateDirection), JIT-compiled for the
// host CPU and assembled as the kernels assemble it (a norms pass with ratio 1 -- d instead of u for
// the exact form --, then the trust factors and the update), with the options packed by the one
// conversion the kernels get (lars/kernel_plan.h MakeLarsHyper). Compared with the float64
// reference step (tests/reference/lars_reference.h) for every trust form x lr_in_momentum x
// nesterov x first/later step x weight decay on/off, on sizes 1, 7 and 1000.
// (This process never loads pocl: Halide's LLVM and pocl's LLVM in one process crash.)
#include <cmath>
#include <string>
#include <vector>

#include "Halide.h"
#include "generators/lars_math.h"
#include "gtest/gtest.h"
#include "halide_lars/options.h"
#include "lars/kernel_plan.h"
#include "tests/reference/lars_reference.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using generators::ApplyUpdate;
using generators::DecayedGradient;
using generators::LarsElement;
using generators::LarsScalars;
using generators::LarsStepElement;
using generators::StepSize;
using generators::TrustFactors;
using generators::TrustForm;
using generators::TrustFromNorms;
using generators::UpdateDirection;
using Halide::Buffer;
using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;

Expr Bool(bool v) { return Halide::Internal::make_bool(v); }

struct Result {
  std::vector<double> p, m;
};

// One step of the lars_math expressions over p, g, m (fp32) with the gradient scale s.
Result JitStep(const LarsHyper& h, const std::vector<double>& p, const std::vector<double>& g,
               const std::vector<double>& m, float s) {
  const int n = static_cast<int>(p.size());
  Buffer<float> pb(n), gb(n), mb(n);
  for (int i = 0; i < n; ++i) {
    pb(i) = static_cast<float>(p[i]);
    gb(i) = static_cast<float>(g[i]);
    mb(i) = static_cast<float>(m[i]);
  }
  const Expr momentum(h.momentum), dampening(h.dampening), wd(h.weight_decay);
  const Expr nesterov = Bool(h.nesterov), first = Bool(h.first_step), mode(h.trust_mode), sx(s);
  Var x("x");
  // The norms pass (lars_norms / RunLarsNorms): Σp², Σu² (Σd² for the exact form), Σg².
  const Expr exact = TrustForm(mode) == kTrustExact;
  RDom r(0, n);
  LarsElement e0 = LarsStepElement({momentum, dampening, wd, nesterov && !exact, first || exact},
                                   pb(r), gb(r), mb(r), sx, 1.0f);
  Func n0("n0"), n1("n1"), n2("n2");
  n0() = 0.0f;
  n1() = 0.0f;
  n2() = 0.0f;
  n0() += pb(r) * pb(r);
  n1() += e0.u * e0.u;
  n2() += gb(r) * gb(r);
  n0.compute_root();
  n1.compute_root();
  n2.compute_root();
  // The update pass (lars_update).
  TrustFactors t = TrustFromNorms(n0(), n1(), n2(), sx, Expr(h.lr), mode, wd,
                                  Expr(h.trust_coefficient), Expr(h.eps), Expr(h.max_unorm));
  LarsElement e = LarsStepElement({momentum, dampening, wd, nesterov, first}, pb(x), gb(x), mb(x),
                                  sx, t.ratio, t.lr_factor);
  Func out("out");
  out(x) = Halide::Tuple(ApplyUpdate(pb(x), StepSize(t.lr, t.scale), e.u), e.m_new);
  Halide::Realization rz = out.realize({n});
  Buffer<float> po = rz[0], mo = rz[1];
  Result res;
  for (int i = 0; i < n; ++i) {
    res.p.push_back(po(i));
    res.m.push_back(mo(i));
  }
  return res;
}

struct Case {
  TrustMode form;
  bool lr_in_momentum, nesterov, first_step;
  double weight_decay;
  std::string Name() const {
    return std::string(TrustModeName(form)) + (lr_in_momentum ? "_lrin" : "") +
           (nesterov ? "_nesterov" : "") + (first_step ? "_first" : "_later") +
           (weight_decay == 0.0 ? "_wd0" : "");
  }
};

std::vector<Case> AllCases() {
  std::vector<Case> out;
  for (TrustMode f : {TrustMode::kClip, TrustMode::kClassic, TrustMode::kNone,
                      TrustMode::kLarcClip, TrustMode::kExact}) {
    for (bool lr_in : {false, true}) {
      for (bool nest : {false, true}) {
        for (bool first : {true, false}) {
          // clip with lr_in_momentum is refused by the options (docs/spec.md), never packed.
          if (f == TrustMode::kClip && lr_in) continue;
          for (double wd : {1e-2, 0.0}) out.push_back({f, lr_in, nest, first, wd});
        }
      }
    }
  }
  return out;
}

class LarsMathTest : public ::testing::TestWithParam<Case> {};

TEST_P(LarsMathTest, MatchesFloat64ReferenceStep) {
  const Case& c = GetParam();
  LarsOptions o;
  o.lr = 0.7;  // large enough that larc_clip's min(q / lr, 1) is below 1
  o.momentum = 0.9;
  o.dampening = 0.1;
  o.weight_decay = c.weight_decay;
  o.nesterov = c.nesterov;
  o.trust_mode = c.form;
  o.lr_in_momentum = c.lr_in_momentum;
  o.always_adapt = true;  // the form itself, also at weight_decay 0 (the plan's rule is its own)
  o.max_unorm = 0.02;
  o.trust_coefficient = 0.01;
  o.eps = 1e-8;
  for (int n : {1, 7, 1000}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const uint32_t seed = 100 + static_cast<uint32_t>(n);
    std::vector<double> p = testing::UniformValues(n, seed, -1.0, 1.0);
    std::vector<double> g = testing::UniformValues(n, seed + 1, -0.5, 0.5);
    std::vector<double> m = testing::UniformValues(n, seed + 2, -0.3, 0.3);
    for (auto* v : {&p, &g, &m}) {
      for (double& x : *v) x = static_cast<float>(x);
    }
    reference::LarsRefState st;
    st.step = c.first_step ? 0 : 4;
    st.m = c.first_step ? std::vector<double>(n, 0.0) : m;
    std::vector<double> ref_p = p;
    reference::LarsStep(o, DType::kF32, g, &ref_p, &st);
    const Result got = JitStep(MakeLarsHyper(o, c.first_step), p, g, m, 1.0f);
    double mmax = 0.0;
    for (double v : st.m) mmax = std::max(mmax, std::fabs(v));
    for (int i = 0; i < n; ++i) {
      ASSERT_LE(std::fabs(got.p[i] - ref_p[i]), testing::StepTolerance(DType::kF32, p[i], ref_p[i], got.p[i]))
          << "p[" << i << "] " << got.p[i] << " vs " << ref_p[i];
      ASSERT_LE(std::fabs(got.m[i] - st.m[i]), 1e-5 * mmax + 1e-12)
          << "m[" << i << "] " << got.m[i] << " vs " << st.m[i];
    }
    // The gradient scale s (percentile clipping, AMP unscale) enters as s * g: with g doubled and
    // s = 1/2 every element is bit-identical.
    std::vector<double> g2 = g;
    for (double& v : g2) v *= 2.0;
    const Result half = JitStep(MakeLarsHyper(o, c.first_step), p, g2, m, 0.5f);
    EXPECT_EQ(half.p, got.p);
    EXPECT_EQ(half.m, got.m);
  }
}

INSTANTIATE_TEST_SUITE_P(Forms, LarsMathTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.Name(); });

// lars_apply's pieces (momentum-first order): DecayedGradient and UpdateDirection give
// LarsStepElement's d and u (ratio 1, lr outside), element for element and bit for bit.
TEST(LarsMath, MomentumFirstPiecesEqualTheStepElement) {
  const int n = 257;
  std::vector<double> pv = testing::UniformValues(n, 5, -1, 1), gv = testing::UniformValues(n, 6, -1, 1),
                      mv = testing::UniformValues(n, 7, -1, 1);
  Buffer<float> p(n), g(n), m(n);
  for (int i = 0; i < n; ++i) {
    p(i) = static_cast<float>(pv[i]);
    g(i) = static_cast<float>(gv[i]);
    m(i) = static_cast<float>(mv[i]);
  }
  for (bool nesterov : {false, true}) {
    const LarsScalars k{Expr(0.9f), Expr(0.0f), Expr(1e-2f), Bool(nesterov), Bool(false)};
    Var x;
    LarsElement e = LarsStepElement(k, p(x), g(x), m(x), Expr(0.75f), 1.0f);
    Func f;
    Expr d = DecayedGradient(k, p(x), g(x), Expr(0.75f));
    f(x) = Halide::Tuple(e.d, d, e.u, UpdateDirection(k, d, e.m_new));
    Halide::Realization rz = f.realize({n});
    Buffer<float> ed = rz[0], dd = rz[1], eu = rz[2], uu = rz[3];
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(ed(i), dd(i)) << i;
      ASSERT_EQ(eu(i), uu(i)) << i;
    }
  }
}

}  // namespace
}  // namespace halide_lars
