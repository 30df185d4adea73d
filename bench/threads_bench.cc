// BM_Threads: the step's threads under the host's bindings, paired with the in-place triad in
// the same timed loop (vs_triad = the step's GB/s at 28 B/param over the triad's GB/s):
//   unbound         the calling thread free, budget 0 (every CPU the process may use)
//   bound_caller    the calling thread bound to one CPU for the loop (what OMP_PROC_BIND=close
//                   does to torch's main thread, or a thread-bound job); our pool's workers
//                   still take every CPU the process may use
//   threads:K       budget K (Lars::SetNumThreads), K = 1 .. DefaultThreads()
//   bound_caller_halide_pool   the same bound caller on Halide's own pool (registered last:
//                   that pool's workers keep the one-CPU mask they are created with) -- what
//                   halide_lars did before runtime/thread_pool
// Under OMP_PROC_BIND=close set for the whole run, the OpenMP triad binds the main thread
// itself (its mask size is printed as the `caller_cpus` counter).
#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <string>
#include <vector>

#include "HalideRuntime.h"
#include "bench/bench_util.h"
#include "bench/benchmarks.h"
#include "bench/tensor_set.h"
#include "benchmark/benchmark.h"
#include "runtime/thread_pool.h"

namespace halide_lars {
namespace bench {
namespace {

enum class Caller { kUnbound, kBound, kBoundHalidePool };

void BM_Threads(benchmark::State& state, Caller caller, int threads) {
  const int64_t n = N();
  absl::StatusOr<TensorSet> set = TensorSet::Make({n}, SetMode::kPerTensor);
  if (!set.ok() || !set->opt->SetNumThreads(threads).ok() || !set->Step().ok()) {
    state.SkipWithError("could not build or step the tensor");
    return;
  }
  std::vector<float> a = RandomVector(n, 1), b = RandomVector(n, 2);
  float* __restrict pa = a.data();
  const float* __restrict pb = b.data();
  cpu_set_t saved;
  pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
  if (caller != Caller::kUnbound) {
    const cpu_set_t allowed = internal::AllowedCpus();
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &allowed)) {
        CPU_SET(c, &one);
        break;
      }
    }
    pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
  }
  if (caller == Caller::kBoundHalidePool) halide_set_custom_do_par_for(halide_default_do_par_for);
  cpu_set_t mine;
  pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine);
  using Clock = std::chrono::steady_clock;
  double t_triad = 0, t_step = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pa[i] += 1e-7f * pb[i];
    const auto t1 = Clock::now();
    (void)set->Step();
    const auto t2 = Clock::now();
    t_triad += std::chrono::duration<double>(t1 - t0).count();
    t_step += std::chrono::duration<double>(t2 - t1).count();
  }
  if (caller == Caller::kBoundHalidePool) halide_set_custom_do_par_for(internal::DoParFor);
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  state.counters["vs_triad"] = (kLarsBytesPerParam / t_step) / (12.0 / t_triad);
  state.counters["ms_per_step"] = 1e3 * t_step / static_cast<double>(state.iterations());
  state.counters["caller_cpus"] = CPU_COUNT(&mine);
  state.counters["threads"] = threads > 0 ? threads : internal::DefaultThreads();
}

}  // namespace

void RegisterThreadBenchmarks() {
  auto add = [](const std::string& name, Caller caller, int threads) {
    benchmark::RegisterBenchmark(("BM_Threads/" + name).c_str(), BM_Threads, caller, threads)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  };
  add("unbound", Caller::kUnbound, 0);
  add("bound_caller", Caller::kBound, 0);
  for (int k = 1; k <= internal::DefaultThreads(); ++k) {
    add("threads:" + std::to_string(k), Caller::kUnbound, k);
  }
  add("bound_caller_halide_pool", Caller::kBoundHalidePool, 0);
}

}  // namespace bench
}  // namespace halide_lars
