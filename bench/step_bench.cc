// Lars::Step on one tensor of --n params (norms pass + fused update): f32 and bf16 params with
// fp32 state, and 8-bit blockwise state (23 B/param minimum traffic). GB/s at the minimum
// traffic (docs/benchmarks.md#the-step-on-one-tensor).
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/bench_util.h"
#include "bench/benchmarks.h"
#include "benchmark/benchmark.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"

namespace halide_lars {
namespace bench {
namespace {

void BM_HalideLars(benchmark::State& state, DType dtype, StepOrder order, int optim_bits,
                   int block, Nonfinite nonfinite) {
  const int64_t n = N();
  absl::StatusOr<DeviceBuffer> p = DeviceBuffer::Allocate(Device::Cpu(), dtype, n);
  absl::StatusOr<DeviceBuffer> g = DeviceBuffer::Allocate(Device::Cpu(), dtype, n);
  if (!p.ok() || !g.ok()) {
    state.SkipWithError("allocation failed");
    return;
  }
  std::memset(p->view().data, 0, p->view().bytes());
  std::vector<float> init = RandomVector(n, 4), grad = RandomVector(n, 5);
  if (dtype == DType::kF32) {
    (void)p->CopyFromHost(init.data());
    (void)g->CopyFromHost(grad.data());
  } else {  // bf16: the top half of each f32
    std::vector<uint16_t> a(n), b(n);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t u, v;
      std::memcpy(&u, &init[i], 4);
      std::memcpy(&v, &grad[i], 4);
      a[i] = static_cast<uint16_t>(u >> 16);
      b[i] = static_cast<uint16_t>(v >> 16);
    }
    (void)p->CopyFromHost(a.data());
    (void)g->CopyFromHost(b.data());
  }
  LarsOptions o = BenchOptions();
  o.max_unorm = kMaxUnorm;
  o.step_order = order;
  o.optim_bits = optim_bits;
  o.block_size = block;
  o.nonfinite = nonfinite;
  absl::StatusOr<Lars> opt = Lars::Create(o);
  if (!opt.ok() || !opt->AddParam("w", p->view(), g->view()).ok() || !opt->Step().ok()) {
    state.SkipWithError("Lars setup failed");
    return;
  }
  for (auto _ : state) {
    if (absl::Status s = opt->Step(); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.counters["state_B/param"] = static_cast<double>(opt->StateBytes()) / n;
  if (optim_bits == 8) {
    SetBytes(state, kLars8BytesPerParam, "23 B/param");
    return;
  }
  SetBytes(state, kLarsBytesPerParam,
           dtype != DType::kF32               ? "28 B/param-equivalent (bf16 p,g)"
           : nonfinite != Nonfinite::kPropagate || order == StepOrder::kNormsFirst
               ? "28 B/param (32 moved)"
               : "28 B/param");
}

void RegisterStep(const char* name, DType dtype, StepOrder order, int bits, int block,
                  Nonfinite nonfinite = Nonfinite::kSkip) {
  benchmark::RegisterBenchmark(name, BM_HalideLars, dtype, order, bits, block, nonfinite)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

void RegisterStepBenchmarks() {
  // fp32 state: default options (nonfinite=skip: the norms pass doubles as the NaN/Inf check, so
  // the step is norms-first) and nonfinite=propagate (momentum-first: 28 B/param on the CPU).
  RegisterStep("BM_HalideLars/f32", DType::kF32, StepOrder::kAuto, 32, 256);
  RegisterStep("BM_HalideLars/f32/propagate", DType::kF32, StepOrder::kAuto, 32, 256,
               Nonfinite::kPropagate);
  RegisterStep("BM_HalideLars/bf16", DType::kBF16, StepOrder::kAuto, 32, 256);
  // 8-bit blockwise state, blocks of 256 and 2048.
  RegisterStep("BM_HalideLars8bit/f32/b256", DType::kF32, StepOrder::kAuto, 8, 256);
  RegisterStep("BM_HalideLars8bit/f32/b2048", DType::kF32, StepOrder::kAuto, 8, 2048);
}

}  // namespace bench
}  // namespace halide_lars
