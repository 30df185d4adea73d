// Non-finite gradients: nonfinite=skip leaves that parameter and its state bit-identical (and
// counts it), nonfinite=error refuses the whole step and changes nothing, nonfinite=propagate is
// bitsandbytes' behaviour. Every state kind, with and without percentile clipping, CPU and the
// GPU schedule on pocl.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using testing::FromValues;
using testing::ReadValues;

struct Kind {
  const char* name;
  int optim_bits;
  bool block_wise;
};

std::vector<double> Values(int64_t n, double scale, int seed) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37 * i + seed);
  return v;
}

class NonfiniteTest : public ::testing::TestWithParam<DeviceType> {};

TEST_P(NonfiniteTest, SkipErrorAndPropagate) {
  LARS_REQUIRE_DEVICE(GetParam());
  const Device dev{GetParam(), 0};
  const int64_t n = 5000;
  for (Kind kind : {Kind{"fp32", 32, true}, Kind{"blockwise8", 8, true}, Kind{"tensor8", 8, false}}) {
    for (int pct : {100, 20}) {
      for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()}) {
        for (const char* mode : {"skip", "error", "propagate"}) {
          const std::string what = absl::StrCat(kind.name, " pct=", pct, " bad=", bad, " ", mode);
          LarsOptions o;
          o.lr = 0.1;
          o.momentum = 0.9;
          o.weight_decay = 0.01;
          o.optim_bits = kind.optim_bits;
          o.block_wise = kind.block_wise;
          o.percentile_clipping = pct;
          absl::Status set = SetOption(&o, "nonfinite", mode);
          ASSERT_TRUE(set.ok()) << set;
          absl::StatusOr<Lars> opt = Lars::Create(o);
          ASSERT_TRUE(opt.ok());
          DeviceBuffer pa = testing::ToDevice(FromValues(DType::kF32, Values(n, 1, 1)), dev);
          DeviceBuffer ga = testing::ToDevice(FromValues(DType::kF32, Values(n, 0.1, 2)), dev);
          DeviceBuffer pb = testing::ToDevice(FromValues(DType::kF32, Values(n, 1, 3)), dev);
          DeviceBuffer gb = testing::ToDevice(FromValues(DType::kF32, Values(n, 0.1, 4)), dev);
          ASSERT_TRUE(opt->AddParam("a", pa.view(), ga.view()).ok());
          ASSERT_TRUE(opt->AddParam("b", pb.view(), gb.view()).ok());
          ASSERT_TRUE(opt->Step().ok()) << what;  // one good step: non-trivial state
          // "a" gets a gradient with one bad element.
          std::vector<double> g = Values(n, 0.1, 5);
          g[1234] = bad;
          ASSERT_TRUE(ga.CopyFromHost(FromValues(DType::kF32, g).bytes.data()).ok());
          absl::StatusOr<std::string> before = opt->SaveState();
          const std::vector<double> pa_before = ReadValues(pa), pb_before = ReadValues(pb);
          const absl::Status s = opt->Step();
          const std::vector<double> pa_after = ReadValues(pa), pb_after = ReadValues(pb);
          if (std::string(mode) == "error") {
            EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << what;
            EXPECT_NE(s.message().find("a: gradient has NaN or Inf"), absl::string_view::npos) << s;
            EXPECT_TRUE(*opt->SaveState() == *before) << what << ": state changed";
            EXPECT_EQ(pa_after, pa_before) << what;
            EXPECT_EQ(pb_after, pb_before) << what << ": the good parameter was stepped";
            continue;
          }
          ASSERT_TRUE(s.ok()) << what << ": " << s;
          EXPECT_NE(pb_after, pb_before) << what << ": the good parameter must step";
          EXPECT_EQ(opt->GetState("b")->step, 2);
          if (std::string(mode) == "skip") {
            // Bit-identical parameter and state; the step count does not move.
            ASSERT_EQ(std::memcmp(pa_after.data(), pa_before.data(), n * sizeof(double)), 0) << what;
            absl::StatusOr<ParamStateSnapshot> st = opt->GetState("a");
            EXPECT_EQ(st->step, 1) << what;
            EXPECT_EQ(st->skipped_steps, 1) << what;
            EXPECT_EQ(opt->SkippedSteps(), 1);
            for (float m : st->momentum) ASSERT_TRUE(std::isfinite(m)) << what;
            // ... and the next finite step works normally.
            ASSERT_TRUE(ga.CopyFromHost(FromValues(DType::kF32, Values(n, 0.1, 6)).bytes.data()).ok());
            ASSERT_TRUE(opt->Step().ok());
            EXPECT_EQ(opt->GetState("a")->step, 2);
            for (double v : ReadValues(pa)) ASSERT_TRUE(std::isfinite(v)) << what;
          } else {  // propagate: bitsandbytes' behaviour, the non-finite value reaches p
            bool any_nonfinite = false;
            for (double v : pa_after) any_nonfinite |= !std::isfinite(v);
            EXPECT_TRUE(any_nonfinite) << what;
            EXPECT_EQ(opt->GetState("a")->step, 2);
            EXPECT_EQ(opt->SkippedSteps(), 0);
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, NonfiniteTest,
                         ::testing::Values(DeviceType::kCPU, DeviceType::kOpenCL, DeviceType::kCUDA),
                         [](const ::testing::TestParamInfo<DeviceType>& info) {
                           return std::string(DeviceTypeName(info.param));
                         });

TEST(Nonfinite, OptionIsValidated) {
  LarsOptions o;
  EXPECT_EQ(o.nonfinite, Nonfinite::kSkip);
  EXPECT_FALSE(SetOption(&o, "nonfinite", "ignore").ok());
  EXPECT_FALSE(SetOption(&o, "nonfinite", 1.0).ok());
}

}  // namespace
}  // namespace halide_lars
