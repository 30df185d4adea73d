// Kernel registry: (op, dtype, device type) -> generated function. Callers never name
// generated symbols. Thread-safe (immutable after static initialization).
#ifndef HALIDE_LARS_RUNTIME_REGISTRY_H_
#define HALIDE_LARS_RUNTIME_REGISTRY_H_

#include <vector>

#include "HalideRuntime.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/types.h"

namespace halide_lars {

// Signatures of the generated pipelines, per op (user_context first: every pipeline has it).
enum class Op { kNorms };
absl::string_view OpName(Op op);  // "norms"

template <Op op>
struct KernelSignature;
template <>
struct KernelSignature<Op::kNorms> {
  // (user_context, x, out[2] = {Σx², max|x|})
  using type = int (*)(const void*, halide_buffer_t*, halide_buffer_t*);
};

struct KernelInfo {
  Op op;
  DType dtype;
  DeviceType device;
  const char* name;  // <op>_<dtype>_<backend>: the Bazel target and C symbol
  void (*fn)();      // cast to KernelSignature<op>::type by FindKernel
};

// Every registered kernel, in kernels.inc order.
const std::vector<KernelInfo>& AllKernels();

// The kernel for (dtype, device type), or Unimplemented naming what is missing.
absl::StatusOr<const KernelInfo*> FindKernelInfo(Op op, DType dtype, DeviceType device);

template <Op op>
absl::StatusOr<typename KernelSignature<op>::type> FindKernel(DType dtype, DeviceType device) {
  absl::StatusOr<const KernelInfo*> info = FindKernelInfo(op, dtype, device);
  if (!info.ok()) return info.status();
  return reinterpret_cast<typename KernelSignature<op>::type>((*info)->fn);
}

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_REGISTRY_H_
