// The benchmark families of //bench:lars_bench, registered by main() in this order (paired and
// compared cases are interleaved on purpose: docs/benchmarks.md). Registered names are quoted
// by docs/speed.md: keep them.
#ifndef HALIDE_LARS_BENCH_BENCHMARKS_H_
#define HALIDE_LARS_BENCH_BENCHMARKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/tensor_set.h"

namespace halide_lars {
namespace bench {

// step_bench.cc: Lars::Step on one tensor: BM_HalideLars/{f32,f32/propagate,bf16},
// BM_HalideLars8bit/f32/{b256,b2048}.
void RegisterStepBenchmarks();

// roofline_bench.cc: BM_PairedRoofline/{f32,f32_propagate,8bit_b256}.
void RegisterRooflineBenchmarks();

// tensor_set_bench.cc: the fixed cost per tensor, BM_LarsTensorSet/161x64{,_flat}.
void RegisterFixedCostBenchmarks();
// tensor_set_bench.cc: one model's tensor set per tensor, flat and two-phase:
// BM_LarsTensorSet/<model>*, BM_Paired/<model>_{per_tensor,flat,two_phase}[_8bit].
void RegisterTensorSetBenchmarks(const std::string& model, const std::vector<int64_t>& sizes);

// sharded_bench.cc: the two-phase (sharded) step against the one-call step (resnet50 only):
// BM_Paired/resnet50_two_phase_vs_one_call, BM_Paired/4x8M_two_phase_vs_one_call.
void RegisterShardedBenchmarks(const std::string& model, const std::vector<int64_t>& sizes);

// threads_bench.cc: the step under host bindings and thread budgets, paired with the triad:
// BM_Threads/{unbound,bound_caller,threads:K,bound_caller_halide_pool}. Registered last.
void RegisterThreadBenchmarks();

// The paired set-vs-reference measurement shared by tensor_set_bench.cc and sharded_bench.cc:
// the set's step and a reference step -- ONE tensor of the same total size, or (`vs_one_call`)
// the same set stepped by the one-call per-tensor path -- alternating within the timed loop.
// Reports ratio = Σ set step time / Σ reference step time.
void RegisterPairedVsOneTensor(const std::string& name, const std::vector<int64_t>& sizes,
                               SetMode mode, int optim_bits, bool vs_one_call);

}  // namespace bench
}  // namespace halide_lars

#endif  // HALIDE_LARS_BENCH_BENCHMARKS_H_
