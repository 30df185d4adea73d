// Plumbing between halide_lars and Halide's runtime: the per-call user_context, the error
// handler, CUDA context/stream hooks, and halide_buffer_t views over TensorViews.
// Internal to runtime/ and lars/; never includes Halide.h.
#ifndef HALIDE_LARS_RUNTIME_HALIDE_CALL_H_
#define HALIDE_LARS_RUNTIME_HALIDE_CALL_H_

#include <string>

#include "HalideRuntime.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace internal {

// What every generated pipeline receives as `user_context`. Halide's error handler writes into
// `error`; the CUDA hooks read the context and stream from here.
struct CallContext {
  Device device;
  void* cuda_context = nullptr;  // resolved CUcontext (never null for CUDA calls)
  void* cuda_stream = nullptr;
  int num_threads = 0;  // ExecContext::num_threads, read by the parallel loops (DoParFor)
  std::string error;
};

// Builds the call context for `device` (installs Halide's handlers once; resolves the primary
// CUDA context when `exec` has none). Fails if the device cannot run kernels here.
absl::Status MakeCallContext(const Device& device, const ExecContext& exec, CallContext* out);

// Turns a Halide return code into a Status naming `what`, with the text Halide reported.
absl::Status HalideError(absl::string_view what, int rc, const CallContext& ctx);

// HalideError for a generated pipeline's return code; also counts the call in PipelineCalls().
absl::Status PipelineStatus(absl::string_view what, int rc, const CallContext& ctx);
// Pipelines called on this thread so far (for launch accounting: Lars::LastStepPipelines).
int64_t PipelineCalls();

// The Halide device interface of a GPU device type (nullptr for CPU).
const halide_device_interface_t* DeviceInterface(DeviceType type);

// The halide_type_t kernels use for a dtype (16-bit floats travel as uint16 bit patterns).
halide_type_t HalideType(DType d);

// A halide_buffer_t over a TensorView for the duration of one call: host memory for CPU
// tensors, the wrapped native handle (CUdeviceptr / cl_mem) for GPU tensors, detached again on
// destruction (error paths included). Requires 0 < numel < 2^31 (checked by Validate*).
class BufferView {
 public:
  BufferView(const TensorView& t, CallContext* ctx);
  // The same, with the element type the kernel declares when it differs from t.dtype's (same
  // size in bytes), e.g. uint32 tables stored in f32 DeviceBuffers.
  BufferView(const TensorView& t, CallContext* ctx, halide_type_t type);
  // Elements [offset, offset + n) of a CPU or CUDA tensor as a crop: the buffer's min is
  // `offset` (kernels index it with the whole tensor's coordinates). OpenCL: an error status.
  static constexpr struct CropTag {} kCrop{};
  BufferView(CropTag, const TensorView& t, int64_t offset, int64_t n, CallContext* ctx,
             halide_type_t type);
  ~BufferView();
  BufferView(const BufferView&) = delete;
  BufferView& operator=(const BufferView&) = delete;

  // OK unless wrapping the device handle failed.
  const absl::Status& status() const { return status_; }
  halide_buffer_t* raw() { return &buffer_; }

 private:
  halide_dimension_t dim_;
  halide_buffer_t buffer_;
  const halide_device_interface_t* interface_ = nullptr;
  CallContext* ctx_;
  bool wrapped_ = false;
  absl::Status status_;
};

// Copies `bytes` of host memory into a tensor on any device, or back out of it. The tensor's
// dtype and numel describe the device side; bytes must equal t.bytes().
absl::Status CopyHostToTensor(const void* src, const TensorView& dst, CallContext* ctx);
absl::Status CopyTensorToHost(const TensorView& src, void* dst, CallContext* ctx);

// The same for elements [offset, offset + n) of `t` (t.numel elements in all). CPU and CUDA
// tensors are sliced by pointer; OpenCL reads copy the range (halide_buffer_copy), OpenCL
// writes read, patch and rewrite the whole tensor (a cl_mem cannot be offset).
absl::Status CopyHostToTensorRange(const void* src, const TensorView& t, int64_t offset,
                                   int64_t n, CallContext* ctx);
absl::Status CopyTensorRangeToHost(const TensorView& t, int64_t offset, int64_t n, void* dst,
                                   CallContext* ctx);

}  // namespace internal
}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_HALIDE_CALL_H_
