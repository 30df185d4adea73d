// Counts the GPU kernel launches Halide's runtime makes in this process (CUDA cuLaunchKernel,
// OpenCL clEnqueueNDRangeKernel), at run time, for benchmarks that report launches per step.
//
// How: Halide's runtime looks every driver function up through the weak hooks
// halide_cuda_get_symbol / halide_opencl_get_symbol. Linking //runtime:launch_counter (and only
// then) replaces both with versions that resolve the same symbols from the same libraries and
// hand back a counting wrapper for the launch call. Nothing changes for binaries without it.
#ifndef HALIDE_LARS_RUNTIME_LAUNCH_COUNTER_H_
#define HALIDE_LARS_RUNTIME_LAUNCH_COUNTER_H_

#include <cstdint>

namespace halide_lars {

// Kernel launches since the process started (or the last reset), per API.
struct KernelLaunches {
  int64_t cuda = 0;
  int64_t opencl = 0;
};
KernelLaunches CountedKernelLaunches();
void ResetKernelLaunches();
// True when the counting hooks are linked in (the weak defaults are replaced).
bool LaunchCounterLinked();

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_LAUNCH_COUNTER_H_
