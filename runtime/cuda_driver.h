// The few CUDA driver entry points halide_lars calls itself (the kernels go through Halide's
// runtime). Loaded with dlopen, so nothing links against libcuda and no cuda.h is needed.
#ifndef HALIDE_LARS_RUNTIME_CUDA_DRIVER_H_
#define HALIDE_LARS_RUNTIME_CUDA_DRIVER_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace halide_lars {
namespace internal {

// Loads libcuda.so.1 (RTLD_GLOBAL, so Halide's runtime finds the same symbols in the process)
// and runs cuInit. Cached: later calls return the first result.
absl::Status LoadCudaDriver();

// Number of CUDA devices (LoadCudaDriver must have succeeded).
absl::StatusOr<int> CudaDeviceCount();

// The primary context of `ordinal` (retained once per process and never released: it is shared
// with the CUDA runtime, PyTorch and JAX, so their device pointers are valid in it).
absl::StatusOr<void*> CudaPrimaryContext(int ordinal);

}  // namespace internal
}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_CUDA_DRIVER_H_
