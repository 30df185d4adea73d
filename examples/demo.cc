// halide_lars demo: trains the same MLP three times -- momentum SGD, LARS (fp32 state) and
// LARS8bit -- from the same seed on a procedurally generated 10-class problem (no downloads),
// with a large batch, and reports loss, accuracy, optimizer state bytes and optimizer step
// throughput; draws the loss curves into demo_loss.png.
//   ./setup.sh && bazel run //examples:demo              (about 30 s on 2 cores)
//   bazel run //examples:demo -- --epochs=20 --png=/tmp/loss.png
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "examples/png.h"
#include "lars/lars.h"

ABSL_FLAG(int, epochs, 12, "training epochs per optimizer");
ABSL_FLAG(int, batch, 4096, "batch size (large: the regime LARS is for)");
ABSL_FLAG(std::string, png, "demo_loss.png", "where to write the loss curves");

namespace {

using halide_lars::Device;
using halide_lars::DType;
using halide_lars::Lars;
using halide_lars::LarsOptions;
using halide_lars::TensorView;

constexpr int kIn = 64, kH1 = 128, kH2 = 128, kOut = 10;

// 10 classes: Gaussian clusters in 64-D pushed through a fixed random tanh layer, so the classes
// are not linearly separable in the input space.
struct Dataset {
  std::vector<float> x;
  std::vector<int> y;
  int n = 0;
};

void MakeData(int n_train, int n_test, Dataset* train, Dataset* test) {
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centers(kOut * kIn), mix(kIn * kIn);
  for (float& c : centers) c = normal(rng) * 0.35f;
  for (float& m : mix) m = normal(rng) / std::sqrt(static_cast<float>(kIn));
  auto fill = [&](int n, Dataset* d) {
    d->n = n;
    d->x.resize(static_cast<size_t>(n) * kIn);
    d->y.resize(n);
    std::vector<float> z(kIn);
    for (int s = 0; s < n; ++s) {
      const int c = static_cast<int>(rng() % kOut);
      d->y[s] = c;
      for (int i = 0; i < kIn; ++i) z[i] = centers[c * kIn + i] + normal(rng);
      for (int j = 0; j < kIn; ++j) {
        float a = 0;
        for (int i = 0; i < kIn; ++i) a += z[i] * mix[i * kIn + j];
        d->x[static_cast<size_t>(s) * kIn + j] = std::tanh(2.0f * a) + 0.3f * z[j];
      }
    }
  };
  fill(n_train, train);
  fill(n_test, test);
}

struct Layer {
  int in, out;
  std::vector<float> w, b, gw, gb;
  Layer(int i, int o, std::mt19937* rng) : in(i), out(o), w(i * o), b(o, 0.0f), gw(i * o), gb(o) {
    std::normal_distribution<float> normal(0.0f, std::sqrt(2.0f / i));  // He init
    for (float& v : w) v = normal(*rng);
  }
  // y[B x out] = x[B x in] W + b
  void Forward(const float* x, int batch, float* y) const {
#pragma omp parallel for schedule(static)
    for (int s = 0; s < batch; ++s) {
      float* ys = y + static_cast<size_t>(s) * out;
      for (int o = 0; o < out; ++o) ys[o] = b[o];
      for (int i = 0; i < in; ++i) {
        const float xv = x[static_cast<size_t>(s) * in + i];
        const float* wi = &w[static_cast<size_t>(i) * out];
        for (int o = 0; o < out; ++o) ys[o] += xv * wi[o];
      }
    }
  }
  // Gradients from dy (mean over the batch already folded into dy); dx if wanted.
  void Backward(const float* x, const float* dy, int batch, float* dx) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < in; ++i) {
      float* gwi = &gw[static_cast<size_t>(i) * out];
      for (int o = 0; o < out; ++o) gwi[o] = 0.0f;
      for (int s = 0; s < batch; ++s) {
        const float xv = x[static_cast<size_t>(s) * in + i];
        const float* dys = dy + static_cast<size_t>(s) * out;
        for (int o = 0; o < out; ++o) gwi[o] += xv * dys[o];
      }
    }
    for (int o = 0; o < out; ++o) gb[o] = 0.0f;
    for (int s = 0; s < batch; ++s) {
      for (int o = 0; o < out; ++o) gb[o] += dy[static_cast<size_t>(s) * out + o];
    }
    if (dx == nullptr) return;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < batch; ++s) {
      for (int i = 0; i < in; ++i) {
        const float* wi = &w[static_cast<size_t>(i) * out];
        const float* dys = dy + static_cast<size_t>(s) * out;
        float a = 0.0f;
        for (int o = 0; o < out; ++o) a += wi[o] * dys[o];
        dx[static_cast<size_t>(s) * in + i] = a;
      }
    }
  }
};

struct Mlp {
  std::vector<Layer> layers;
  explicit Mlp(uint32_t seed) {
    std::mt19937 rng(seed);
    layers.emplace_back(kIn, kH1, &rng);
    layers.emplace_back(kH1, kH2, &rng);
    layers.emplace_back(kH2, kOut, &rng);
  }
};

void Relu(std::vector<float>* a) {
  for (float& v : *a) v = std::max(v, 0.0f);
}

// One forward (+ backward when `train`) pass over rows [begin, begin+batch). Returns the summed
// cross-entropy and counts correct predictions.
double Pass(Mlp* m, const Dataset& d, int begin, int batch, bool train, int* correct) {
  const float* x = &d.x[static_cast<size_t>(begin) * kIn];
  std::vector<float> h1(static_cast<size_t>(batch) * kH1), h2(static_cast<size_t>(batch) * kH2),
      z(static_cast<size_t>(batch) * kOut);
  m->layers[0].Forward(x, batch, h1.data());
  Relu(&h1);
  m->layers[1].Forward(h1.data(), batch, h2.data());
  Relu(&h2);
  m->layers[2].Forward(h2.data(), batch, z.data());
  double loss = 0;
  std::vector<float> dz(z.size());
  for (int s = 0; s < batch; ++s) {
    float* zs = &z[static_cast<size_t>(s) * kOut];
    const float mx = *std::max_element(zs, zs + kOut);
    double sum = 0;
    for (int o = 0; o < kOut; ++o) sum += std::exp(zs[o] - mx);
    const int label = d.y[begin + s];
    loss += -(zs[label] - mx - std::log(sum));
    *correct += std::max_element(zs, zs + kOut) - zs == label;
    for (int o = 0; o < kOut; ++o) {
      dz[static_cast<size_t>(s) * kOut + o] =
          static_cast<float>((std::exp(zs[o] - mx) / sum - (o == label)) / batch);
    }
  }
  if (!train) return loss;
  std::vector<float> dh2(h2.size()), dh1(h1.size());
  m->layers[2].Backward(h2.data(), dz.data(), batch, dh2.data());
  for (size_t i = 0; i < dh2.size(); ++i) dh2[i] *= h2[i] > 0.0f;
  m->layers[1].Backward(h1.data(), dh2.data(), batch, dh1.data());
  for (size_t i = 0; i < dh1.size(); ++i) dh1[i] *= h1[i] > 0.0f;
  m->layers[0].Backward(x, dh1.data(), batch, nullptr);
  return loss;
}

struct Run {
  std::string name;
  std::vector<double> loss;  // per epoch, training
  double test_acc = 0, final_loss = 0;
  int64_t state_bytes = 0;
  double step_seconds = 0;
  int64_t steps = 0, params = 0;
};

Run Train(const std::string& name, const LarsOptions& options, bool trust, const Dataset& train,
          const Dataset& test) {
  Run run;
  run.name = name;
  Mlp m(7);  // same initial weights for every optimizer
  absl::StatusOr<Lars> opt = Lars::Create(options);
  if (!opt.ok()) {
    std::printf("%s: %s\n", name.c_str(), opt.status().ToString().c_str());
    std::exit(1);
  }
  const Device cpu = Device::Cpu();
  for (size_t l = 0; l < m.layers.size(); ++l) {
    Layer& layer = m.layers[l];
    const std::string w = "layer" + std::to_string(l) + ".weight";
    const std::string b = "layer" + std::to_string(l) + ".bias";
    const int64_t nw = static_cast<int64_t>(layer.w.size()), nb = static_cast<int64_t>(layer.b.size());
    (void)opt->AddParam(w, {layer.w.data(), DType::kF32, nw, cpu}, {layer.gw.data(), DType::kF32, nw, cpu});
    (void)opt->AddParam(b, {layer.b.data(), DType::kF32, nb, cpu}, {layer.gb.data(), DType::kF32, nb, cpu});
    // Biases: no weight decay and no trust ratio (the usual LARS exclusions).
    (void)opt->OverrideConfig(b, "weight_decay", 0.0);
    (void)opt->OverrideConfig(b, "trust_mode", "none");
    if (!trust) (void)opt->OverrideConfig(w, "trust_mode", "none");
    run.params += nw + nb;
  }
  const int batch = absl::GetFlag(FLAGS_batch), epochs = absl::GetFlag(FLAGS_epochs);
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    double loss = 0;
    int correct = 0, seen = 0;
    for (int begin = 0; begin + batch <= train.n; begin += batch) {
      loss += Pass(&m, train, begin, batch, true, &correct);
      seen += batch;
      const auto t0 = std::chrono::steady_clock::now();
      const absl::Status s = opt->Step();
      run.step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++run.steps;
      if (!s.ok()) {
        std::printf("step failed: %s\n", s.ToString().c_str());
        std::exit(1);
      }
    }
    run.loss.push_back(loss / seen);
    std::printf("  %-10s epoch %2d/%d  train loss %.4f  train acc %.3f\n", name.c_str(), epoch,
                epochs, loss / seen, static_cast<double>(correct) / seen);
    std::fflush(stdout);
  }
  int correct = 0;
  run.final_loss = Pass(&m, test, 0, test.n, false, &correct) / test.n;
  run.test_acc = static_cast<double>(correct) / test.n;
  run.state_bytes = opt->StateBytes();
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const auto start = std::chrono::steady_clock::now();
  std::printf("halide_lars demo: MLP %d-%d-%d-%d on a generated 10-class problem, batch %d, %d "
              "threads\n", kIn, kH1, kH2, kOut, absl::GetFlag(FLAGS_batch), omp_get_max_threads());
  Dataset train, test;
  MakeData(32768, 8192, &train, &test);

  LarsOptions sgd;
  sgd.lr = 0.5;
  sgd.momentum = 0.9;
  sgd.weight_decay = 5e-4;
  LarsOptions lars = sgd;
  lars.lr = 0.5;  // each weight step is at most lr * 2% of |w| (the trust clip)
  LarsOptions lars8 = lars;
  lars8.optim_bits = 8;
  lars8.min_8bit_size = 4096;

  std::vector<Run> runs;
  runs.push_back(Train("SGD-mom", sgd, false, train, test));
  runs.push_back(Train("LARS32", lars, true, train, test));
  runs.push_back(Train("LARS8bit", lars8, true, train, test));

  std::printf("\n%-10s %12s %10s %14s %16s\n", "optimizer", "test loss", "test acc",
              "state bytes", "opt. Mparams/s");
  for (const Run& r : runs) {
    std::printf("%-10s %12.4f %10.3f %14lld %16.1f\n", r.name.c_str(), r.final_loss, r.test_acc,
                static_cast<long long>(r.state_bytes),
                r.params * r.steps / r.step_seconds / 1e6);
  }
  // `bazel run` starts in the runfiles tree: write relative paths where the user ran it from.
  std::string png = absl::GetFlag(FLAGS_png);
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (cwd != nullptr && !png.empty() && png[0] != '/') png = std::string(cwd) + "/" + png;
  const bool ok = halide_lars::demo::WriteLinePlotPng(
      png,
      {{"SGD-mom", runs[0].loss, 0x1f77b4}, {"LARS32", runs[1].loss, 0xd62728},
       {"LARS8bit", runs[2].loss, 0x2ca02c}},
      640, 400, true);
  std::printf("\nloss curves (log scale; blue SGD-mom, red LARS32, green LARS8bit -- drawn last, "
              "it hides LARS32 where they agree): %s%s\n",
              png.c_str(), ok ? "" : " -- could not be written");
  std::printf("total %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
