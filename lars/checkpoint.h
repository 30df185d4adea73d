// Between the checkpoint's format and the optimizer: one parameter's state on the host.
#ifndef HALIDE_LARS_LARS_CHECKPOINT_H_
#define HALIDE_LARS_LARS_CHECKPOINT_H_

#include <vector>

#include "absl/status/statusor.h"
#include "base/status_macros.h"
#include "lars/checkpoint_format.h"
#include "lars/param_state.h"
#include "runtime/device_buffer.h"

namespace halide_lars {

// One parameter's state downloaded into a SavedParam (what SaveState writes and ImportState
// rewrites).
// A device buffer's elements on the host, and back onto device `d` (empty: no buffer).
template <typename T>
absl::StatusOr<std::vector<T>> Download(const DeviceBuffer& b) {
  std::vector<T> v(b.view().numel);
  if (!v.empty()) LARS_RETURN_IF_ERROR(b.CopyToHost(v.data()));
  return v;
}

template <typename T>
absl::StatusOr<DeviceBuffer> Upload(const Device& d, DType dtype, const std::vector<T>& v) {
  if (v.empty()) return DeviceBuffer();
  LARS_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(d, dtype, static_cast<int64_t>(v.size())));
  LARS_RETURN_IF_ERROR(b.CopyFromHost(v.data()));
  return b;
}

absl::StatusOr<SavedParam> Collect(const internal::ParamSlot& p);

}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_CHECKPOINT_H_
