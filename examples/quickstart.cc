// halide_lars quickstart: which backends this machine has, and the norm kernels timed against
// a naive C++ loop on every available device.
//   bazel run //examples:quickstart -- --n=33554432 --reps=10
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "runtime/device_buffer.h"
#include "runtime/devices.h"
#include "runtime/norms.h"

ABSL_FLAG(int64_t, n, int64_t{1} << 25, "elements per tensor");
ABSL_FLAG(int, reps, 10, "timed repetitions (the median is reported)");

namespace {

using halide_lars::Device;
using halide_lars::DeviceBuffer;
using halide_lars::DType;

template <typename F>
double MedianSeconds(int reps, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int Run() {
  const int64_t n = absl::GetFlag(FLAGS_n);
  const int reps = std::max(1, absl::GetFlag(FLAGS_reps));
  std::printf("halide_lars quickstart\n\nbackends:\n%s\n",
              halide_lars::DescribeBackends().c_str());

  std::vector<float> host(n);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : host) v = dist(rng);

  // Naive baseline: one scalar loop, float accumulation (what a first C++ attempt looks like).
  float naive_ss = 0.0f, naive_max = 0.0f;
  const double naive_s = MedianSeconds(reps, [&] {
    float ss = 0.0f, mx = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      ss += host[i] * host[i];
      mx = std::max(mx, std::fabs(host[i]));
    }
    naive_ss = ss;
    naive_max = mx;
  });
  double exact = 0.0;
  for (float v : host) exact += static_cast<double>(v) * v;
  const double gb = 4.0 * n / 1e9;
  std::printf("sum of squares + max|x| of %lld f32 values (%.0f MB):\n", static_cast<long long>(n),
              gb * 1e3);
  std::printf("  %-22s %9.3f ms  %7.2f GB/s  rel.err %.1e\n", "naive C++ loop (cpu)",
              naive_s * 1e3, gb / naive_s, std::fabs(naive_ss - exact) / exact);

  for (const Device& device : halide_lars::AvailableDevices()) {
    absl::StatusOr<DeviceBuffer> x = DeviceBuffer::Allocate(device, DType::kF32, n);
    absl::StatusOr<DeviceBuffer> out = DeviceBuffer::Allocate(device, DType::kF32, 2);
    if (!x.ok() || !out.ok() || !x->CopyFromHost(host.data()).ok()) {
      std::printf("  %s: allocation failed: %s\n", halide_lars::DeviceName(device).c_str(),
                  (!x.ok() ? x.status() : out.status()).ToString().c_str());
      continue;
    }
    absl::Status status = halide_lars::SumSqMaxAbs(x->view(), out->view());  // warm-up (JIT)
    float result[2] = {0, 0};
    const double s = MedianSeconds(reps, [&] {
      if (status.ok()) status = halide_lars::SumSqMaxAbs(x->view(), out->view());
      if (status.ok()) status = out->CopyToHost(result);  // includes the device sync
    });
    if (!status.ok()) {
      std::printf("  %s: %s\n", halide_lars::DeviceName(device).c_str(),
                  status.ToString().c_str());
      continue;
    }
    std::printf("  %-22s %9.3f ms  %7.2f GB/s  rel.err %.1e  %.2fx naive  max|x| %s\n",
                ("halide_lars " + halide_lars::DeviceName(device)).c_str(), s * 1e3, gb / s,
                std::fabs(result[0] - exact) / exact, naive_s / s,
                result[1] == naive_max ? "matches" : "DIFFERS");
  }
  std::printf("\n(opencl on a CPU runs through pocl: it tests the GPU schedule, it is not a speed "
              "target)\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Run();
}
