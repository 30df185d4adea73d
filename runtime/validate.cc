#include "runtime/validate.h"

#include "absl/strings/str_cat.h"

namespace halide_lars {
namespace internal {

absl::Status ValidateTensor(absl::string_view name, const TensorView& t) {
  if (t.numel < 0 || t.numel >= (int64_t{1} << 31)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", t.numel, " elements, expected 0 <= numel < 2^31"));
  }
  if (t.numel > 0 && t.data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": null data with ", t.numel, " elements"));
  }
  if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16 &&
      t.dtype != DType::kU8 && t.dtype != DType::kF64) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": unknown dtype ", static_cast<int>(t.dtype)));
  }
  return absl::OkStatus();
}

absl::Status ValidateSameDevice(absl::string_view name, const TensorView& t,
                                absl::string_view reference_name, const TensorView& reference) {
  if (t.device != reference.device) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": on ", DeviceName(t.device), ", ",
                                                   reference_name, " is on ",
                                                   DeviceName(reference.device)));
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace halide_lars
