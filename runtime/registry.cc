#include "runtime/registry.h"

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "runtime/kernel_tokens.h"
#include "generators/all_kernels.h"  // generated: every header named in kernels.inc

namespace halide_lars {
namespace {

// "_b2048" -> "b2048", "" -> "" (string literals: static storage).
constexpr const char* VariantName(const char* token) { return token[0] == '_' ? token + 1 : token; }

using namespace kernel_tokens;  // NOLINT: kernels.inc rows name tokens

// Every row's generated symbol must have exactly its op's signature.
#define LARS_KERNEL_VARIANT(op, dtype, backend, variant)                                   \
  static_assert(std::is_same_v<decltype(&op##_##dtype##_##backend##variant),               \
                               KernelSignature<kOp_##op>::type>,                           \
                #op "_" #dtype "_" #backend #variant " does not match KernelSignature<" #op ">");
#define LARS_KERNEL(op, dtype, backend) LARS_KERNEL_VARIANT(op, dtype, backend, )
#include "runtime/kernels.inc"
#undef LARS_KERNEL
#undef LARS_KERNEL_VARIANT

}  // namespace

absl::string_view OpName(Op op) {
  switch (op) {
    case Op::kNorms:
      return "norms";
    case Op::kLarsNorms:
      return "lars_norms";
    case Op::kLarsUpdate:
      return "lars_update";
    case Op::kPercentileClip:
      return "percentile_clip";
    case Op::kLarsMomentum:
      return "lars_momentum";
    case Op::kLarsApply:
      return "lars_apply";
    case Op::kQuantizeBlockwise:
      return "quantize_blockwise";
    case Op::kDequantizeBlockwise:
      return "dequantize_blockwise";
    case Op::kLars8bitNorms:
      return "lars8bit_norms";
    case Op::kLars8bitUpdate:
      return "lars8bit_update";
    case Op::kLars8bitTensorNorms:
      return "lars8bit_tensor_norms";
    case Op::kLars8bitTensorUpdate:
      return "lars8bit_tensor_update";
    case Op::kLarsFlatNorms:
      return "lars_flat_norms";
    case Op::kLarsFlatUpdate:
      return "lars_flat_update";
    case Op::kLars8bitFlatNorms:
      return "lars8bit_flat_norms";
    case Op::kLars8bitFlatUpdate:
      return "lars8bit_flat_update";
  }
  return "unknown";
}

const std::vector<KernelInfo>& AllKernels() {
  static const std::vector<KernelInfo>* kernels = new std::vector<KernelInfo>{
// The variant token is written with its leading underscore (_b2048); the name drops nothing.
#define LARS_KERNEL_VARIANT(op, dtype, backend, variant)                                  \
  KernelInfo{kOp_##op, kDType_##dtype, kDevice_##backend, VariantName(#variant),          \
             #op "_" #dtype "_" #backend #variant,                                        \
             reinterpret_cast<void (*)()>(&op##_##dtype##_##backend##variant)},
#define LARS_KERNEL(op, dtype, backend) LARS_KERNEL_VARIANT(op, dtype, backend, )
#include "runtime/kernels.inc"
#undef LARS_KERNEL
#undef LARS_KERNEL_VARIANT
  };
  return *kernels;
}

absl::StatusOr<const KernelInfo*> FindKernelInfo(Op op, DType dtype, DeviceType device,
                                                 absl::string_view variant) {
  for (const KernelInfo& k : AllKernels()) {
    if (k.op == op && k.dtype == dtype && k.device == device && variant == k.variant) return &k;
  }
  return absl::UnimplementedError(absl::StrCat(
      "no ", OpName(op), " kernel for dtype ", DTypeName(dtype), " on ", DeviceTypeName(device),
      variant.empty() ? "" : absl::StrCat(" (variant ", variant, ")")));
}

}  // namespace halide_lars
