// Which backends this process can use. Every probe is safe on machines without the driver:
// it returns false (with the reason) and never aborts.
#ifndef HALIDE_LARS_RUNTIME_DEVICES_H_
#define HALIDE_LARS_RUNTIME_DEVICES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "halide_lars/types.h"

namespace halide_lars {

// OK when a CUDA driver (libcuda.so.1) is loadable, cuInit succeeds and at least one device
// exists; otherwise Unavailable with the reason ("libcuda.so.1 not found", "cuInit returned 34
// (CUDA_ERROR_STUB_LIBRARY)", "no CUDA device"). Thread-safe; probes once.
absl::Status CudaStatus();
inline bool CudaAvailable() { return CudaStatus().ok(); }

// OK when an OpenCL ICD loader and at least one platform with a device exist (e.g. pocl, Debian
// pocl-opencl-icd). Loads the unversioned libOpenCL.so that Halide's runtime opens (package
// ocl-icd-opencl-dev); with only libOpenCL.so.1 present it preloads that instead.
absl::Status OpenCLStatus();
inline bool OpenCLAvailable() { return OpenCLStatus().ok(); }

// The cl_context and cl_command_queue halide_lars's OpenCL kernels run in (created on first use
// on the platform/device Halide selects: HL_OCL_PLATFORM_NAME, HL_OCL_DEVICE_TYPE). Create the
// cl_mem objects you pass as OpenCL TensorViews in this context; kernels are enqueued on this
// queue, in order. Unavailable without OpenCL.
struct OpenCLHandles {
  void* context = nullptr;  // cl_context
  void* queue = nullptr;    // cl_command_queue
};
absl::StatusOr<OpenCLHandles> GetOpenCLHandles();

// OK when a kernel for `device` can run here (CPU always).
absl::Status DeviceStatus(const Device& device);

// Devices usable in this process: always the CPU, then CUDA ordinals, then OpenCL.
std::vector<Device> AvailableDevices();

// Human-readable: one line per backend with its state, for examples and logs.
std::string DescribeBackends();

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_DEVICES_H_
