// Element types, devices and the non-owning tensor view every halide_lars API takes.
#ifndef HALIDE_LARS_RUNTIME_TYPES_H_
#define HALIDE_LARS_RUNTIME_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace halide_lars {

// Element type of a tensor. f16/bf16 are IEEE binary16 / bfloat16 bit patterns; u8 holds 8-bit
// quantization codes.
// kF64 only for the sharded step's partial sums (Lars::StepBegin with a tensor): parameters
// are f32, f16 or bf16. New values go last (checkpoints store the number).
enum class DType { kF32, kF16, kBF16, kU8, kF64 };

absl::string_view DTypeName(DType d);  // "f32", "f16", "bf16", "u8", "f64"
// A dtype parameters and gradients may have (the kernels' storage types): f32, f16, bf16.
bool IsParamDType(DType d);
size_t DTypeSize(DType d);             // bytes per element

enum class DeviceType { kCPU, kCUDA, kOpenCL };

absl::string_view DeviceTypeName(DeviceType t);  // "cpu", "cuda", "opencl"

struct Device {
  DeviceType type = DeviceType::kCPU;
  int id = 0;  // CUDA ordinal; ignored for CPU; OpenCL: the device Halide's context uses

  static Device Cpu() { return {DeviceType::kCPU, 0}; }
  static Device Cuda(int ordinal = 0) { return {DeviceType::kCUDA, ordinal}; }
  static Device OpenCL() { return {DeviceType::kOpenCL, 0}; }
  bool operator==(const Device& o) const { return type == o.type && id == o.id; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

std::string DeviceName(const Device& d);  // "cpu", "cuda:0", "opencl"

// A borrowed, dense 1-D tensor. `data` is a host pointer (CPU), a CUdeviceptr (CUDA) or a cl_mem
// (OpenCL). halide_lars never frees it and never keeps it past the call it was passed to.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t numel = 0;
  Device device;

  size_t bytes() const { return static_cast<size_t>(numel) * DTypeSize(dtype); }
};

// Elements [offset, offset + n) of `t` as a view of their own: the slice for CPU and CUDA
// tensors (pointer arithmetic); for OpenCL, whose cl_mem handles cannot be offset, `t`'s handle
// with n elements (the form a flat parameter's SetGrad slice takes there). Not checked.
TensorView SliceView(const TensorView& t, int64_t offset, int64_t n);

// Where and how a call runs. CUDA: the caller's CUcontext and CUstream (both optional: a null
// context means the device's primary context, as the CUDA runtime, PyTorch and JAX use; a null
// stream means that context's default stream). Kernels are queued on the stream and the call
// returns without synchronizing.
struct ExecContext {
  void* cuda_context = nullptr;  // CUcontext
  void* cuda_stream = nullptr;   // CUstream
  // CPU kernels' parallel loops run on at most this many threads, the caller's included, on the
  // CPUs the process may use (runtime/thread_pool.h). 0: HL_NUM_THREADS, else OMP_NUM_THREADS,
  // else every CPU the process may use.
  int num_threads = 0;
};

// How a parameter's momentum is stored.
enum class StateKind {
  kFp32 = 0,       // fp32, 4 B/param (optim_bits 32, or a tensor below max(min_8bit_size, 4096))
  kBlockwise8 = 1, // uint8 codes + one fp32 absmax per block: 1 + 4/B B/param
  kTensor8 = 2,    // block_wise=false (bitsandbytes' LARS8bit): uint8 codes + one fp32 scale
};

}  // namespace halide_lars

#endif  // HALIDE_LARS_RUNTIME_TYPES_H_
