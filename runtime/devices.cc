#include "runtime/devices.h"

#include <dlfcn.h>

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "runtime/cuda_driver.h"
#include "runtime/device_buffer.h"
#include "runtime/halide_call.h"

// Halide's OpenCL runtime (weak symbols, not in its public headers): the context and queue it
// creates and uses for every OpenCL pipeline.
extern "C" int halide_acquire_cl_context(void* user_context, void** ctx, void** queue,
                                         bool create);
extern "C" int halide_release_cl_context(void* user_context);

namespace halide_lars {
namespace {

absl::Status ProbeOpenCL() {
  // Halide's runtime dlopens the unversioned name; a global preload of the versioned one makes
  // the symbols visible to it when only the ICD loader's runtime package is installed.
  void* lib = dlopen("libOpenCL.so", RTLD_NOW | RTLD_GLOBAL);
  if (lib == nullptr) lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (lib == nullptr) {
    return absl::UnavailableError(
        "no OpenCL: libOpenCL.so not found (install ocl-icd-opencl-dev and an ICD such as "
        "pocl-opencl-icd)");
  }
  using GetPlatforms = int32_t (*)(uint32_t, void**, uint32_t*);
  using GetDevices = int32_t (*)(void*, uint64_t, uint32_t, void**, uint32_t*);
  auto get_platforms = reinterpret_cast<GetPlatforms>(dlsym(lib, "clGetPlatformIDs"));
  auto get_devices = reinterpret_cast<GetDevices>(dlsym(lib, "clGetDeviceIDs"));
  if (get_platforms == nullptr || get_devices == nullptr) {
    return absl::UnavailableError("libOpenCL.so lacks clGetPlatformIDs/clGetDeviceIDs");
  }
  uint32_t num_platforms = 0;
  void* platforms[16];
  if (get_platforms(16, platforms, &num_platforms) != 0 || num_platforms == 0) {
    return absl::UnavailableError(
        "no OpenCL platform (install an ICD such as pocl-opencl-icd)");
  }
  constexpr uint64_t kAllDevices = 0xFFFFFFFF;
  for (uint32_t p = 0; p < num_platforms && p < 16; ++p) {
    uint32_t num_devices = 0;
    if (get_devices(platforms[p], kAllDevices, 0, nullptr, &num_devices) == 0 &&
        num_devices > 0) {
      return absl::OkStatus();
    }
  }
  return absl::UnavailableError("OpenCL platforms found, but no device");
}

}  // namespace

absl::Status CudaStatus() {
  static const absl::Status* status = [] {
    absl::Status s = internal::LoadCudaDriver();
    if (s.ok()) {
      absl::StatusOr<int> n = internal::CudaDeviceCount();
      if (!n.ok()) {
        s = n.status();
      } else if (*n == 0) {
        s = absl::UnavailableError("CUDA driver loaded, but no CUDA device");
      }
    }
    return new absl::Status(s);
  }();
  return *status;
}

absl::Status OpenCLStatus() {
  static const absl::Status* status = new absl::Status(ProbeOpenCL());
  return *status;
}

absl::Status DeviceStatus(const Device& device) {
  switch (device.type) {
    case DeviceType::kCPU:
      return absl::OkStatus();
    case DeviceType::kCUDA: {
      if (absl::Status s = CudaStatus(); !s.ok()) return s;
      absl::StatusOr<int> n = internal::CudaDeviceCount();
      if (!n.ok()) return n.status();
      if (device.id < 0 || device.id >= *n) {
        return absl::InvalidArgumentError(absl::StrCat(
            DeviceName(device), ": no such device (", *n, " CUDA device(s) present)"));
      }
      return absl::OkStatus();
    }
    case DeviceType::kOpenCL:
      return OpenCLStatus();
  }
  return absl::InvalidArgumentError("unknown device type");
}

absl::StatusOr<OpenCLHandles> GetOpenCLHandles() {
  internal::CallContext ctx;
  if (absl::Status s = internal::MakeCallContext(Device::OpenCL(), {}, &ctx); !s.ok()) return s;
  {
    // Halide resolves its OpenCL entry points on first use of a buffer, not in
    // halide_acquire_cl_context: a one-element allocation makes sure they are loaded.
    absl::StatusOr<DeviceBuffer> warm = DeviceBuffer::Allocate(Device::OpenCL(), DType::kF32, 1);
    if (!warm.ok()) return warm.status();
  }
  OpenCLHandles h;
  const int rc = halide_acquire_cl_context(&ctx, &h.context, &h.queue, true);
  if (rc == 0) halide_release_cl_context(&ctx);
  if (absl::Status s = internal::HalideError("creating the OpenCL context", rc, ctx); !s.ok()) {
    return s;
  }
  return h;
}

std::vector<Device> AvailableDevices() {
  std::vector<Device> out = {Device::Cpu()};
  if (CudaAvailable()) {
    absl::StatusOr<int> n = internal::CudaDeviceCount();
    for (int i = 0; n.ok() && i < *n; ++i) out.push_back(Device::Cuda(i));
  }
  if (OpenCLAvailable()) out.push_back(Device::OpenCL());
  return out;
}

std::string DescribeBackends() {
  auto line = [](absl::string_view name, const absl::Status& s) {
    return absl::StrCat(name, ": ", s.ok() ? "available" : absl::StrCat("unavailable (", s.message(), ")"),
                        "\n");
  };
  std::string out = line("cpu", absl::OkStatus());
  absl::Status cuda = CudaStatus();
  if (cuda.ok()) {
    absl::StatusOr<int> n = internal::CudaDeviceCount();
    absl::StrAppend(&out, "cuda: available (", n.ok() ? *n : 0, " device(s))\n");
  } else {
    absl::StrAppend(&out, line("cuda", cuda));
  }
  absl::StrAppend(&out, line("opencl", OpenCLStatus()));
  return out;
}

}  // namespace halide_lars
