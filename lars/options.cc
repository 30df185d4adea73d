#include "halide_lars/options.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace halide_lars {
namespace {

absl::Status Bad(absl::string_view option, double seen, absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(option, ": ", seen, ", expected ", expected));
}

bool IsInteger(double v) { return std::isfinite(v) && v == std::floor(v); }

// "clip, classic or none" (quoted: "\"clip\", \"classic\" or \"none\"").
template <typename E>
std::string EnumChoices(bool quoted) {
  std::string out;
  const auto& names = OptionEnum<E>::kNames;
  const size_t n = std::size(names);
  for (size_t i = 0; i < n; ++i) {
    absl::StrAppend(&out, i == 0 ? "" : (i + 1 == n ? " or " : ", "), quoted ? "\"" : "", names[i],
                    quoted ? "\"" : "");
  }
  return out;
}

// SetOption for each field type.
absl::Status SetField(absl::string_view key, const OptionValue& v, double* f) {
  if (v.is_text()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": ", v.ToString(), ", expected a number or a boolean"));
  }
  *f = v.number();
  return absl::OkStatus();
}
absl::Status SetField(absl::string_view key, const OptionValue& v, std::optional<double>* f) {
  double x = 0.0;
  if (absl::Status s = SetField(key, v, &x); !s.ok()) return s;
  *f = x;
  return absl::OkStatus();
}
absl::Status SetField(absl::string_view key, const OptionValue& v, bool* f) {
  double x = 0.0;
  if (absl::Status s = SetField(key, v, &x); !s.ok()) return s;
  if (x != 0.0 && x != 1.0) return Bad(key, x, "a boolean");
  *f = x != 0.0;
  return absl::OkStatus();
}
template <typename T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
absl::Status SetField(absl::string_view key, const OptionValue& v, T* f) {
  double x = 0.0;
  if (absl::Status s = SetField(key, v, &x); !s.ok()) return s;
  if (!IsInteger(x)) return Bad(key, x, "an integer");
  *f = static_cast<T>(x);
  return absl::OkStatus();
}
template <typename E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
absl::Status SetField(absl::string_view key, const OptionValue& v, E* f) {
  const auto& names = OptionEnum<E>::kNames;
  for (size_t i = 0; v.is_text() && i < std::size(names); ++i) {
    if (v.text() == names[i]) {
      *f = static_cast<E>(i);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(key, ": ", v.ToString(), ", expected ", EnumChoices<E>(/*quoted=*/true)));
}

// ValidateOptions' per-option check: `ok(value)` or an InvalidArgument saying `expected`.
template <typename T, typename Check>
absl::Status CheckField(absl::string_view key, const T& value, Check ok, absl::string_view expected) {
  if constexpr (std::is_enum_v<T>) {
    const int i = static_cast<int>(value);
    if (i < 0 || i >= static_cast<int>(std::size(OptionEnum<T>::kNames))) {
      return Bad(key, i, EnumChoices<T>(/*quoted=*/false));
    }
    return absl::OkStatus();
  } else if constexpr (std::is_same_v<T, std::optional<double>>) {
    return value.has_value() ? CheckField(key, *value, ok, expected) : absl::OkStatus();
  } else {
    return ok(value) ? absl::OkStatus() : Bad(key, static_cast<double>(value), expected);
  }
}

// OptionsAsOverrides for each field type.
template <typename T>
void AppendField(OptionOverrides* out, const char* key, const T& value) {
  if constexpr (std::is_enum_v<T>) {
    out->emplace_back(key, std::string(OptionEnumName(value)));
  } else if constexpr (std::is_same_v<T, std::optional<double>>) {
    if (value.has_value()) out->emplace_back(key, *value);
  } else {
    out->emplace_back(key, value);
  }
}

template <typename T>
OptionInfo Describe(const char* name, const T& default_value, const char* expected,
                    const char* doc) {
  OptionInfo info;
  info.name = name;
  info.expected = expected;
  info.doc = doc;
  if constexpr (std::is_enum_v<T>) {
    info.type = OptionInfo::Type::kEnum;
    info.default_value = static_cast<int>(default_value);
    for (absl::string_view n : OptionEnum<T>::kNames) info.values.emplace_back(n);
    info.expected = EnumChoices<T>(/*quoted=*/false);
  } else if constexpr (std::is_same_v<T, std::optional<double>>) {
    info.type = OptionInfo::Type::kFloat64;
    info.default_value = default_value.value_or(std::numeric_limits<double>::quiet_NaN());
  } else if constexpr (std::is_same_v<T, bool>) {
    info.type = OptionInfo::Type::kBool;
    info.default_value = default_value ? 1.0 : 0.0;
  } else if constexpr (std::is_same_v<T, int64_t>) {
    info.type = OptionInfo::Type::kInt64;
    info.default_value = static_cast<double>(default_value);
  } else if constexpr (std::is_integral_v<T>) {
    static_assert(sizeof(T) == 4, "integer options are int32 or int64");
    info.type = OptionInfo::Type::kInt32;
    info.default_value = default_value;
  } else {
    static_assert(std::is_same_v<T, double>, "option types: see include/halide_lars/options.inc");
    info.type = OptionInfo::Type::kFloat64;
    info.default_value = default_value;
  }
  return info;
}

}  // namespace

absl::Status ValidateOptions(const LarsOptions& o) {
  if (!o.lr.has_value()) return absl::InvalidArgumentError("lr: required (no default)");
  if (o.momentum == 0.0) {
    return absl::UnimplementedError("momentum: 0: LARS without momentum is not supported");
  }
#define LARS_OPTION(name, type, default_value, check, expected, doc)                          \
  if (absl::Status s = CheckField(#name, o.name, [](const auto& v) { return (check); }, expected); \
      !s.ok()) {                                                                             \
    return s;                                                                                \
  }
#include "halide_lars/options.inc"
#undef LARS_OPTION
  if (o.nesterov && o.dampening != 0.0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nesterov: requires momentum > 0 and dampening = 0, dampening is ", o.dampening));
  }
  if (o.lr_in_momentum && o.trust_mode == TrustMode::kClip) {
    return absl::InvalidArgumentError(
        "lr_in_momentum: not with trust_mode \"clip\" (bitsandbytes' clip bounds |lr u|, not the "
        "momentum); use classic, larc_clip, exact or none");
  }
  return absl::OkStatus();
}

std::string OptionValue::ToString() const {
  if (is_text_) return absl::StrCat("\"", text_, "\"");
  if (is_bool_) return number_ != 0.0 ? "true" : "false";
  return absl::StrCat(number_);
}

const std::vector<std::string>& OptionNames() {
  static const std::vector<std::string>* names = new std::vector<std::string>{
#define LARS_OPTION(name, type, default_value, check, expected, doc) #name,
#include "halide_lars/options.inc"
#undef LARS_OPTION
  };
  return *names;
}

const std::vector<OptionInfo>& OptionTable() {
  static const std::vector<OptionInfo>* table = [] {
    const LarsOptions defaults;
    return new std::vector<OptionInfo>{
#define LARS_OPTION(name, type, default_value, check, expected, doc) \
  Describe(#name, defaults.name, expected, doc),
#include "halide_lars/options.inc"
#undef LARS_OPTION
    };
  }();
  return *table;
}

absl::Status SetOption(LarsOptions* o, absl::string_view key, const OptionValue& v) {
#define LARS_OPTION(name, type, default_value, check, expected, doc) \
  if (key == #name) return SetField(key, v, &o->name);
#include "halide_lars/options.inc"
#undef LARS_OPTION
  return absl::InvalidArgumentError(absl::StrCat("unknown option \"", key, "\""));
}

OptionOverrides OptionsAsOverrides(const LarsOptions& o) {
  OptionOverrides out;
#define LARS_OPTION(name, type, default_value, check, expected, doc) AppendField(&out, #name, o.name);
#include "halide_lars/options.inc"
#undef LARS_OPTION
  return out;
}

absl::Status ApplyOverrides(const OptionOverrides& overrides, LarsOptions* o) {
  for (const auto& [key, value] : overrides) {
    if (absl::Status s = SetOption(o, key, value); !s.ok()) return s;
  }
  return ValidateOptions(*o);
}

}  // namespace halide_lars
