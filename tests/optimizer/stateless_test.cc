// The stateless step (include/halide_lars/stateless.h, C: lars_step_tensor): a sequence of calls on the
// caller's state buffers must be bit-identical to a Lars optimizer fed the same gradients (fp32
// and blockwise 8-bit state, trust forms, an lr schedule); the sharded begin/finish pair over 2
// shards equals the whole tensor within rounding; non-finite gradients skip without a change;
// bad buffers and options are errors that change nothing.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "halide_lars/lars_c.h"
#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "halide_lars/stateless.h"
#include "runtime/device_buffer.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using testing::FromValues;

TensorView HostView(void* data, DType dtype, int64_t n) {
  return {data, dtype, n, Device::Cpu()};
}

struct Case {
  std::string name;
  LarsOptions options;
  int64_t numel;
};

std::vector<Case> Cases() {
  LarsOptions base;
  base.momentum = 0.9;
  base.weight_decay = 1e-3;
  std::vector<Case> c;
  c.push_back({"clip", base, 257});
  LarsOptions exact = base;
  exact.trust_mode = TrustMode::kExact;
  exact.eps = 0.0;
  exact.lr_in_momentum = true;
  exact.nesterov = true;
  c.push_back({"exact_lr_inside_nesterov", exact, 1031});
  LarsOptions classic = base;
  classic.trust_mode = TrustMode::kClassic;
  classic.nonfinite = Nonfinite::kPropagate;
  c.push_back({"classic_propagate", classic, 7});
  LarsOptions q8 = base;
  q8.optim_bits = 8;
  c.push_back({"blockwise8", q8, 5000});
  LarsOptions q8e = exact;
  q8e.optim_bits = 8;
  q8e.block_size = 2048;
  c.push_back({"blockwise8_exact_b2048", q8e, 4097});
  return c;
}

// The caller's state of one tensor (host memory).
struct OwnState {
  std::vector<float> momentum, absmax;
  std::vector<uint8_t> codes;
  TensorState View() {
    TensorState s;
    if (!momentum.empty()) s.momentum = HostView(momentum.data(), DType::kF32, momentum.size());
    if (!codes.empty()) {
      s.codes = HostView(codes.data(), DType::kU8, codes.size());
      s.absmax = HostView(absmax.data(), DType::kF32, absmax.size());
    }
    return s;
  }
};

OwnState ZeroState(const LarsOptions& o, int64_t n) {
  OwnState s;
  absl::StatusOr<StateKind> kind = StatelessStateKind(o, n);
  EXPECT_TRUE(kind.ok());
  if (*kind == StateKind::kFp32) {
    s.momentum.assign(n, 0.0f);
  } else {
    s.codes.assign(n, 127);  // the zero code
    s.absmax.assign((n + o.block_size - 1) / o.block_size, 0.0f);
  }
  return s;
}

class StatelessTest : public ::testing::TestWithParam<Case> {};

TEST_P(StatelessTest, BitIdenticalToLarsUnderASchedule) {
  const Case& c = GetParam();
  const int64_t n = c.numel;
  std::vector<float> p0(n), g(n);
  const std::vector<double> init = testing::UniformValues(n, 3, -1, 1);
  for (int64_t i = 0; i < n; ++i) p0[i] = static_cast<float>(init[i]);
  std::vector<float> p_lars = p0, p_free = p0, g_lars(n);
  LarsOptions o = c.options;
  o.lr = 0.1;
  absl::StatusOr<Lars> lars = Lars::Create(o);
  ASSERT_TRUE(lars.ok());
  ASSERT_TRUE(lars->AddParam("t", HostView(p_lars.data(), DType::kF32, n),
                             HostView(g_lars.data(), DType::kF32, n)).ok());
  OwnState state = ZeroState(o, n);
  for (int step = 0; step < 15; ++step) {
    const double lr = 0.1 * (1.0 + std::cos(3.14159 * step / 15)) / 2 + 1e-3;
    std::vector<double> p(p_free.begin(), p_free.end());
    const std::vector<double> gd = testing::BowlGradient(p, step, 9);
    for (int64_t i = 0; i < n; ++i) g[i] = g_lars[i] = static_cast<float>(gd[i]);
    ASSERT_TRUE(lars->SetGroupOption(0, "lr", lr).ok());
    ASSERT_TRUE(lars->Step().ok());
    LarsOptions os = o;
    os.lr = lr;
    TensorStep t;
    t.param = HostView(p_free.data(), DType::kF32, n);
    t.grad = HostView(g.data(), DType::kF32, n);
    t.state = state.View();
    t.step = step;
    absl::StatusOr<bool> stepped = StepTensor(os, t);
    ASSERT_TRUE(stepped.ok()) << stepped.status();
    ASSERT_TRUE(*stepped);
  }
  ASSERT_EQ(std::memcmp(p_lars.data(), p_free.data(), n * sizeof(float)), 0) << c.name;
  auto views = lars->StateTensors("t");
  ASSERT_TRUE(views.ok());
  for (const StateTensorView& v : *views) {
    const char* base = static_cast<const char*>(v.base.data) + v.offset * DTypeSize(v.dtype);
    if (v.key == "state1" && !state.momentum.empty()) {
      EXPECT_EQ(std::memcmp(base, state.momentum.data(), n * 4), 0) << c.name;
    } else if (v.key == "state1") {
      EXPECT_EQ(std::memcmp(base, state.codes.data(), n), 0) << c.name;
    } else if (v.key == "absmax1") {
      EXPECT_EQ(std::memcmp(base, state.absmax.data(), state.absmax.size() * 4), 0) << c.name;
    }
  }
}

TEST_P(StatelessTest, TwoShardsEqualTheWholeTensor) {
  const Case& c = GetParam();
  if (c.options.optim_bits == 8 && c.numel < 2 * c.options.block_size) {
    GTEST_SKIP() << "the shards of an 8-bit tensor split on a block boundary";
  }
  const int64_t n = c.numel;
  const int64_t cut = c.options.optim_bits == 8 ? c.options.block_size : n / 2 + 1;
  std::vector<float> whole(n), sharded(n), g(n);
  const std::vector<double> init = testing::UniformValues(n, 4, -1, 1);
  for (int64_t i = 0; i < n; ++i) whole[i] = sharded[i] = static_cast<float>(init[i]);
  LarsOptions o = c.options;
  o.lr = 0.05;
  OwnState sw = ZeroState(o, n);
  // Each shard's own state: 8-bit blocks split at `cut` (a block boundary).
  OwnState s0 = ZeroState(o, n), s1 = ZeroState(o, n);
  s0.momentum.resize(s0.momentum.empty() ? 0 : cut);
  s1.momentum.resize(s1.momentum.empty() ? 0 : n - cut);
  if (!s0.codes.empty()) {
    s0.codes.resize(cut);
    s1.codes.resize(n - cut);
    s0.absmax.resize(cut / o.block_size);
    s1.absmax.resize((n - cut + o.block_size - 1) / o.block_size);
  }
  for (int step = 0; step < 10; ++step) {
    std::vector<double> p(whole.begin(), whole.end());
    const std::vector<double> gd = testing::BowlGradient(p, step, 2);
    for (int64_t i = 0; i < n; ++i) g[i] = static_cast<float>(gd[i]);
    TensorStep w;
    w.param = HostView(whole.data(), DType::kF32, n);
    w.grad = HostView(g.data(), DType::kF32, n);
    w.state = sw.View();
    w.step = step;
    ASSERT_TRUE(StepTensor(o, w).ok());
    TensorStep t[2];
    OwnState* own[2] = {&s0, &s1};
    double part[2][5], sum[5] = {0, 0, 0, 0, 0};
    for (int r = 0; r < 2; ++r) {
      const int64_t a = r == 0 ? 0 : cut, m = r == 0 ? cut : n - cut;
      t[r].param = HostView(sharded.data() + a, DType::kF32, m);
      t[r].grad = HostView(g.data() + a, DType::kF32, m);
      t[r].state = own[r]->View();
      t[r].step = step;
      t[r].shard_offset = a;
      t[r].full_numel = n;
      ASSERT_TRUE(StepTensorBegin(o, t[r], part[r]).ok());
      for (int i = 0; i < 5; ++i) sum[i] += part[r][i];
    }
    for (int r = 0; r < 2; ++r) {
      absl::StatusOr<bool> s = StepTensorFinish(o, t[r], sum);
      ASSERT_TRUE(s.ok()) << s.status();
      ASSERT_TRUE(*s);
    }
  }
  double err = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    err += (whole[i] - sharded[i]) * double(whole[i] - sharded[i]);
    norm += whole[i] * double(whole[i]);
  }
  EXPECT_LT(std::sqrt(err / norm), c.options.optim_bits == 8 ? 1e-4 : 1e-6) << c.name;
}

INSTANTIATE_TEST_SUITE_P(All, StatelessTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

TEST(Stateless, NonFiniteSkipsAndBadInputChangesNothing) {
  LarsOptions o;
  o.momentum = 0.9;
  o.lr = 0.1;
  const int64_t n = 100;
  std::vector<float> p(n, 0.5f), g(n, 0.25f), m(n, 0.125f), small(n - 1);
  const std::vector<float> p0 = p, m0 = m;
  TensorStep t;
  t.param = HostView(p.data(), DType::kF32, n);
  t.grad = HostView(g.data(), DType::kF32, n);
  t.state.momentum = HostView(m.data(), DType::kF32, n);
  t.step = 3;
  g[17] = std::numeric_limits<float>::infinity();
  absl::StatusOr<bool> s = StepTensor(o, t);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(*s);  // nonfinite = skip (the default)
  EXPECT_EQ(p, p0);
  EXPECT_EQ(m, m0);
  g[17] = 0.25f;
  auto expect_error = [&](TensorStep bad, LarsOptions ob, const char* what) {
    absl::StatusOr<bool> r = StepTensor(ob, bad);
    EXPECT_FALSE(r.ok()) << what;
    EXPECT_EQ(p, p0) << what;
    EXPECT_EQ(m, m0) << what;
  };
  TensorStep bad = t;
  bad.state.momentum = HostView(small.data(), DType::kF32, n - 1);
  expect_error(bad, o, "short momentum");
  bad = t;
  bad.state.momentum = HostView(g.data(), DType::kF32, n);
  expect_error(bad, o, "momentum over the gradient");
  bad = t;
  bad.state = TensorState();
  expect_error(bad, o, "no state");
  LarsOptions q8 = o;
  q8.optim_bits = 8;
  q8.min_8bit_size = 0;
  std::vector<float> big_p(5000, 0.5f), big_g(5000, 0.1f), big_m(5000, 0.0f);
  TensorStep big;
  big.param = HostView(big_p.data(), DType::kF32, 5000);
  big.grad = HostView(big_g.data(), DType::kF32, 5000);
  big.state.momentum = HostView(big_m.data(), DType::kF32, 5000);
  EXPECT_FALSE(StepTensor(q8, big).ok());  // these options give 8-bit state
  EXPECT_EQ(big_p, std::vector<float>(5000, 0.5f));
  LarsOptions no_lr = o;
  no_lr.lr.reset();
  expect_error(t, no_lr, "no lr");
  LarsOptions pc = o;
  pc.percentile_clipping = 90;
  expect_error(t, pc, "percentile clipping");
  bad = t;
  bad.step = -1;
  expect_error(bad, o, "negative step");
}

TEST(Stateless, CAbiStepsAndRefuses) {
  lars_options_t o;
  ASSERT_EQ(lars_options_default(&o), LARS_OK);
  o.lr = 0.1;
  o.momentum = 0.9;
  int64_t shape = 64;
  std::vector<float> p(64, 0.5f), g(64, 0.25f), m(64, 0.0f);
  auto dl = [&](float* d) {
    DLTensor t{};
    t.data = d;
    t.device = {kDLCPU, 0};
    t.ndim = 1;
    t.dtype = {kDLFloat, 32, 1};
    t.shape = &shape;
    return t;
  };
  DLTensor dp = dl(p.data()), dg = dl(g.data()), dm = dl(m.data());
  int32_t kind = -1, stepped = -1;
  ASSERT_EQ(lars_tensor_state_kind(&o, 64, &kind), LARS_OK);
  EXPECT_EQ(kind, LARS_STATE_FP32);
  ASSERT_EQ(lars_step_tensor(&o, &dp, &dg, &dm, nullptr, nullptr, 0, 1.0, nullptr, &stepped),
            LARS_OK)
      << lars_last_error();
  EXPECT_EQ(stepped, 1);
  EXPECT_NE(p[0], 0.5f);
  const std::vector<float> p1 = p;
  EXPECT_NE(lars_step_tensor(&o, &dp, &dg, nullptr, nullptr, nullptr, 1, 1.0, nullptr, &stepped),
            LARS_OK);
  EXPECT_NE(std::string(lars_last_error()).find("momentum"), std::string::npos)
      << lars_last_error();
  EXPECT_NE(lars_step_tensor(&o, &dp, &dg, &dm, nullptr, nullptr, 1, 0.0, nullptr, &stepped),
            LARS_OK);
  EXPECT_EQ(p, p1);
}

}  // namespace
}  // namespace halide_lars
