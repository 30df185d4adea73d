// norms_<dtype>_<backend> (generators/norms_generator.cc) against the float64 reference, for
// every row of generators/kernels.inc: CPU, CUDA (skipped without a GPU) and OpenCL (on pocl: the
// GPU schedule runs on every test run).
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "HalideRuntime.h"
#include "gtest/gtest.h"
#include "runtime/device_buffer.h"
#include "runtime/halide_call.h"
#include "runtime/norms.h"
#include "runtime/registry.h"
#include "tests/cpu_subtargets.h"
#include "tests/norms_check.h"
#include "tests/reference/reference.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using testing::EdgeSizes;
using testing::HostTensor;
using testing::NormsMatchReference;
using testing::RandomTensor;

std::array<float, 2> RunNorms(const DeviceBuffer& x) {
  absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(x.view().device, DType::kF32, 2);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {NAN, NAN};
  const absl::Status s = SumSqMaxAbs(x.view(), out->view());
  EXPECT_TRUE(s.ok()) << s;
  std::vector<float> v = testing::ReadF32(*out);
  return {v[0], v[1]};
}

uint64_t Bits(const std::array<float, 2>& v) {
  uint64_t u;
  std::memcpy(&u, v.data(), 8);
  return u;
}

std::vector<const KernelInfo*> NormsKernels() {
  std::vector<const KernelInfo*> out;
  for (const KernelInfo& k : AllKernels()) {
    if (k.op == Op::kNorms) out.push_back(&k);
  }
  return out;
}

class NormsTest : public ::testing::TestWithParam<const KernelInfo*> {
 protected:
  Device device() const { return Device{GetParam()->device, 0}; }
  DType dtype() const { return GetParam()->dtype; }
};

TEST_P(NormsTest, MatchesFloat64ReferenceOnEdgeSizes) {
  LARS_REQUIRE_DEVICE(GetParam()->device);
  for (int64_t n : EdgeSizes()) {
    HostTensor x = RandomTensor(dtype(), n, 1000 + static_cast<uint32_t>(n));
    testing::SetTailSentinel(&x);
    DeviceBuffer xb = testing::ToDevice(x, device());
    EXPECT_TRUE(NormsMatchReference(RunNorms(xb), reference::Norms(x.values))) << "n=" << n;
  }
}

TEST_P(NormsTest, MatchesFloat64ReferenceOn40MElements) {
  LARS_REQUIRE_DEVICE(GetParam()->device);
  const int64_t n = 40'000'000;  // > 2^24: fp32 sequential accumulation would stall here
  HostTensor x = RandomTensor(dtype(), n, 7, 3.0);
  DeviceBuffer xb = testing::ToDevice(x, device());
  EXPECT_TRUE(NormsMatchReference(RunNorms(xb), reference::Norms(x.values)));
}

TEST_P(NormsTest, SpecialValuesZerosAndLargeMagnitudes) {
  LARS_REQUIRE_DEVICE(GetParam()->device);
  // All zeros (the trust-ratio corner case), then one huge value among small ones.
  for (double big : {0.0, 1000.0}) {
    HostTensor x = RandomTensor(dtype(), 4097, 5, 0.0);
    x.values[4000] = big;
    const float bigf = static_cast<float>(big);
    if (dtype() == DType::kF32) {
      std::memcpy(&x.bytes[4 * 4000], &bigf, 4);
    } else {
      const uint16_t h = dtype() == DType::kF16 ? reference::F32ToF16Bits(bigf)
                                                : reference::F32ToBF16Bits(bigf);
      std::memcpy(&x.bytes[2 * 4000], &h, 2);
    }
    DeviceBuffer xb = testing::ToDevice(x, device());
    const std::array<float, 2> got = RunNorms(xb);
    EXPECT_TRUE(NormsMatchReference(got, reference::Norms(x.values))) << "big=" << big;
    if (big == 0.0) {
      EXPECT_EQ(Bits(got), 0u) << "zeros must give exactly +0";
    }
  }
}

TEST_P(NormsTest, BitIdenticalAcrossRunsAndThreadCounts) {
  LARS_REQUIRE_DEVICE(GetParam()->device);
  HostTensor x = RandomTensor(dtype(), (1 << 20) + 3, 99);
  DeviceBuffer xb = testing::ToDevice(x, device());
  const uint64_t first = Bits(RunNorms(xb));
  for (int threads : {1, 2, 3, 0}) {  // 0 restores Halide's default (HL_NUM_THREADS or cores)
    halide_set_num_threads(threads);
    for (int rep = 0; rep < 2; ++rep) {
      EXPECT_EQ(Bits(RunNorms(xb)), first) << "threads=" << threads << " rep=" << rep;
    }
  }
}

TEST_P(NormsTest, AgreesWithTheCpuKernel) {
  LARS_REQUIRE_DEVICE(GetParam()->device);
  if (GetParam()->device == DeviceType::kCPU) GTEST_SKIP() << "this is the CPU kernel";
  for (int64_t n : {int64_t{257}, int64_t{(1 << 20) + 3}}) {
    HostTensor x = RandomTensor(dtype(), n, 31);
    DeviceBuffer on_device = testing::ToDevice(x, device());
    DeviceBuffer on_cpu = testing::ToDevice(x, Device::Cpu());
    const std::array<float, 2> a = RunNorms(on_device), b = RunNorms(on_cpu);
    EXPECT_NEAR(a[0], b[0], 2e-5 * b[0]) << "n=" << n;
    EXPECT_EQ(a[1], b[1]) << "n=" << n;
  }
}

INSTANTIATE_TEST_SUITE_P(AllKernels, NormsTest, ::testing::ValuesIn(NormsKernels()),
                         [](const ::testing::TestParamInfo<const KernelInfo*>& info) {
                           return std::string(info.param->name);
                         });

// Each ISA variant of the CPU multitarget libraries, called directly (the dispatcher only ever
// runs the best one on this machine).
TEST(NormsCpuSubtargets, EveryIsaVariantMatchesTheReference) {
  using Fn = KernelSignature<Op::kNorms>::type;
  int tested = 0;
  for (const testing::CpuSubtarget& s : testing::CpuSubtargets()) {
    if (s.op != Op::kNorms) continue;
    if (!s.supported()) {
      std::printf("%s %s: not supported by this CPU, skipped\n", s.name, s.target);
      continue;
    }
    for (int64_t n : {int64_t{1}, int64_t{4097}, int64_t{(1 << 20) + 3}}) {
      HostTensor x = RandomTensor(s.dtype, n, 17);
      internal::CallContext ctx;
      ASSERT_TRUE(internal::MakeCallContext(Device::Cpu(), {}, &ctx).ok());
      std::array<float, 2> got{};
      TensorView xv{x.bytes.data(), s.dtype, n, Device::Cpu()};
      TensorView ov{got.data(), DType::kF32, 2, Device::Cpu()};
      internal::BufferView xb(xv, &ctx), ob(ov, &ctx);
      ASSERT_EQ(reinterpret_cast<Fn>(s.fn)(&ctx, xb.raw(), ob.raw()), 0) << ctx.error;
      EXPECT_TRUE(NormsMatchReference(got, reference::Norms(x.values)))
          << s.name << " " << s.target << " n=" << n;
    }
    ++tested;
  }
  EXPECT_GE(tested, 2);  // the baseline and AVX2 everywhere CI runs; AVX-512 where present
}

}  // namespace
}  // namespace halide_lars
