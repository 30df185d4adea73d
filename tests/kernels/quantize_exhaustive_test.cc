// The CPU kernels' table-free codebook (generators/common.cc QuantizeIndex / DecodeCode) against
// the table the kernels used before (runtime/codebook.cc CodebookBucketTable, replicated here as
// the kernels read it), exhaustively: every one of the 2^32 float bit patterns -- NaNs, infinities,
// subnormals, both zeros -- quantizes to the same code, and all 256 codes decode to the
// codebook's exact fp32 values. Runs the real AOT kernel (quantize_index_probe, same expressions,
// same multitarget CPU code as the optimizer's kernels; HALIDE_LARS_CPU_ISA picks the ISA).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "HalideBuffer.h"
#include "generators/quantize_index_probe_cpu.h"
#include "gtest/gtest.h"
#include "runtime/codebook.h"

namespace halide_lars {
namespace {

// The table path of QuantizeIndex, as the kernels computed it before (one u32 lookup).
uint8_t TableCode(const std::vector<uint32_t>& lut, uint32_t bits) {
  const uint32_t entry = lut[bits >> 16];
  const int below = static_cast<int>((entry >> 16) & 0xff);
  const bool has_mid = (entry & (1u << 24)) != 0;
  const uint32_t v_low = bits & 0xffff, m_low = entry & 0xffff;
  const bool above = (bits >> 31) == 1 ? v_low < m_low : v_low > m_low;
  const int idx = below + (has_mid && above ? 1 : 0);
  const uint32_t sign_v = bits >> 31, sign_c = idx < 127 ? 1 : 0;
  const int fixed = sign_v == sign_c ? idx : (sign_v == 0 ? idx + 1 : idx - 1);
  return static_cast<uint8_t>(std::clamp(fixed, 0, 255));
}

TEST(QuantizeExhaustive, DecodeIsTheCodebookBitForBit) {
  Halide::Runtime::Buffer<uint32_t, 1> bits(1);
  Halide::Runtime::Buffer<uint8_t, 1> codes(256), q(1);
  Halide::Runtime::Buffer<float, 1> values(256);
  bits(0) = 0;
  for (int c = 0; c < 256; ++c) codes(c) = static_cast<uint8_t>(c);
  ASSERT_EQ(quantize_index_probe_cpu(nullptr, bits, codes, q, values), 0);
  const std::array<float, 256>& code = DynamicCodebook();
  for (int c = 0; c < 256; ++c) {
    uint32_t got, want;
    std::memcpy(&got, &values(c), 4);
    std::memcpy(&want, &code[c], 4);
    ASSERT_EQ(got, want) << "code " << c << ": " << values(c) << " vs " << code[c];
  }
}

TEST(QuantizeExhaustive, AllTwoToThe32FloatsQuantizeAsWithTheTable) {
  const std::vector<uint32_t> lut = CodebookBucketTable(CodebookMidpoints(DynamicCodebook()));
  constexpr int64_t kChunk = int64_t{1} << 24;
  Halide::Runtime::Buffer<uint32_t, 1> bits(kChunk);
  Halide::Runtime::Buffer<uint8_t, 1> q(kChunk), codes(1);
  Halide::Runtime::Buffer<float, 1> values(1);
  codes(0) = 0;
  int64_t mismatches = 0;
  uint32_t first_bad = 0;
  for (int64_t base = 0; base < (int64_t{1} << 32); base += kChunk) {
    for (int64_t i = 0; i < kChunk; ++i) bits(i) = static_cast<uint32_t>(base + i);
    ASSERT_EQ(quantize_index_probe_cpu(nullptr, bits, codes, q, values), 0);
    // Two threads compare their halves against the table.
    int64_t bad[2] = {0, 0};
    uint32_t where[2] = {0, 0};
    auto check = [&](int t) {
      for (int64_t i = t * kChunk / 2; i < (t + 1) * kChunk / 2; ++i) {
        if (q(i) != TableCode(lut, bits(i)) && bad[t]++ == 0) where[t] = bits(i);
      }
    };
    std::thread other(check, 1);
    check(0);
    other.join();
    for (int t = 0; t < 2; ++t) {
      if (bad[t] > 0 && mismatches == 0) first_bad = where[t];
      mismatches += bad[t];
    }
  }
  float v;
  std::memcpy(&v, &first_bad, 4);
  EXPECT_EQ(mismatches, 0) << "first at bits 0x" << std::hex << first_bad << " (" << v << ")";
}

}  // namespace
}  // namespace halide_lars
