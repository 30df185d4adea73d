// The norms comparison shared by //tests/kernels:norms_test and //tests/kernels:seeded_bug_test, so the seeded
// bug is caught by exactly the check the real kernels pass.
#ifndef HALIDE_LARS_TESTS_NORMS_CHECK_H_
#define HALIDE_LARS_TESTS_NORMS_CHECK_H_

#include <array>
#include <cmath>

#include "gtest/gtest.h"
#include "tests/reference/reference.h"

namespace halide_lars {
namespace testing {

// fp32 two-level accumulation of n squares: relative error well below 1e-5 for the sizes
// tested (measured ≤ 2e-7); max |x| is exact (the widening to f32 is exact).
inline ::testing::AssertionResult NormsMatchReference(const std::array<float, 2>& got,
                                                      const reference::SumSqMaxAbs& ref) {
  const double tol = 1e-5 * ref.sumsq;
  if (!(std::fabs(got[0] - ref.sumsq) <= tol)) {
    return ::testing::AssertionFailure() << "sumsq " << got[0] << " vs float64 " << ref.sumsq
                                         << " (rel err " << std::fabs(got[0] - ref.sumsq) / ref.sumsq
                                         << ")";
  }
  if (got[1] != static_cast<float>(ref.maxabs)) {
    return ::testing::AssertionFailure() << "maxabs " << got[1] << " vs " << ref.maxabs;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace testing
}  // namespace halide_lars

#endif  // HALIDE_LARS_TESTS_NORMS_CHECK_H_
