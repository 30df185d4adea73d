// Baselines (docs/benchmarks.md#baselines):
//   triad_inplace   a[i] += s*b[i] (12 B/elem) -- the roofline; static halves or 1M dynamic tasks
//   triad_stream    a[i] = b[i] + s*c[i] (STREAM's triad, 12 B/elem counted)
//   handwritten     the 2-pass step as an expert writes it (OpenMP parallel for simd, restrict)
//   naive           scalar C++, one thread
#include "bench/baselines.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "bench/bench_util.h"
#include "benchmark/benchmark.h"

namespace halide_lars {
namespace bench {
namespace {

// `dynamic`: 1M-element tasks handed out as threads come free instead of one static half each.
void BM_TriadInPlace(benchmark::State& state, bool dynamic) {
  std::vector<float> a = RandomVector(N(), 1), b = RandomVector(N(), 2);
  float* __restrict pa = a.data();
  const float* __restrict pb = b.data();
  const int64_t n = N();
  omp_set_schedule(dynamic ? omp_sched_dynamic : omp_sched_static, dynamic ? 1 << 20 : 0);
  for (auto _ : state) {
#pragma omp parallel for simd schedule(runtime)
    for (int64_t i = 0; i < n; ++i) pa[i] += 1e-7f * pb[i];
    benchmark::ClobberMemory();
  }
  SetBytes(state, 12.0, "12 B/elem");
}

void BM_TriadStream(benchmark::State& state) {
  std::vector<float> a(N()), b = RandomVector(N(), 2), c = RandomVector(N(), 3);
  float* __restrict pa = a.data();
  const float* __restrict pb = b.data();
  const float* __restrict pc = c.data();
  const int64_t n = N();
  for (auto _ : state) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + 3.0f * pc[i];
    benchmark::ClobberMemory();
  }
  SetBytes(state, 12.0, "12 B/elem counted");
}

void BM_HandwrittenOpenMP(benchmark::State& state) {
  std::vector<float> p = RandomVector(N(), 4), g = RandomVector(N(), 5), m = RandomVector(N(), 6);
  for (auto _ : state) {
    HandwrittenStep(p.data(), g.data(), m.data(), N());
    benchmark::ClobberMemory();
  }
  SetBytes(state, kLarsBytesPerParam, "28 B/param");
}

void BM_NaiveScalar(benchmark::State& state) {
  std::vector<float> p = RandomVector(N(), 4), g = RandomVector(N(), 5), m = RandomVector(N(), 6);
  const int64_t n = N();
  for (auto _ : state) {
    double psq = 0.0, usq = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const float u = kMomentum * m[i] + g[i] + kWd * p[i];
      psq += static_cast<double>(p[i]) * p[i];
      usq += static_cast<double>(u) * u;
    }
    const double pn = std::sqrt(psq), un = std::sqrt(usq);
    const float scale = un > kMaxUnorm * pn ? static_cast<float>(kMaxUnorm * pn / un) : 1.0f;
    for (int64_t i = 0; i < n; ++i) {
      m[i] = kMomentum * m[i] + g[i] + kWd * p[i];
      p[i] -= kLr * scale * m[i];
    }
    benchmark::ClobberMemory();
  }
  SetBytes(state, kLarsBytesPerParam, "28 B/param");
}

}  // namespace

void HandwrittenStep(float* __restrict pp, const float* __restrict pg, float* __restrict pm,
                     int64_t n) {
  float psq = 0.0f, usq = 0.0f;
#pragma omp parallel for simd reduction(+ : psq, usq) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float d = pg[i] + kWd * pp[i];
    const float u = kMomentum * pm[i] + d;
    psq += pp[i] * pp[i];
    usq += u * u;
  }
  const float pn = std::sqrt(psq), un = std::sqrt(usq);
  const float scale = un > kMaxUnorm * pn ? kMaxUnorm * pn / un : 1.0f;
  const float step = kLr * scale;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float d = pg[i] + kWd * pp[i];
    const float u = kMomentum * pm[i] + d;
    pm[i] = u;
    pp[i] -= step * u;
  }
}

void RegisterBaselines() {
  benchmark::RegisterBenchmark("BM_TriadInPlace", BM_TriadInPlace, false)
      ->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_TriadInPlaceDynamic", BM_TriadInPlace, true)
      ->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_TriadStream", BM_TriadStream)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_NaiveScalar", BM_NaiveScalar)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_HandwrittenOpenMP", BM_HandwrittenOpenMP)->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace bench
}  // namespace halide_lars
