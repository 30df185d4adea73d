#include "generators/codebook.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "generators/float16.h"

namespace halide_lars {
namespace generators {

using namespace Halide;

namespace {

// The dynamic codebook without a table. Its 127 positive codes, ranked j = 0..126, are the
// midpoints of linspace(0.1, 1, 2^i + 1) times 10^(i-6) for decades i = 0..6 (2^i codes each);
// code j of decade i (k = j + 1 - 2^i) is exactly the rational N / (256 * 5^(7-i)) with the
// integer N = 2^(i+1) + 18k + 9, so ONE correctly rounded fp32 division gives the codebook's
// fp32 value (runtime/codebook.cc rounds the float64 value once; equal for all 256 codes:
// //tests/kernels:quantize_exhaustive_test). The negative codes mirror the positive ones.
constexpr float kDecadeDivisor[7] = {20000000.0f, 4000000.0f, 800000.0f, 160000.0f,
                                     32000.0f,    6400.0f,    1280.0f};
// fp32(1 / D_i), for the division-free midpoints (MidpointOfPair).
constexpr float kDecadeReciprocal[7] = {
    1.0f / kDecadeDivisor[0], 1.0f / kDecadeDivisor[1], 1.0f / kDecadeDivisor[2],
    1.0f / kDecadeDivisor[3], 1.0f / kDecadeDivisor[4], 1.0f / kDecadeDivisor[5],
    1.0f / kDecadeDivisor[6]};

// values[i] for the decade i (int32, 0..6).
Expr SelectByDecade(const Expr& i, const float (&values)[7]) {
  Expr out = values[6];
  for (int d = 5; d >= 0; --d) out = select(i == d, values[d], out);
  return out;
}

Expr DecadeDivisor(const Expr& i) { return SelectByDecade(i, kDecadeDivisor); }

// floor(log2(x)) of a positive int32: the decade of rank x - 1.
Expr Log2(const Expr& x) { return 31 - cast<int32_t>(count_leading_zeros(cast<uint32_t>(x))); }

// Positive code of rank j (int32), with rank -1 the zero code and rank 127 the code 1.0.
Expr PositiveCode(const Expr& j) {
  Expr jc = clamp(j, 0, 126);
  Expr i = Log2(jc + 1);
  Expr k = jc + 1 - (Expr(1) << i);
  Expr n = (Expr(2) << i) + 18 * k + 9;
  return select(j < 0, 0.0f, j >= 127, 1.0f, cast<float>(n) / DecadeDivisor(i));
}

// The decade of rank j (0..126) on the host.
int HostDecade(int j) {
  int i = 0;
  while ((2 << i) <= j + 1) ++i;
  return i;
}

// The same on the host: the first code of each decade, for the decade estimate.
float HostPositiveCode(int j) {
  const int i = HostDecade(j);
  const int n = (2 << i) + 18 * (j + 1 - (1 << i)) + 9;
  return static_cast<float>(n) / kDecadeDivisor[i];
}

// The positive side's midpoint of ranks p, p + 1 on the host, as runtime/codebook.cc computes
// it (rank -1: the zero code, rank 127: the code 1).
float HostMid(int p) {
  auto code = [](int j) { return j < 0 ? 0.0f : j >= 127 ? 1.0f : HostPositiveCode(j); };
  return (code(p) + code(p + 1)) * 0.5f;
}

// Q * fp32(1 / D_i) for an interior pair p (0..126) of decade i: the approximation that the
// per-pair offsets correct (on the host here, and in the kernel by MidpointOfPair).
float HostApproxMid(int p) {
  const int i = HostDecade(p);
  const int q = (2 << i) + 18 * (p + 2 - (1 << i));
  return static_cast<float>(q) * kDecadeReciprocal[i];
}

int32_t FloatBits(float f) {
  int32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

struct MidpointConstants {
  float boundary[8];   // pairs p = -1 and 2^d - 2 (d = 1..7): across decades, next to 0 and 1
  uint64_t delta[4];   // per interior pair p: fp32 midpoint - approximation, in ulps, + 2 (2 bits)
};

const MidpointConstants& Midpoints() {
  static const MidpointConstants mc = [] {
    MidpointConstants c{};
    int b = 0;
    for (int p : {-1, 0, 2, 6, 14, 30, 62, 126}) c.boundary[b++] = HostMid(p);
    for (int p = 0; p <= 126; ++p) {
      if (((p + 2) & (p + 1)) == 0) continue;  // a boundary pair
      const int d = FloatBits(HostMid(p)) - FloatBits(HostApproxMid(p));
      if (d < -2 || d > 1) throw std::logic_error("codebook midpoint offset out of range");
      c.delta[p >> 5] |= static_cast<uint64_t>(d + 2) << ((p & 31) * 2);
    }
    return c;
  }();
  return mc;
}

// The fp32 midpoint of positive ranks p, p + 1 (p in -1..126), without a table or a division.
Expr MidpointOfPair(const Expr& p, const MidpointConstants& mc) {
  Expr boundary = p == -1 || ((p + 2) & (p + 1)) == 0;
  Expr bi = select(p == -1, 0, Log2(p + 2));
  Expr bval = mc.boundary[7];
  for (int k = 6; k >= 0; --k) bval = select(bi == k, mc.boundary[k], bval);
  Expr pc = clamp(p, 0, 126);
  Expr i = Log2(pc + 1);
  Expr q = (Expr(2) << i) + 18 * (pc + 2 - (Expr(1) << i));
  Expr approx = cast<float>(q) * SelectByDecade(i, kDecadeReciprocal);
  auto word = [&](int w) { return Internal::make_const(UInt(64), mc.delta[w]); };
  Expr bitsw = select(pc < 32, word(0), pc < 64, word(1), pc < 96, word(2), word(3));
  Expr delta = cast<int32_t>((bitsw >> cast<uint64_t>((pc & 31) * 2)) & Internal::make_const(UInt(64), 3)) - 2;
  Expr interior = reinterpret<float>(reinterpret<uint32_t>(approx) + cast<uint32_t>(delta));
  return select(boundary, bval, interior);
}

}  // namespace

Expr DecodeCode(const Expr& c, const Func& code, bool table_free) {
  if (!table_free) return code(cast<int>(c));
  Expr ci = cast<int32_t>(c);
  // 0..126: -code of rank 126 - c; 127: 0; 128..254: rank c - 128; 255: 1.
  Expr p = PositiveCode(select(ci >= 127, ci - 128, 126 - ci));
  return select(ci < 127, -p, p);
}

Expr QuantizeIndex(const Expr& v, const Func& mids, const Func& code, const Func& lut,
                   bool table_free) {
  Expr bits = reinterpret<uint32_t>(v);
  Expr sign_v = bits >> 31;
  Expr idx;
  if (table_free) {
    // Vector arithmetic only, no division and no gather: estimate the nearest positive rank of
    // |v| linearly inside its decade, then settle the count of midpoints below v exactly by
    // comparing with the two fp32 midpoints around the estimate (never off by more than one).
    // Those midpoints come without a table: inside a decade, the midpoint of ranks p, p + 1 is
    // the rational Q / D_i (Q = 2^(i+1) + 18(k+1)); Q * fp32(1/D_i) lands within -2..+1 ulp of
    // the codebook's fp32 midpoint, and that offset is a 2-bit constant per pair (4 uint64
    // words); the 8 midpoints across decades (and next to 0 and 1) are constants. Bit-identical
    // to the table for all 2^32 inputs, NaNs included (//tests/kernels:quantize_exhaustive_test).
    const MidpointConstants& mc = Midpoints();
    Expr a = reinterpret<float>(bits & U32(0x7fffffff));
    Expr nan = (bits & U32(0x7fffffff)) > U32(0x7f800000);
    Expr as = select(nan, 0.0f, min(a, 2.0f));
    Expr decade = 0;
    for (int d = 1; d <= 6; ++d) decade += select(as >= HostPositiveCode((1 << d) - 1), 1, 0);
    Expr t = (as * DecadeDivisor(decade) - cast<float>((Expr(2) << decade) + 9)) * (1.0f / 18.0f);
    Expr first = (Expr(1) << decade) - 1;
    Expr j = first + clamp(cast<int32_t>(floor(t + 0.5f)), 0, first);
    Expr m_lo = MidpointOfPair(j - 1, mc), m_hi = MidpointOfPair(j, mc);
    // Midpoints M(-1) < M(0) < ... < M(126) of the positive side; mids[127 + t] = M(t - 1) and
    // mids[126 - t] = -M(t - 1). v >= 0: 127 + #{M < |v|}; v < 0: 127 - #{M <= |v|} (the
    // negative side has 127 midpoints; ties go to the lower code on both sides).
    Expr below = j + 1 + select(as > m_hi, 1, 0) - select(as <= m_lo, 1, 0);
    Expr at_or_below = j + 1 + select(as >= m_hi, 1, 0) - select(as < m_lo, 1, 0);
    Expr counted = select(sign_v == U32(0), 127 + below, 127 - min(at_or_below, 127));
    // A NaN counts as the table's bucket for it does: +NaN in 0x7f80xxxx after +Inf (255),
    // other +NaN below everything (0), -NaN below everything (0).
    idx = select(nan, select(sign_v == U32(0) && (bits >> 16) == U32(0x7f80), 255, 0), counted);
  } else {
    (void)mids;
    (void)code;
    Expr entry = lut(clamp(cast<int32_t>(bits >> 16), 0, 65535));  // one lookup per element
    Expr below = cast<int32_t>((entry >> 16) & U32(0xff));
    Expr has_mid = (entry & U32(1 << 24)) != U32(0);
    // The midpoint shares v's top 16 bits: compare the low 16 bits (reversed for negatives).
    Expr v_low = bits & U32(0xffff), m_low = entry & U32(0xffff);
    Expr above = select((bits >> 31) == U32(1), v_low < m_low, v_low > m_low);
    idx = below + select(has_mid && above, 1, 0);
  }
  // The signed dynamic codebook has 127 negative codes, then 0, then 128 positive ones: the
  // code's sign bit is idx < 127 (no lookup; checked against the table by quantize_test).
  Expr sign_c = select(idx < 127, U32(1), U32(0));
  Expr fixed = select(sign_v == sign_c, idx, sign_v == U32(0), idx + 1, idx - 1);
  return cast<uint8_t>(clamp(fixed, 0, 255));
}

Expr NormalizeForQuantize(const Expr& x, const Expr& absmax) {
  // A subnormal absmax would overflow 1/absmax to Inf (and 0 * Inf = NaN): such blocks are
  // quantized as zero, as a GPU's flush-to-zero would do anyway (found by quantize_fuzz).
  return select(absmax >= 1.17549435e-38f, x * (1.0f / absmax), 0.0f);
}

}  // namespace generators
}  // namespace halide_lars
