// LARS step speed on this machine, every number next to baselines measured in the same process
// (what each benchmark measures, and the measurements behind these choices: docs/benchmarks.md).
// Throughput is effective GB/s at the minimum traffic: 28 B/param for fp32 state, 23 for 8-bit.
//   bazel run -c opt //bench:lars_bench -- --n=33554432 [--json=out.json]
//       [--benchmark_out=out.json --benchmark_out_format=json]
// Sources: baselines.cc (triads, hand-written and naive steps), step_bench.cc (Lars::Step on one
// tensor: fp32, bf16, 8-bit), roofline_bench.cc (BM_PairedRoofline), tensor_set_bench.cc (per
// tensor, flat and two-phase sets), sharded_bench.cc (two-phase vs one-call), reporter.cc.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/parse.h"
#include "bench/baselines.h"
#include "bench/benchmarks.h"
#include "bench/model_shapes.h"
#include "bench/reporter.h"
#include "benchmark/benchmark.h"

int main(int argc, char** argv) {
  // libgomp reads OMP_WAIT_POLICY before main: re-run this binary with it set to passive, so the
  // baselines' OpenMP threads do not spin on a core while a Halide kernel runs next
  // (docs/benchmarks.md#process-setup).
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
    std::perror("lars_bench: re-exec with OMP_WAIT_POLICY=passive failed; continuing");
  }
  // Every buffer of 1 MiB or more from mmap, whatever ran before (docs/benchmarks.md#process-setup).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  benchmark::Initialize(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  using namespace halide_lars;
  using namespace halide_lars::bench;
  // Registration order is run order: compared cases stay next to each other.
  RegisterBaselines();
  RegisterStepBenchmarks();
  RegisterRooflineBenchmarks();
  RegisterFixedCostBenchmarks();
  // Interleaved so that bandwidth drift hits the compared runs alike.
  const std::pair<std::string, std::vector<int64_t>> models[] = {{"resnet50", ResNet50Sizes()},
                                                                 {"bert_base", BertBaseSizes()}};
  for (const auto& [model, sizes] : models) {
    RegisterTensorSetBenchmarks(model, sizes);
    RegisterShardedBenchmarks(model, sizes);
  }
  RegisterThreadBenchmarks();
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.Summary();
  benchmark::Shutdown();
  return 0;
}
