// LARS options with bitsandbytes' names and defaults (docs/spec.md), plus ours
// (trust_mode, trust_coefficient, eps, block_wise), and the option overrides of param groups
// and single parameters (bitsandbytes GlobalOptimManager.override_config).
#ifndef HALIDE_LARS_LARS_OPTIONS_H_
#define HALIDE_LARS_LARS_OPTIONS_H_

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace halide_lars {

// How the trust ratio is applied.
//   kClip (default, bitsandbytes): p -= lr * scale * u, scale = max_unorm*|p|/|u| when
//       |u| > max_unorm*|p|, else 1 (max_unorm = 0 disables it).
//   kClassic (You et al. 2017, as timm/apex): the gradient (with weight decay) is multiplied by
//       trust_coefficient*|p| / (|g| + weight_decay*|p| + eps) before the momentum.
//   kNone: plain momentum SGD (e.g. for biases and norm weights).
// The trust forms (docs/spec.md "Trust forms"; generators/lars_math.h has the math).
enum class TrustMode { kClip = 0, kClassic = 1, kNone = 2, kLarcClip = 3, kExact = 4 };

// Kernel order of a clip-mode step (results agree within fp32 rounding; speed differs).
//   kAuto: kMomentumFirst where its kernels exist (CPU), else kNormsFirst.
//   kNormsFirst: norms pass reads p, g, m; update pass writes p, m (32 B/param in fp32).
//   kMomentumFirst: pass 1 writes m while reducing the norms; pass 2 writes p (28 B/param).
enum class StepOrder { kAuto = 0, kNormsFirst = 1, kMomentumFirst = 2 };

// What a step does with a gradient that holds NaN or Inf (or whose sum of squares overflows).
//   kSkip (default): that parameter's step is skipped: parameter and state stay bit-identical,
//       its step count does not advance, its skipped-step counter does.
//   kError: Step() fails naming the parameter and changes nothing (no parameter is stepped).
//   kPropagate: bitsandbytes' behaviour (NaN flows into the parameter and state).
// skip/error read one float per parameter back to the host each step (a sync on GPUs).
enum class Nonfinite { kSkip = 0, kError = 1, kPropagate = 2 };

// The names of an enum option's values, in value order (OptionValue text, error messages,
// the C ABI's option table).
template <typename E>
struct OptionEnum;
template <>
struct OptionEnum<TrustMode> {
  static constexpr absl::string_view kNames[] = {"clip", "classic", "none", "larc_clip", "exact"};
};
template <>
struct OptionEnum<StepOrder> {
  static constexpr absl::string_view kNames[] = {"auto", "norms_first", "momentum_first"};
};
template <>
struct OptionEnum<Nonfinite> {
  static constexpr absl::string_view kNames[] = {"skip", "error", "propagate"};
};

// The name of an enum option's value ("unknown" out of range).
template <typename E>
absl::string_view OptionEnumName(E e) {
  const int i = static_cast<int>(e);
  constexpr int n = static_cast<int>(std::size(OptionEnum<E>::kNames));
  return i >= 0 && i < n ? OptionEnum<E>::kNames[i] : absl::string_view("unknown");
}
inline absl::string_view TrustModeName(TrustMode m) { return OptionEnumName(m); }
inline absl::string_view StepOrderName(StepOrder s) { return OptionEnumName(s); }
inline absl::string_view NonfiniteName(Nonfinite n) { return OptionEnumName(n); }

// bitsandbytes' options and defaults, and ours (trust_mode, trust_coefficient, eps, block_wise,
// block_size, step_order, nonfinite): one field per line of include/halide_lars/options.inc, which documents
// each one.
struct LarsOptions {
#define LARS_OPTION(name, type, default_value, check, expected, doc) type name = default_value;
#include "halide_lars/options.inc"
#undef LARS_OPTION
};

// InvalidArgument naming the first bad option (Unimplemented for momentum = 0, as bitsandbytes'
// NotImplementedError).
absl::Status ValidateOptions(const LarsOptions& o);

// A value for an option given by name: numbers, booleans, and "clip"/"classic"/"none".
class OptionValue {
 public:
  OptionValue(double v) : number_(v) {}                       // NOLINT
  OptionValue(int v) : number_(v) {}                          // NOLINT
  OptionValue(int64_t v) : number_(static_cast<double>(v)) {}  // NOLINT
  OptionValue(bool v) : number_(v ? 1.0 : 0.0), is_bool_(true) {}  // NOLINT
  OptionValue(const char* v) : text_(v), is_text_(true) {}    // NOLINT
  OptionValue(std::string v) : text_(std::move(v)), is_text_(true) {}  // NOLINT

  bool is_text() const { return is_text_; }
  bool is_bool() const { return is_bool_; }
  double number() const { return number_; }
  const std::string& text() const { return text_; }
  std::string ToString() const;

 private:
  double number_ = 0.0;
  std::string text_;
  bool is_bool_ = false;
  bool is_text_ = false;
};

// Ordered (key, value) pairs applied on top of the defaults: a param group's options, or one
// parameter's override_config entries.
using OptionOverrides = std::vector<std::pair<std::string, OptionValue>>;

// Sets option `key` (a LarsOptions field name) in `o`. InvalidArgument for an unknown key or a
// value of the wrong kind (e.g. a non-integer optim_bits); the result is not validated here.
absl::Status SetOption(LarsOptions* o, absl::string_view key, const OptionValue& value);

// Every option name SetOption accepts (include/halide_lars/options.inc order).
const std::vector<std::string>& OptionNames();

// One option of include/halide_lars/options.inc as bindings see it (the C ABI's lars_option_info).
struct OptionInfo {
  enum class Type { kFloat64, kInt32, kInt64, kBool, kEnum };
  std::string name;
  Type type = Type::kFloat64;
  double default_value = 0.0;       // NaN: no default (lr); enums: the value's index
  std::vector<std::string> values;  // enums: the value names in index order
  std::string expected;             // valid values in words ("> 0"; enums: the names)
  std::string doc;
};
const std::vector<OptionInfo>& OptionTable();

// Every option of `o` as (name, value) pairs (lr omitted when unset): applied to any options,
// they reproduce `o`.
OptionOverrides OptionsAsOverrides(const LarsOptions& o);

// `base` with `overrides` applied in order, validated.
absl::Status ApplyOverrides(const OptionOverrides& overrides, LarsOptions* o);

}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_OPTIONS_H_
