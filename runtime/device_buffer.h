// An owning, dense 1-D allocation on any device (CPU: 64-byte aligned host memory; CUDA/OpenCL:
// device memory allocated through Halide's device interface, in the context the kernels use).
// For tests, examples and callers without a framework of their own. Move-only.
#ifndef HALIDE_LARS_RUNTIME_DEVICE_BUFFER_H_
#define HALIDE_LARS_RUNTIME_DEVICE_BUFFER_H_

#include <cstdint>
#include <memory>

#include "HalideRuntime.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "halide_lars/types.h"

namespace halide_lars {

class DeviceBuffer {
 public:
  // Uninitialized memory for `numel` elements of `dtype` on `device` (numel may be 0).
  static absl::StatusOr<DeviceBuffer> Allocate(const Device& device, DType dtype, int64_t numel,
                                               const ExecContext& exec = {});

  // A non-owning DeviceBuffer over elements [offset, offset + numel) of `parent` (any device):
  // the same copies, nothing freed; the parent must outlive it. view() is the slice for CPU
  // and CUDA; for OpenCL (a cl_mem cannot be offset) it names the parent's handle with the
  // slice's numel, so only this class's copies may touch the slice.
  static DeviceBuffer Borrow(const TensorView& parent, int64_t offset, int64_t numel,
                             const ExecContext& exec = {});

  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  // A view for any halide_lars call; valid while this buffer lives.
  TensorView view() const { return view_; }

  // The allocation a view() lies in and the view's first element there: the buffer itself and 0,
  // or for a borrowed slice its parent and offset (for exports that must name a cl_mem handle
  // plus an offset, as DLPack does for OpenCL).
  TensorView base() const { return borrowed_ ? parent_ : view_; }
  int64_t base_offset() const { return borrowed_ ? offset_ : 0; }

  // Shares ownership of the memory: it stays allocated while the returned pointer (or a copy)
  // lives, even after this buffer is destroyed or reassigned (exported state tensors hold one,
  // so a state conversion or checkpoint load never frees memory a caller still views).
  // nullptr for a borrowed or empty buffer (the parent owns the memory).
  std::shared_ptr<const void> Pin();

  // Copies view().bytes() bytes from/to host memory (synchronous).
  absl::Status CopyFromHost(const void* src);
  absl::Status CopyToHost(void* dst) const;

 private:
  void Reset();

  TensorView view_;
  bool borrowed_ = false;
  TensorView parent_;    // borrowed: the whole parent tensor
  int64_t offset_ = 0;   // borrowed: the slice's first element in parent_
  ExecContext exec_;
  halide_dimension_t dim_{};
  halide_buffer_t buffer_{};  // GPU allocations only
  struct Owner;
  std::shared_ptr<Owner> owner_;  // set once pinned: the memory is freed with the last owner
};

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_DEVICE_BUFFER_H_
