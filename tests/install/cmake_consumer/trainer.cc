// A training step through the installed C++ API (find_package(halide_lars), static library):
// fits w to a target on a quadratic loss with Lars32bit and Lars8bit and checks that the loss
// falls and that the 8-bit state is smaller. Exit status 0 when it does.
#include <cmath>
#include <cstdio>
#include <vector>

#include "halide_lars/lars.h"

namespace hl = halide_lars;

double Train(bool eight_bit, int64_t* state_bytes) {
  const int64_t n = 6000;
  std::vector<float> w(n), g(n), target(n);
  for (int64_t i = 0; i < n; ++i) {
    w[i] = std::sin(0.1 * i);
    target[i] = std::cos(0.07 * i);
  }
  hl::LarsOptions o;
  o.lr = 2.0;
  o.momentum = 0.9;
  absl::StatusOr<hl::Lars> opt = eight_bit ? hl::Lars8bit::Create(o) : hl::Lars32bit::Create(o);
  if (!opt.ok()) {
    std::printf("create: %s\n", opt.status().ToString().c_str());
    return -1;
  }
  absl::Status s = opt->AddParam("w", {w.data(), hl::DType::kF32, n, hl::Device::Cpu()},
                                 {g.data(), hl::DType::kF32, n, hl::Device::Cpu()});
  double loss = 0;
  for (int step = 0; step < 30 && s.ok(); ++step) {
    loss = 0;
    for (int64_t i = 0; i < n; ++i) {
      g[i] = w[i] - target[i];
      loss += 0.5 * g[i] * g[i];
    }
    s = opt->Step();
  }
  if (!s.ok()) {
    std::printf("step: %s\n", s.ToString().c_str());
    return -1;
  }
  *state_bytes = opt->StateBytes();
  return loss;
}

int main() {
  int64_t bytes32 = 0, bytes8 = 0;
  const double loss32 = Train(false, &bytes32), loss8 = Train(true, &bytes8);
  std::printf("C++ API, static library: loss after 30 steps: LARS32 %.4f (state %lld B), LARS8bit "
              "%.4f (state %lld B); at the start 1499.99\n",
              loss32, static_cast<long long>(bytes32), loss8, static_cast<long long>(bytes8));
  const bool ok = loss32 >= 0 && loss8 >= 0 && loss32 < 1000 && loss8 < 1000 && bytes8 < bytes32;
  return ok ? 0 : 1;
}
