#include "bench/bench_util.h"

#include <random>

#include "absl/flags/flag.h"

ABSL_FLAG(int64_t, n, int64_t{1} << 25, "parameters per tensor (default 32M)");
ABSL_FLAG(std::string, json, "",
          "also write the summary (GB/s, ratios, paired ratios, roofline, torch) as JSON here, "
          "for tools/autotune and for comparing commits; Google Benchmark's own per-run JSON: "
          "--benchmark_out=F --benchmark_out_format=json");

namespace halide_lars {
namespace bench {

int64_t N() { return absl::GetFlag(FLAGS_n); }

LarsOptions BenchOptions() {
  LarsOptions o;
  o.lr = kLr;
  o.momentum = kMomentum;
  o.weight_decay = kWd;
  return o;
}

std::vector<float> RandomVector(int64_t n, uint32_t seed) {
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (float& x : v) x = d(rng);
  return v;
}

void SetBytes(benchmark::State& state, double bytes_per_elem, const char* model) {
  const double n = static_cast<double>(N());
  state.counters["GB/s"] = benchmark::Counter(bytes_per_elem * n, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["Mparams/s"] = benchmark::Counter(n / 1e6, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(model);
}

}  // namespace bench
}  // namespace halide_lars
