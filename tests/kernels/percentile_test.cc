// percentile_clip (generators/percentile_generator.cc) called directly on every backend (CPU;
// OpenCL on pocl, never skipped; CUDA where a GPU exists) against the float64 reference's
// percentile clipping (tests/reference/lars_reference.h PercentileClip): 250 steps per case, so
// the ring wraps twice, for low/median/high percentiles, ties, spikes, and an AMP inverse scale
// (power of two: exact; 0.75: rounded once). The ring must match bit for bit, the scale to fp32.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lars/step.h"
#include "runtime/device_buffer.h"
#include "runtime/lars_kernels.h"
#include "runtime/registry.h"
#include "tests/reference/lars_reference.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using internal::RingStep;  // the ring step the optimizer passes

// Σg² of step `step`: log-uniform over 6 decades, with runs of equal values (ties in the ranking)
// and rare spikes of 1e4x (what percentile clipping exists for).
std::vector<float> GradSumSquares(int steps, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> n2;
  float v = 1.0f;
  for (int i = 0; i < steps; ++i) {
    if (i % 17 >= 3) v = static_cast<float>(std::pow(10.0, 6.0 * u(rng) - 3.0));  // else: a tie
    n2.push_back(i % 41 == 40 ? v * 1e4f : v);
  }
  return n2;
}

struct Case {
  DeviceType device;
  int percentile;
  float inv_scale;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  std::string s = std::string(DeviceTypeName(c.device)) + "_p" + std::to_string(c.percentile);
  if (c.inv_scale != 1.0f) s += c.inv_scale == 0.75f ? "_unscale075" : "_unscale2powm10";
  return s;
}

std::vector<Case> AllCases() {
  std::vector<Case> out;
  for (DeviceType d : {DeviceType::kCPU, DeviceType::kOpenCL, DeviceType::kCUDA}) {
    for (int p : {1, 5, 50, 90, 99}) out.push_back({d, p, 1.0f});
    out.push_back({d, 90, 1.0f / 1024.0f});
    out.push_back({d, 50, 0.75f});
  }
  return out;
}

class PercentileClipTest : public ::testing::TestWithParam<Case> {};

TEST_P(PercentileClipTest, RingAndScaleMatchFloat64ReferenceOver250Steps) {
  const Case& c = GetParam();
  LARS_REQUIRE_DEVICE(c.device);
  const Device dev{c.device, 0};
  ASSERT_TRUE(FindKernelInfo(Op::kPercentileClip, DType::kF32, c.device).ok());
  DeviceBuffer ring = testing::ToDevice(
      testing::FromValues(DType::kF32, std::vector<double>(100, -1.0)), dev);
  std::vector<double> ref_ring;
  const std::vector<float> n2 = GradSumSquares(250, 17 + c.percentile);
  int clipped = 0;
  for (int64_t step = 1; step <= 250; ++step) {
    // The kernel reads Σg² of the gradient as given (scaled by 1/inv_scale, as under AMP) ...
    const float scaled = n2[step - 1] / (c.inv_scale * c.inv_scale);
    DeviceBuffer gnorm = testing::ToDevice(testing::FromValues(DType::kF32, {scaled, 123.0}), dev);
    DeviceBuffer gscale =
        testing::ToDevice(testing::FromValues(DType::kF32, {std::nan("")}), dev);
    PercentileArgs a;
    a.ring = ring.view();
    a.gnorm = gnorm.view();
    a.gscale = gscale.view();
    a.ring_step = RingStep(step);
    a.percentile = c.percentile;
    a.inv_scale = c.inv_scale;
    ASSERT_TRUE(RunPercentileClip(a, ExecContext{}).ok());
    // ... and the ring holds the unscaled Σg², as fp32 computes it.
    const double unscaled = static_cast<float>(static_cast<float>(scaled * c.inv_scale) * c.inv_scale);
    const double s = reference::PercentileClip(unscaled, step, c.percentile, &ref_ring);
    clipped += s < 1.0;
    const std::vector<float> got_ring = testing::ReadF32(ring);
    for (int i = 0; i < 100; ++i) {
      ASSERT_EQ(got_ring[i], ref_ring[i]) << "step " << step << " slot " << i;
    }
    const double want = c.inv_scale * s;
    const float got = testing::ReadF32(gscale)[0];
    ASSERT_NEAR(got, want, 1e-6 * want) << "step " << step << " n2 " << unscaled;
  }
  // Both branches are exercised: a low percentile clips most steps, none clips all (the first
  // step fills the ring with its own Σg²). At 99 the threshold is the ring's maximum, which
  // holds this step's Σg²: it never clips.
  if (c.percentile == 99) {
    EXPECT_EQ(clipped, 0);
  } else {
    EXPECT_GT(clipped, 0);
    EXPECT_LT(clipped, 250);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, PercentileClipTest, ::testing::ValuesIn(AllCases()), CaseName);

// The first step fills every slot with its Σg² and never clips (the ring is all that value).
TEST(PercentileClipFirstStep, FillsTheRingAndKeepsScaleOne) {
  DeviceBuffer ring = testing::ToDevice(
      testing::FromValues(DType::kF32, std::vector<double>(100, 7.0)), Device::Cpu());
  DeviceBuffer gnorm = testing::ToDevice(testing::FromValues(DType::kF32, {16.0, 0.0}), Device::Cpu());
  DeviceBuffer gscale = testing::ToDevice(testing::FromValues(DType::kF32, {0.0}), Device::Cpu());
  PercentileArgs a;
  a.ring = ring.view();
  a.gnorm = gnorm.view();
  a.gscale = gscale.view();
  a.ring_step = 1;
  a.percentile = 5;
  ASSERT_TRUE(RunPercentileClip(a, ExecContext{}).ok());
  EXPECT_EQ(testing::ReadF32(ring), std::vector<float>(100, 16.0f));
  EXPECT_EQ(testing::ReadF32(gscale)[0], 1.0f);
}

}  // namespace
}  // namespace halide_lars
