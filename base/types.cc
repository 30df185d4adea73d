#include "halide_lars/types.h"

#include "absl/strings/str_cat.h"

namespace halide_lars {

absl::string_view DTypeName(DType d) {
  switch (d) {
    case DType::kF32:
      return "f32";
    case DType::kF16:
      return "f16";
    case DType::kBF16:
      return "bf16";
    case DType::kU8:
      return "u8";
    case DType::kF64:
      return "f64";
  }
  return "unknown";
}

bool IsParamDType(DType d) {
  return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16;
}

size_t DTypeSize(DType d) {
  switch (d) {
    case DType::kF32:
      return 4;
    case DType::kU8:
      return 1;
    case DType::kF64:
      return 8;
    case DType::kF16:
    case DType::kBF16:
      break;
  }
  return 2;
}

absl::string_view DeviceTypeName(DeviceType t) {
  switch (t) {
    case DeviceType::kCPU:
      return "cpu";
    case DeviceType::kCUDA:
      return "cuda";
    case DeviceType::kOpenCL:
      return "opencl";
  }
  return "unknown";
}

std::string DeviceName(const Device& d) {
  if (d.type == DeviceType::kCUDA) return absl::StrCat("cuda:", d.id);
  return std::string(DeviceTypeName(d.type));
}

TensorView SliceView(const TensorView& t, int64_t offset, int64_t n) {
  TensorView s = t;
  s.numel = n;
  if (t.device.type != DeviceType::kOpenCL) {
    s.data = static_cast<char*>(t.data) + offset * static_cast<int64_t>(DTypeSize(t.dtype));
  }
  return s;
}

}  // namespace halide_lars
