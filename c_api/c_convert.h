// The C ABI's conversions: DLPack tensors to TensorViews, lars_options_t to and from
// LarsOptions, and the option table with each field's place in lars_options_t -- all generated
// from include/halide_lars/options.inc, never written per option.
#ifndef HALIDE_LARS_C_API_C_CONVERT_H_
#define HALIDE_LARS_C_API_C_CONVERT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dlpack/dlpack.h"
#include "halide_lars/lars_c.h"
#include "halide_lars/options.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace c_api {

// DLTensor -> TensorView: dense float32/float16/bfloat16 on CPU, CUDA or OpenCL (a parameter or
// gradient); `partials`: float64 only (the sharded step's partial sums); `state`: f32 or u8
// (momentum, codes, absmax). Errors name `what`.
absl::StatusOr<TensorView> FromDLPack(const DLTensor* t, const std::string& what,
                                      bool partials = false, bool state = false);

// lars_options_t -> LarsOptions (lr NaN: not set); not validated.
LarsOptions ToOptions(const lars_options_t& o);
// LarsOptions -> lars_options_t (lr unset: NaN).
void FromOptions(const LarsOptions& o, lars_options_t* out);

// The option table with each field's place in lars_options_t (lives as long as the process).
struct COptionTable {
  std::vector<lars_option_info_t> infos;
  std::vector<std::string> values;
};
const COptionTable& OptionTableForC();

}  // namespace c_api
}  // namespace halide_lars

#endif  // HALIDE_LARS_C_API_C_CONVERT_H_
