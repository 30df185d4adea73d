#include "lars/options.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace halide_lars {
namespace {

absl::Status Bad(absl::string_view option, double seen, absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(option, ": ", seen, ", expected ", expected));
}

bool IsInteger(double v) { return std::isfinite(v) && v == std::floor(v); }

}  // namespace

absl::string_view TrustModeName(TrustMode m) {
  switch (m) {
    case TrustMode::kClip:
      return "clip";
    case TrustMode::kClassic:
      return "classic";
    case TrustMode::kNone:
      return "none";
  }
  return "unknown";
}

absl::string_view StepOrderName(StepOrder s) {
  switch (s) {
    case StepOrder::kAuto:
      return "auto";
    case StepOrder::kNormsFirst:
      return "norms_first";
    case StepOrder::kMomentumFirst:
      return "momentum_first";
  }
  return "unknown";
}

absl::string_view NonfiniteName(Nonfinite n) {
  switch (n) {
    case Nonfinite::kSkip:
      return "skip";
    case Nonfinite::kError:
      return "error";
    case Nonfinite::kPropagate:
      return "propagate";
  }
  return "unknown";
}

absl::Status ValidateOptions(const LarsOptions& o) {
  if (!o.lr.has_value()) return absl::InvalidArgumentError("lr: required (no default)");
  if (!(*o.lr >= 0.0) || !std::isfinite(*o.lr)) return Bad("lr", *o.lr, ">= 0");
  if (o.momentum == 0.0) {
    return absl::UnimplementedError("momentum: 0: LARS without momentum is not supported");
  }
  if (!(o.momentum > 0.0) || !std::isfinite(o.momentum)) return Bad("momentum", o.momentum, "> 0");
  if (!(o.dampening >= 0.0 && o.dampening <= 1.0)) return Bad("dampening", o.dampening, "in [0, 1]");
  if (!(o.weight_decay >= 0.0) || !std::isfinite(o.weight_decay)) {
    return Bad("weight_decay", o.weight_decay, ">= 0");
  }
  if (o.nesterov && o.dampening != 0.0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nesterov: requires momentum > 0 and dampening = 0, dampening is ", o.dampening));
  }
  if (o.optim_bits != 8 && o.optim_bits != 32) return Bad("optim_bits", o.optim_bits, "8 or 32");
  if (o.min_8bit_size < 0) return Bad("min_8bit_size", static_cast<double>(o.min_8bit_size), ">= 0");
  if (o.percentile_clipping < 1 || o.percentile_clipping > 100) {
    return Bad("percentile_clipping", o.percentile_clipping, "in [1, 100]");
  }
  if (!(o.max_unorm >= 0.0) || !std::isfinite(o.max_unorm)) return Bad("max_unorm", o.max_unorm, ">= 0");
  if (o.trust_mode != TrustMode::kClip && o.trust_mode != TrustMode::kClassic &&
      o.trust_mode != TrustMode::kNone) {
    return Bad("trust_mode", static_cast<int>(o.trust_mode), "clip, classic or none");
  }
  if (!(o.trust_coefficient > 0.0) || !std::isfinite(o.trust_coefficient)) {
    return Bad("trust_coefficient", o.trust_coefficient, "> 0");
  }
  if (!(o.eps >= 0.0) || !std::isfinite(o.eps)) return Bad("eps", o.eps, ">= 0");
  if (o.block_size != 256 && o.block_size != 2048) return Bad("block_size", o.block_size, "256 or 2048");
  if (o.nonfinite != Nonfinite::kSkip && o.nonfinite != Nonfinite::kError &&
      o.nonfinite != Nonfinite::kPropagate) {
    return Bad("nonfinite", static_cast<int>(o.nonfinite), "skip, error or propagate");
  }
  if (o.step_order != StepOrder::kAuto && o.step_order != StepOrder::kNormsFirst &&
      o.step_order != StepOrder::kMomentumFirst) {
    return Bad("step_order", static_cast<int>(o.step_order), "auto, norms_first or momentum_first");
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
      "lr",           "momentum",   "dampening",         "weight_decay", "nesterov",
      "optim_bits",   "min_8bit_size", "percentile_clipping", "max_unorm", "trust_mode",
      "trust_coefficient", "eps",   "block_wise", "block_size", "step_order", "nonfinite"};
  return *names;
}

absl::Status SetOption(LarsOptions* o, absl::string_view key, const OptionValue& v) {
  if (key == "trust_mode") {
    if (!v.is_text()) {
      return absl::InvalidArgumentError(
          absl::StrCat("trust_mode: ", v.ToString(), ", expected \"clip\", \"classic\" or \"none\""));
    }
    if (v.text() == "clip") {
      o->trust_mode = TrustMode::kClip;
    } else if (v.text() == "classic") {
      o->trust_mode = TrustMode::kClassic;
    } else if (v.text() == "none") {
      o->trust_mode = TrustMode::kNone;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("trust_mode: ", v.ToString(), ", expected \"clip\", \"classic\" or \"none\""));
    }
    return absl::OkStatus();
  }
  if (key == "nonfinite") {
    for (Nonfinite n : {Nonfinite::kSkip, Nonfinite::kError, Nonfinite::kPropagate}) {
      if (v.is_text() && v.text() == NonfiniteName(n)) {
        o->nonfinite = n;
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "nonfinite: ", v.ToString(), ", expected \"skip\", \"error\" or \"propagate\""));
  }
  if (key == "step_order") {
    for (StepOrder s : {StepOrder::kAuto, StepOrder::kNormsFirst, StepOrder::kMomentumFirst}) {
      if (v.is_text() && v.text() == StepOrderName(s)) {
        o->step_order = s;
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "step_order: ", v.ToString(), ", expected \"auto\", \"norms_first\" or \"momentum_first\""));
  }
  if (v.is_text()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": ", v.ToString(), ", expected a number or a boolean"));
  }
  const double x = v.number();
  auto integer = [&](auto* field) -> absl::Status {
    if (!IsInteger(x)) return Bad(key, x, "an integer");
    *field = static_cast<std::remove_pointer_t<decltype(field)>>(x);
    return absl::OkStatus();
  };
  auto boolean = [&](bool* field) -> absl::Status {
    if (x != 0.0 && x != 1.0) return Bad(key, x, "a boolean");
    *field = x != 0.0;
    return absl::OkStatus();
  };
  if (key == "lr") {
    o->lr = x;
  } else if (key == "momentum") {
    o->momentum = x;
  } else if (key == "dampening") {
    o->dampening = x;
  } else if (key == "weight_decay") {
    o->weight_decay = x;
  } else if (key == "nesterov") {
    return boolean(&o->nesterov);
  } else if (key == "optim_bits") {
    return integer(&o->optim_bits);
  } else if (key == "min_8bit_size") {
    return integer(&o->min_8bit_size);
  } else if (key == "percentile_clipping") {
    return integer(&o->percentile_clipping);
  } else if (key == "max_unorm") {
    o->max_unorm = x;
  } else if (key == "trust_coefficient") {
    o->trust_coefficient = x;
  } else if (key == "eps") {
    o->eps = x;
  } else if (key == "block_wise") {
    return boolean(&o->block_wise);
  } else if (key == "block_size") {
    return integer(&o->block_size);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown option \"", key, "\""));
  }
  return absl::OkStatus();
}

OptionOverrides OptionsAsOverrides(const LarsOptions& o) {
  OptionOverrides out;
  if (o.lr.has_value()) out.emplace_back("lr", *o.lr);
  out.emplace_back("momentum", o.momentum);
  out.emplace_back("dampening", o.dampening);
  out.emplace_back("weight_decay", o.weight_decay);
  out.emplace_back("nesterov", o.nesterov);
  out.emplace_back("optim_bits", o.optim_bits);
  out.emplace_back("min_8bit_size", o.min_8bit_size);
  out.emplace_back("percentile_clipping", o.percentile_clipping);
  out.emplace_back("max_unorm", o.max_unorm);
  out.emplace_back("trust_mode", std::string(TrustModeName(o.trust_mode)));
  out.emplace_back("trust_coefficient", o.trust_coefficient);
  out.emplace_back("eps", o.eps);
  out.emplace_back("block_wise", o.block_wise);
  out.emplace_back("block_size", o.block_size);
  out.emplace_back("step_order", std::string(StepOrderName(o.step_order)));
  out.emplace_back("nonfinite", std::string(NonfiniteName(o.nonfinite)));
  return out;
}

absl::Status ApplyOverrides(const OptionOverrides& overrides, LarsOptions* o) {
  for (const auto& [key, value] : overrides) {
    if (absl::Status s = SetOption(o, key, value); !s.ok()) return s;
  }
  return ValidateOptions(*o);
}

}  // namespace halide_lars
