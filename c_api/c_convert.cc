#include "c_api/c_convert.h"

#include <cmath>
#include <cstddef>
#include <optional>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace halide_lars {
namespace c_api {

// DLTensor -> TensorView: dense float32/float16/bfloat16 (or, for the sharded step's partials,
// float64 only) on CPU, CUDA or OpenCL.
// partials: f64 only; state: f32 or u8 (momentum, codes, absmax); else a parameter's dtypes.
absl::StatusOr<TensorView> FromDLPack(const DLTensor* t, const std::string& what,
                                      bool partials, bool state) {
  if (t == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": null DLTensor"));
  TensorView v;
  switch (t->device.device_type) {
    case kDLCPU:
    case kDLCUDAHost:
      v.device = Device::Cpu();
      break;
    case kDLCUDA:
      v.device = Device::Cuda(t->device.device_id);
      break;
    case kDLOpenCL:
      v.device = Device::OpenCL();
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": device type ", static_cast<int>(t->device.device_type),
          ", expected kDLCPU (1), kDLCUDA (2) or kDLOpenCL (4)"));
  }
  if (t->dtype.lanes != 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", t->dtype.lanes, " lanes, expected 1"));
  }
  if (partials) {
    if (t->dtype.code != kDLFloat || t->dtype.bits != 64) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": dtype code ", static_cast<int>(t->dtype.code), " bits ",
          static_cast<int>(t->dtype.bits), ", expected float64"));
    }
    v.dtype = DType::kF64;
  } else if (state && t->dtype.code == kDLUInt && t->dtype.bits == 8) {
    v.dtype = DType::kU8;
  } else if (state && !(t->dtype.code == kDLFloat && t->dtype.bits == 32)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": dtype code ", static_cast<int>(t->dtype.code), " bits ",
        static_cast<int>(t->dtype.bits), ", expected float32 or uint8"));
  } else if (t->dtype.code == kDLFloat && t->dtype.bits == 32) {
    v.dtype = DType::kF32;
  } else if (t->dtype.code == kDLFloat && t->dtype.bits == 16) {
    v.dtype = DType::kF16;
  } else if (t->dtype.code == kDLBfloat && t->dtype.bits == 16) {
    v.dtype = DType::kBF16;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": dtype code ", static_cast<int>(t->dtype.code), " bits ",
        static_cast<int>(t->dtype.bits), ", expected float32, float16 or bfloat16"));
  }
  if (t->ndim < 0 || (t->ndim > 0 && t->shape == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": bad shape"));
  }
  int64_t numel = 1, expected_stride = 1;
  for (int d = t->ndim - 1; d >= 0; --d) {
    if (t->shape[d] < 0) return absl::InvalidArgumentError(absl::StrCat(what, ": negative extent"));
    if (t->strides != nullptr && t->shape[d] > 1 && t->strides[d] != expected_stride) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": not contiguous (stride ", t->strides[d], " in dimension ", d, ", expected ",
          expected_stride, "); pass a contiguous copy"));
    }
    expected_stride *= t->shape[d];
    numel *= t->shape[d];
  }
  v.numel = numel;
  if (t->byte_offset != 0 && v.device.type == DeviceType::kOpenCL) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": byte_offset on an OpenCL cl_mem"));
  }
  if (t->data == nullptr && numel > 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": null data with ", numel, " elements"));
  }
  v.data = t->data == nullptr ? nullptr : static_cast<char*>(t->data) + t->byte_offset;
  if (v.device.type != DeviceType::kOpenCL && v.data != nullptr &&
      reinterpret_cast<uintptr_t>(v.data) % halide_lars::DTypeSize(v.dtype) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": data is not aligned to its element size"));
  }
  return v;
}

namespace {

// Field conversions between lars_options_t and LarsOptions, per option type.
void FromC(double c, double* f) { *f = c; }
void FromC(double c, std::optional<double>* f) {
  if (std::isnan(c)) {
    f->reset();  // lr: NaN means "not set"
  } else {
    *f = c;
  }
}
void FromC(int32_t c, bool* f) { *f = c != 0; }
void FromC(int32_t c, int* f) { *f = c; }
void FromC(int64_t c, int64_t* f) { *f = c; }
template <typename E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
void FromC(int32_t c, E* f) {
  *f = static_cast<E>(c);  // ValidateOptions rejects values outside the enum
}
template <typename C, typename T>
void ToC(const T& f, C* c) {
  if constexpr (std::is_same_v<T, std::optional<double>>) {
    *c = f.value_or(NAN);
  } else {
    *c = static_cast<C>(f);
  }
}

}  // namespace

halide_lars::LarsOptions ToOptions(const lars_options_t& o) {
  halide_lars::LarsOptions out;
#define LARS_OPTION(name, type, default_value, check, expected, doc) FromC(o.name, &out.name);
#include "halide_lars/options.inc"
#undef LARS_OPTION
  return out;
}

void FromOptions(const halide_lars::LarsOptions& o, lars_options_t* out) {
#define LARS_OPTION(name, type, default_value, check, expected, doc) ToC(o.name, &out->name);
#include "halide_lars/options.inc"
#undef LARS_OPTION
}

const COptionTable& OptionTableForC() {
  static const COptionTable* table = [] {
    auto* t = new COptionTable;
    const std::vector<halide_lars::OptionInfo>& options = halide_lars::OptionTable();
    const int64_t offsets[] = {
#define LARS_OPTION(name, type, default_value, check, expected, doc) offsetof(lars_options_t, name),
#include "halide_lars/options.inc"
#undef LARS_OPTION
    };
    t->values.reserve(options.size());  // never reallocated: infos point into it
    for (size_t i = 0; i < options.size(); ++i) {
      const halide_lars::OptionInfo& o = options[i];
      t->values.push_back(absl::StrJoin(o.values, ","));
      lars_option_info_t info;
      info.name = o.name.c_str();
      info.values = t->values.back().c_str();
      info.expected = o.expected.c_str();
      info.doc = o.doc.c_str();
      info.offset = offsets[i];
      info.default_value = o.default_value;
      info.type = static_cast<int32_t>(o.type);
      t->infos.push_back(info);
    }
    return t;
  }();
  return *table;
}

static_assert(static_cast<int>(halide_lars::OptionInfo::Type::kFloat64) == LARS_OPTION_FLOAT64 &&
                  static_cast<int>(halide_lars::OptionInfo::Type::kInt32) == LARS_OPTION_INT32 &&
                  static_cast<int>(halide_lars::OptionInfo::Type::kInt64) == LARS_OPTION_INT64 &&
                  static_cast<int>(halide_lars::OptionInfo::Type::kBool) == LARS_OPTION_BOOL &&
                  static_cast<int>(halide_lars::OptionInfo::Type::kEnum) == LARS_OPTION_ENUM,
              "lars_option_type_t and OptionInfo::Type disagree");


}  // namespace c_api
}  // namespace halide_lars
