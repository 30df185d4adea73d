#include "lars/checkpoint_format.h"

#include <zlib.h>

#include <cstring>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"

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

}  // namespace

absl::Status CorruptCheckpoint(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("checkpoint: ", what));
}

std::string SerializeCheckpoint(const LarsOptions& defaults,
                                const std::vector<OptionOverrides>& groups,
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

absl::StatusOr<ParsedCheckpoint> ParseCheckpoint(absl::string_view bytes) {
  // 1. Integrity: size, magic, version, CRC over everything.
  if (bytes.size() < sizeof(kMagic) + 8) return CorruptCheckpoint("truncated (too short)");
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return CorruptCheckpoint("not a halide_lars checkpoint (bad magic)");
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
  if (crc != stored_crc) return CorruptCheckpoint("CRC mismatch (truncated or corrupted)");

  // 2. Parse everything into host structures.
  ParsedCheckpoint out;
  Reader r(bytes.substr(sizeof(kMagic) + 4, bytes.size() - sizeof(kMagic) - 8));
  OptionOverrides defaults_list;
  if (!r.GetOptions(&defaults_list)) return CorruptCheckpoint("bad defaults");
  LarsOptions defaults;
  if (absl::Status s = ApplyOverrides(defaults_list, &defaults); !s.ok()) {
    return CorruptCheckpoint(absl::StrCat("invalid defaults: ", s.message()));
  }
  uint32_t num_groups;
  if (!r.Get(&num_groups) || num_groups == 0 || num_groups > 4096) {
    return CorruptCheckpoint("bad group count");
  }
  std::vector<OptionOverrides> groups(num_groups);
  for (OptionOverrides& g : groups) {
    if (!r.GetOptions(&g)) return CorruptCheckpoint("bad group options");
  }
  uint32_t num_params;
  if (!r.Get(&num_params) || num_params > kMaxCount) {
    return CorruptCheckpoint("bad parameter count");
  }
  std::vector<SavedParam> saved(num_params);
  for (SavedParam& p : saved) {
    if (!r.GetString(&p.name) || !r.Get(&p.group) || !r.GetOptions(&p.overrides) ||
        !r.Get(&p.step) || !r.Get(&p.kind) || !r.Get(&p.block_size) || !r.Get(&p.dtype) ||
        !r.Get(&p.numel) ||
        (version >= 2 && (!r.Get(&p.shard_offset) || !r.Get(&p.full_numel))) ||
        !r.GetArray(&p.momentum) || !r.GetArray(&p.codes) ||
        !r.GetArray(&p.absmax) || !r.GetArray(&p.norms) || !r.GetArray(&p.gscale) ||
        !r.Get(&p.gscale_is_one) || !r.GetArray(&p.ring) || !r.GetArray(&p.gnorm)) {
      return CorruptCheckpoint(absl::StrCat("truncated record for parameter \"", p.name, "\""));
    }
  }
  if (!r.AtEnd()) return CorruptCheckpoint("trailing bytes");

  out.defaults = defaults;
  out.groups = std::move(groups);
  out.params = std::move(saved);
  return out;
}

}  // namespace halide_lars
