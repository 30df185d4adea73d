// The threads that run the CPU kernels' parallel loops (Halide's halide_do_par_for, replaced by
// DoParFor). The optimizer runs inside someone else's program, so the pool
//   - uses the CPUs the process may use, whatever the calling thread's own binding: each worker
//     sets its affinity to AllowedCpus() when it starts (OpenMP's OMP_PROC_BIND=close, a
//     thread-bound HPC caller or torch's bound main thread would otherwise hand their one-CPU
//     mask to every worker, which is what Halide's own pool did: it creates its workers from
//     the first calling thread, and they inherit its mask);
//   - never runs a loop on more threads than the call's budget (ExecContext::num_threads; 0:
//     DefaultThreads()), the calling thread included; the pool grows to the largest budget
//     asked for and idle workers sleep;
//   - gives bit-identical results for every thread count: a loop's iterations are the kernel's
//     own fixed pieces (their partial sums combined in a fixed order), only who runs which
//     piece changes.
// Why a pool of ours and not the host's OpenMP: torch's wheels carry their own libgomp, so
// "the same pool as torch" would be a second OpenMP runtime anyway, and libgomp's workers
// inherit a thread-bound caller's one-CPU mask too. Callers that want torch's count pass it
// (the Python binding follows torch.get_num_threads()). See docs/architecture.md.
#ifndef HALIDE_LARS_RUNTIME_THREAD_POOL_H_
#define HALIDE_LARS_RUNTIME_THREAD_POOL_H_

#include <sched.h>
#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace halide_lars {
namespace internal {

// halide_do_par_for's signature: runs task(user_context, i, closure) for i in [min, min + size)
// on at most the budget of the call's CallContext (user_context) threads; returns 0, or one of
// the tasks' non-zero results. Nested calls (from a worker) run inline.
int DoParFor(void* user_context, int (*task)(void*, int, uint8_t*), int min, int size,
             uint8_t* closure);

// The same with an explicit budget (0: DefaultThreads()).
int ParallelFor(int num_threads, void* user_context, int (*task)(void*, int, uint8_t*), int min,
                int size, uint8_t* closure);

// The CPUs the process may use: the mask the process had when this library was loaded, joined
// with every current thread's mask (a bound caller, its OpenMP workers), as the kernel allows.
cpu_set_t AllowedCpus();

// 0 -> HL_NUM_THREADS, else OMP_NUM_THREADS (its first value), else the CPUs in AllowedCpus().
int DefaultThreads();

// For tests and diagnostics: the pool's worker threads so far (Linux thread ids), the loops
// handed to it with at least one worker asked to help, and the pieces workers (not the
// callers) ran -- which depends on scheduling: a busy machine may leave all to the caller.
std::vector<pid_t> PoolWorkers();
int64_t PoolJobs();
int64_t WorkerPieces();

}  // namespace internal
}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_THREAD_POOL_H_
