// Lars::SaveState / LoadState and the file variants: the optimizer's side of a checkpoint (the
// bytes: lars/checkpoint_format.h; bitsandbytes state import: lars/state_import.cc).
#include "lars/checkpoint.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "halide_lars/lars.h"
#include "lars/lars_impl.h"
#include "runtime/device_buffer.h"

namespace halide_lars {

absl::StatusOr<SavedParam> Collect(const ParamSlot& p) {
  SavedParam s;
  s.name = p.name;
  s.group = p.group;
  s.overrides = p.overrides;
  s.step = p.step;
  s.kind = static_cast<uint8_t>(p.kind);
  s.block_size = p.block_size;
  s.dtype = static_cast<int32_t>(p.param.dtype);
  s.numel = p.param.numel;
  s.shard_offset = p.shard_offset;
  s.full_numel = p.full_numel;
  LARS_ASSIGN_OR_RETURN(s.momentum, Download<float>(p.momentum));
  LARS_ASSIGN_OR_RETURN(s.codes, Download<uint8_t>(p.codes));
  LARS_ASSIGN_OR_RETURN(s.absmax, Download<float>(p.absmax));
  LARS_ASSIGN_OR_RETURN(s.norms, Download<float>(p.norms));
  LARS_ASSIGN_OR_RETURN(s.gscale, Download<float>(p.gscale));
  LARS_ASSIGN_OR_RETURN(s.ring, Download<float>(p.ring));
  s.gscale_is_one = p.gscale_filled == 1.0f ? 1 : 0;
  // gnorm is scratch ({Σg², max|g|} of the pending step), not state: saved empty.
  return s;
}

absl::StatusOr<std::string> Lars::SaveState() const {
  std::vector<SavedParam> saved;
  saved.reserve(impl_->params.size());
  for (const auto& p : impl_->params) {
    LARS_ASSIGN_OR_RETURN(SavedParam s, Collect(*p));
    saved.push_back(std::move(s));
  }
  return SerializeCheckpoint(impl_->defaults, impl_->group_overrides, saved);
}

absl::Status Lars::LoadState(absl::string_view bytes) {
  // 1-2. Integrity and parsing (lars/checkpoint_format.cc): nothing is looked at before.
  LARS_ASSIGN_OR_RETURN(ParsedCheckpoint parsed, ParseCheckpoint(bytes));
  const LarsOptions& defaults = parsed.defaults;
  std::vector<OptionOverrides>& groups = parsed.groups;
  const std::vector<SavedParam>& saved = parsed.params;
  const uint32_t num_groups = static_cast<uint32_t>(groups.size());
  const uint32_t num_params = static_cast<uint32_t>(saved.size());

  // 3. Validate against the live optimizer: same parameters, consistent shapes.
  if (num_params != impl_->params.size()) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint has ", num_params,
                                                      " parameters, the optimizer has ",
                                                      impl_->params.size()));
  }
  Impl candidate;
  candidate.defaults = defaults;
  candidate.group_overrides = groups;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (absl::Status s = candidate.GroupOptions(static_cast<int>(g)).status(); !s.ok()) {
      return CorruptCheckpoint(absl::StrCat("group ", g, ": ", s.message()));
    }
  }
  std::vector<ParamSlot*> targets;
  for (const SavedParam& p : saved) {
    auto it = impl_->by_name.find(p.name);
    if (it == impl_->by_name.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint: parameter \"", p.name, "\" is not registered"));
    }
    ParamSlot* slot = it->second;
    const std::string where = absl::StrCat("checkpoint: parameter \"", p.name, "\": ");
    if ((p.full_numel >= 0 || slot->full_numel >= 0) &&
        (p.shard_offset != slot->shard_offset || p.full_numel != slot->full_numel ||
         p.numel != slot->param.numel)) {
      auto describe = [](int64_t offset, int64_t numel, int64_t full) {
        return full < 0 ? std::string("the whole tensor")
                        : absl::StrCat("shard [", offset, ", ", offset + numel, ") of ", full,
                                       " elements");
      };
      return absl::FailedPreconditionError(absl::StrCat(
          where, "saved as ", describe(p.shard_offset, p.numel, p.full_numel),
          ", registered as ", describe(slot->shard_offset, slot->param.numel, slot->full_numel),
          " (a different world size or sharding)"));
    }
    if (p.numel != slot->param.numel || p.dtype != static_cast<int32_t>(slot->param.dtype)) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, p.numel, " elements of dtype ", p.dtype, ", registered: ",
                       slot->param.numel, " of ", DTypeName(slot->param.dtype)));
    }
    if (p.group < 0 || p.group >= static_cast<int32_t>(num_groups)) {
      return CorruptCheckpoint(absl::StrCat(where, "group ", p.group, " out of range"));
    }
    if (p.step < 0) return CorruptCheckpoint(absl::StrCat(where, "negative step"));
    const auto n = static_cast<size_t>(p.numel);
    const bool ok_kind =
        (p.kind == static_cast<uint8_t>(StateKind::kFp32) && p.momentum.size() == n &&
         p.codes.empty() && p.absmax.empty() && p.norms.size() == 3) ||
        (p.kind == static_cast<uint8_t>(StateKind::kBlockwise8) &&
         (p.block_size == 256 || p.block_size == 2048) && p.codes.size() == n &&
         p.absmax.size() == static_cast<size_t>((p.numel + p.block_size - 1) / p.block_size) &&
         p.momentum.empty() && p.norms.size() == 3) ||
        (p.kind == static_cast<uint8_t>(StateKind::kTensor8) && p.codes.size() == n &&
         p.momentum.empty() && p.absmax.empty() && p.norms.size() == 4);
    if (!ok_kind || p.gscale.size() != 1 || !(p.ring.empty() || p.ring.size() == 100) ||
        !(p.gnorm.empty() || p.gnorm.size() == 2)) {
      return CorruptCheckpoint(absl::StrCat(where, "inconsistent state arrays"));
    }
    if (slot->flat_set != nullptr &&
        (p.kind != static_cast<uint8_t>(slot->kind) || !p.ring.empty() ||
         (slot->kind == StateKind::kBlockwise8 && p.block_size != slot->block_size))) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, "a flat parameter keeps the state kind it was added with (",
          slot->kind == StateKind::kFp32 ? "fp32" : absl::StrCat("8-bit, block ", slot->block_size),
          ") and has no percentile ring"));
    }
    ParamSlot probe;
    probe.name = p.name;
    probe.group = p.group;
    probe.overrides = p.overrides;
    if (absl::Status s = candidate.ParamOptions(probe).status(); !s.ok()) {
      return CorruptCheckpoint(s.message());
    }
    targets.push_back(slot);
  }

  // 4. Upload everything to the parameters' devices; only then commit (nothing changes before).
  std::vector<ParamSlot> staged(saved.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    const SavedParam& p = saved[i];
    const Device& d = targets[i]->param.device;
    ParamSlot& s = staged[i];
    s.kind = static_cast<StateKind>(p.kind);
    s.block_size = p.block_size;
    LARS_ASSIGN_OR_RETURN(s.momentum, Upload(d, DType::kF32, p.momentum));
    LARS_ASSIGN_OR_RETURN(s.codes, Upload(d, DType::kU8, p.codes));
    LARS_ASSIGN_OR_RETURN(s.absmax, Upload(d, DType::kF32, p.absmax));
    LARS_ASSIGN_OR_RETURN(s.norms, Upload(d, DType::kF32, p.norms));
    LARS_ASSIGN_OR_RETURN(s.scratch_norms,
                          Upload(d, DType::kF32, std::vector<float>(p.norms.size(), 0.0f)));
    LARS_ASSIGN_OR_RETURN(s.gscale, Upload(d, DType::kF32, p.gscale));
    LARS_ASSIGN_OR_RETURN(s.ring, Upload(d, DType::kF32, p.ring));
    LARS_ASSIGN_OR_RETURN(s.gnorm, Upload(d, DType::kF32, std::vector<float>(2, 0.0f)));
  }
  impl_->defaults = defaults;
  impl_->group_overrides = std::move(groups);
  impl_->OptionsChanged();
  for (size_t i = 0; i < saved.size(); ++i) {
    ParamSlot* slot = targets[i];
    ParamSlot& s = staged[i];
    slot->group = saved[i].group;
    slot->overrides = saved[i].overrides;
    slot->step = saved[i].step;
    slot->kind = s.kind;
    slot->block_size = s.block_size;
    if (slot->flat_set != nullptr) {
      // The state and norms live in the flat set (the slot borrows them): copy, do not replace.
      // The flat set's buffers are already allocated, so the copies cannot run out of memory.
      const SavedParam& q = saved[i];
      if (!q.momentum.empty()) LARS_RETURN_IF_ERROR(slot->momentum.CopyFromHost(q.momentum.data()));
      if (!q.codes.empty()) LARS_RETURN_IF_ERROR(slot->codes.CopyFromHost(q.codes.data()));
      if (!q.absmax.empty()) LARS_RETURN_IF_ERROR(slot->absmax.CopyFromHost(q.absmax.data()));
      LARS_RETURN_IF_ERROR(slot->norms.CopyFromHost(q.norms.data()));
      // The commit below moves these back: the slot keeps its borrowed views.
      s.momentum = std::move(slot->momentum);
      s.codes = std::move(slot->codes);
      s.absmax = std::move(slot->absmax);
      s.norms = std::move(slot->norms);
    }
    slot->momentum = std::move(s.momentum);
    slot->codes = std::move(s.codes);
    slot->absmax = std::move(s.absmax);
    slot->norms = std::move(s.norms);
    slot->scratch_norms = std::move(s.scratch_norms);
    slot->gscale = std::move(s.gscale);
    slot->gscale_filled =
        saved[i].gscale_is_one != 0 ? 1.0f : std::numeric_limits<float>::quiet_NaN();
    slot->ring = std::move(s.ring);
    slot->gnorm = std::move(s.gnorm);
  }
  return absl::OkStatus();
}

absl::Status Lars::SaveStateToFile(const std::string& path) const {
  LARS_ASSIGN_OR_RETURN(std::string bytes, SaveState());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) return absl::DataLossError(absl::StrCat("write failed: ", tmp));
  }
  // Atomic replace: a crash never leaves a half-written checkpoint under `path`.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::Status Lars::LoadStateFromFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return LoadState(ss.str());
}

}  // namespace halide_lars
