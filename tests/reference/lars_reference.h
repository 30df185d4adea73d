// The float64 scalar reference of one LARS step (docs/spec.md), used by every LARS
// test. Nothing else outside generators/ writes this math down.
#ifndef HALIDE_LARS_TESTS_REFERENCE_LARS_REFERENCE_H_
#define HALIDE_LARS_TESTS_REFERENCE_LARS_REFERENCE_H_

#include <cstdint>
#include <vector>

#include "halide_lars/options.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace reference {

struct LarsRefState {
  int64_t step = 0;               // steps taken (the next step is step + 1)
  std::vector<double> m;          // momentum, as stored (fp32 values)
  std::vector<double> gnorm_vec;  // percentile ring of squared gradient norms (fp32 values)
  double unorm = 0.0;             // |u| of the last step (0 unless the trust clip is on)
};

// One step of one tensor in float64. `p` and `g` hold the values as stored in `dtype`; on return
// p holds the new parameter rounded as the kernels store it (fp32 math result -> dtype) and the
// state holds m rounded to fp32. `o` must be valid.
void LarsStep(const LarsOptions& o, DType dtype, const std::vector<double>& g,
              std::vector<double>* p, LarsRefState* state);

// bitsandbytes' percentile clipping at 1-based step `step`: the ring (100 squared gradient norms)
// takes n2 = Σg² (every slot on step 1, else slot step % 100), and the gradient scale is
// clip / sqrt(n2) where sqrt(n2) exceeds clip = sqrt(sorted(ring)[percentile]), else 1.
double PercentileClip(double n2, int64_t step, int percentile, std::vector<double>* ring);

// A value rounded to `dtype` (through fp32, as the kernels round their fp32 results).
double RoundTo(DType dtype, double v);

}  // namespace reference
}  // namespace halide_lars

#endif  // HALIDE_LARS_TESTS_REFERENCE_LARS_REFERENCE_H_
