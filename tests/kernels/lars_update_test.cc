// LARS with fp32 state (lars_norms_* + lars_update_* kernels through halide_lars::Lars) against
// the float64 reference (tests/reference/lars_reference.h) on every dtype x backend: CPU, OpenCL
// on pocl (the GPU schedule) and CUDA (skipped without a GPU).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "tests/reference/lars_reference.h"
#include "tests/reference/reference.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using reference::LarsRefState;
using testing::FromValues;
using testing::RelErr;
using testing::ReadValues;

// f32 tolerances (norm-wise relative error of p and m): CPU 1e-6, GPU schedules 1e-5.
double Tolerance(DeviceType d) { return d == DeviceType::kCPU ? 1e-6 : 1e-5; }

// One parameter on a device, its gradient buffer, and the reference's copy.
struct TestTensor {
  std::string name;
  DType dtype;
  Device device;
  DeviceBuffer p, g;
  std::vector<double> ref_p;
  LarsRefState ref_state;
  LarsOptions options;  // effective options (for the reference)

  TestTensor(std::string n, DType dt, Device dev, const std::vector<double>& init)
      : name(std::move(n)), dtype(dt), device(dev) {
    testing::HostTensor h = FromValues(dt, init);
    p = testing::ToDevice(h, dev);
    g = testing::ToDevice(FromValues(dt, std::vector<double>(init.size(), 0.0)), dev);
    ref_p = h.values;
  }

  // Uploads gradient values (rounded to dtype) and returns what was stored.
  std::vector<double> SetGrad(const std::vector<double>& values) {
    testing::HostTensor h = FromValues(dtype, values);
    EXPECT_TRUE(g.CopyFromHost(h.bytes.data()).ok());
    return h.values;
  }
};

struct Backend {
  DType dtype;
  DeviceType device;
};

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return absl::StrCat(DTypeName(info.param.dtype), "_", DeviceTypeName(info.param.device));
}

std::vector<Backend> AllBackends() {
  std::vector<Backend> out;
  for (DeviceType d : {DeviceType::kCPU, DeviceType::kOpenCL, DeviceType::kCUDA}) {
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) out.push_back({t, d});
  }
  return out;
}

// Both kernel orders where both exist (CPU), the default elsewhere.
std::vector<StepOrder> Orders(DeviceType d) {
  if (d == DeviceType::kCPU) return {StepOrder::kNormsFirst, StepOrder::kMomentumFirst};
  return {StepOrder::kAuto};
}

LarsOptions Base() {
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  return o;
}

// Runs `steps` steps of one tensor through Lars and through the reference. For f32 the two run
// independent trajectories (each computes its gradient from its own parameters); for f16/bf16
// the reference restarts every step from the kernel's stored p and m, and each stored element
// must be within one 16-bit rounding of the reference.
void RunAndCompare(const Backend& b, const LarsOptions& o, int64_t n, int steps, uint32_t seed,
                   const std::string& what) {
  const Device dev{b.device, 0};
  absl::StatusOr<Lars> opt = Lars::Create(o);
  ASSERT_TRUE(opt.ok()) << opt.status();
  TestTensor t("w", b.dtype, dev, testing::UniformValues(n, seed, -1.0, 1.0));
  ASSERT_TRUE(opt->AddParam("w", t.p.view(), t.g.view()).ok());
  const double tol = Tolerance(b.device);
  for (int step = 1; step <= steps; ++step) {
    const std::vector<double> kernel_p = ReadValues(t.p);
    if (b.dtype != DType::kF32) {
      // Teacher forcing: the reference starts this step from the kernel's state.
      t.ref_p = kernel_p;
      absl::StatusOr<ParamStateSnapshot> s = opt->GetState("w");
      ASSERT_TRUE(s.ok());
      t.ref_state.m.assign(s->momentum.begin(), s->momentum.end());
      if (!s->gnorm_vec.empty()) t.ref_state.gnorm_vec.assign(s->gnorm_vec.begin(), s->gnorm_vec.end());
    }
    const std::vector<double> g_kernel = t.SetGrad(testing::BowlGradient(kernel_p, step, seed));
    const std::vector<double> g_ref =
        b.dtype == DType::kF32 ? FromValues(b.dtype, testing::BowlGradient(t.ref_p, step, seed)).values : g_kernel;
    ASSERT_TRUE(opt->Step().ok()) << what << " step " << step;
    reference::LarsStep(o, b.dtype, g_ref, &t.ref_p, &t.ref_state);

    const std::vector<double> got = ReadValues(t.p);
    absl::StatusOr<ParamStateSnapshot> s = opt->GetState("w");
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(s->step, step);
    const std::vector<double> got_m(s->momentum.begin(), s->momentum.end());
    if (b.dtype == DType::kF32) {
      ASSERT_LE(RelErr(got, t.ref_p), tol) << what << " p, step " << step;
    } else {
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_LE(std::fabs(got[i] - t.ref_p[i]),
                  testing::StepTolerance(b.dtype, kernel_p[i], t.ref_p[i], got[i]))
            << what << " p[" << i << "] step " << step << ": " << got[i] << " vs " << t.ref_p[i];
      }
    }
    ASSERT_LE(RelErr(got_m, t.ref_state.m), b.dtype == DType::kF32 ? tol : 1e-5)
        << what << " momentum, step " << step;
    for (double v : got) ASSERT_TRUE(std::isfinite(v)) << what;
  }
}

class Lars32Test : public ::testing::TestWithParam<Backend> {};

TEST_P(Lars32Test, EdgeSizesMatchTheReference) {
  LARS_REQUIRE_DEVICE(GetParam().device);
  LarsOptions o = Base();
  o.weight_decay = 0.01;
  for (StepOrder order : Orders(GetParam().device)) {
    o.step_order = order;
    for (int64_t n : testing::EdgeSizes()) {
      if (n == 0) continue;  // zero-size parameters: ZeroSizeParameterOnlyCountsSteps
      RunAndCompare(GetParam(), o, n, 3, 11 + static_cast<uint32_t>(n),
                    absl::StrCat("n=", n, " ", StepOrderName(order)));
    }
  }
}

TEST_P(Lars32Test, EveryOptionCombination) {
  LARS_REQUIRE_DEVICE(GetParam().device);
  int combos = 0;
  for (auto [dampening, nesterov] : {std::pair{0.0, false}, std::pair{0.1, false}, std::pair{0.0, true}}) {
    for (double wd : {0.0, 0.01}) {
      for (double max_unorm : {0.0, 0.02, 1e6}) {
        for (int pct : {100, 5}) {
          for (TrustMode mode : {TrustMode::kClip, TrustMode::kClassic, TrustMode::kNone,
                                 TrustMode::kLarcClip, TrustMode::kExact}) {
            if (mode != TrustMode::kClip && max_unorm != 0.02) continue;  // max_unorm unused
            for (StepOrder order : Orders(GetParam().device)) {
            LarsOptions o = Base();
            o.step_order = order;
            o.dampening = dampening;
            o.nesterov = nesterov;
            o.weight_decay = wd;
            o.max_unorm = max_unorm;
            o.percentile_clipping = pct;
            o.trust_mode = mode;
            o.always_adapt = combos % 3 != 0;  // timm's coupling to weight decay, on and off
            o.lr_in_momentum = mode != TrustMode::kClip && combos % 2 == 0;  // optax's order
            const std::string what =
                absl::StrCat("always_adapt=", o.always_adapt, " lr_in_momentum=",
                             o.lr_in_momentum, " dampening=", dampening,
                             " nesterov=", nesterov, " wd=", wd,
                             " max_unorm=", max_unorm, " pct=", pct, " mode=", TrustModeName(mode),
                             " order=", StepOrderName(order));
            RunAndCompare(GetParam(), o, 1031, 4, 100 + combos, what);
            ++combos;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(combos, 3 * 2 * (3 + 4) * 2 * static_cast<int>(Orders(GetParam().device).size()));
}

TEST_P(Lars32Test, HundredStepTrajectory) {
  LARS_REQUIRE_DEVICE(GetParam().device);
  LarsOptions o = Base();
  o.weight_decay = 1e-3;
  o.lr = 0.05;
  for (StepOrder order : Orders(GetParam().device)) {
    o.step_order = order;
    RunAndCompare(GetParam(), o, 4097, 100, 5, absl::StrCat("clip ", StepOrderName(order)));
  }
  o.step_order = StepOrder::kAuto;
  o.trust_mode = TrustMode::kClassic;
  o.lr = 1.0;
  o.percentile_clipping = 10;
  RunAndCompare(GetParam(), o, 257, 100, 6, "classic+percentile");
}

// Gradients whose norm jumps by up to 100x from step to step, so percentile clipping is active
// on many steps and the ring's order statistic matters (index, ties, ring position mod 100).
TEST_P(Lars32Test, PercentileClippingFollowsTheRing) {
  LARS_REQUIRE_DEVICE(GetParam().device);
  const Device dev{GetParam().device, 0};
  for (int pct : {5, 50}) {
    LarsOptions o = Base();
    o.percentile_clipping = pct;
    o.max_unorm = 0.0;
    absl::StatusOr<Lars> opt = Lars::Create(o);
    ASSERT_TRUE(opt.ok());
    TestTensor t("w", GetParam().dtype, dev, testing::UniformValues(257, 4, -1, 1));
    ASSERT_TRUE(opt->AddParam("w", t.p.view(), t.g.view()).ok());
    std::mt19937 rng(pct);
    std::uniform_real_distribution<double> log_scale(-1.0, 1.0);
    int clipped = 0;
    for (int step = 1; step <= 130; ++step) {
      std::vector<double> g = testing::UniformValues(257, 1000 + step, -1, 1);
      const double scale = std::pow(10.0, log_scale(rng));
      for (double& v : g) v *= scale;
      if (GetParam().dtype != DType::kF32) t.ref_p = ReadValues(t.p);
      const std::vector<double> stored = t.SetGrad(g);
      ASSERT_TRUE(opt->Step().ok());
      const std::vector<double> before = t.ref_p;
      reference::LarsStep(o, t.dtype, stored, &t.ref_p, &t.ref_state);
      const std::vector<double> got = ReadValues(t.p);
      if (GetParam().dtype == DType::kF32) {
        ASSERT_LE(RelErr(got, t.ref_p), Tolerance(GetParam().device)) << "pct " << pct << " step " << step;
      } else {
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_LE(std::fabs(got[i] - t.ref_p[i]), 2 * testing::Ulp(t.dtype, t.ref_p[i]))
              << "pct " << pct << " step " << step << " i " << i;
        }
      }
      absl::StatusOr<ParamStateSnapshot> state = opt->GetState("w");
      ASSERT_TRUE(state.ok());
      ASSERT_EQ(state->gnorm_vec.size(), 100u);
      std::vector<double> ring(state->gnorm_vec.begin(), state->gnorm_vec.end());
      ASSERT_LE(RelErr(ring, t.ref_state.gnorm_vec), 1e-5) << "ring, step " << step;
      if (GetParam().dtype != DType::kF32) t.ref_state.gnorm_vec = ring;
      std::vector<double> sorted = t.ref_state.gnorm_vec;
      std::sort(sorted.begin(), sorted.end());
      double n2 = 0;
      for (double v : stored) n2 += v * v;
      if (n2 > sorted[pct] * (1 + 1e-6)) ++clipped;
    }
    EXPECT_GT(clipped, 20) << "the test must exercise clipping";
  }
}

TEST_P(Lars32Test, ZeroParamsAndZeroGradsNeverGiveNaN) {
  LARS_REQUIRE_DEVICE(GetParam().device);
  const Device dev{GetParam().device, 0};
  for (TrustMode mode : {TrustMode::kClip, TrustMode::kClassic}) {
    LarsOptions o = Base();
    o.trust_mode = mode;
    absl::StatusOr<Lars> opt = Lars::Create(o);
    ASSERT_TRUE(opt.ok());
    // zero params with a gradient; params with a zero gradient; both zero.
    TestTensor zp("zero_p", GetParam().dtype, dev, std::vector<double>(300, 0.0));
    TestTensor zg("zero_g", GetParam().dtype, dev, testing::UniformValues(300, 1, -1, 1));
    TestTensor zz("zero_both", GetParam().dtype, dev, std::vector<double>(300, 0.0));
    std::vector<TestTensor*> all = {&zp, &zg, &zz};
    for (TestTensor* t : all) ASSERT_TRUE(opt->AddParam(t->name, t->p.view(), t->g.view()).ok());
    for (int step = 1; step <= 3; ++step) {
      const std::vector<double> gp = zp.SetGrad(testing::UniformValues(300, 10 + step, -1, 1));
      const std::vector<double> g0(300, 0.0);
      zg.SetGrad(g0);
      zz.SetGrad(g0);
      ASSERT_TRUE(opt->Step().ok());
      reference::LarsStep(o, zp.dtype, gp, &zp.ref_p, &zp.ref_state);
      reference::LarsStep(o, zg.dtype, g0, &zg.ref_p, &zg.ref_state);
      reference::LarsStep(o, zz.dtype, g0, &zz.ref_p, &zz.ref_state);
      for (TestTensor* t : all) {
        const std::vector<double> got = ReadValues(t->p);
        for (double v : got) ASSERT_TRUE(std::isfinite(v)) << t->name;
        EXPECT_LE(RelErr(got, t->ref_p), 1e-5) << t->name << " " << TrustModeName(mode);
      }
    }
    // Clip mode with |p| = 0: bitsandbytes' clip gives scale 0, so p stays exactly 0.
    if (mode == TrustMode::kClip) {
      for (double v : ReadValues(zp.p)) EXPECT_EQ(v, 0.0);
    }
    for (double v : ReadValues(zg.p)) EXPECT_TRUE(std::isfinite(v));
  }
}

// The same steps from the same state give bit-identical parameters and momentum (deterministic
// reductions, no atomics) on every backend, including the GPU schedule on pocl.
TEST_P(Lars32Test, BitIdenticalAcrossRuns) {
  LARS_REQUIRE_DEVICE(GetParam().device);
  const Device dev{GetParam().device, 0};
  std::vector<std::vector<double>> results;
  for (int run = 0; run < 2; ++run) {
    LarsOptions o = Base();
    o.weight_decay = 0.01;
    o.percentile_clipping = 20;
    absl::StatusOr<Lars> opt = Lars::Create(o);
    ASSERT_TRUE(opt.ok());
    TestTensor t("w", GetParam().dtype, dev, testing::UniformValues((1 << 16) + 5, 77, -1, 1));
    ASSERT_TRUE(opt->AddParam("w", t.p.view(), t.g.view()).ok());
    for (int step = 1; step <= 5; ++step) {
      t.SetGrad(testing::UniformValues((1 << 16) + 5, 500 + step, -1, 1));
      ASSERT_TRUE(opt->Step().ok());
    }
    std::vector<double> r = ReadValues(t.p);
    absl::StatusOr<ParamStateSnapshot> s = opt->GetState("w");
    ASSERT_TRUE(s.ok());
    r.insert(r.end(), s->momentum.begin(), s->momentum.end());
    results.push_back(r);
  }
  ASSERT_EQ(results[0].size(), results[1].size());
  for (size_t i = 0; i < results[0].size(); ++i) {
    ASSERT_EQ(results[0][i], results[1][i]) << "element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllKernels, Lars32Test, ::testing::ValuesIn(AllBackends()), BackendName);

// ---- Optimizer semantics (CPU) ----

TEST(Lars32, ParametersWithoutGradientAreSkipped) {
  absl::StatusOr<Lars> opt = Lars32bit::Create(Base());
  ASSERT_TRUE(opt.ok());
  TestTensor a("a", DType::kF32, Device::Cpu(), testing::UniformValues(100, 1, -1, 1));
  TestTensor b("b", DType::kF32, Device::Cpu(), testing::UniformValues(100, 2, -1, 1));
  ASSERT_TRUE(opt->AddParam("a", a.p.view(), a.g.view()).ok());
  ASSERT_TRUE(opt->AddParam("b", b.p.view(), TensorView{}).ok());  // no gradient yet
  a.SetGrad(testing::UniformValues(100, 3, -1, 1));
  const std::vector<double> b_before = ReadValues(b.p);
  ASSERT_TRUE(opt->Step().ok());
  EXPECT_EQ(ReadValues(b.p), b_before);
  EXPECT_EQ(opt->GetState("b")->step, 0);
  EXPECT_EQ(opt->GetState("a")->step, 1);
  const absl::StatusOr<ParamStateSnapshot> b_state = opt->GetState("b");
  ASSERT_TRUE(b_state.ok());
  for (float m : b_state->momentum) EXPECT_EQ(m, 0.0f);
  // Gradient given, then removed again.
  ASSERT_TRUE(opt->SetGrad("b", b.g.view()).ok());
  b.SetGrad(testing::UniformValues(100, 4, -1, 1));
  ASSERT_TRUE(opt->Step().ok());
  EXPECT_EQ(opt->GetState("b")->step, 1);
  ASSERT_TRUE(opt->SetGrad("a", TensorView{}).ok());
  const std::vector<double> a_before = ReadValues(a.p);
  ASSERT_TRUE(opt->Step().ok());
  EXPECT_EQ(ReadValues(a.p), a_before);
  EXPECT_EQ(opt->GetState("a")->step, 2);
  EXPECT_EQ(opt->GetState("b")->step, 2);
}

TEST(Lars32, ZeroSizeParameterOnlyCountsSteps) {
  absl::StatusOr<Lars> opt = Lars::Create(Base());
  ASSERT_TRUE(opt.ok());
  ASSERT_TRUE(opt->AddParam("empty", TensorView{nullptr, DType::kF32, 0, Device::Cpu()},
                            TensorView{nullptr, DType::kF32, 0, Device::Cpu()})
                  .ok());
  ASSERT_TRUE(opt->Step().ok());
  EXPECT_EQ(opt->GetState("empty")->step, 1);
}

TEST(Lars32, OverridesAndGroupsAreApplied) {
  LarsOptions o = Base();
  o.weight_decay = 0.05;
  absl::StatusOr<Lars> opt = Lars::Create(o);
  ASSERT_TRUE(opt.ok());
  absl::StatusOr<int> slow = opt->AddParamGroup({{"lr", 0.01}, {"trust_mode", "classic"}});
  ASSERT_TRUE(slow.ok());
  TestTensor w("w", DType::kF32, Device::Cpu(), testing::UniformValues(500, 1, -1, 1));
  TestTensor bias("bias", DType::kF32, Device::Cpu(), testing::UniformValues(50, 2, -1, 1));
  TestTensor emb("emb", DType::kF32, Device::Cpu(), testing::UniformValues(700, 3, -1, 1));
  ASSERT_TRUE(opt->AddParam("w", w.p.view(), w.g.view()).ok());
  ASSERT_TRUE(opt->AddParam("bias", bias.p.view(), bias.g.view()).ok());
  ASSERT_TRUE(opt->AddParam("emb", emb.p.view(), emb.g.view(), *slow).ok());
  ASSERT_TRUE(opt->OverrideConfig("bias", "weight_decay", 0.0).ok());
  ASSERT_TRUE(opt->OverrideConfig("bias", "trust_mode", "none").ok());
  w.options = o;
  bias.options = o;
  bias.options.weight_decay = 0.0;
  bias.options.trust_mode = TrustMode::kNone;
  emb.options = o;
  emb.options.lr = 0.01;
  emb.options.trust_mode = TrustMode::kClassic;
  for (TestTensor* t : {&w, &bias, &emb}) {
    absl::StatusOr<LarsOptions> eff = opt->EffectiveOptions(t->name);
    ASSERT_TRUE(eff.ok());
    EXPECT_EQ(*eff->lr, *t->options.lr) << t->name;
    EXPECT_EQ(eff->weight_decay, t->options.weight_decay) << t->name;
    EXPECT_EQ(eff->trust_mode, t->options.trust_mode) << t->name;
  }
  for (int step = 1; step <= 20; ++step) {
    if (step == 10) {  // a learning-rate schedule on group 1
      ASSERT_TRUE(opt->SetGroupOption(*slow, "lr", 0.005).ok());
      emb.options.lr = 0.005;
    }
    for (TestTensor* t : {&w, &bias, &emb}) {
      const std::vector<double> g = t->SetGrad(testing::BowlGradient(t->ref_p, step, 9));
      reference::LarsStep(t->options, DType::kF32, g, &t->ref_p, &t->ref_state);
    }
    ASSERT_TRUE(opt->Step().ok());
    for (TestTensor* t : {&w, &bias, &emb}) {
      ASSERT_LE(RelErr(ReadValues(t->p), t->ref_p), 1e-6) << t->name << " step " << step;
    }
  }
  // The override really changed the result: the bias with the default options would differ.
  TestTensor check("bias", DType::kF32, Device::Cpu(), testing::UniformValues(50, 2, -1, 1));
  for (int step = 1; step <= 20; ++step) {
    reference::LarsStep(o, DType::kF32, FromValues(DType::kF32, testing::BowlGradient(check.ref_p, step, 9)).values,
                        &check.ref_p, &check.ref_state);
  }
  EXPECT_GT(RelErr(ReadValues(bias.p), check.ref_p), 1e-3);
}

// A model-shaped set: ResNet-50's layer kinds, scaled down (conv/fc weights with weight decay and
// the trust clip; biases and batch-norm weights without either), 100 steps on every backend.
class Lars32ModelTest : public ::testing::TestWithParam<DeviceType> {};

TEST_P(Lars32ModelTest, ResNetShapedSetMatchesTheReferenceOver100Steps) {
  LARS_REQUIRE_DEVICE(GetParam());
  const Device dev{GetParam(), 0};
  LarsOptions o = Base();
  o.weight_decay = 5e-5;
  o.lr = 0.2;
  absl::StatusOr<Lars> opt = Lars::Create(o);
  ASSERT_TRUE(opt.ok());
  // (name, numel): 7x7 stem, bottleneck convs, bn weights/biases, fc.
  const std::vector<std::pair<std::string, int64_t>> shapes = {
      {"conv1.weight", 64 * 3 * 7 * 7 / 4}, {"bn1.weight", 64},  {"bn1.bias", 64},
      {"layer1.conv1.weight", 64 * 64 / 2},  {"layer1.bn1.weight", 64},
      {"layer1.conv2.weight", 64 * 64 * 9 / 8}, {"layer1.bn2.bias", 64},
      {"layer2.conv1.weight", 128 * 64 / 2}, {"layer2.downsample.weight", 128 * 64 / 2},
      {"layer3.conv2.weight", 256 * 256 * 9 / 64}, {"fc.weight", 100 * 256}, {"fc.bias", 100}};
  std::vector<std::unique_ptr<TestTensor>> tensors;
  uint32_t seed = 1;
  for (const auto& [name, n] : shapes) {
    tensors.push_back(std::make_unique<TestTensor>(name, DType::kF32, dev, testing::UniformValues(n, seed++, -0.5, 0.5)));
    TestTensor& t = *tensors.back();
    ASSERT_TRUE(opt->AddParam(name, t.p.view(), t.g.view()).ok());
    t.options = o;
    if (name.find("bn") != std::string::npos || name.find("bias") != std::string::npos) {
      ASSERT_TRUE(opt->OverrideConfig(name, "weight_decay", 0.0).ok());
      ASSERT_TRUE(opt->OverrideConfig(name, "max_unorm", 0.0).ok());
      t.options.weight_decay = 0.0;
      t.options.max_unorm = 0.0;
    }
  }
  for (int step = 1; step <= 100; ++step) {
    for (auto& t : tensors) {
      std::vector<double> g = testing::BowlGradient(ReadValues(t->p), step, 3);
      t->SetGrad(g);
      g = FromValues(DType::kF32, testing::BowlGradient(t->ref_p, step, 3)).values;
      reference::LarsStep(t->options, DType::kF32, g, &t->ref_p, &t->ref_state);
    }
    ASSERT_TRUE(opt->Step().ok());
  }
  for (auto& t : tensors) {
    EXPECT_LE(RelErr(ReadValues(t->p), t->ref_p), Tolerance(GetParam())) << t->name;
    EXPECT_EQ(opt->GetState(t->name)->step, 100);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Lars32ModelTest,
                         ::testing::Values(DeviceType::kCPU, DeviceType::kOpenCL, DeviceType::kCUDA),
                         [](const ::testing::TestParamInfo<DeviceType>& info) {
                           return std::string(DeviceTypeName(info.param));
                         });

}  // namespace
}  // namespace halide_lars
