// Run under OMP_PROC_BIND=close (tests/omp_bind_test.sh): libgomp binds the initial thread to
// one place before main() -- before this library's static initializers too -- and no other
// thread exists yet. The kernels' pool must still take every CPU the process may use (its
// cgroup's), run a step's loops on workers, and give the same result as one thread.
#include <omp.h>
#include <sched.h>

#include <cstdio>
#include <vector>

#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "runtime/thread_pool.h"
#include "tests/test_util.h"

using halide_lars::DeviceBuffer;
using halide_lars::Device;
using halide_lars::DType;
using halide_lars::Lars;
using halide_lars::LarsOptions;
namespace internal = halide_lars::internal;

std::vector<double> Train(int threads) {
  DeviceBuffer p = halide_lars::testing::ToDevice(halide_lars::testing::RandomTensor(DType::kF32, (1 << 20) + 7, 1),
                                     Device::Cpu());
  DeviceBuffer g = halide_lars::testing::ToDevice(halide_lars::testing::RandomTensor(DType::kF32, (1 << 20) + 7, 2),
                                     Device::Cpu());
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  absl::StatusOr<Lars> opt = Lars::Create(o);
  if (!opt.ok() || !opt->AddParam("w", p.view(), g.view()).ok() ||
      !opt->SetNumThreads(threads).ok()) {
    std::exit(2);
  }
  for (int s = 0; s < 3; ++s) {
    if (!opt->Step().ok()) std::exit(2);
  }
  return halide_lars::testing::ReadValues(p);
}

int main() {
  cpu_set_t mine;
  sched_getaffinity(0, sizeof(mine), &mine);
  const cpu_set_t allowed = internal::AllowedCpus();
  std::printf("OpenMP (%d threads) left the main thread %d CPU(s); the pool's CPUs: %d; "
              "default budget %d\n",
              omp_get_max_threads(), CPU_COUNT(&mine), CPU_COUNT(&allowed),
              internal::DefaultThreads());
  if (CPU_COUNT(&mine) != 1) {
    std::printf("SKIP: OpenMP did not bind the main thread to one CPU (one CPU here?)\n");
    return 0;
  }
  const std::vector<double> one = Train(1);
  const int64_t before = internal::WorkerPieces(), jobs_before = internal::PoolJobs();
  const std::vector<double> all = Train(0);
  const int64_t jobs = internal::PoolJobs() - jobs_before;
  std::printf("steps with the default budget: %lld loops handed to the pool, %lld pieces ran on "
              "workers\n", static_cast<long long>(jobs),
              static_cast<long long>(internal::WorkerPieces() - before));
  bool ok = CPU_COUNT(&allowed) > 1 && internal::DefaultThreads() > 1 && jobs > 0;
  for (pid_t w : internal::PoolWorkers()) {  // every worker may run on all of those CPUs
    cpu_set_t m;
    ok = ok && sched_getaffinity(w, sizeof(m), &m) == 0 && CPU_EQUAL(&m, &allowed);
  }
  ok = ok && !internal::PoolWorkers().empty() && all == one;
  std::printf(ok ? "OK\n" : "FAILED: the pool kept the bound thread's one CPU\n");
  return ok ? 0 : 1;
}
