// A downstream trainer: fits w to a target with halide_lars's LARS (fp32 and 8-bit state).
#include <cmath>
#include <cstdio>
#include <vector>

#include "halide_lars/lars.h"

int main() {
  const int n = 5000;
  std::vector<float> w(n, 0.0f), g(n), target(n);
  for (int i = 0; i < n; ++i) target[i] = std::sin(0.01f * i);
  for (int bits : {32, 8}) {
    std::fill(w.begin(), w.end(), 0.1f);
    halide_lars::LarsOptions o;
    o.lr = 0.5;
    o.momentum = 0.9;
    o.optim_bits = bits;
    o.max_unorm = 0.0;  // plain momentum SGD on a quadratic bowl
    absl::StatusOr<halide_lars::Lars> opt = halide_lars::Lars::Create(o);
    if (!opt.ok()) return 1;
    const halide_lars::Device cpu = halide_lars::Device::Cpu();
    if (!opt->AddParam("w", {w.data(), halide_lars::DType::kF32, n, cpu},
                       {g.data(), halide_lars::DType::kF32, n, cpu})
             .ok()) {
      return 1;
    }
    double loss = 0, first = 0;
    for (int step = 0; step < 150; ++step) {
      loss = 0;
      for (int i = 0; i < n; ++i) {
        g[i] = w[i] - target[i];
        loss += 0.5 * g[i] * g[i];
      }
      if (step == 0) first = loss;
      if (!opt->Step().ok()) return 1;
    }
    std::printf("optim_bits=%d: loss %.3g -> %.3g after 150 steps (state %lld bytes)\n", bits,
                first, loss, static_cast<long long>(opt->StateBytes()));
    if (!(loss < 1e-3 * first)) return 1;
  }
  std::printf("consumer OK\n");
  return 0;
}
