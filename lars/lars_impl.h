// Lars::Impl, shared by lars.cc and checkpoint.cc (internal to lars/).
#ifndef HALIDE_LARS_LARS_LARS_IMPL_H_
#define HALIDE_LARS_LARS_LARS_IMPL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "lars/lars.h"
#include "lars/step.h"

namespace halide_lars {

using internal::ParamSlot;

struct Lars::Impl {
  LarsOptions defaults;
  std::vector<OptionOverrides> group_overrides;  // group 0: none
  std::vector<std::unique_ptr<ParamSlot>> params;
  absl::flat_hash_map<std::string, ParamSlot*> by_name;
  // Between StepBegin and StepFinish: the parameters taking part and their options.
  bool sharded_step_open = false;
  std::vector<std::pair<ParamSlot*, LarsOptions>> sharded_work;

  absl::StatusOr<LarsOptions> GroupOptions(int group, const OptionOverrides* extra = nullptr) const {
    LarsOptions o = defaults;
    OptionOverrides all = group_overrides[group];
    if (extra != nullptr) all.insert(all.end(), extra->begin(), extra->end());
    if (absl::Status s = ApplyOverrides(all, &o); !s.ok()) return s;
    return o;
  }

  absl::StatusOr<LarsOptions> ParamOptions(const ParamSlot& p,
                                           const OptionOverrides* group_extra = nullptr,
                                           const OptionOverrides* param_extra = nullptr) const {
    LarsOptions o = defaults;
    OptionOverrides all = group_overrides[p.group];
    if (group_extra != nullptr) all.insert(all.end(), group_extra->begin(), group_extra->end());
    all.insert(all.end(), p.overrides.begin(), p.overrides.end());
    if (param_extra != nullptr) all.insert(all.end(), param_extra->begin(), param_extra->end());
    absl::Status s = ApplyOverrides(all, &o);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat(p.name, ": ", s.message()));
    return o;
  }

  absl::StatusOr<ParamSlot*> Find(absl::string_view name) const {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return absl::NotFoundError(absl::StrCat("no parameter named \"", name, "\""));
    }
    return it->second;
  }
};


}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_LARS_IMPL_H_
