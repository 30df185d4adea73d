// quantize_blockwise_* / dequantize_blockwise_* (generators/quantize_generator.cc) and the
// codebook (runtime/codebook.cc) against tests/reference/quantize_reference on every dtype x
// backend x block size (256, 2048).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/codebook.h"
#include "runtime/device_buffer.h"
#include "runtime/quantize.h"
#include "tests/reference/lars_reference.h"
#include "tests/reference/quantize_reference.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using testing::FromValues;
using testing::ReadValues;

TEST(Codebook, MatchesTheFormulaInFloat64) {
  const std::array<float, 256>& code = DynamicCodebook();
  const std::array<float, 256> ref = reference::DynamicCodebookRef();
  for (int i = 0; i < 256; ++i) EXPECT_EQ(code[i], ref[i]) << "code " << i;
  for (int i = 0; i < 255; ++i) EXPECT_LT(code[i], code[i + 1]) << "not strictly sorted at " << i;
  EXPECT_EQ(code[255], 1.0f);
  EXPECT_EQ(code[kZeroCode], 0.0f);
  EXPECT_NEAR(code[0], -0.99296875, 1e-7);  // -(0.99296875): the largest negative mean
  for (int k = 0; k < 127; ++k) EXPECT_EQ(code[128 + k], -code[126 - k]) << k;  // symmetric
  EXPECT_NEAR(code[128], 5.5e-7, 1e-12);  // the smallest positive code: 1e-6 * 0.55
  const std::array<float, 256> mids = CodebookMidpoints(code);
  EXPECT_TRUE(std::isinf(mids[255]));
  for (int k = 0; k < 255; ++k) {
    EXPECT_GT(mids[k], code[k]);
    EXPECT_LT(mids[k], code[k + 1]);
  }
}

// The kernels' two-lookup search is exact only if no 16-bit bucket of floats holds two
// midpoints; and the table must reproduce the reference's search for every bucket's ends.
TEST(Codebook, BucketTableIsExact) {
  const std::array<float, 256> mids = CodebookMidpoints(DynamicCodebook());
  EXPECT_LE(MaxMidpointsPerBucket(mids), 1);
  const std::vector<uint32_t> lut = CodebookBucketTable(mids);
  ASSERT_EQ(lut.size(), 65536u);
  const std::array<float, 256> code = reference::DynamicCodebookRef();
  for (int k = 0; k < 256; ++k) EXPECT_EQ(std::signbit(code[k]), k < kZeroCode) << k;  // sign fix
  int checked = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    for (uint32_t low : {0u, 1u, 0x7fffu, 0x8000u, 0xfffeu, 0xffffu}) {
      const uint32_t bits = (h << 16) | low;
      float v;
      std::memcpy(&v, &bits, 4);
      if (std::isnan(v) || std::fabs(v) > 1.0f) continue;  // normalized values only
      // The kernels' lookup (generators/common.cc QuantizeIndex), written out on the host.
      const uint32_t e = lut[h];
      const uint32_t v_low = bits & 0xffffu, m_low = e & 0xffffu;
      const bool above = (bits >> 31) ? v_low < m_low : v_low > m_low;
      int idx = static_cast<int>((e >> 16) & 0xff) + (((e >> 24) & 1) && above ? 1 : 0);
      if (std::signbit(code[idx]) != std::signbit(v)) idx += std::signbit(v) ? -1 : 1;
      ASSERT_EQ(idx, reference::QuantizeValue(code, v)) << std::hexfloat << v;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100000);
}

TEST(QuantizeValue, TieRuleAndSignFix) {
  const std::array<float, 256> code = reference::DynamicCodebookRef();
  const std::array<float, 256> mids = CodebookMidpoints(code);
  // Exactly on a midpoint: the lower code. Just above: the upper one.
  for (int k : {0, 100, 126, 127, 128, 200, 254}) {
    if (k == 126 || k == 127) continue;  // around zero the sign fix applies
    EXPECT_EQ(reference::QuantizeValue(code, mids[k]), k);
    EXPECT_EQ(reference::QuantizeValue(code, std::nextafter(mids[k], 2.0f)), k + 1);
  }
  // Sign fix: a tiny negative value whose nearest code is 0 steps to the negative side.
  EXPECT_EQ(reference::QuantizeValue(code, -1e-9f), kZeroCode - 1);
  EXPECT_EQ(reference::QuantizeValue(code, 1e-9f), kZeroCode);  // +0 has a positive sign bit
  EXPECT_EQ(reference::QuantizeValue(code, 0.0f), kZeroCode);
}

using Case = testing::BlockCase;
using testing::AllBlockCases;
using testing::BlockCaseName;

enum class Dist { kNormal, kUniform, kHeavyTailed, kZeros, kMixedZeroBlocks };

std::vector<double> Sample(Dist d, int64_t n, uint32_t seed, int block) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::student_t_distribution<double> heavy(1.5);
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) {
    switch (d) {
      case Dist::kNormal:
        v[i] = normal(rng) * 1e-3;
        break;
      case Dist::kUniform:
        v[i] = uniform(rng);
        break;
      case Dist::kHeavyTailed:
        v[i] = heavy(rng);
        break;
      case Dist::kZeros:
        v[i] = 0.0;
        break;
      case Dist::kMixedZeroBlocks:
        v[i] = (i / block) % 2 == 0 ? 0.0 : normal(rng);
        break;
    }
  }
  return v;
}

struct Result {
  std::vector<double> codes;
  std::vector<double> absmax;
  std::vector<double> dequantized;
};

Result RunKernels(const Case& c, const testing::HostTensor& x) {
  const Device dev{c.device, 0};
  const int64_t n = x.numel(), blocks = NumQuantBlocks(n, c.block);
  DeviceBuffer xb = testing::ToDevice(x, dev);
  absl::StatusOr<DeviceBuffer> q = DeviceBuffer::Allocate(dev, DType::kU8, n);
  absl::StatusOr<DeviceBuffer> a = DeviceBuffer::Allocate(dev, DType::kF32, blocks);
  absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(dev, c.dtype, n);
  EXPECT_TRUE(q.ok() && a.ok() && out.ok());
  absl::Status s = QuantizeBlockwise(xb.view(), q->view(), a->view(), c.block);
  EXPECT_TRUE(s.ok()) << s;
  s = DequantizeBlockwise(q->view(), a->view(), out->view(), c.block);
  EXPECT_TRUE(s.ok()) << s;
  return {ReadValues(*q), ReadValues(*a), ReadValues(*out)};
}

class QuantizeTest : public ::testing::TestWithParam<Case> {};

// Codes and absmax equal the reference exactly; dequantization is code*absmax rounded to dtype.
TEST_P(QuantizeTest, MatchesTheReferenceOnEdgeSizesAndDistributions) {
  const Case c = GetParam();
  LARS_REQUIRE_DEVICE(c.device);
  std::vector<int64_t> sizes = testing::EdgeSizes();
  for (int64_t extra : {c.block - 1, c.block, c.block + 1, 3 * c.block + 5}) sizes.push_back(extra);
  for (Dist d : {Dist::kNormal, Dist::kUniform, Dist::kHeavyTailed, Dist::kZeros,
                 Dist::kMixedZeroBlocks}) {
    for (int64_t n : sizes) {
      if (n > 70000 && d != Dist::kNormal) continue;  // the large size once is enough
      const testing::HostTensor x = FromValues(c.dtype, Sample(d, n, 7 + n, c.block));
      const Result got = RunKernels(c, x);
      const reference::Quantized want = reference::QuantizeBlockwise(x.values, c.block);
      ASSERT_EQ(got.absmax.size(), want.absmax.size());
      for (size_t b = 0; b < want.absmax.size(); ++b) {
        ASSERT_EQ(got.absmax[b], want.absmax[b]) << "block " << b << " n=" << n;
      }
      int mismatches = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (got.codes[i] != want.codes[i]) ++mismatches;
      }
      ASSERT_EQ(mismatches, 0) << "codes differ, n=" << n << " dist " << static_cast<int>(d);
      const std::vector<double> deq = reference::DequantizeBlockwise(want, c.block);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(got.dequantized[i], reference::RoundTo(c.dtype, deq[i])) << "i=" << i;
        if (want.absmax[i / c.block] == 0.0f) {
          ASSERT_EQ(got.codes[i], kZeroCode);
          ASSERT_EQ(got.dequantized[i], 0.0);
        }
      }
    }
  }
}

// Round-trip error: each element is within half the gap between its two nearest codes (times
// absmax), except where the sign fix moved it (then within one gap).
TEST_P(QuantizeTest, RoundTripErrorIsBoundedByTheCodebookGaps) {
  const Case c = GetParam();
  LARS_REQUIRE_DEVICE(c.device);
  const std::array<float, 256>& code = DynamicCodebook();
  for (Dist d : {Dist::kNormal, Dist::kUniform, Dist::kHeavyTailed}) {
    const testing::HostTensor x = FromValues(c.dtype, Sample(d, 100003, 99, c.block));
    const Result got = RunKernels(c, x);
    double worst = 0.0;
    for (size_t i = 0; i < x.values.size(); ++i) {
      const double a = got.absmax[i / c.block];
      const double v = x.values[i] / a;
      const int k = static_cast<int>(got.codes[i]);
      const double lo = code[std::max(k - 1, 0)], hi = code[std::min(k + 1, 255)];
      const double bound = std::max(code[k] - lo, hi - code[k]) * a;
      const double err = std::fabs(got.dequantized[i] - x.values[i]);
      ASSERT_LE(err, bound + 2 * std::fabs(x.values[i]) * 1e-2 + 1e-30)
          << "i=" << i << " v=" << v << " code " << k;
      worst = std::max(worst, err / a);
    }
    std::printf("%s dist %d: max |x - deq(q(x))| / absmax = %.3g\n", BlockCaseName({c, 0}).c_str(),
                static_cast<int>(d), worst);
  }
}

INSTANTIATE_TEST_SUITE_P(AllKernels, QuantizeTest, ::testing::ValuesIn(AllBlockCases()), BlockCaseName);

// Every backend produces the same codes for the same input.
TEST(QuantizeAcrossBackends, IdenticalCodes) {
  for (DType t : {DType::kF32, DType::kBF16}) {
    const testing::HostTensor x = FromValues(t, Sample(Dist::kHeavyTailed, 70001, 3, 256));
    const Result cpu = RunKernels({t, DeviceType::kCPU, 256}, x);
    for (DeviceType d : {DeviceType::kOpenCL, DeviceType::kCUDA}) {
      if (!testing::Require(d).run) continue;
      const Result other = RunKernels({t, d, 256}, x);
      EXPECT_EQ(other.codes, cpu.codes) << DeviceTypeName(d);
      EXPECT_EQ(other.absmax, cpu.absmax) << DeviceTypeName(d);
    }
  }
}

TEST(QuantizeValidation, BadArgumentsAreRejected) {
  std::vector<float> x(300, 1.0f), absmax(2), wrong_absmax(1);
  std::vector<uint8_t> q(300), short_q(299);
  const Device cpu = Device::Cpu();
  const TensorView xv{x.data(), DType::kF32, 300, cpu};
  const TensorView qv{q.data(), DType::kU8, 300, cpu};
  const TensorView av{absmax.data(), DType::kF32, 2, cpu};
  EXPECT_TRUE(QuantizeBlockwise(xv, qv, av).ok());
  EXPECT_EQ(QuantizeBlockwise(xv, qv, av, 512).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(QuantizeBlockwise(xv, {short_q.data(), DType::kU8, 299, cpu}, av)
                .message()
                .find("codes: 299 u8 elements, expected 300 u8"),
            absl::string_view::npos);
  EXPECT_NE(QuantizeBlockwise(xv, qv, {wrong_absmax.data(), DType::kF32, 1, cpu})
                .message()
                .find("absmax: 1 f32 elements, expected 2 f32"),
            absl::string_view::npos);
  EXPECT_EQ(QuantizeBlockwise(xv, {q.data(), DType::kF32, 300, cpu}, av).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantizeBlockwise({nullptr, DType::kF32, 300, cpu}, qv, av).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeBlockwise(qv, av, {x.data(), DType::kU8, 300, cpu}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace halide_lars
