#include "tests/reference/reference.h"

#include <cmath>
#include <cstring>

namespace halide_lars {
namespace reference {

SumSqMaxAbs Norms(const std::vector<double>& x) {
  SumSqMaxAbs r;
  for (double v : x) {
    r.sumsq += v * v;
    r.maxabs = std::max(r.maxabs, std::fabs(v));
  }
  return r;
}

namespace {
uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

// Written independently of generators/common.cc (float64 arithmetic instead of bit tricks).
uint16_t F32ToF16Bits(float f) {
  const uint16_t sign = (Bits(f) >> 16) & 0x8000;
  if (std::isnan(f)) return sign | 0x7e00;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return sign | 0x7c00;  // rounds to Inf
  if (a < std::ldexp(1.0, -14)) {          // subnormal (or zero): units of 2^-24
    return sign | static_cast<uint16_t>(std::nearbyint(std::ldexp(a, 24)));
  }
  int e;
  const double m = std::frexp(a, &e);                  // a = m * 2^e, m in [0.5, 1)
  double q = std::nearbyint(std::ldexp(m, 11));        // 11 significant bits, ties to even
  if (q == 2048.0) {
    q = 1024.0;
    ++e;
  }
  const int exp16 = e - 1 + 15;  // a = (q/1024) * 2^(e-1)
  return sign | static_cast<uint16_t>((exp16 << 10) | (static_cast<int>(q) - 1024));
}

float F16BitsToF32(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0x1f) return m ? std::nanf("") : static_cast<float>(s * INFINITY);
  if (e == 0) return static_cast<float>(s * std::ldexp(m, -24));
  return static_cast<float>(s * std::ldexp(1024 + m, e - 25));
}

uint16_t F32ToBF16Bits(float f) {
  if (std::isnan(f)) return static_cast<uint16_t>((Bits(f) >> 16) | 0x40);
  const uint32_t u = Bits(f);
  const uint32_t lower = u & 0xffff, upper = u >> 16;
  if (lower > 0x8000 || (lower == 0x8000 && (upper & 1))) return static_cast<uint16_t>(upper + 1);
  return static_cast<uint16_t>(upper);
}

float BF16BitsToF32(uint16_t b) { return FromBits(static_cast<uint32_t>(b) << 16); }

}  // namespace reference
}  // namespace halide_lars
