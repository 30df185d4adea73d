// Tensor sets: one optimizer over many tensors, registered per tensor, as a flat set or in two
// phases (the sharded path on one process). BM_LarsTensorSet steps a set (GB/s at 28 B/param,
// the pipelines launched per step); BM_Paired/* times the set's step against a reference step,
// alternating (docs/benchmarks.md#tensor-sets).
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "bench/benchmarks.h"
#include "bench/tensor_set.h"
#include "benchmark/benchmark.h"

namespace halide_lars {
namespace bench {
namespace {

void BM_LarsTensorSet(benchmark::State& state, std::vector<int64_t> sizes, SetMode mode) {
  absl::StatusOr<TensorSet> set = TensorSet::Make(sizes, mode);
  if (!set.ok() || !set->Step().ok()) {
    state.SkipWithError("could not build or step the tensor set");
    return;
  }
  for (auto _ : state) {
    if (!set->Step().ok()) {
      state.SkipWithError("step failed");
      break;
    }
  }
  state.counters["tensors"] = static_cast<double>(sizes.size());
  state.counters["pipelines"] = static_cast<double>(set->opt->LastStepPipelines());
  state.counters["GB/s"] = benchmark::Counter(kLarsBytesPerParam * set->total,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::to_string(set->total) + " params, defaults");
}

// The set's step and the reference step alternate within the timed loop, so the bandwidth
// drift of this shared machine hits both alike.
void BM_PairedVsOneTensor(benchmark::State& state, std::vector<int64_t> sizes, SetMode mode,
                          int optim_bits, bool vs_one_call) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  absl::StatusOr<TensorSet> set = TensorSet::Make(sizes, mode, optim_bits);
  absl::StatusOr<TensorSet> one =
      vs_one_call ? TensorSet::Make(sizes, SetMode::kPerTensor, optim_bits)
                  : TensorSet::Make({total}, SetMode::kPerTensor, optim_bits);
  if (!set.ok() || !one.ok() || !set->Step().ok() || !one->Step().ok()) {
    state.SkipWithError("could not build or step the tensor sets");
    return;
  }
  double t_set = 0, t_one = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    (void)set->Step();
    auto t1 = std::chrono::steady_clock::now();
    (void)one->Step();
    auto t2 = std::chrono::steady_clock::now();
    t_set += std::chrono::duration<double>(t1 - t0).count();
    t_one += std::chrono::duration<double>(t2 - t1).count();
  }
  state.counters["ratio"] = t_set / t_one;
  state.counters["set_ms"] = 1e3 * t_set / static_cast<double>(state.iterations());
  state.counters["one_ms"] = 1e3 * t_one / static_cast<double>(state.iterations());
}

}  // namespace

void RegisterPairedVsOneTensor(const std::string& name, const std::vector<int64_t>& sizes,
                               SetMode mode, int optim_bits, bool vs_one_call) {
  benchmark::RegisterBenchmark(name.c_str(), BM_PairedVsOneTensor, sizes, mode, optim_bits,
                               vs_one_call)
      ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0)->Repetitions(kPairedRepeats)->ReportAggregatesOnly(true);
}

void RegisterFixedCostBenchmarks() {
  // The fixed cost per tensor: 161 tensors of 64 elements (ResNet-50's count, no data to move).
  for (SetMode mode : {SetMode::kPerTensor, SetMode::kFlat}) {
    benchmark::RegisterBenchmark(mode == SetMode::kFlat ? "BM_LarsTensorSet/161x64_flat"
                                                         : "BM_LarsTensorSet/161x64",
                                 BM_LarsTensorSet, std::vector<int64_t>(161, 64), mode)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
  }
}

void RegisterTensorSetBenchmarks(const std::string& model, const std::vector<int64_t>& sizes) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  const std::string base = "BM_LarsTensorSet/" + model;
  const std::pair<std::string, SetMode> runs[] = {
      {base, SetMode::kPerTensor}, {base + "_flat", SetMode::kFlat},
      {base + "_two_phase", SetMode::kTwoPhase}};
  for (const auto& [name, mode] : runs) {
    if (mode == SetMode::kTwoPhase && model != "resnet50") continue;
    benchmark::RegisterBenchmark(name.c_str(), BM_LarsTensorSet, sizes, mode)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  // The same total size as one tensor.
  for (SetMode mode : {SetMode::kPerTensor, SetMode::kFlat}) {
    const std::string name = base + (mode == SetMode::kFlat ? "_one_tensor_flat" : "_one_tensor");
    benchmark::RegisterBenchmark(name.c_str(), BM_LarsTensorSet, std::vector<int64_t>{total}, mode)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  // Paired against one tensor of the same total size.
  for (const auto& [suffix, mode] : {std::pair<const char*, SetMode>{"per_tensor", SetMode::kPerTensor},
                                     {"flat", SetMode::kFlat}, {"two_phase", SetMode::kTwoPhase}}) {
    for (int bits : {32, 8}) {
      if (mode == SetMode::kTwoPhase && (model != "resnet50" || bits == 8)) continue;
      const std::string name = "BM_Paired/" + model + "_" + suffix + (bits == 8 ? "_8bit" : "");
      RegisterPairedVsOneTensor(name, sizes, mode, bits, false);
    }
  }
}

}  // namespace bench
}  // namespace halide_lars
