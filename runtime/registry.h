// Kernel registry: (op, dtype, device type) -> generated function. Callers never name
// generated symbols. Thread-safe (immutable after static initialization).
// Two lists, each written once: the ops with their arguments (runtime/kernel_ops.inc: the Op
// enum, each op's function type and named-argument struct below), and the registered kernels
// (generators/kernels.inc, generated from generators/kernels.bzl, which builds exactly those).
#ifndef HALIDE_LARS_RUNTIME_REGISTRY_H_
#define HALIDE_LARS_RUNTIME_REGISTRY_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "HalideRuntime.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "absl/strings/string_view.h"
#include "halide_lars/types.h"

namespace halide_lars {

// The kernel ops, in kernel_ops.inc order.
enum class Op {
#define LARS_OP(Name, token, ARGS) k##Name,
#include "runtime/kernel_ops.inc"
#undef LARS_OP
};
absl::string_view OpName(Op op);  // "norms"

// One argument of a generated function as its generator names it (the metadata name).
struct KernelArgName {
  const char* name;
  bool buffer;  // a halide_buffer_t*; else a scalar
};

// Per op, from its kernel_ops.inc row:
//   <Name>Args       one field per argument, in the generated order (call sites fill it by name)
//   <Name>Fn         the generated function type (user_context first)
//   k<Name>ArgNames  the arguments' metadata names
//   Call<Name>       calls a <Name>Fn with an <Name>Args' fields in order
#define LARS_OP(Name, token, ARGS) \
  struct Name##Args {              \
    ARGS                           \
  };
#define LARS_IN(name) halide_buffer_t* name = nullptr;
#define LARS_OUT(field, meta) halide_buffer_t* field = nullptr;
#define LARS_ARG(type, name) type name{};
#include "runtime/kernel_ops.inc"
#undef LARS_IN
#undef LARS_OUT
#undef LARS_ARG
#undef LARS_OP

#define LARS_OP(Name, token, ARGS) using Name##Fn = int (*)(const void* ARGS);
#define LARS_IN(name) , halide_buffer_t*
#define LARS_OUT(field, meta) , halide_buffer_t*
#define LARS_ARG(type, name) , type
#include "runtime/kernel_ops.inc"
#undef LARS_IN
#undef LARS_OUT
#undef LARS_ARG
#undef LARS_OP

#define LARS_OP(Name, token, ARGS) inline constexpr KernelArgName k##Name##ArgNames[] = {ARGS};
#define LARS_IN(name) {#name, true},
#define LARS_OUT(field, meta) {meta, true},
#define LARS_ARG(type, name) {#name, false},
#include "runtime/kernel_ops.inc"
#undef LARS_IN
#undef LARS_OUT
#undef LARS_ARG
#undef LARS_OP

#define LARS_OP(Name, token, ARGS) \
  inline int Call##Name(Name##Fn fn, const void* uc, const Name##Args& a) { return fn(uc ARGS); }
#define LARS_IN(name) , a.name
#define LARS_OUT(field, meta) , a.field
#define LARS_ARG(type, name) , a.name
#include "runtime/kernel_ops.inc"
#undef LARS_IN
#undef LARS_OUT
#undef LARS_ARG
#undef LARS_OP

// KernelSignature<op>: ::type (the generated function type) and ::Call.
// OpOf<Args>::value: the op of a named-argument struct.
template <Op op>
struct KernelSignature;
template <typename Args>
struct OpOf;
#define LARS_OP(Name, token, ARGS)                                                           \
  template <>                                                                                \
  struct KernelSignature<Op::k##Name> {                                                      \
    using type = Name##Fn;                                                                   \
    static int Call(type fn, const void* uc, const Name##Args& a) { return Call##Name(fn, uc, a); } \
  };                                                                                         \
  template <>                                                                                \
  struct OpOf<Name##Args> {                                                                  \
    static constexpr Op value = Op::k##Name;                                                 \
  };
#include "runtime/kernel_ops.inc"
#undef LARS_OP

// The arguments of `op` (user_context excluded) as its generator names them.
absl::Span<const KernelArgName> OpArgNames(Op op);

struct KernelInfo {
  Op op;
  DType dtype;
  DeviceType device;
  const char* variant;  // "" for the default build of the op, e.g. "b2048"
  const char* name;     // <op>_<dtype>_<backend>[_<variant>]: the Bazel target and C symbol
  void (*fn)();         // cast to KernelSignature<op>::type by FindKernel
  const halide_filter_metadata_t* (*metadata)();  // the generated <name>_metadata()
};

// Every registered kernel, in generators/kernels.inc order.
const std::vector<KernelInfo>& AllKernels();

// The kernel for (dtype, device type, variant), or Unimplemented naming what is missing.
absl::StatusOr<const KernelInfo*> FindKernelInfo(Op op, DType dtype, DeviceType device,
                                                 absl::string_view variant = "");

template <Op op>
absl::StatusOr<typename KernelSignature<op>::type> FindKernel(DType dtype, DeviceType device,
                                                              absl::string_view variant = "") {
  absl::StatusOr<const KernelInfo*> info = FindKernelInfo(op, dtype, device, variant);
  if (!info.ok()) return info.status();
  return reinterpret_cast<typename KernelSignature<op>::type>((*info)->fn);
}

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_REGISTRY_H_
