// Blockwise 8-bit quantization with bitsandbytes' signed dynamic codebook (runtime/codebook.h),
// on any device. Public: usable on its own (e.g. compressing tensors for storage or transfer).
#ifndef HALIDE_LARS_RUNTIME_QUANTIZE_H_
#define HALIDE_LARS_RUNTIME_QUANTIZE_H_

#include <cstdint>

#include "HalideRuntime.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "halide_lars/types.h"

namespace halide_lars {

// Block sizes with built kernels.
constexpr int kDefaultQuantBlock = 256;
bool IsSupportedQuantBlock(int block_size);  // 256 or 2048

// Number of absmax values for n elements: ceil(n / block_size).
inline int64_t NumQuantBlocks(int64_t n, int block_size) {
  return (n + block_size - 1) / block_size;
}

// x (f32/f16/bf16, n) -> codes (u8, n) and absmax (f32, ceil(n/B)), all on x's device: per block,
// absmax = max |x|, code = nearest codebook entry to x/absmax (ties to the lower code, then
// bitsandbytes' sign fix). A zero block gets absmax 0 and code 127 (the zero code).
absl::Status QuantizeBlockwise(const TensorView& x, const TensorView& codes,
                               const TensorView& absmax, int block_size = kDefaultQuantBlock,
                               const ExecContext& exec = {});

// codes, absmax -> out (f32/f16/bf16, n; rounded to nearest even): code[q] * absmax[i / B].
absl::Status DequantizeBlockwise(const TensorView& codes, const TensorView& absmax,
                                 const TensorView& out, int block_size = kDefaultQuantBlock,
                                 const ExecContext& exec = {});

namespace internal {
// The codebook and its midpoints on `device` (uploaded once per device, kept for the process).
struct DeviceCodebook {
  TensorView code;  // f32 x 256
  TensorView mids;  // f32 x 256
  TensorView lut;   // u32 x 65536 (CodebookBucketTable), passed as 4-byte elements
};
absl::StatusOr<DeviceCodebook> GetDeviceCodebook(const Device& device);

// The element type the kernels read DeviceCodebook::lut as.
inline constexpr halide_type_t kLutType = halide_type_t(halide_type_uint, 32);

// "" for 256, "b2048" for 2048 (the registry variant of a block size).
const char* QuantBlockVariant(int block_size);
}  // namespace internal

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_QUANTIZE_H_
