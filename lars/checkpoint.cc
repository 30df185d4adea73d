// Lars::SaveState / LoadState: the checkpoint format (little-endian, version 2; version 1, which
// lacks the shard fields, still loads as unsharded).
//   "HLARSCKP" | u32 version | options: defaults | u32 groups, each options |
//   u32 params, each: string name | i32 group | options overrides | i64 step | u8 kind |
//     i32 block_size | i32 dtype | i64 numel | i64 shard_offset | i64 full_numel (-1: not a
//     shard) | f32[] momentum | u8[] codes | f32[] absmax |
//     f32[] norms | f32[] gscale | u8 gscale_is_one | f32[] ring | f32[] gnorm |
//   u32 crc32 (zlib) of every byte before it.
// options: u32 count, each: string key | u8 kind (0 number, 1 bool, 2 text) | f64 or string.
// arrays: u64 count, then the elements.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "halide_lars/lars.h"
#include "lars/lars_impl.h"
#include "lars/step.h"
#include "runtime/codebook.h"
#include "runtime/device_buffer.h"
#include "runtime/quantize.h"
#include "base/status_macros.h"

namespace halide_lars {
namespace {

constexpr char kMagic[8] = {'H', 'L', 'A', 'R', 'S', 'C', 'K', 'P'};
constexpr uint32_t kVersion = 2;
constexpr uint32_t kOldestVersion = 1;
// Generous bounds that a corrupted length field cannot exceed without being caught.
constexpr uint64_t kMaxElements = uint64_t{1} << 31;
constexpr uint32_t kMaxCount = 1 << 24;

class Writer {
 public:
  template <typename T>
  void Put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const char* p = reinterpret_cast<const char*>(&v);
    out_.append(p, sizeof(T));
  }
  void PutString(const std::string& s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  template <typename T>
  void PutArray(const std::vector<T>& v) {
    Put<uint64_t>(v.size());
    if (!v.empty()) out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void PutOptions(const OptionOverrides& o) {
    Put<uint32_t>(static_cast<uint32_t>(o.size()));
    for (const auto& [key, value] : o) {
      PutString(key);
      Put<uint8_t>(value.is_text() ? 2 : value.is_bool() ? 1 : 0);
      if (value.is_text()) {
        PutString(value.text());
      } else {
        Put<double>(value.number());
      }
    }
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  template <typename T>
  bool Get(T* v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetString(std::string* s) {
    uint32_t n;
    if (!Get(&n) || n > kMaxCount || in_.size() - pos_ < n) return false;
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  template <typename T>
  bool GetArray(std::vector<T>* v) {
    uint64_t n;
    if (!Get(&n) || n > kMaxElements || (in_.size() - pos_) / sizeof(T) < n) return false;
    v->resize(n);
    if (n > 0) std::memcpy(v->data(), in_.data() + pos_, n * sizeof(T));  // data() may be null
    pos_ += n * sizeof(T);
    return true;
  }
  bool GetOptions(OptionOverrides* o) {
    uint32_t n;
    if (!Get(&n) || n > 64) return false;
    for (uint32_t i = 0; i < n; ++i) {
      std::string key;
      uint8_t kind;
      if (!GetString(&key) || !Get(&kind) || kind > 2) return false;
      if (kind == 2) {
        std::string text;
        if (!GetString(&text)) return false;
        o->emplace_back(key, text);
      } else {
        double x;
        if (!Get(&x)) return false;
        if (kind == 1) {
          o->emplace_back(key, x != 0.0);
        } else {
          o->emplace_back(key, x);
        }
      }
    }
    return true;
  }
  bool AtEnd() const { return pos_ == in_.size(); }

 private:
  absl::string_view in_;
  size_t pos_ = 0;
};

// One parameter's state on the host.
struct SavedParam {
  std::string name;
  int32_t group = 0;
  OptionOverrides overrides;
  int64_t step = 0;
  uint8_t kind = 0;
  int32_t block_size = 0;
  int32_t dtype = 0;
  int64_t numel = 0;
  int64_t shard_offset = 0, full_numel = -1;
  std::vector<float> momentum, absmax, norms, gscale, ring, gnorm;
  std::vector<uint8_t> codes;
  uint8_t gscale_is_one = 1;
};

template <typename T>
absl::StatusOr<std::vector<T>> Download(const DeviceBuffer& b) {
  std::vector<T> v(b.view().numel);
  if (!v.empty()) LARS_RETURN_IF_ERROR(b.CopyToHost(v.data()));
  return v;
}

template <typename T>
absl::StatusOr<DeviceBuffer> Upload(const Device& d, DType dtype, const std::vector<T>& v) {
  if (v.empty()) return DeviceBuffer();
  LARS_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(d, dtype, static_cast<int64_t>(v.size())));
  LARS_RETURN_IF_ERROR(b.CopyFromHost(v.data()));
  return b;
}

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("checkpoint: ", what));
}


// One parameter's state downloaded into a SavedParam.
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

std::string Serialize(const LarsOptions& defaults, const std::vector<OptionOverrides>& groups,
                      const std::vector<SavedParam>& saved) {
  Writer w;
  w.bytes().append(kMagic, sizeof(kMagic));
  w.Put<uint32_t>(kVersion);
  w.PutOptions(OptionsAsOverrides(defaults));
  w.Put<uint32_t>(static_cast<uint32_t>(groups.size()));
  for (const OptionOverrides& g : groups) w.PutOptions(g);
  w.Put<uint32_t>(static_cast<uint32_t>(saved.size()));
  for (const SavedParam& p : saved) {
    w.PutString(p.name);
    w.Put<int32_t>(p.group);
    w.PutOptions(p.overrides);
    w.Put<int64_t>(p.step);
    w.Put<uint8_t>(p.kind);
    w.Put<int32_t>(p.block_size);
    w.Put<int32_t>(p.dtype);
    w.Put<int64_t>(p.numel);
    w.Put<int64_t>(p.shard_offset);
    w.Put<int64_t>(p.full_numel);
    w.PutArray(p.momentum);
    w.PutArray(p.codes);
    w.PutArray(p.absmax);
    w.PutArray(p.norms);
    w.PutArray(p.gscale);
    w.Put<uint8_t>(p.gscale_is_one);
    w.PutArray(p.ring);
    w.PutArray(p.gnorm);
  }
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(w.bytes().data()), w.bytes().size()));
  w.Put<uint32_t>(crc);
  return std::move(w.bytes());
}

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

absl::StatusOr<std::string> Lars::SaveState() const {
  std::vector<SavedParam> saved;
  saved.reserve(impl_->params.size());
  for (const auto& p : impl_->params) {
    LARS_ASSIGN_OR_RETURN(SavedParam s, Collect(*p));
    saved.push_back(std::move(s));
  }
  return Serialize(impl_->defaults, impl_->group_overrides, saved);
}

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
  return LoadState(Serialize(impl_->defaults, impl_->group_overrides, saved));
}

absl::Status Lars::LoadState(absl::string_view bytes) {
  // 1. Integrity: size, magic, version, CRC over everything.
  if (bytes.size() < sizeof(kMagic) + 8) return Corrupt("truncated (too short)");
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Corrupt("not a halide_lars checkpoint (bad magic)");
  }
  uint32_t version;
  std::memcpy(&version, bytes.data() + sizeof(kMagic), 4);
  if (version < kOldestVersion || version > kVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint: version ", version, ", this build reads versions ", kOldestVersion, " to ",
        kVersion));
  }
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size() - 4));
  if (crc != stored_crc) return Corrupt("CRC mismatch (truncated or corrupted)");

  // 2. Parse everything into host structures.
  Reader r(bytes.substr(sizeof(kMagic) + 4, bytes.size() - sizeof(kMagic) - 8));
  OptionOverrides defaults_list;
  if (!r.GetOptions(&defaults_list)) return Corrupt("bad defaults");
  LarsOptions defaults;
  if (absl::Status s = ApplyOverrides(defaults_list, &defaults); !s.ok()) {
    return Corrupt(absl::StrCat("invalid defaults: ", s.message()));
  }
  uint32_t num_groups;
  if (!r.Get(&num_groups) || num_groups == 0 || num_groups > 4096) return Corrupt("bad group count");
  std::vector<OptionOverrides> groups(num_groups);
  for (OptionOverrides& g : groups) {
    if (!r.GetOptions(&g)) return Corrupt("bad group options");
  }
  uint32_t num_params;
  if (!r.Get(&num_params) || num_params > kMaxCount) return Corrupt("bad parameter count");
  std::vector<SavedParam> saved(num_params);
  for (SavedParam& p : saved) {
    if (!r.GetString(&p.name) || !r.Get(&p.group) || !r.GetOptions(&p.overrides) ||
        !r.Get(&p.step) || !r.Get(&p.kind) || !r.Get(&p.block_size) || !r.Get(&p.dtype) ||
        !r.Get(&p.numel) ||
        (version >= 2 && (!r.Get(&p.shard_offset) || !r.Get(&p.full_numel))) ||
        !r.GetArray(&p.momentum) || !r.GetArray(&p.codes) ||
        !r.GetArray(&p.absmax) || !r.GetArray(&p.norms) || !r.GetArray(&p.gscale) ||
        !r.Get(&p.gscale_is_one) || !r.GetArray(&p.ring) || !r.GetArray(&p.gnorm)) {
      return Corrupt(absl::StrCat("truncated record for parameter \"", p.name, "\""));
    }
  }
  if (!r.AtEnd()) return Corrupt("trailing bytes");

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
      return Corrupt(absl::StrCat("group ", g, ": ", s.message()));
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
      return Corrupt(absl::StrCat(where, "group ", p.group, " out of range"));
    }
    if (p.step < 0) return Corrupt(absl::StrCat(where, "negative step"));
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
      return Corrupt(absl::StrCat(where, "inconsistent state arrays"));
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
      return Corrupt(s.message());
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
