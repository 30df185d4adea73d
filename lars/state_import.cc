// Lars::ImportState: another optimizer's state (bitsandbytes' state1/absmax1/...) converted into
// each parameter's state kind, then loaded through LoadState's validation and all-or-nothing
// commit.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "halide_lars/lars.h"
#include "lars/checkpoint.h"
#include "lars/lars_impl.h"
#include "lars/step.h"
#include "runtime/codebook.h"
#include "runtime/quantize.h"

namespace halide_lars {
namespace {

// Distance in units in the last place between two finite floats of the same sign (large
// otherwise).
int64_t UlpDistance(float a, float b) {
  if (a == b) return 0;
  if ((a < 0) != (b < 0) || !std::isfinite(a) || !std::isfinite(b)) return int64_t{1} << 40;
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::abs(static_cast<int64_t>(ia) - ib);
}

absl::Status AllFinite(const std::vector<float>& v, const std::string& what) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(absl::StrCat(what, "[", i, "] is ", v[i],
                                                     " (state must be finite)"));
    }
  }
  return absl::OkStatus();
}

const char* KindName(StateKind k) {
  switch (k) {
    case StateKind::kFp32: return "fp32";
    case StateKind::kBlockwise8: return "blockwise 8-bit";
    case StateKind::kTensor8: return "per-tensor 8-bit";
  }
  return "?";
}

// Checks `in` against a parameter of `numel` elements and rewrites `out` (that parameter's
// collected state) into state kind `kind` (block `block` for blockwise 8-bit) holding it.
absl::Status ConvertImported(const ImportedState& in, int64_t numel, StateKind kind, int block,
                             bool percentile, SavedParam* out) {
  const std::string where = absl::StrCat("\"", in.name, "\": ");
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(where, parts...));
  };
  const auto n = static_cast<size_t>(numel);
  if (in.step < 0) return bad("step ", in.step, " is negative");
  int64_t per_scale = 0;  // elements per scale (8-bit)
  switch (in.kind) {
    case StateKind::kFp32:
      if (in.momentum.size() != n) {
        return bad("fp32 state1 has ", in.momentum.size(), " elements, the parameter ", n);
      }
      if (!in.codes.empty() || !in.absmax.empty()) return bad("fp32 state with 8-bit arrays");
      break;
    case StateKind::kBlockwise8:
      if (in.block_size <= 0) return bad("blockwise 8-bit state with block size ", in.block_size);
      per_scale = in.block_size;
      if (in.absmax.size() != static_cast<size_t>((numel + in.block_size - 1) / in.block_size)) {
        return bad("absmax1 has ", in.absmax.size(), " elements, ", n, " elements in blocks of ",
                   in.block_size, " need ", (numel + in.block_size - 1) / in.block_size);
      }
      break;
    case StateKind::kTensor8:
      per_scale = std::max<int64_t>(numel, 1);
      if (in.absmax.size() != 1) return bad("per-tensor 8-bit state needs max1 (1 element)");
      break;
    default:
      return bad("unknown state kind ", static_cast<int>(in.kind));
  }
  if (in.kind != StateKind::kFp32) {
    if (in.codes.size() != n) {
      return bad("8-bit state1 has ", in.codes.size(), " codes, the parameter ", n, " elements");
    }
    if (!in.momentum.empty()) return bad("8-bit state with an fp32 momentum array");
    if (!in.qmap.empty() && in.qmap.size() != 256) {
      return bad("qmap1 has ", in.qmap.size(), " elements, expected 256");
    }
    LARS_RETURN_IF_ERROR(AllFinite(in.qmap, where + "qmap1"));
    LARS_RETURN_IF_ERROR(AllFinite(in.absmax, where + (in.kind == StateKind::kTensor8 ? "max1" : "absmax1")));
    for (float a : in.absmax) {
      if (a < 0) return bad("a negative scale (", a, ") in absmax1/max1");
    }
  }
  LARS_RETURN_IF_ERROR(AllFinite(in.momentum, where + "state1"));
  if (!in.gnorm_vec.empty() && in.gnorm_vec.size() != 100) {
    return bad("gnorm_vec has ", in.gnorm_vec.size(), " elements, expected 100");
  }
  LARS_RETURN_IF_ERROR(AllFinite(in.gnorm_vec, where + "gnorm_vec"));
  if (in.unorm_vec.size() > 1) return bad("unorm_vec has ", in.unorm_vec.size(), " elements, expected 1");
  LARS_RETURN_IF_ERROR(AllFinite(in.unorm_vec, where + "unorm_vec"));
  if (percentile && in.gnorm_vec.empty() && in.step > 0) {
    return bad("percentile_clipping is on but the state has no gnorm_vec (its 100 past gradient "
               "norms)");
  }

  const std::array<float, 256>& ours = DynamicCodebook();
  bool our_codebook = true;
  for (size_t i = 0; i < in.qmap.size(); ++i) our_codebook &= UlpDistance(in.qmap[i], ours[i]) <= 2;
  const bool exact = in.kind == kind && (kind != StateKind::kBlockwise8 || in.block_size == block) &&
                     our_codebook;
  out->momentum.clear();
  out->codes.clear();
  out->absmax.clear();
  if (exact) {
    out->momentum = in.momentum;
    out->codes = in.codes;
    if (kind == StateKind::kBlockwise8) out->absmax = in.absmax;
  } else if (kind == StateKind::kTensor8) {
    return absl::UnimplementedError(absl::StrCat(
        where, "per-tensor 8-bit state (block_wise=false) loads only from per-tensor 8-bit state "
        "with the dynamic codebook; this state is ", KindName(in.kind),
        our_codebook ? "" : " with another codebook", " (use block_wise=true)"));
  } else {
    // The momentum as fp32 (the given codebook and scales), then in our representation.
    std::vector<float> m = in.momentum;
    if (in.kind != StateKind::kFp32) {
      const float* q = in.qmap.empty() ? ours.data() : in.qmap.data();
      m.resize(n);
      for (size_t i = 0; i < n; ++i) m[i] = q[in.codes[i]] * in.absmax[i / per_scale];
    }
    if (kind == StateKind::kFp32) {
      out->momentum = std::move(m);
    } else {
      // Quantized by the CPU kernel (bit-identical to every backend's).
      const Device cpu = Device::Cpu();
      const int64_t blocks = (numel + block - 1) / block;
      out->codes.assign(n, 0);
      out->absmax.assign(static_cast<size_t>(blocks), 0.0f);
      if (numel > 0) {
        LARS_ASSIGN_OR_RETURN(DeviceBuffer x, Upload(cpu, DType::kF32, m));
        LARS_ASSIGN_OR_RETURN(DeviceBuffer c, DeviceBuffer::Allocate(cpu, DType::kU8, numel));
        LARS_ASSIGN_OR_RETURN(DeviceBuffer a, DeviceBuffer::Allocate(cpu, DType::kF32, blocks));
        LARS_RETURN_IF_ERROR(QuantizeBlockwise(x.view(), c.view(), a.view(), block));
        LARS_RETURN_IF_ERROR(c.CopyToHost(out->codes.data()));
        LARS_RETURN_IF_ERROR(a.CopyToHost(out->absmax.data()));
      }
    }
  }
  out->kind = static_cast<uint8_t>(kind);
  out->block_size = kind == StateKind::kBlockwise8 ? block : 0;
  out->step = in.step;
  out->norms.assign(kind == StateKind::kTensor8 ? 4 : 3, 0.0f);
  if (!in.unorm_vec.empty()) out->norms[1] = in.unorm_vec[0];
  if (kind == StateKind::kTensor8) out->norms[3] = in.absmax[0];
  out->gscale = {1.0f};
  out->gscale_is_one = 1;
  out->ring = percentile ? in.gnorm_vec : std::vector<float>();
  out->gnorm.clear();
  return absl::OkStatus();
}

}  // namespace

absl::Status Lars::ImportState(const std::vector<ImportedState>& states) {
  // The whole state as a checkpoint, the named parameters' entries rewritten, then loaded:
  // LoadState's validation and all-or-nothing commit cover the result.
  std::vector<SavedParam> saved;
  absl::flat_hash_map<std::string, size_t> index;
  for (size_t i = 0; i < impl_->params.size(); ++i) {
    LARS_ASSIGN_OR_RETURN(SavedParam s, Collect(*impl_->params[i]));
    index[s.name] = i;
    saved.push_back(std::move(s));
  }
  absl::flat_hash_set<std::string> seen;
  for (const ImportedState& in : states) {
    auto it = index.find(in.name);
    if (it == index.end()) {
      return absl::NotFoundError(absl::StrCat("no parameter named \"", in.name, "\""));
    }
    if (!seen.insert(in.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("\"", in.name, "\" given twice"));
    }
    const ParamSlot& slot = *impl_->params[it->second];
    LARS_ASSIGN_OR_RETURN(LarsOptions o, impl_->ParamOptions(slot));
    // A flat parameter keeps its flat set's kind; others take the kind their options give.
    const StateKind kind = slot.flat_set != nullptr ? slot.kind : internal::DesiredKind(o, FullNumel(slot));
    const int block = kind == StateKind::kBlockwise8
                          ? (slot.flat_set != nullptr ? slot.block_size : o.block_size) : 0;
    LARS_RETURN_IF_ERROR(ConvertImported(in, slot.param.numel, kind, block,
                                         o.percentile_clipping < 100 && slot.flat_set == nullptr,
                                         &saved[it->second]));
  }
  return LoadState(SerializeCheckpoint(impl_->defaults, impl_->group_overrides, saved));
}

}  // namespace halide_lars
