#include "runtime/registry.h"

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "generators/all_kernels.h"  // generated: every kernel's header (generators/kernels.bzl)
#include "runtime/kernel_tokens.h"

namespace halide_lars {
namespace {

// "_b2048" -> "b2048", "" -> "" (string literals: static storage).
constexpr const char* VariantName(const char* token) { return token[0] == '_' ? token + 1 : token; }

using namespace kernel_tokens;  // NOLINT: kernels.inc rows name tokens

// Every row's generated symbol must have exactly its op's signature (kernel_ops.inc's types).
#define LARS_KERNEL_VARIANT(op, dtype, backend, variant)                                   \
  static_assert(std::is_same_v<decltype(&op##_##dtype##_##backend##variant),               \
                               KernelSignature<kOp_##op>::type>,                           \
                #op "_" #dtype "_" #backend #variant " does not match kernel_ops.inc's " #op);
#define LARS_KERNEL(op, dtype, backend) LARS_KERNEL_VARIANT(op, dtype, backend, )
#include "generators/kernels.inc"
#undef LARS_KERNEL
#undef LARS_KERNEL_VARIANT

}  // namespace

absl::string_view OpName(Op op) {
  switch (op) {
#define LARS_OP(Name, token, ARGS) \
  case Op::k##Name:                \
    return #token;
#include "runtime/kernel_ops.inc"
#undef LARS_OP
  }
  return "unknown";
}

absl::Span<const KernelArgName> OpArgNames(Op op) {
  switch (op) {
#define LARS_OP(Name, token, ARGS) \
  case Op::k##Name:                \
    return k##Name##ArgNames;
#include "runtime/kernel_ops.inc"
#undef LARS_OP
  }
  return {};
}

const std::vector<KernelInfo>& AllKernels() {
  static const std::vector<KernelInfo>* kernels = new std::vector<KernelInfo>{
// The variant token is written with its leading underscore (_b2048); the name drops nothing.
#define LARS_KERNEL_VARIANT(op, dtype, backend, variant)                                  \
  KernelInfo{kOp_##op,                                                                    \
             kDType_##dtype,                                                              \
             kDevice_##backend,                                                           \
             VariantName(#variant),                                                       \
             #op "_" #dtype "_" #backend #variant,                                        \
             reinterpret_cast<void (*)()>(&op##_##dtype##_##backend##variant),            \
             &op##_##dtype##_##backend##variant##_metadata},
#define LARS_KERNEL(op, dtype, backend) LARS_KERNEL_VARIANT(op, dtype, backend, )
#include "generators/kernels.inc"
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
