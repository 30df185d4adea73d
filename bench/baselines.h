// Baselines measured in the same process as every halide_lars number (docs/benchmarks.md#baselines).
#ifndef HALIDE_LARS_BENCH_BASELINES_H_
#define HALIDE_LARS_BENCH_BASELINES_H_

#include <cstdint>

namespace halide_lars {
namespace bench {

// The expert's 2-pass step (clip mode, no nesterov): norms, then the fused update (OpenMP
// parallel for simd, restrict). Also timed by BM_PairedRoofline.
void HandwrittenStep(float* __restrict pp, const float* __restrict pg, float* __restrict pm,
                     int64_t n);

// Registers BM_TriadInPlace, BM_TriadInPlaceDynamic, BM_TriadStream, BM_NaiveScalar and
// BM_HandwrittenOpenMP (in that order).
void RegisterBaselines();

}  // namespace bench
}  // namespace halide_lars

#endif  // HALIDE_LARS_BENCH_BASELINES_H_
