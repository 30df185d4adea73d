#include "runtime/norms.h"

#include "absl/strings/str_cat.h"
#include "runtime/halide_call.h"
#include "runtime/registry.h"
#include "base/status_macros.h"
#include "runtime/validate.h"

namespace halide_lars {

absl::Status SumSqMaxAbs(const TensorView& x, const TensorView& out, const ExecContext& exec) {
  LARS_RETURN_IF_ERROR(internal::ValidateTensor("x", x));
  LARS_RETURN_IF_ERROR(internal::ValidateTensor("out", out));
  if (out.dtype != DType::kF32 || out.numel != 2) {
    return absl::InvalidArgumentError(absl::StrCat("out: ", out.numel, " ", DTypeName(out.dtype),
                                                   " elements, expected 2 f32"));
  }
  LARS_RETURN_IF_ERROR(internal::ValidateSameDevice("out", out, "x", x));
  LARS_ASSIGN_OR_RETURN(auto kernel, FindKernel<Op::kNorms>(x.dtype, x.device.type));
  internal::CallContext ctx;
  LARS_RETURN_IF_ERROR(internal::MakeCallContext(x.device, exec, &ctx));
  if (x.numel == 0) {
    // A zero-extent launch is invalid on CUDA (and a null host pointer is a bounds query on the
    // CPU): the norms of an empty tensor are written directly.
    static const float kZeros[2] = {0.0f, 0.0f};
    return internal::CopyHostToTensor(kZeros, out, &ctx);
  }
  internal::BufferView xb(x, &ctx), ob(out, &ctx);
  LARS_RETURN_IF_ERROR(xb.status());
  LARS_RETURN_IF_ERROR(ob.status());
  return internal::PipelineStatus(absl::StrCat("norms_", DTypeName(x.dtype), "_",
                                            DeviceTypeName(x.device.type)),
                               KernelSignature<Op::kNorms>::Call(
                                   kernel, &ctx, NormsArgs{.x = xb.raw(), .out = ob.raw()}),
                               ctx);
}

}  // namespace halide_lars
