// Test helpers: random tensors of any dtype on any device, device checks with reasons.
#ifndef HALIDE_LARS_TESTS_TEST_UTIL_H_
#define HALIDE_LARS_TESTS_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "runtime/device_buffer.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace testing {

// The size list of DESIGN.md (tile edges, primes, large+3).
const std::vector<int64_t>& EdgeSizes();

// Host-side tensor data in a given dtype: raw bytes plus the exact values they represent.
struct HostTensor {
  DType dtype = DType::kF32;
  std::vector<uint8_t> bytes;
  std::vector<double> values;  // what the stored elements are, exactly
  int64_t numel() const { return static_cast<int64_t>(values.size()); }
};

// Uniform values in [-scale, scale) rounded to `dtype`, deterministic in `seed`.
HostTensor RandomTensor(DType dtype, int64_t n, uint32_t seed, double scale = 1.0);

// Values rounded to `dtype` (through fp32, to nearest even).
HostTensor FromValues(DType dtype, const std::vector<double>& values);

// The exact values a device tensor of any dtype holds.
std::vector<double> ReadValues(const DeviceBuffer& b);

// n values uniform in [lo, hi), deterministic in `seed`.
std::vector<double> UniformValues(int64_t n, uint32_t seed, double lo, double hi);

// Norm-wise relative error |got - want| / |want| (absolute when want is 0).
double RelErr(const std::vector<double>& got, const std::vector<double>& want);

// The gradient of a noisy quadratic bowl at p (0.8 (p - 0.25) + noise(step, seed)), so that
// optimizer trajectories depend on the parameters they reach.
std::vector<double> BowlGradient(const std::vector<double>& p, int step, uint32_t seed);

// One unit in the last place of `dtype` at |v| (subnormal spacing below the smallest normal).
double Ulp(DType dtype, double v);

// The largest acceptable |got - ref| for one parameter element after one step computed in fp32
// (p_new = p - lr*scale*u): one rounding of the stored dtype, a few fp32 roundings of p, and
// 1e-5 of the update itself (the trust scale comes from fp32-accumulated norms, which the norms
// tests bound by 1e-5 relative). Matters where p - update cancels to a tiny value.
double StepTolerance(DType dtype, double before, double ref, double got);

// Sets the last element to `value` (exactly representable in every dtype, e.g. 2.5) so that a
// kernel that drops or double-counts the tail changes max |x| and Σx² far beyond tolerance.
void SetTailSentinel(HostTensor* t, double value = 2.5);

// Copies a host tensor onto `device` (aborts the test on failure).
DeviceBuffer ToDevice(const HostTensor& t, const Device& device);

// Reads back n f32 values from a device tensor.
std::vector<float> ReadF32(const DeviceBuffer& b);

// The blockwise 8-bit kernel matrix: every device x storage dtype x block size (256, 2048),
// shared by the quantize and LARS8bit suites; BlockCaseName names a case "f32_cpu_b256".
struct BlockCase {
  DType dtype;
  DeviceType device;
  int block;
};
std::vector<BlockCase> AllBlockCases();
std::string BlockCaseName(const ::testing::TestParamInfo<BlockCase>& info);

// For a device type: OK if tests must run there; a skip reason for CUDA without a GPU; an
// error naming the packages to install for OpenCL (pocl is required on every test run).
struct DeviceRequirement {
  bool run = false;
  bool fail = false;
  std::string reason;
};
DeviceRequirement Require(DeviceType type);

}  // namespace testing
}  // namespace halide_lars

// Skips (CUDA without a GPU) or fails (OpenCL without pocl) the current test, with the reason.
#define LARS_REQUIRE_DEVICE(type)                                             \
  do {                                                                        \
    ::halide_lars::testing::DeviceRequirement lars_req_ =                     \
        ::halide_lars::testing::Require(type);                                \
    if (lars_req_.fail) FAIL() << lars_req_.reason;                           \
    if (!lars_req_.run) GTEST_SKIP() << lars_req_.reason;                     \
  } while (0)

#endif  // HALIDE_LARS_TESTS_TEST_UTIL_H_
