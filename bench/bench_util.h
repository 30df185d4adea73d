// Shared by the //bench:lars_bench sources: flags, the step's options and byte counts, inputs.
// Stories and measured numbers behind these choices: docs/benchmarks.md.
#ifndef HALIDE_LARS_BENCH_BENCH_UTIL_H_
#define HALIDE_LARS_BENCH_BENCH_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "benchmark/benchmark.h"
#include "halide_lars/lars.h"

ABSL_DECLARE_FLAG(int64_t, n);
ABSL_DECLARE_FLAG(std::string, json);

namespace halide_lars {
namespace bench {

// Minimum traffic of the fp32 step: read p, g, m once for the norms; write p, m.
constexpr double kLarsBytesPerParam = 28.0;
// 8-bit state: read p, g, codes (+absmax) for the norms; read them again and write p, codes.
constexpr double kLars8BytesPerParam = 23.0;
constexpr float kLr = 0.1f, kMomentum = 0.9f, kWd = 1e-4f, kMaxUnorm = 0.02f;

// Paired cases run this many times, each with fresh allocations, and report the median
// (docs/benchmarks.md#paired-measurements).
constexpr int kPairedRepeats = 3;

// Default options with the benchmarks' lr, momentum and weight decay.
LarsOptions BenchOptions();

// Parameters per tensor (--n).
int64_t N();

// n uniform values in [-1, 1) from `seed`.
std::vector<float> RandomVector(int64_t n, uint32_t seed);

// GB/s at `bytes_per_elem` and Mparams/s over N() elements per iteration; `model` as the label.
void SetBytes(benchmark::State& state, double bytes_per_elem, const char* model);

}  // namespace bench
}  // namespace halide_lars

#endif  // HALIDE_LARS_BENCH_BENCH_UTIL_H_
