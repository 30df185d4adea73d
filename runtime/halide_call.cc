#include "runtime/halide_call.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "HalideRuntimeCuda.h"
#include "HalideRuntimeOpenCL.h"
#include "absl/base/call_once.h"
#include "absl/strings/str_cat.h"
#include "runtime/cuda_driver.h"
#include "runtime/devices.h"
#include "runtime/thread_pool.h"

namespace halide_lars {
namespace internal {
namespace {

// Halide's default handler prints and aborts. Ours appends the text to the call's context (or,
// for runtime calls without one, drops it: those paths also return an error code we report).
void ErrorHandler(void* user_context, const char* msg) {
  if (user_context == nullptr || msg == nullptr) return;
  std::string& error = static_cast<CallContext*>(user_context)->error;
  if (!error.empty()) error += "; ";
  error += msg;
  while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
}

// CUDA: run in the caller's context (or the device's primary context), never in a private one
// Halide would otherwise create, so that device pointers from PyTorch/JAX/cudaMalloc are valid.
int AcquireCudaContext(void* user_context, void** cu_context, bool create) {
  auto* ctx = static_cast<CallContext*>(user_context);
  if (ctx != nullptr && ctx->cuda_context != nullptr) {
    *cu_context = ctx->cuda_context;
    return halide_error_code_success;
  }
  // Calls without our context (Halide's kernel finalizers at exit): the primary context of the
  // device, or none.
  absl::StatusOr<void*> primary = CudaPrimaryContext(ctx != nullptr ? ctx->device.id : 0);
  *cu_context = primary.ok() ? *primary : nullptr;
  if (*cu_context == nullptr && create) return halide_error_code_generic_error;
  return halide_error_code_success;
}

int ReleaseCudaContext(void* /*user_context*/) { return halide_error_code_success; }

int GetCudaStream(void* user_context, void* /*cu_context*/, void** stream) {
  auto* ctx = static_cast<CallContext*>(user_context);
  *stream = ctx != nullptr ? ctx->cuda_stream : nullptr;
  return halide_error_code_success;
}

// HALIDE_LARS_CPU_ISA=avx2 or =baseline caps the ISA the CPU multitarget kernels dispatch to
// (read once, before the first kernel call: Halide caches each kernel's choice). Results are
// the same on every ISA (strict_float); the cap lets tests run the AVX2 and baseline code on
// an AVX-512 machine and lets users rule an ISA out. Unset, empty or "native": no cap (2);
// anything else: -1, which MakeCallContext reports.
int CpuIsaCap() {
  static const int cap = [] {
    const char* v = std::getenv("HALIDE_LARS_CPU_ISA");
    if (v == nullptr || std::strcmp(v, "") == 0 || std::strcmp(v, "native") == 0) return 2;
    if (std::strcmp(v, "avx2") == 0) return 1;
    if (std::strcmp(v, "baseline") == 0) return 0;
    return -1;
  }();
  return cap;
}

bool HasFeature(int count, const uint64_t* features, int f) {
  return f / 64 < count && ((features[f / 64] >> (f % 64)) & 1) != 0;
}

int CappedCanUseTargetFeatures(int count, const uint64_t* features) {
  const int cap = CpuIsaCap();
  for (int f : {halide_target_feature_avx512, halide_target_feature_avx512_knl,
                halide_target_feature_avx512_skylake, halide_target_feature_avx512_cannonlake,
                halide_target_feature_avx512_sapphirerapids}) {
    if (cap < 2 && HasFeature(count, features, f)) return 0;
  }
  for (int f : {halide_target_feature_sse41, halide_target_feature_avx, halide_target_feature_avx2,
                halide_target_feature_fma, halide_target_feature_f16c}) {
    if (cap < 1 && HasFeature(count, features, f)) return 0;
  }
  return halide_default_can_use_target_features(count, features);
}

void InstallHandlers() {
  static absl::once_flag once;
  absl::call_once(once, [] {
    halide_set_error_handler(ErrorHandler);
    // Parallel loops on our pool: the process's CPUs, the caller's thread budget.
    halide_set_custom_do_par_for(DoParFor);
    if (CpuIsaCap() < 2) halide_set_custom_can_use_target_features(CappedCanUseTargetFeatures);
    halide_set_cuda_acquire_context(AcquireCudaContext);
    halide_set_cuda_release_context(ReleaseCudaContext);
    halide_set_cuda_get_stream(GetCudaStream);
    // Kernels' internal GPU scratch (reduction partials) is cached between calls instead of
    // cuMemAlloc/cuMemFree (or clCreateBuffer) on every step.
    halide_reuse_device_allocations(nullptr, true);
  });
}

}  // namespace

absl::Status MakeCallContext(const Device& device, const ExecContext& exec, CallContext* out) {
  InstallHandlers();
  if (CpuIsaCap() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HALIDE_LARS_CPU_ISA=", std::getenv("HALIDE_LARS_CPU_ISA"),
        ": expected native, avx2 or baseline"));
  }
  if (absl::Status s = DeviceStatus(device); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(DeviceName(device), ": ", s.message()));
  }
  out->device = device;
  out->error.clear();
  out->cuda_context = nullptr;
  out->cuda_stream = nullptr;
  out->num_threads = exec.num_threads;
  if (device.type == DeviceType::kCUDA) {
    out->cuda_stream = exec.cuda_stream;
    if (exec.cuda_context != nullptr) {
      out->cuda_context = exec.cuda_context;
    } else {
      absl::StatusOr<void*> primary = CudaPrimaryContext(device.id);
      if (!primary.ok()) return primary.status();
      out->cuda_context = *primary;
    }
  }
  return absl::OkStatus();
}

absl::Status HalideError(absl::string_view what, int rc, const CallContext& ctx) {
  if (rc == halide_error_code_success) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, " on ", DeviceName(ctx.device), ": Halide error ",
                                          rc, ctx.error.empty() ? "" : ": ", ctx.error));
}

namespace {
thread_local int64_t pipeline_calls = 0;
}  // namespace

absl::Status PipelineStatus(absl::string_view what, int rc, const CallContext& ctx) {
  ++pipeline_calls;
  return HalideError(what, rc, ctx);
}

int64_t PipelineCalls() { return pipeline_calls; }

const halide_device_interface_t* DeviceInterface(DeviceType type) {
  switch (type) {
    case DeviceType::kCUDA:
      return halide_cuda_device_interface();
    case DeviceType::kOpenCL:
      return halide_opencl_device_interface();
    case DeviceType::kCPU:
      break;
  }
  return nullptr;
}

halide_type_t HalideType(DType d) {
  switch (d) {
    case DType::kF32:
      return halide_type_t(halide_type_float, 32);
    case DType::kU8:
      return halide_type_t(halide_type_uint, 8);
    case DType::kF64:
      return halide_type_t(halide_type_float, 64);
    case DType::kF16:
    case DType::kBF16:
      break;
  }
  return halide_type_t(halide_type_uint, 16);
}

BufferView::BufferView(const TensorView& t, CallContext* ctx) : ctx_(ctx) {
  dim_ = halide_dimension_t(0, static_cast<int32_t>(t.numel), 1);
  std::memset(&buffer_, 0, sizeof(buffer_));
  buffer_.type = HalideType(t.dtype);
  buffer_.dimensions = 1;
  buffer_.dim = &dim_;
  interface_ = DeviceInterface(t.device.type);
  if (interface_ == nullptr) {
    buffer_.host = static_cast<uint8_t*>(t.data);
    return;
  }
  const int rc = interface_->wrap_native(ctx_, &buffer_, reinterpret_cast<uint64_t>(t.data),
                                         interface_);
  wrapped_ = rc == halide_error_code_success;
  status_ = HalideError("wrapping a device tensor", rc, *ctx_);
}

BufferView::BufferView(const TensorView& t, CallContext* ctx, halide_type_t type)
    : BufferView(t, ctx) {
  buffer_.type = type;
}

BufferView::BufferView(CropTag, const TensorView& t, int64_t offset, int64_t n,
                       CallContext* ctx, halide_type_t type)
    : BufferView(SliceView(t, offset, n), ctx, type) {
  dim_.min = static_cast<int32_t>(offset);
  if (t.device.type == DeviceType::kOpenCL && (offset != 0 || n != t.numel) && status_.ok()) {
    status_ = absl::UnimplementedError("a crop of an OpenCL buffer (a cl_mem cannot be offset)");
  }
}

BufferView::~BufferView() {
  if (wrapped_) interface_->detach_native(ctx_, &buffer_);
}

absl::Status CopyHostToTensor(const void* src, const TensorView& dst, CallContext* ctx) {
  if (dst.numel == 0) return absl::OkStatus();
  if (dst.device.type == DeviceType::kCPU) {
    std::memcpy(dst.data, src, dst.bytes());
    return absl::OkStatus();
  }
  BufferView view(dst, ctx);
  if (!view.status().ok()) return view.status();
  halide_buffer_t* b = view.raw();
  b->host = static_cast<uint8_t*>(const_cast<void*>(src));
  b->set_host_dirty(true);
  int rc = b->device_interface->copy_to_device(ctx, b, b->device_interface);
  if (rc == halide_error_code_success) rc = b->device_interface->device_sync(ctx, b);
  b->host = nullptr;
  return HalideError("copying host memory to the device", rc, *ctx);
}

absl::Status CopyTensorToHost(const TensorView& src, void* dst, CallContext* ctx) {
  if (src.numel == 0) return absl::OkStatus();
  if (src.device.type == DeviceType::kCPU) {
    std::memcpy(dst, src.data, src.bytes());
    return absl::OkStatus();
  }
  BufferView view(src, ctx);
  if (!view.status().ok()) return view.status();
  halide_buffer_t* b = view.raw();
  b->host = static_cast<uint8_t*>(dst);
  b->set_device_dirty(true);
  const int rc = b->device_interface->copy_to_host(ctx, b);
  b->host = nullptr;
  return HalideError("copying device memory to the host", rc, *ctx);
}

absl::Status CopyTensorRangeToHost(const TensorView& t, int64_t offset, int64_t n, void* dst,
                                   CallContext* ctx) {
  if (n == 0) return absl::OkStatus();
  if (t.device.type != DeviceType::kOpenCL) {
    return CopyTensorToHost(SliceView(t, offset, n), dst, ctx);
  }
  BufferView src(t, ctx);
  if (!src.status().ok()) return src.status();
  src.raw()->set_device_dirty(true);
  halide_dimension_t dim(static_cast<int32_t>(offset), static_cast<int32_t>(n), 1);
  halide_buffer_t out{};
  out.host = static_cast<uint8_t*>(dst);
  out.type = src.raw()->type;
  out.dimensions = 1;
  out.dim = &dim;
  const int rc = halide_buffer_copy(ctx, src.raw(), nullptr, &out);
  return HalideError("copying a device tensor range to the host", rc, *ctx);
}

absl::Status CopyHostToTensorRange(const void* src, const TensorView& t, int64_t offset,
                                   int64_t n, CallContext* ctx) {
  if (n == 0) return absl::OkStatus();
  if (t.device.type != DeviceType::kOpenCL) {
    return CopyHostToTensor(src, SliceView(t, offset, n), ctx);
  }
  std::vector<uint8_t> whole(t.bytes());
  if (absl::Status s = CopyTensorToHost(t, whole.data(), ctx); !s.ok()) return s;
  std::memcpy(whole.data() + offset * DTypeSize(t.dtype), src, n * DTypeSize(t.dtype));
  return CopyHostToTensor(whole.data(), t, ctx);
}

}  // namespace internal
}  // namespace halide_lars
