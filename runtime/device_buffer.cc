#include "runtime/device_buffer.h"

#include <cstdlib>
#include <utility>

#include "HalideRuntimeCuda.h"
#include "HalideRuntimeOpenCL.h"
#include "absl/strings/str_cat.h"
#include "runtime/halide_call.h"

namespace halide_lars {

using internal::CallContext;

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(const Device& device, DType dtype,
                                                    int64_t numel, const ExecContext& exec) {
  if (numel < 0 || numel >= (int64_t{1} << 31)) {
    return absl::InvalidArgumentError(
        absl::StrCat("numel: ", numel, ", expected 0 <= numel < 2^31"));
  }
  CallContext ctx;
  if (absl::Status s = internal::MakeCallContext(device, exec, &ctx); !s.ok()) return s;
  DeviceBuffer b;
  b.view_ = TensorView{nullptr, dtype, numel, device};
  b.exec_ = exec;
  if (numel == 0) return b;
  if (device.type == DeviceType::kCPU) {
    const size_t bytes = (b.view_.bytes() + 63) / 64 * 64;
    b.view_.data = std::aligned_alloc(64, bytes);
    if (b.view_.data == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", bytes, " bytes"));
    }
    return b;
  }
  b.dim_ = halide_dimension_t(0, static_cast<int32_t>(numel), 1);
  b.buffer_.type = internal::HalideType(dtype);
  b.buffer_.dimensions = 1;
  b.buffer_.dim = &b.dim_;
  const halide_device_interface_t* iface = internal::DeviceInterface(device.type);
  const int rc = iface->device_malloc(&ctx, &b.buffer_, iface);
  if (rc != halide_error_code_success) {
    b.buffer_ = halide_buffer_t{};
    return internal::HalideError(absl::StrCat("allocating ", b.view_.bytes(), " bytes"), rc, ctx);
  }
  b.view_.data = reinterpret_cast<void*>(
      device.type == DeviceType::kCUDA ? halide_cuda_get_device_ptr(&ctx, &b.buffer_)
                                       : halide_opencl_get_cl_mem(&ctx, &b.buffer_));
  return b;
}

DeviceBuffer DeviceBuffer::Borrow(const TensorView& parent, int64_t offset, int64_t numel,
                                  const ExecContext& exec) {
  DeviceBuffer b;
  b.view_ = SliceView(parent, offset, numel);
  b.parent_ = parent;
  b.offset_ = offset;
  b.exec_ = exec;
  b.borrowed_ = true;
  return b;
}

namespace {

// Frees an owned allocation: host memory, or the device memory behind `buffer`.
void FreeAllocation(const TensorView& view, const ExecContext& exec, halide_buffer_t* buffer) {
  if (view.device.type == DeviceType::kCPU) {
    std::free(view.data);
  } else if (buffer->device_interface != nullptr) {
    CallContext ctx;
    if (internal::MakeCallContext(view.device, exec, &ctx).ok()) {
      buffer->device_interface->device_free(&ctx, buffer);
    }
  }
}

}  // namespace

// A pinned allocation: frees the memory when the last holder lets go.
struct DeviceBuffer::Owner {
  TensorView view;
  ExecContext exec;
  halide_dimension_t dim{};
  halide_buffer_t buffer{};
  ~Owner() { FreeAllocation(view, exec, &buffer); }
};

std::shared_ptr<const void> DeviceBuffer::Pin() {
  if (borrowed_ || view_.data == nullptr) return nullptr;
  if (owner_ == nullptr) {
    auto owner = std::make_shared<Owner>();
    owner->view = view_;
    owner->exec = exec_;
    owner->dim = dim_;
    owner->buffer = buffer_;
    owner->buffer.dim = &owner->dim;
    buffer_ = halide_buffer_t{};  // the owner frees it now
    owner_ = std::move(owner);
  }
  return owner_;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    view_ = other.view_;
    borrowed_ = other.borrowed_;
    parent_ = other.parent_;
    offset_ = other.offset_;
    exec_ = other.exec_;
    dim_ = other.dim_;
    buffer_ = other.buffer_;
    buffer_.dim = &dim_;
    owner_ = std::move(other.owner_);
    other.view_ = TensorView{};
    other.buffer_ = halide_buffer_t{};
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { Reset(); }

void DeviceBuffer::Reset() {
  if (borrowed_) {
    borrowed_ = false;
  } else if (owner_ != nullptr) {
    owner_.reset();  // freed with the last pin
  } else {
    FreeAllocation(view_, exec_, &buffer_);
  }
  view_ = TensorView{};
  buffer_ = halide_buffer_t{};
}

absl::Status DeviceBuffer::CopyFromHost(const void* src) {
  CallContext ctx;
  if (absl::Status s = internal::MakeCallContext(view_.device, exec_, &ctx); !s.ok()) return s;
  if (borrowed_) return internal::CopyHostToTensorRange(src, parent_, offset_, view_.numel, &ctx);
  return internal::CopyHostToTensor(src, view_, &ctx);
}

absl::Status DeviceBuffer::CopyToHost(void* dst) const {
  CallContext ctx;
  if (absl::Status s = internal::MakeCallContext(view_.device, exec_, &ctx); !s.ok()) return s;
  if (borrowed_) return internal::CopyTensorRangeToHost(parent_, offset_, view_.numel, dst, &ctx);
  return internal::CopyTensorToHost(view_, dst, &ctx);
}

}  // namespace halide_lars
