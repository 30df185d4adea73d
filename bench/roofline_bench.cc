// BM_PairedRoofline: the roofline of a two-pass step, paired. Each iteration times, back to
// back, an in-place triad, a read-only pass over the norms pass's bytes, the hand-written OpenMP
// step (fp32) and Lars::Step on one tensor of --n params; counters are ratios of summed times
// (vs_triad, est_vs_triad, read_vs_triad, vs_est, vs_handwritten). The estimate t_est and why
// it is what a two-pass step can reach: docs/benchmarks.md#paired-roofline.
#include <chrono>
#include <cstdint>
#include <tuple>
#include <vector>

#include "bench/baselines.h"
#include "bench/bench_util.h"
#include "bench/benchmarks.h"
#include "bench/tensor_set.h"
#include "benchmark/benchmark.h"

namespace halide_lars {
namespace bench {
namespace {

void BM_PairedRoofline(benchmark::State& state, int optim_bits, bool propagate) {
  const int64_t n = N();
  absl::StatusOr<TensorSet> set = TensorSet::Make(
      {n}, SetMode::kPerTensor, optim_bits, propagate ? Nonfinite::kPropagate : Nonfinite::kSkip);
  if (!set.ok() || !set->Step().ok()) {
    state.SkipWithError("could not build or step the tensor");
    return;
  }
  std::vector<float> a = RandomVector(n, 1), b = RandomVector(n, 2), c = RandomVector(n, 3);
  std::vector<float> hp = RandomVector(n, 4), hg = RandomVector(n, 5), hm = RandomVector(n, 6);
  std::vector<uint8_t> codes(n, 77);
  float* __restrict pa = a.data();
  const float* __restrict pb = b.data();
  const float* __restrict pc = c.data();
  const uint8_t* __restrict pq = codes.data();
  const bool eight = optim_bits == 8;
  using Clock = std::chrono::steady_clock;
  double t_triad = 0, t_read = 0, t_step = 0, t_hand = 0;
  float sink = 0.0f;
  for (auto _ : state) {
    const auto t0 = Clock::now();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pa[i] += 1e-7f * pb[i];
    const auto t1 = Clock::now();
    float s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    if (eight) {
#pragma omp parallel for simd reduction(+ : s1, s2, s3) schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const float u = 0.9f * static_cast<float>(pq[i]) + pb[i];
        s1 += pa[i] * pa[i];
        s2 += u * u;
        s3 += pb[i] * pb[i];
      }
    } else {
#pragma omp parallel for simd reduction(+ : s1, s2, s3) schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const float u = 0.9f * pc[i] + pb[i];
        s1 += pa[i] * pa[i];
        s2 += u * u;
        s3 += pb[i] * pb[i];
      }
    }
    sink += s1 + s2 + s3;
    const auto t2 = Clock::now();
    (void)set->Step();
    const auto t3 = Clock::now();
    if (!eight) HandwrittenStep(hp.data(), hg.data(), hm.data(), n);
    const auto t4 = Clock::now();
    t_triad += std::chrono::duration<double>(t1 - t0).count();
    t_read += std::chrono::duration<double>(t2 - t1).count();
    t_step += std::chrono::duration<double>(t3 - t2).count();
    t_hand += std::chrono::duration<double>(t4 - t3).count();
  }
  benchmark::DoNotOptimize(sink);
  const double step_bytes = eight ? kLars8BytesPerParam : kLarsBytesPerParam;
  const double update_bytes = eight ? 14.0 : 20.0;
  const double t_est = propagate ? t_triad * 28.0 / 12.0 : t_read + t_triad * update_bytes / 12.0;
  // GB/s at the minimum traffic over the triad's GB/s (the "/triad" of the summary table).
  state.counters["vs_triad"] = (step_bytes / t_step) / (12.0 / t_triad);
  state.counters["est_vs_triad"] = (step_bytes / t_est) / (12.0 / t_triad);
  state.counters["read_vs_triad"] = ((eight ? 9.0 : 12.0) / t_read) / (12.0 / t_triad);
  state.counters["vs_est"] = t_est / t_step;
  if (!eight) state.counters["vs_handwritten"] = t_hand / t_step;
  const double iters = static_cast<double>(state.iterations());
  state.counters["step_ms"] = 1e3 * t_step / iters;
  if (!eight) state.counters["hand_ms"] = 1e3 * t_hand / iters;
  state.counters["triad_GB/s"] = 12.0 * n * static_cast<double>(state.iterations()) / t_triad / 1e9;
}

}  // namespace

void RegisterRooflineBenchmarks() {
  for (const auto& [name, bits, propagate] :
       {std::tuple{"BM_PairedRoofline/f32", 32, false}, {"BM_PairedRoofline/f32_propagate", 32, true},
        {"BM_PairedRoofline/8bit_b256", 8, false}}) {
    benchmark::RegisterBenchmark(name, BM_PairedRoofline, bits, propagate)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.5)->Repetitions(kPairedRepeats)->ReportAggregatesOnly(true);
  }
}

}  // namespace bench
}  // namespace halide_lars
