#include <chrono>
#include <cstdio>
#include <vector>
#include "lars/lars.h"
#include "runtime/device_buffer.h"
#include "runtime/quantize.h"
using namespace halide_lars;
int main() {
  const int64_t n = 1 << 25;
  std::vector<float> init(n, 0.3f), grad(n, 0.01f);
  for (int64_t i = 0; i < n; ++i) { init[i] = (i % 1000) * 1e-3f - 0.5f; grad[i] = ((i * 7) % 1000) * 1e-4f - 0.05f; }
  for (const char* mode : {"clip", "none"}) {
    auto p = DeviceBuffer::Allocate(Device::Cpu(), DType::kF32, n);
    auto g = DeviceBuffer::Allocate(Device::Cpu(), DType::kF32, n);
    (void)p->CopyFromHost(init.data()); (void)g->CopyFromHost(grad.data());
    LarsOptions o; o.lr = 0.1; o.momentum = 0.9; o.optim_bits = 8;
    auto opt = Lars::Create(o);
    (void)opt->AddParam("w", p->view(), g->view());
    (void)opt->OverrideConfig("w", "trust_mode", mode);
    (void)opt->Step();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) (void)opt->Step();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 5;
    std::printf("8bit step trust=%s: %.1f ms\n", mode, s * 1e3);
  }
  auto x = DeviceBuffer::Allocate(Device::Cpu(), DType::kF32, n);
  (void)x->CopyFromHost(init.data());
  auto q = DeviceBuffer::Allocate(Device::Cpu(), DType::kU8, n);
  auto a = DeviceBuffer::Allocate(Device::Cpu(), DType::kF32, n / 256);
  (void)QuantizeBlockwise(x->view(), q->view(), a->view());
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) (void)QuantizeBlockwise(x->view(), q->view(), a->view());
  std::printf("quantize: %.1f ms\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 5 * 1e3);
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) (void)DequantizeBlockwise(q->view(), a->view(), x->view());
  std::printf("dequantize: %.1f ms\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 5 * 1e3);
}
