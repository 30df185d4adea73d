// generators/common.{h,cc} helpers, JIT-compiled for the host CPU (this process never loads
// pocl: Halide's LLVM and pocl's LLVM in one process crash). Compared with the independent
// float64 conversions in tests/reference.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "Halide.h"
#include "generators/common.h"
#include "gtest/gtest.h"
#include "tests/reference/reference.h"

namespace halide_lars {
namespace {

using generators::DecodeBF16;
using generators::DecodeF16;
using generators::EncodeBF16;
using generators::EncodeF16;
using Halide::Buffer;
using Halide::Func;
using Halide::Var;

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

bool SameFloat(float a, float b) { return (std::isnan(a) && std::isnan(b)) || Bits(a) == Bits(b); }

TEST(GeneratorsCommon, DecodeF16IsExactForAll65536Patterns) {
  Buffer<uint16_t> in(65536);
  for (int i = 0; i < 65536; ++i) in(i) = static_cast<uint16_t>(i);
  Var x;
  Func f;
  f(x) = DecodeF16(in(x));
  f.vectorize(x, 8);
  Buffer<float> out = f.realize({65536});
  for (int i = 0; i < 65536; ++i) {
    ASSERT_TRUE(SameFloat(out(i), reference::F16BitsToF32(static_cast<uint16_t>(i))))
        << std::hex << "bits 0x" << i << ": " << out(i);
  }
}

TEST(GeneratorsCommon, DecodeBF16IsExactForAll65536Patterns) {
  Buffer<uint16_t> in(65536);
  for (int i = 0; i < 65536; ++i) in(i) = static_cast<uint16_t>(i);
  Var x;
  Func f;
  f(x) = DecodeBF16(in(x));
  Buffer<float> out = f.realize({65536});
  for (int i = 0; i < 65536; ++i) {
    ASSERT_TRUE(SameFloat(out(i), reference::BF16BitsToF32(static_cast<uint16_t>(i)))) << i;
  }
}

// Encoding: every f16/bf16 value, every midpoint between neighbours (ties to even), values
// just beside the midpoints, the overflow threshold, NaN/Inf, and random floats of all scales.
std::vector<float> EncodeCases() {
  std::vector<float> v = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 65504.0f, 65519.99f, 65520.0f,
                          1e-8f, 2.98e-8f, 2.9802322e-8f, 5.96e-8f, 6.1035156e-5f, 1e-45f,
                          3.4028235e38f, -3.4028235e38f};
  for (int h = 0; h < 0x7c00; ++h) {
    const float a = reference::F16BitsToF32(static_cast<uint16_t>(h));
    const float b = reference::F16BitsToF32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
    for (float f : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      v.push_back(f);
      v.push_back(-f);
    }
  }
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = bits(rng);
    float f;
    std::memcpy(&f, &u, 4);
    v.push_back(f);
  }
  return v;
}

TEST(GeneratorsCommon, EncodeF16RoundsToNearestEven) {
  const std::vector<float> cases = EncodeCases();
  Buffer<float> in(static_cast<int>(cases.size()));
  for (size_t i = 0; i < cases.size(); ++i) in(static_cast<int>(i)) = cases[i];
  Var x;
  Func f;
  f(x) = EncodeF16(in(x));
  f.vectorize(x, 8);
  Buffer<uint16_t> out = f.realize({in.width()});
  for (int i = 0; i < in.width(); ++i) {
    const float c = in(i);
    // f32 subnormals round to signed zero (the GPU flushes them; the CPU matches).
    const bool f32_subnormal = c != 0.0f && std::fabs(c) < 1.17549435e-38f;
    const uint16_t want = f32_subnormal ? (std::signbit(c) ? 0x8000 : 0)
                                        : reference::F32ToF16Bits(c);
    ASSERT_EQ(out(i), want) << std::hexfloat << c;
  }
}

TEST(GeneratorsCommon, EncodeBF16RoundsToNearestEven) {
  const std::vector<float> cases = EncodeCases();
  Buffer<float> in(static_cast<int>(cases.size()));
  for (size_t i = 0; i < cases.size(); ++i) in(static_cast<int>(i)) = cases[i];
  Var x;
  Func f;
  f(x) = EncodeBF16(in(x));
  Buffer<uint16_t> out = f.realize({in.width()});
  for (int i = 0; i < in.width(); ++i) {
    ASSERT_EQ(out(i), reference::F32ToBF16Bits(in(i))) << std::hexfloat << in(i);
  }
}

}  // namespace
}  // namespace halide_lars
