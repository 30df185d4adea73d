// The GPU kit's benchmark: the LARS step on every backend this machine has (CUDA, OpenCL, CPU),
// each next to its roofline measured in the same run, and the kernel launches per step counted
// at run time (//runtime:launch_counter).
//   roofline   CUDA: device-to-device copy (cuMemcpyDtoD: read + write counted); CPU: the
//              in-place triad a[i] += s*b[i] (12 B/elem, OpenMP); OpenCL (pocl): none
//   lars32     one tensor of --n params, fp32 state, default options (nonfinite=skip reads Σg²
//              back per tensor) and nonfinite=propagate (no host round trip): 28 B/param
//   lars8bit   the same with blockwise 8-bit state: 23 B/param
//   sets       ResNet-50 (161 tensors, 25.6M) and BERT-base (199 tensors, 110M) parameter
//              shapes, per-tensor (AddParam) and flat (AllocateFlatParams: one flat set per state
//              kind), propagate: step time, pipelines and kernel launches per step
// Prints one table and writes JSON (--json). Backends that are missing are reported, not fatal.
//   bazel run -c opt //bench:gpu_bench -- [--quick] [--json=FILE] [--backends=cuda,opencl,cpu]
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/model_shapes.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "runtime/devices.h"
#include "runtime/launch_counter.h"

ABSL_FLAG(bool, quick, false, "smaller sizes and fewer repeats (the kit's --quick: < 5 min)");
ABSL_FLAG(int64_t, n, 0, "params of the one-tensor cases (default: 64M, --quick 16M; pocl 1M)");
ABSL_FLAG(std::string, json, "", "write the results as JSON here");
ABSL_FLAG(std::string, backends, "cuda,opencl,cpu", "backends to run, in order");
ABSL_FLAG(bool, probe, false,
          "print one line per backend (\"cuda: ok\" or \"cuda: <why not>\"), exit 0 iff CUDA runs");
ABSL_FLAG(bool, shapes, false,
          "print the model tensor sets as JSON ({\"resnet50\": [...], \"bert_base\": [...]}) "
          "and exit (bench/peers.py steps the same tensors)");

namespace halide_lars {
namespace {

using Clock = std::chrono::steady_clock;

struct Row {
  std::string backend, name;
  int64_t params = 0;
  double ms = 0, gbps = 0, ratio = 0;  // ratio to the backend's roofline (0: none)
  double launches = -1, pipelines = -1;
  std::string note;
};

// --- CUDA driver entry points for the roofline copy (dlopen; nothing links libcuda) -----------
struct Cuda {
  using DeviceGet = int (*)(int*, int);
  using PrimaryCtxRetain = int (*)(void**, int);
  using CtxSetCurrent = int (*)(void*);
  using MemcpyDtoD = int (*)(uint64_t, uint64_t, size_t);
  using CtxSynchronize = int (*)();
  MemcpyDtoD memcpy_dtod = nullptr;
  CtxSynchronize sync = nullptr;
  bool ok = false;

  Cuda() {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (lib == nullptr) return;
    auto get = reinterpret_cast<DeviceGet>(dlsym(lib, "cuDeviceGet"));
    auto retain = reinterpret_cast<PrimaryCtxRetain>(dlsym(lib, "cuDevicePrimaryCtxRetain"));
    auto set = reinterpret_cast<CtxSetCurrent>(dlsym(lib, "cuCtxSetCurrent"));
    memcpy_dtod = reinterpret_cast<MemcpyDtoD>(dlsym(lib, "cuMemcpyDtoD_v2"));
    sync = reinterpret_cast<CtxSynchronize>(dlsym(lib, "cuCtxSynchronize"));
    int dev = 0;
    void* ctx = nullptr;
    ok = get && retain && set && memcpy_dtod && sync && get(&dev, 0) == 0 &&
         retain(&ctx, dev) == 0 && set(ctx) == 0;
  }
};

Cuda& CudaDriver() {
  static Cuda* c = new Cuda();
  return *c;
}

// Waits for everything queued on `dev` (CUDA: the context; OpenCL: a blocking read).
void Sync(const Device& dev, DeviceBuffer* probe) {
  if (dev.type == DeviceType::kCUDA && CudaDriver().ok) {
    CudaDriver().sync();
  } else if (dev.type != DeviceType::kCPU) {
    float x;
    (void)probe->CopyToHost(&x);
  }
}

DeviceBuffer Filled(const Device& dev, DType dtype, int64_t n, uint32_t seed, float scale) {
  absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(dev, dtype, n);
  if (!b.ok()) {
    std::fprintf(stderr, "gpu_bench: %s\n", std::string(b.status().message()).c_str());
    std::exit(1);
  }
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  for (float& x : v) x = d(rng);
  if (n > 0 && !b->CopyFromHost(v.data()).ok()) std::exit(1);
  return std::move(*b);
}

// Median per-call time of `fn` in ms: `warm` untimed calls, then `reps` rounds of `inner`
// calls each, synchronized around every round.
double TimeMs(const std::function<void()>& fn, const Device& dev, DeviceBuffer* probe, int warm,
              int reps, int inner) {
  for (int i = 0; i < warm; ++i) fn();
  Sync(dev, probe);
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < inner; ++i) fn();
    Sync(dev, probe);
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / inner);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Launches counted on `dev`'s API during one call of `fn`.
double LaunchesOf(const std::function<void()>& fn, const Device& dev, DeviceBuffer* probe) {
  if (dev.type == DeviceType::kCPU) return -1;
  Sync(dev, probe);
  ResetKernelLaunches();
  fn();
  const KernelLaunches k = CountedKernelLaunches();
  return static_cast<double>(dev.type == DeviceType::kCUDA ? k.cuda : k.opencl);
}

LarsOptions Options(int bits, bool propagate) {
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  o.optim_bits = bits;
  if (propagate) o.nonfinite = Nonfinite::kPropagate;
  return o;
}

struct Bench {
  bool quick = false;
  std::vector<Row> rows;

  int Reps() const { return quick ? 3 : 7; }

  void Backend(const Device& dev) {
    const std::string name = DeviceName(dev);
    const bool pocl = dev.type == DeviceType::kOpenCL;
    int64_t n = absl::GetFlag(FLAGS_n);
    if (n == 0) n = pocl ? (int64_t{1} << 20) : quick ? (int64_t{1} << 24) : (int64_t{1} << 26);
    DeviceBuffer probe = Filled(dev, DType::kF32, 1, 1, 1.0f);

    // Roofline.
    double roof = 0;
    if (dev.type == DeviceType::kCUDA && CudaDriver().ok) {
      DeviceBuffer a = Filled(dev, DType::kF32, n, 2, 1.0f), b = Filled(dev, DType::kF32, n, 3, 1.0f);
      const auto pa = reinterpret_cast<uint64_t>(a.view().data);
      const auto pb = reinterpret_cast<uint64_t>(b.view().data);
      const double ms = TimeMs([&] { CudaDriver().memcpy_dtod(pa, pb, n * 4); }, dev, &probe, 2,
                               Reps(), 10);
      roof = 8.0 * n / ms / 1e6;
      rows.push_back({name, "roofline: copy D2D", n, ms, roof, 1.0, -1, -1, "read + write"});
    } else if (dev.type == DeviceType::kCPU) {
      std::vector<float> a(n, 1.0f), b(n, 0.5f);
      float* pa = a.data();
      const float* pb = b.data();
      const double ms = TimeMs(
          [&] {
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < n; ++i) pa[i] += 1e-7f * pb[i];
          },
          dev, &probe, 2, Reps(), 5);
      roof = 12.0 * n / ms / 1e6;
      rows.push_back({name, "roofline: triad in place", n, ms, roof, 1.0, -1, -1, "12 B/elem"});
    }

    // One tensor.
    for (int bits : {32, 8}) {
      for (bool propagate : {false, true}) {
        DeviceBuffer p = Filled(dev, DType::kF32, n, 4, 1.0f), g = Filled(dev, DType::kF32, n, 5, 0.01f);
        absl::StatusOr<Lars> opt = Lars::Create(Options(bits, propagate));
        if (!opt.ok() || !opt->AddParam("w", p.view(), g.view()).ok()) continue;
        auto step = [&] {
          absl::Status s = opt->Step();
          if (!s.ok()) std::fprintf(stderr, "step: %s\n", std::string(s.message()).c_str());
        };
        const double ms = TimeMs(step, dev, &probe, 2, Reps(), pocl ? 2 : 5);
        const double bytes = bits == 32 ? 28.0 : 23.0;
        const double gbps = bytes * n / ms / 1e6;
        rows.push_back({name, absl::StrCat(bits == 32 ? "lars32" : "lars8bit",
                                           propagate ? " propagate" : " defaults"),
                        n, ms, gbps, roof > 0 ? gbps / roof : 0, LaunchesOf(step, dev, &probe),
                        static_cast<double>(opt->LastStepPipelines()),
                        absl::StrCat(bytes, " B/param")});
      }
    }

    // Model-shaped tensor sets.
    if (pocl) return;  // 25-110M params through a CPU emulation of a GPU: minutes, no signal
    const std::pair<const char*, std::vector<int64_t>> models[] = {
        {"resnet50", ResNet50Sizes()}, {"bert_base", BertBaseSizes()}};
    for (const auto& [model, sizes] : models) {
      if (quick && std::string(model) == "bert_base" && dev.type == DeviceType::kCPU) continue;
      int64_t total = 0;
      for (int64_t s : sizes) total += s;
      for (int bits : {32, 8}) {
        for (bool flat : {false, true}) {
          absl::StatusOr<Lars> opt = Lars::Create(Options(bits, true));
          if (!opt.ok()) continue;
          std::vector<DeviceBuffer> ps, gs;
          DeviceBuffer fg;
          if (flat) {
            std::vector<FlatParam> tensors;
            for (size_t i = 0; i < sizes.size(); ++i) tensors.push_back({absl::StrCat("t", i), sizes[i], -1, 0});
            absl::StatusOr<FlatBuffers> fb = opt->AllocateFlatParams(dev, DType::kF32, &tensors);
            if (!fb.ok()) continue;
            std::vector<float> ones(fb->grads.numel, 1e-3f);
            DeviceBuffer gv = DeviceBuffer::Borrow(fb->grads, 0, fb->grads.numel);
            (void)gv.CopyFromHost(ones.data());
            std::vector<float> w(fb->params.numel, 0.05f);
            DeviceBuffer pv = DeviceBuffer::Borrow(fb->params, 0, fb->params.numel);
            (void)pv.CopyFromHost(w.data());
          } else {
            for (size_t i = 0; i < sizes.size(); ++i) {
              ps.push_back(Filled(dev, DType::kF32, sizes[i], 10 + i, 1.0f));
              gs.push_back(Filled(dev, DType::kF32, sizes[i], 500 + i, 0.01f));
              (void)opt->AddParam(absl::StrCat("t", i), ps.back().view(), gs.back().view());
            }
          }
          auto step = [&] { (void)opt->Step(); };
          const double ms = TimeMs(step, dev, &probe, 2, Reps(), dev.type == DeviceType::kCPU ? 2 : 5);
          const double bytes = bits == 32 ? 28.0 : 23.0;
          const double gbps = bytes * total / ms / 1e6;
          rows.push_back({name, absl::StrCat(model, bits == 32 ? " lars32" : " lars8bit",
                                             flat ? " flat" : " per-tensor"),
                          total, ms, gbps, roof > 0 ? gbps / roof : 0, LaunchesOf(step, dev, &probe),
                          static_cast<double>(opt->LastStepPipelines()),
                          absl::StrCat(sizes.size(), " tensors")});
        }
      }
    }
  }

  void Print() const {
    std::printf("%-8s %-32s %11s %10s %9s %8s %9s %9s  %s\n", "backend", "case", "params", "ms/step",
                "GB/s", "x roof", "launches", "pipelines", "note");
    for (const Row& r : rows) {
      std::printf("%-8s %-32s %11lld %10.3f %9.1f %8s %9s %9s  %s\n", r.backend.c_str(),
                  r.name.c_str(), static_cast<long long>(r.params), r.ms, r.gbps,
                  r.ratio > 0 ? absl::StrFormat("%.3f", r.ratio).c_str() : "-",
                  r.launches >= 0 ? absl::StrCat(r.launches).c_str() : "-",
                  r.pipelines >= 0 ? absl::StrCat(r.pipelines).c_str() : "-", r.note.c_str());
    }
  }

  void WriteJson(const std::string& path, const std::vector<std::string>& missing) const {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return;
    std::fprintf(f, "{\n  \"missing_backends\": [%s],\n  \"rows\": [\n",
                 absl::StrJoin(missing, ", ", [](std::string* out, const std::string& m) {
                   absl::StrAppend(out, "\"", m, "\"");
                 }).c_str());
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f,
                   "    {\"backend\": \"%s\", \"case\": \"%s\", \"params\": %lld, \"ms\": %.6f, "
                   "\"gbps\": %.3f, \"ratio_to_roofline\": %.4f, \"launches_per_step\": %g, "
                   "\"pipelines_per_step\": %g, \"note\": \"%s\"}%s\n",
                   r.backend.c_str(), r.name.c_str(), static_cast<long long>(r.params), r.ms,
                   r.gbps, r.ratio, r.launches, r.pipelines, r.note.c_str(),
                   i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
  }
};

}  // namespace
}  // namespace halide_lars

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace halide_lars;
  if (absl::GetFlag(FLAGS_probe)) {
    const absl::Status cuda = CudaStatus(), opencl = OpenCLStatus();
    std::printf("cuda: %s\nopencl: %s\n", cuda.ok() ? "ok" : std::string(cuda.message()).c_str(),
                opencl.ok() ? "ok" : std::string(opencl.message()).c_str());
    return cuda.ok() ? 0 : 1;
  }
  if (absl::GetFlag(FLAGS_shapes)) {
    std::printf("{\"resnet50\": [%s], \"bert_base\": [%s]}\n",
                absl::StrJoin(ResNet50Sizes(), ", ").c_str(),
                absl::StrJoin(BertBaseSizes(), ", ").c_str());
    return 0;
  }
  Bench b;
  b.quick = absl::GetFlag(FLAGS_quick);
  std::vector<std::string> missing;
  for (absl::string_view want : absl::StrSplit(absl::GetFlag(FLAGS_backends), ',')) {
    Device dev = Device::Cpu();
    absl::Status s;
    if (want == "cuda") {
      dev = Device::Cuda(0);
      s = CudaStatus();
    } else if (want == "opencl") {
      dev = Device::OpenCL();
      s = OpenCLStatus();
    } else if (want != "cpu") {
      std::fprintf(stderr, "gpu_bench: unknown backend %s\n", std::string(want).c_str());
      return 2;
    }
    if (!s.ok()) {
      std::printf("gpu_bench: %s: not available (%s)\n", std::string(want).c_str(),
                  std::string(s.message()).c_str());
      missing.push_back(absl::StrReplaceAll(absl::StrCat(want, ": ", s.message()),
                                            {{"\"", "'"}, {"\\", "/"}, {"\n", " "}}));
      continue;
    }
    std::printf("gpu_bench: running %s ...\n", DeviceName(dev).c_str());
    std::fflush(stdout);
    b.Backend(dev);
  }
  b.Print();
  if (!absl::GetFlag(FLAGS_json).empty()) b.WriteJson(absl::GetFlag(FLAGS_json), missing);
  return 0;
}
