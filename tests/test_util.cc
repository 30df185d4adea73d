#include "tests/test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/devices.h"
#include "tests/reference/reference.h"

namespace halide_lars {
namespace testing {

const std::vector<int64_t>& EdgeSizes() {
  static const std::vector<int64_t> sizes = {0, 1, 7, 255, 256, 257, 4095, 4096, 4097,
                                             (1 << 20) + 3};
  return sizes;
}

HostTensor RandomTensor(DType dtype, int64_t n, uint32_t seed, double scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<double> values(n);
  for (double& v : values) v = static_cast<float>(dist(rng) * scale);
  return FromValues(dtype, values);
}

HostTensor FromValues(DType dtype, const std::vector<double>& values) {
  HostTensor t;
  t.dtype = dtype;
  t.bytes.resize(values.size() * DTypeSize(dtype));
  t.values.resize(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const float f = static_cast<float>(values[i]);
    switch (dtype) {
      case DType::kF32:
        std::memcpy(&t.bytes[4 * i], &f, 4);
        t.values[i] = f;
        break;
      case DType::kF16: {
        const uint16_t h = reference::F32ToF16Bits(f);
        std::memcpy(&t.bytes[2 * i], &h, 2);
        t.values[i] = reference::F16BitsToF32(h);
        break;
      }
      case DType::kBF16: {
        const uint16_t b = reference::F32ToBF16Bits(f);
        std::memcpy(&t.bytes[2 * i], &b, 2);
        t.values[i] = reference::BF16BitsToF32(b);
        break;
      }
      case DType::kU8: {
        const uint8_t u = static_cast<uint8_t>(std::clamp(std::nearbyint(values[i]), 0.0, 255.0));
        t.bytes[i] = u;
        t.values[i] = u;
        break;
      }
    }
  }
  return t;
}

std::vector<double> ReadValues(const DeviceBuffer& b) {
  const TensorView v = b.view();
  std::vector<uint8_t> bytes(v.bytes());
  absl::Status s = b.CopyToHost(bytes.data());
  EXPECT_TRUE(s.ok()) << s;
  std::vector<double> out(v.numel);
  for (int64_t i = 0; i < v.numel; ++i) {
    if (v.dtype == DType::kF32) {
      float f;
      std::memcpy(&f, &bytes[4 * i], 4);
      out[i] = f;
    } else if (v.dtype == DType::kU8) {
      out[i] = bytes[i];
    } else {
      uint16_t h;
      std::memcpy(&h, &bytes[2 * i], 2);
      out[i] = v.dtype == DType::kF16 ? reference::F16BitsToF32(h) : reference::BF16BitsToF32(h);
    }
  }
  return out;
}

std::vector<double> UniformValues(int64_t n, uint32_t seed, double lo, double hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return v;
}

double RelErr(const std::vector<double>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

std::vector<double> BowlGradient(const std::vector<double>& p, int step, uint32_t seed) {
  const std::vector<double> noise =
      UniformValues(static_cast<int64_t>(p.size()), seed * 7919 + step, -0.5, 0.5);
  std::vector<double> g(p.size());
  for (size_t i = 0; i < p.size(); ++i) g[i] = 0.8 * (p[i] - 0.25) + noise[i];
  return g;
}

double Ulp(DType dtype, double v) {
  const int mantissa = dtype == DType::kF16 ? 10 : dtype == DType::kBF16 ? 7 : 23;
  const double a = std::max(std::fabs(v), dtype == DType::kF16 ? std::ldexp(1.0, -14)
                                                                : std::ldexp(1.0, -126));
  int e;
  std::frexp(a, &e);
  return std::ldexp(1.0, e - 1 - mantissa);
}

double StepTolerance(DType dtype, double before, double ref, double got) {
  const double update = std::fabs(before - ref);
  return Ulp(dtype, std::max(std::fabs(ref), std::fabs(got))) + 1e-6 * std::fabs(before) +
         1e-5 * update;
}

void SetTailSentinel(HostTensor* t, double value) {
  if (t->numel() == 0) return;
  std::vector<double> values = t->values;
  values.back() = value;
  *t = FromValues(t->dtype, values);
}

DeviceBuffer ToDevice(const HostTensor& t, const Device& device) {
  absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(device, t.dtype, t.numel());
  EXPECT_TRUE(b.ok()) << b.status();
  if (!b.ok()) return DeviceBuffer();
  absl::Status s = b->CopyFromHost(t.bytes.data());
  EXPECT_TRUE(s.ok()) << s;
  return std::move(*b);
}

std::vector<float> ReadF32(const DeviceBuffer& b) {
  std::vector<float> out(b.view().numel);
  absl::Status s = b.CopyToHost(out.data());
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

namespace {
bool EnvIs(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string(v) == value;
}
}  // namespace

DeviceRequirement Require(DeviceType type) {
  DeviceRequirement r;
  switch (type) {
    case DeviceType::kCPU:
      r.run = true;
      break;
    case DeviceType::kCUDA: {
      absl::Status s = CudaStatus();
      r.run = s.ok();
      // The GPU kit (tools/gpu_kit/run.sh) sets HALIDE_LARS_REQUIRE_CUDA=1 on a GPU machine:
      // there no CUDA case may skip.
      r.fail = !s.ok() && EnvIs("HALIDE_LARS_REQUIRE_CUDA", "1");
      if (!r.run) r.reason = absl::StrCat("no CUDA device: ", s.message());
      break;
    }
    case DeviceType::kOpenCL: {
      absl::Status s = OpenCLStatus();
      r.run = s.ok();
      // Machines without pocl (the GPU kit's) skip the OpenCL twins with HALIDE_LARS_NO_OPENCL=1.
      r.fail = !s.ok() && !EnvIs("HALIDE_LARS_NO_OPENCL", "1");
      if (!s.ok() && !r.fail) r.reason = absl::StrCat("no OpenCL: ", s.message());
      if (r.fail) {
        r.reason = absl::StrCat(
            "OpenCL is required to test the GPU schedules on the CPU: ", s.message(),
            ". Run ./setup.sh or apt-get install pocl-opencl-icd ocl-icd-opencl-dev");
      }
      break;
    }
  }
  return r;
}

std::vector<BlockCase> AllBlockCases() {
  std::vector<BlockCase> out;
  for (DeviceType d : {DeviceType::kCPU, DeviceType::kOpenCL, DeviceType::kCUDA}) {
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (int b : {256, 2048}) out.push_back({t, d, b});
    }
  }
  return out;
}

std::string BlockCaseName(const ::testing::TestParamInfo<BlockCase>& info) {
  return absl::StrCat(DTypeName(info.param.dtype), "_", DeviceTypeName(info.param.device), "_b",
                      info.param.block);
}

}  // namespace testing
}  // namespace halide_lars
