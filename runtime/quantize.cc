#include "runtime/quantize.h"

#include <map>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/codebook.h"
#include "runtime/device_buffer.h"
#include "runtime/halide_call.h"
#include "runtime/registry.h"
#include "base/status_macros.h"
#include "runtime/validate.h"

namespace halide_lars {

bool IsSupportedQuantBlock(int block_size) { return block_size == 256 || block_size == 2048; }

namespace internal {

const char* QuantBlockVariant(int block_size) { return block_size == 2048 ? "b2048" : ""; }

absl::StatusOr<DeviceCodebook> GetDeviceCodebook(const Device& device) {
  static absl::Mutex mu(absl::kConstInit);
  struct Tables {
    DeviceBuffer code, mids, lut;
  };
  static auto* cache = new std::map<std::pair<int, int>, Tables>;
  absl::MutexLock lock(&mu);
  const std::pair<int, int> key{static_cast<int>(device.type), device.id};
  auto it = cache->find(key);
  if (it == cache->end()) {
    const std::array<float, 256>& code = DynamicCodebook();
    const std::array<float, 256> mids = CodebookMidpoints(code);
    const std::vector<uint32_t> lut = CodebookBucketTable(mids);
    Tables t;
    LARS_ASSIGN_OR_RETURN(t.code, DeviceBuffer::Allocate(device, DType::kF32, 256));
    LARS_ASSIGN_OR_RETURN(t.mids, DeviceBuffer::Allocate(device, DType::kF32, 256));
    // uint32 entries, allocated as f32 (same size) and re-typed in the view below.
    LARS_ASSIGN_OR_RETURN(t.lut, DeviceBuffer::Allocate(device, DType::kF32, 65536));
    LARS_RETURN_IF_ERROR(t.code.CopyFromHost(code.data()));
    LARS_RETURN_IF_ERROR(t.mids.CopyFromHost(mids.data()));
    LARS_RETURN_IF_ERROR(t.lut.CopyFromHost(lut.data()));
    it = cache->emplace(key, std::move(t)).first;
  }
  return DeviceCodebook{it->second.code.view(), it->second.mids.view(), it->second.lut.view()};
}

}  // namespace internal

namespace {

absl::Status ValidateQuantized(const TensorView& values, const TensorView& codes,
                               const TensorView& absmax, int block_size) {
  if (!IsSupportedQuantBlock(block_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_size: ", block_size, ", expected 256 or 2048"));
  }
  LARS_RETURN_IF_ERROR(internal::ValidateTensor("codes", codes));
  LARS_RETURN_IF_ERROR(internal::ValidateTensor("absmax", absmax));
  if (values.dtype == DType::kU8) {
    return absl::InvalidArgumentError("x: dtype u8, expected f32, f16 or bf16");
  }
  if (codes.dtype != DType::kU8 || codes.numel != values.numel) {
    return absl::InvalidArgumentError(absl::StrCat("codes: ", codes.numel, " ",
                                                   DTypeName(codes.dtype), " elements, expected ",
                                                   values.numel, " u8"));
  }
  const int64_t blocks = NumQuantBlocks(values.numel, block_size);
  if (absmax.dtype != DType::kF32 || absmax.numel != blocks) {
    return absl::InvalidArgumentError(absl::StrCat("absmax: ", absmax.numel, " ",
                                                   DTypeName(absmax.dtype), " elements, expected ",
                                                   blocks, " f32 (one per block of ", block_size,
                                                   ")"));
  }
  LARS_RETURN_IF_ERROR(internal::ValidateSameDevice("codes", codes, "x", values));
  return internal::ValidateSameDevice("absmax", absmax, "x", values);
}

}  // namespace

absl::Status QuantizeBlockwise(const TensorView& x, const TensorView& codes,
                               const TensorView& absmax, int block_size, const ExecContext& exec) {
  LARS_RETURN_IF_ERROR(internal::ValidateTensor("x", x));
  LARS_RETURN_IF_ERROR(ValidateQuantized(x, codes, absmax, block_size));
  const char* variant = internal::QuantBlockVariant(block_size);
  LARS_ASSIGN_OR_RETURN(auto kernel,
                        FindKernel<Op::kQuantizeBlockwise>(x.dtype, x.device.type, variant));
  internal::CallContext ctx;
  LARS_RETURN_IF_ERROR(internal::MakeCallContext(x.device, exec, &ctx));
  if (x.numel == 0) return absl::OkStatus();
  LARS_ASSIGN_OR_RETURN(internal::DeviceCodebook book, internal::GetDeviceCodebook(x.device));
  internal::BufferView xb(x, &ctx), cb(book.code, &ctx), mb(book.mids, &ctx);
  internal::BufferView lb(book.lut, &ctx, internal::kLutType);
  internal::BufferView qb(codes, &ctx), ab(absmax, &ctx);
  for (auto* b : {&xb, &cb, &mb, &lb, &qb, &ab}) LARS_RETURN_IF_ERROR(b->status());
  return internal::PipelineStatus(
      absl::StrCat("quantize_blockwise_", DTypeName(x.dtype), "_", DeviceTypeName(x.device.type)),
      KernelSignature<Op::kQuantizeBlockwise>::Call(
          kernel, &ctx,
          QuantizeBlockwiseArgs{.x = xb.raw(), .code = cb.raw(), .mids = mb.raw(), .lut = lb.raw(),
                                .q = qb.raw(), .absmax = ab.raw()}),
      ctx);
}

absl::Status DequantizeBlockwise(const TensorView& codes, const TensorView& absmax,
                                 const TensorView& out, int block_size, const ExecContext& exec) {
  LARS_RETURN_IF_ERROR(internal::ValidateTensor("out", out));
  LARS_RETURN_IF_ERROR(ValidateQuantized(out, codes, absmax, block_size));
  const char* variant = internal::QuantBlockVariant(block_size);
  LARS_ASSIGN_OR_RETURN(auto kernel,
                        FindKernel<Op::kDequantizeBlockwise>(out.dtype, out.device.type, variant));
  internal::CallContext ctx;
  LARS_RETURN_IF_ERROR(internal::MakeCallContext(out.device, exec, &ctx));
  if (out.numel == 0) return absl::OkStatus();
  LARS_ASSIGN_OR_RETURN(internal::DeviceCodebook book, internal::GetDeviceCodebook(out.device));
  internal::BufferView qb(codes, &ctx), ab(absmax, &ctx), cb(book.code, &ctx), ob(out, &ctx);
  for (auto* b : {&qb, &ab, &cb, &ob}) LARS_RETURN_IF_ERROR(b->status());
  return internal::PipelineStatus(absl::StrCat("dequantize_blockwise_", DTypeName(out.dtype), "_",
                                            DeviceTypeName(out.device.type)),
                               KernelSignature<Op::kDequantizeBlockwise>::Call(
                                   kernel, &ctx,
                                   DequantizeBlockwiseArgs{.q = qb.raw(), .absmax = ab.raw(),
                                                           .code = cb.raw(), .x = ob.raw()}),
                               ctx);
}

}  // namespace halide_lars
