// Input checks shared by every entry point (messages name the argument, what was seen and what
// was expected).
#ifndef HALIDE_LARS_RUNTIME_VALIDATE_H_
#define HALIDE_LARS_RUNTIME_VALIDATE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace internal {

// numel in [0, 2^31), data non-null when numel > 0, known dtype.
absl::Status ValidateTensor(absl::string_view name, const TensorView& t);

// Same device as `reference` (named `reference_name`).
absl::Status ValidateSameDevice(absl::string_view name, const TensorView& t,
                                absl::string_view reference_name, const TensorView& reference);

}  // namespace internal
}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_VALIDATE_H_
