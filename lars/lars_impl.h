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
#include "lars/flat_set.h"
#include "halide_lars/lars.h"
#include "lars/sharding.h"
#include "lars/step.h"
#include "runtime/device_buffer.h"

namespace halide_lars {

using internal::ParamSlot;

struct Lars::Impl {
  LarsOptions defaults;
  std::vector<OptionOverrides> group_overrides;  // group 0: none
  std::vector<std::unique_ptr<ParamSlot>> params;
  absl::flat_hash_map<std::string, ParamSlot*> by_name;
  using Work = std::vector<std::pair<ParamSlot*, LarsOptions>>;
  // Between StepBegin and StepFinish: the parameters taking part, their options, and each one's
  // index in registration order (its place in the partials).
  bool sharded_step_open = false;
  Work sharded_work;
  std::vector<size_t> sharded_index;
  // Flat parameter sets (AddFlatParams); their members are also in `params`.
  std::vector<std::unique_ptr<internal::FlatSet>> flat_sets;
  int64_t last_step_pipelines = 0;
  int num_threads = 0;  // SetNumThreads
  double grad_scale = 1.0;    // SetGradScale
  float grad_unscale = 1.0f;  // float(1 / grad_scale)
  // `exec` with this optimizer's thread budget where the call gives none.
  ExecContext Exec(const ExecContext& exec) const {
    ExecContext e = exec;
    if (e.num_threads == 0) e.num_threads = num_threads;
    return e;
  }
  // The codebook per device (type, id), exported as every 8-bit parameter's qmap1.
  absl::flat_hash_map<std::pair<int, int>, DeviceBuffer> qmaps;

  // The parameters a step updates (those with a gradient) and their options, all validated;
  // nothing is modified. `index`, if given, receives each one's registration index. A one-call
  // step refuses shards and a sharded step checks that every shard can be stepped.
  absl::StatusOr<Work> StepWork(bool sharded, std::vector<size_t>* index = nullptr) const {
    Work work;
    for (size_t i = 0; i < params.size(); ++i) {
      ParamSlot* p = params[i].get();
      if (sharded && p->flat_set != nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            "StepBegin: \"", p->name, "\" is a flat parameter (AddFlatParams): flat parameters "
            "cannot take part in a sharded step"));
      }
      if (p->flat_set != nullptr) continue;  // stepped with its flat set (FlatWork)
      if (!sharded && p->full_numel >= 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "Step: \"", p->name, "\" is a shard: use StepBegin, all-reduce, StepFinish"));
      }
      if (!p->HasGrad()) continue;  // no gradient this step: skipped, state untouched
      absl::StatusOr<LarsOptions> options = ParamOptions(*p);
      if (!options.ok()) return options.status();
      for (absl::Status s : {internal::ValidateParamAndGrad(*p, p->grad),
                             internal::CheckSupported(*p, *options),
                             sharded ? internal::CheckShardable(*p, *options) : absl::OkStatus()}) {
        if (!s.ok()) return s;
      }
      work.emplace_back(p, *options);
      if (index != nullptr) index->push_back(i);
    }
    return work;
  }

  // Every flat set's members' options (validated; nothing is modified).
  absl::StatusOr<std::vector<std::vector<LarsOptions>>> FlatWork() const {
    std::vector<std::vector<LarsOptions>> all;
    for (const auto& a : flat_sets) {
      std::vector<LarsOptions>& opts = all.emplace_back();
      for (const ParamSlot* p : a->members) {
        absl::StatusOr<LarsOptions> o = ParamOptions(*p);
        if (!o.ok()) return o.status();
        for (absl::Status s : {internal::CheckSupported(*p, *o), internal::CheckFlatSupported(*p, *o)}) {
          if (!s.ok()) return s;
        }
        opts.push_back(*o);
      }
    }
    return all;
  }

  // OutOfRange unless `group` exists.
  absl::Status CheckGroup(int group) const {
    if (group < 0 || group >= static_cast<int>(group_overrides.size())) {
      return absl::OutOfRangeError(absl::StrCat("group ", group, ": there are ",
                                                group_overrides.size(), " param groups"));
    }
    return absl::OkStatus();
  }

  // AlreadyExists if a parameter has this name.
  absl::Status CheckNewName(absl::string_view name) const {
    if (by_name.contains(name)) {
      return absl::AlreadyExistsError(absl::StrCat("parameter \"", name, "\" is already registered"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<LarsOptions> GroupOptions(int group, const OptionOverrides* extra = nullptr) const {
    LarsOptions o = defaults;
    OptionOverrides all = group_overrides[group];
    if (extra != nullptr) all.insert(all.end(), extra->begin(), extra->end());
    if (absl::Status s = ApplyOverrides(all, &o); !s.ok()) return s;
    return o;
  }

  // Every change of defaults, group_overrides or a slot's overrides calls this: the slots'
  // cached options (ParamOptions) are valid while their epoch is the current one.
  void OptionsChanged() { ++options_epoch; }
  uint64_t options_epoch = 1;

  // The options of `p` (defaults, its group's overrides, its own), with extra overrides to try
  // before they are set. Without extras the result is cached in the slot until OptionsChanged.
  absl::StatusOr<LarsOptions> ParamOptions(const ParamSlot& p,
                                           const OptionOverrides* group_extra = nullptr,
                                           const OptionOverrides* param_extra = nullptr) const {
    const bool plain = group_extra == nullptr && param_extra == nullptr;
    if (plain && p.options_epoch == options_epoch) return p.options;
    LarsOptions o = defaults;
    OptionOverrides all = group_overrides[p.group];
    if (group_extra != nullptr) all.insert(all.end(), group_extra->begin(), group_extra->end());
    all.insert(all.end(), p.overrides.begin(), p.overrides.end());
    if (param_extra != nullptr) all.insert(all.end(), param_extra->begin(), param_extra->end());
    absl::Status s = ApplyOverrides(all, &o);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat(p.name, ": ", s.message()));
    if (plain) {
      p.options = o;
      p.options_epoch = options_epoch;
    }
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
