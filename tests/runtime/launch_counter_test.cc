// //runtime:launch_counter counts the kernels Halide's runtime launches: on OpenCL (pocl) on
// every test run, on CUDA where there is a GPU (the GPU kit). A step launches a few kernels per
// tensor; a flat-parameter step at most 4 per state kind (the GPU target), whatever the count.
#include <vector>

#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "runtime/launch_counter.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

LarsOptions Options(int bits) {
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.optim_bits = bits;
  return o;
}

// Launches of the device's API since the last reset.
int64_t Launches(DeviceType t) {
  const KernelLaunches k = CountedKernelLaunches();
  return t == DeviceType::kCUDA ? k.cuda : k.opencl;
}

class LaunchCounterTest : public ::testing::TestWithParam<DeviceType> {};

TEST_P(LaunchCounterTest, CountsEveryKernelOfAStep) {
  LARS_REQUIRE_DEVICE(GetParam());
  ASSERT_TRUE(LaunchCounterLinked());
  const DeviceType type = GetParam();
  const DeviceType other = type == DeviceType::kCUDA ? DeviceType::kOpenCL : DeviceType::kCUDA;
  const Device dev = type == DeviceType::kCUDA ? Device::Cuda() : Device::OpenCL();
  const std::vector<int64_t> sizes = {5000, 300, 7, 9000};
  // Per-tensor parameters: a step launches a few kernels per tensor.
  std::vector<DeviceBuffer> p, g;
  absl::StatusOr<Lars> opt = Lars::Create(Options(32));
  ASSERT_TRUE(opt.ok());
  for (size_t i = 0; i < sizes.size(); ++i) {
    p.push_back(testing::ToDevice(testing::RandomTensor(DType::kF32, sizes[i], 1 + i), dev));
    g.push_back(testing::ToDevice(testing::RandomTensor(DType::kF32, sizes[i], 9 + i), dev));
    ASSERT_TRUE(opt->AddParam("t" + std::to_string(i), p[i].view(), g[i].view()).ok());
  }
  ASSERT_TRUE(opt->Step().ok());  // first step: programs compiled, buffers made
  ResetKernelLaunches();
  ASSERT_TRUE(opt->Step().ok());
  const int64_t per_tensor = Launches(type);
  EXPECT_EQ(Launches(other), 0);
  EXPECT_GE(per_tensor, 2 * static_cast<int64_t>(sizes.size())) << "norms + update per tensor";
  EXPECT_LE(per_tensor, 8 * static_cast<int64_t>(sizes.size()));

  // The same tensors as flat parameters, fp32 and 8-bit state: launches per flat set, whatever
  // the tensor count.
  for (int bits : {32, 8}) {
    absl::StatusOr<Lars> flat = Lars::Create(Options(bits));
    ASSERT_TRUE(flat.ok());
    std::vector<FlatParam> tensors;
    for (size_t i = 0; i < sizes.size(); ++i) {
      tensors.push_back({"t" + std::to_string(i), sizes[i], -1, 0});
    }
    absl::StatusOr<FlatBuffers> buffers = flat->AllocateFlatParams(dev, DType::kF32, &tensors);
    ASSERT_TRUE(buffers.ok()) << buffers.status();
    ASSERT_TRUE(flat->Step().ok());
    ResetKernelLaunches();
    ASSERT_TRUE(flat->Step().ok());
    const int64_t flat_set = Launches(type);
    const int kinds = bits == 8 ? 2 : 1;  // 8-bit: the small tensors keep an fp32 flat set
    EXPECT_GE(flat_set, 2 * kinds) << bits;
    EXPECT_LE(flat_set, 4 * kinds) << bits << "-bit flat-set step: at most 4 launches per state kind";
    EXPECT_LT(flat_set, per_tensor);
    RecordProperty(bits == 8 ? "flat8_launches" : "flat32_launches", static_cast<int>(flat_set));
  }
  RecordProperty("per_tensor_launches", static_cast<int>(per_tensor));
}

INSTANTIATE_TEST_SUITE_P(Devices, LaunchCounterTest,
                         ::testing::Values(DeviceType::kOpenCL, DeviceType::kCUDA),
                         [](const auto& info) { return std::string(DeviceTypeName(info.param)); });

}  // namespace
}  // namespace halide_lars
