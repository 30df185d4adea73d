#include "runtime/cuda_driver.h"

#include <dlfcn.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace halide_lars {
namespace internal {
namespace {

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;

struct Driver {
  absl::Status status;
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDeviceGetCount)(int*) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
};

template <typename F>
bool Resolve(void* lib, const char* name, F* fn) {
  *fn = reinterpret_cast<F>(dlsym(lib, name));
  return *fn != nullptr;
}

const Driver& GetDriver() {
  static const Driver* driver = [] {
    auto* d = new Driver;
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (lib == nullptr) lib = dlopen("libcuda.so", RTLD_NOW | RTLD_GLOBAL);
    if (lib == nullptr) {
      d->status = absl::UnavailableError("no CUDA driver: libcuda.so.1 not found");
      return d;
    }
    if (!Resolve(lib, "cuInit", &d->cuInit) ||
        !Resolve(lib, "cuDeviceGetCount", &d->cuDeviceGetCount) ||
        !Resolve(lib, "cuDeviceGet", &d->cuDeviceGet) ||
        !Resolve(lib, "cuDevicePrimaryCtxRetain", &d->cuDevicePrimaryCtxRetain)) {
      d->status = absl::UnavailableError("libcuda lacks a required entry point");
      return d;
    }
    const CUresult rc = d->cuInit(0);
    if (rc != 0) {
      d->status = absl::UnavailableError(absl::StrCat(
          "cuInit returned ", rc, rc == 34 ? " (CUDA_ERROR_STUB_LIBRARY: the toolkit stub, not a driver)"
                                 : rc == 100 ? " (CUDA_ERROR_NO_DEVICE)" : ""));
    }
    return d;
  }();
  return *driver;
}

}  // namespace

absl::Status LoadCudaDriver() { return GetDriver().status; }

absl::StatusOr<int> CudaDeviceCount() {
  const Driver& d = GetDriver();
  if (!d.status.ok()) return d.status;
  int n = 0;
  if (CUresult rc = d.cuDeviceGetCount(&n); rc != 0) {
    return absl::UnavailableError(absl::StrCat("cuDeviceGetCount returned ", rc));
  }
  return n;
}

absl::StatusOr<void*> CudaPrimaryContext(int ordinal) {
  const Driver& d = GetDriver();
  if (!d.status.ok()) return d.status;
  static absl::Mutex mu(absl::kConstInit);
  static std::vector<void*>* contexts = new std::vector<void*>;
  absl::MutexLock lock(&mu);
  if (ordinal < 0) return absl::InvalidArgumentError(absl::StrCat("cuda device ", ordinal));
  if (static_cast<size_t>(ordinal) < contexts->size() && (*contexts)[ordinal] != nullptr) {
    return (*contexts)[ordinal];
  }
  CUdevice dev = 0;
  if (CUresult rc = d.cuDeviceGet(&dev, ordinal); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cuda:", ordinal, ": no such device (cuDeviceGet returned ", rc, ")"));
  }
  CUcontext ctx = nullptr;
  if (CUresult rc = d.cuDevicePrimaryCtxRetain(&ctx, dev); rc != 0) {
    return absl::InternalError(
        absl::StrCat("cuda:", ordinal, ": cuDevicePrimaryCtxRetain returned ", rc));
  }
  if (contexts->size() <= static_cast<size_t>(ordinal)) contexts->resize(ordinal + 1, nullptr);
  (*contexts)[ordinal] = ctx;
  return ctx;
}

}  // namespace internal
}  // namespace halide_lars
