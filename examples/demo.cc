// halide_lars demo: why LARS exists. Trains the same MLP on Fashion-MNIST (Debian's
// dataset-fashion-mnist, installed by setup.sh; nothing is downloaded) four ways, same epochs,
// same initial weights, same warmup + cosine learning-rate schedule:
//   SGD   small batch (256)   the baseline accuracy
//   SGD   large batch (8192)  32x fewer steps at its best lr (the linear-scaling rule's
//                             lr diverges): accuracy drops
//   LARS  large batch         per-layer trust ratio (bitsandbytes' clip): keeps the accuracy
//   LARS8bit large batch      the same with 8-bit blockwise momentum (1/4 of the state bytes)
// Progress per epoch, a table (test accuracy, time, state bytes, optimizer throughput), and the
// curves as data: PREFIX.json and PREFIX.csv (--out, default demo_accuracy). //examples:demo runs
// this program and then examples/plot_demo.py, which draws PREFIX.png and PREFIX.svg.
//   ./setup.sh && bazel run -c opt //examples:demo          (about 2 minutes on 2 cores)
//   bazel run -c opt //examples:demo -- --epochs=20 --out=/tmp/acc
#include <omp.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "halide_lars/lars.h"

ABSL_FLAG(std::string, data, "/usr/share/datasets/fashion-mnist",
          "folder with Fashion-MNIST's four idx .gz files (Debian: dataset-fashion-mnist)");
ABSL_FLAG(int, epochs, 10, "training epochs per run (every run sees the same data)");
ABSL_FLAG(int, small_batch, 256, "the baseline's batch size");
ABSL_FLAG(int, large_batch, 8192, "the large batch (the regime LARS is for)");
ABSL_FLAG(double, lr_small, 0.05, "SGD's peak learning rate at the small batch");
ABSL_FLAG(double, lr_large, 0.05,
          "SGD's peak learning rate at the large batch: the best of a sweep (10 epochs: 0.05 "
          "82.1 %, 0.1 81.1 %, 0.2 77.7 %; 0.4 and the linear-scaling rule's 1.6 diverge); 0: "
          "lr_small scaled linearly with the batch");
ABSL_FLAG(double, lr_lars, 1.5,
          "LARS' peak learning rate (each weight step is at most lr * max_unorm = 2% of |w|)");
ABSL_FLAG(double, warmup_epochs, 1.0, "linear warmup before the cosine decay");
ABSL_FLAG(int, hidden, 256, "hidden units of the MLP 784-hidden-hidden/2-10");
ABSL_FLAG(std::string, runs, "sgd_small,sgd_large,lars,lars8bit",
          "which of the four runs to train (for tuning: e.g. --runs=sgd_large --lr_large=0.2)");
ABSL_FLAG(std::string, out, "demo_accuracy",
          "write the runs' curves to OUT.json and OUT.csv (//examples:demo draws OUT.png/.svg)");

namespace {

using halide_lars::Device;
using halide_lars::DType;
using halide_lars::Lars;
using halide_lars::LarsOptions;
using halide_lars::TensorView;

constexpr int kIn = 28 * 28, kOut = 10;

struct Dataset {
  std::vector<float> x;  // n x 784, standardized
  std::vector<int> y;
  int n = 0;
};

// An idx file (big-endian header: magic with the dimension count, then the extents) as bytes.
bool ReadIdx(const std::string& path, std::vector<int>* dims, std::vector<uint8_t>* bytes) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  auto be32 = [&](uint32_t* v) {
    unsigned char b[4];
    if (gzread(f, b, 4) != 4) return false;
    *v = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    return true;
  };
  uint32_t magic = 0;
  bool ok = be32(&magic) && (magic >> 8) == 0x08;  // unsigned bytes
  size_t total = 1;
  for (uint32_t d = 0; ok && d < (magic & 0xff); ++d) {
    uint32_t extent = 0;
    ok = be32(&extent);
    dims->push_back(static_cast<int>(extent));
    total *= extent;
  }
  if (ok) {
    bytes->resize(total);
    ok = gzread(f, bytes->data(), static_cast<unsigned>(total)) == static_cast<int>(total);
  }
  gzclose(f);
  return ok;
}

bool Load(const std::string& dir, const std::string& split, Dataset* d) {
  std::vector<int> xd, yd;
  std::vector<uint8_t> xb, yb;
  if (!ReadIdx(dir + "/" + split + "-images-idx3-ubyte.gz", &xd, &xb) ||
      !ReadIdx(dir + "/" + split + "-labels-idx1-ubyte.gz", &yd, &yb) || xd.size() != 3 ||
      xd[1] * xd[2] != kIn || yd.size() != 1 || yd[0] != xd[0]) {
    return false;
  }
  d->n = xd[0];
  d->x.resize(xb.size());
  for (size_t i = 0; i < xb.size(); ++i) d->x[i] = (xb[i] / 255.0f - 0.2860f) / 0.3530f;
  d->y.assign(yb.begin(), yb.end());
  return true;
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
  Mlp(uint32_t seed, int h1, int h2) {
    std::mt19937 rng(seed);
    layers.emplace_back(kIn, h1, &rng);
    layers.emplace_back(h1, h2, &rng);
    layers.emplace_back(h2, kOut, &rng);
  }
};

void Relu(std::vector<float>* a) {
  for (float& v : *a) v = std::max(v, 0.0f);
}

// One forward (+ backward when `train`) pass over rows [begin, begin+batch). Returns the summed
// cross-entropy and counts correct predictions.
double Pass(Mlp* m, const Dataset& d, int begin, int batch, bool train, int* correct) {
  const float* x = &d.x[static_cast<size_t>(begin) * kIn];
  const int kH1 = m->layers[0].out, kH2 = m->layers[1].out;
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
  int batch = 0;
  double peak_lr = 0;
  std::vector<double> test_acc;  // after each epoch
  double final_acc = 0, final_loss = 0, seconds = 0;
  int64_t state_bytes = 0;
  double step_seconds = 0;
  int64_t steps = 0, params = 0;
};

// The learning rate at step t of `total`: linear warmup over `warmup` steps, then cosine to 0.
double ScheduledLr(double peak, int64_t t, int64_t warmup, int64_t total) {
  if (t < warmup) return peak * static_cast<double>(t + 1) / static_cast<double>(warmup);
  const double progress = static_cast<double>(t - warmup) / std::max<int64_t>(1, total - warmup);
  return peak * 0.5 * (1.0 + std::cos(3.14159265358979 * progress));
}

double Evaluate(Mlp* m, const Dataset& test, int* correct) {
  double loss = 0;
  *correct = 0;
  for (int begin = 0; begin < test.n; begin += 5000) {
    loss += Pass(m, test, begin, std::min(5000, test.n - begin), false, correct);
  }
  return loss / test.n;
}

Run Train(const std::string& name, LarsOptions options, bool trust, int batch, const Dataset& train,
          const Dataset& test) {
  Run run;
  run.name = name;
  run.batch = batch;
  run.peak_lr = *options.lr;
  const auto start = std::chrono::steady_clock::now();
  Mlp m(7, absl::GetFlag(FLAGS_hidden), absl::GetFlag(FLAGS_hidden) / 2);  // same initial weights
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
  const int epochs = absl::GetFlag(FLAGS_epochs);
  const int64_t per_epoch = train.n / batch, total = per_epoch * epochs;
  const auto warmup = static_cast<int64_t>(absl::GetFlag(FLAGS_warmup_epochs) * per_epoch);
  // The same shuffled order of the training set for every run, one permutation per epoch.
  std::mt19937 rng(11);
  std::vector<int> order(train.n);
  Dataset shuffled;
  shuffled.n = train.n;
  shuffled.x.resize(train.x.size());
  shuffled.y.resize(train.n);
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    for (int i = 0; i < train.n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (int i = 0; i < train.n; ++i) {
      std::copy_n(&train.x[static_cast<size_t>(order[i]) * kIn], kIn, &shuffled.x[static_cast<size_t>(i) * kIn]);
      shuffled.y[i] = train.y[order[i]];
    }
    double loss = 0;
    int correct = 0, seen = 0;
    for (int begin = 0; begin + batch <= train.n; begin += batch) {
      loss += Pass(&m, shuffled, begin, batch, true, &correct);
      seen += batch;
      const auto t0 = std::chrono::steady_clock::now();
      absl::Status s = opt->SetGroupOption(0, "lr", ScheduledLr(*options.lr, run.steps, warmup, total));
      if (s.ok()) s = opt->Step();
      run.step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++run.steps;
      if (!s.ok()) {
        std::printf("step failed: %s\n", s.ToString().c_str());
        std::exit(1);
      }
    }
    int test_correct = 0;
    const double test_loss = Evaluate(&m, test, &test_correct);
    run.test_acc.push_back(static_cast<double>(test_correct) / test.n);
    std::printf("  %-16s epoch %2d/%d  train loss %.4f acc %.3f   test loss %.4f acc %.4f\n",
                name.c_str(), epoch, epochs, loss / seen, static_cast<double>(correct) / seen,
                test_loss, run.test_acc.back());
    std::fflush(stdout);
    run.final_loss = test_loss;
  }
  run.final_acc = run.test_acc.back();
  run.state_bytes = opt->StateBytes();
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

// A path relative to where the user ran `bazel run` (it starts in the runfiles tree).
std::string UserPath(std::string path) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (cwd != nullptr && !path.empty() && path[0] != '/') path = std::string(cwd) + "/" + path;
  return path;
}

// The runs as JSON (setup + one object per run with its test accuracy per epoch) and as CSV (one
// row per run and epoch): what examples/plot_demo.py draws and what a user re-plots.
bool WriteCurves(const std::string& prefix, const std::vector<Run>& runs, int epochs, int hidden) {
  FILE* j = std::fopen((prefix + ".json").c_str(), "w");
  FILE* c = std::fopen((prefix + ".csv").c_str(), "w");
  bool ok = j != nullptr && c != nullptr;
  if (ok) {
    std::fprintf(j, "{\"setup\": {\"dataset\": \"Fashion-MNIST\", \"model\": \"%d-%d-%d-%d\", "
                 "\"epochs\": %d},\n \"runs\": [\n", kIn, hidden, hidden / 2, kOut, epochs);
    std::fprintf(c, "run,batch,peak_lr,epoch,test_acc\n");
    for (size_t i = 0; i < runs.size(); ++i) {
      const Run& r = runs[i];
      std::fprintf(j, "  {\"name\": \"%s\", \"batch\": %d, \"peak_lr\": %g, \"test_acc\": [",
                   r.name.c_str(), r.batch, r.peak_lr);
      for (size_t e = 0; e < r.test_acc.size(); ++e) {
        std::fprintf(j, "%s%.4f", e ? ", " : "", r.test_acc[e]);
        std::fprintf(c, "%s,%d,%g,%zu,%.4f\n", r.name.c_str(), r.batch, r.peak_lr, e + 1,
                     r.test_acc[e]);
      }
      std::fprintf(j, "], \"test_loss\": %.5f, \"seconds\": %.2f, \"state_bytes\": %lld}%s\n",
                   r.final_loss, r.seconds, static_cast<long long>(r.state_bytes),
                   i + 1 < runs.size() ? "," : "");
    }
    std::fprintf(j, "]}\n");
  }
  if (j != nullptr) ok &= std::fclose(j) == 0;
  if (c != nullptr) ok &= std::fclose(c) == 0;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const auto start = std::chrono::steady_clock::now();
  Dataset train, test;
  const std::string dir = absl::GetFlag(FLAGS_data);
  if (!Load(dir, "train", &train) || !Load(dir, "t10k", &test)) {
    std::fprintf(stderr, "demo: cannot read Fashion-MNIST from %s (train-/t10k-images-idx3-ubyte.gz "
                 "and -labels-idx1-ubyte.gz): run ./setup.sh (Debian package "
                 "dataset-fashion-mnist) or pass --data=DIR\n", dir.c_str());
    return 1;
  }
  const int hidden = absl::GetFlag(FLAGS_hidden);
  const int small = absl::GetFlag(FLAGS_small_batch), large = absl::GetFlag(FLAGS_large_batch);
  std::printf("halide_lars demo: Fashion-MNIST (%d train, %d test), MLP %d-%d-%d-%d, %d epochs, "
              "batch %d vs %d, %d threads\n", train.n, test.n, kIn, hidden, hidden / 2, kOut,
              absl::GetFlag(FLAGS_epochs), small, large, omp_get_max_threads());

  LarsOptions sgd;
  sgd.lr = absl::GetFlag(FLAGS_lr_small);
  sgd.momentum = 0.9;
  sgd.weight_decay = 5e-4;
  LarsOptions sgd_large = sgd;
  sgd_large.lr = absl::GetFlag(FLAGS_lr_large) > 0 ? absl::GetFlag(FLAGS_lr_large)
                                                   : *sgd.lr * large / small;
  LarsOptions lars = sgd;
  lars.lr = absl::GetFlag(FLAGS_lr_lars);
  LarsOptions lars8 = lars;
  lars8.optim_bits = 8;

  const std::string want = "," + absl::GetFlag(FLAGS_runs) + ",";
  auto wanted = [&](const char* key) { return want.find(std::string(",") + key + ",") != std::string::npos; };
  std::vector<Run> runs;
  if (wanted("sgd_small")) runs.push_back(Train("SGD b" + std::to_string(small), sgd, false, small, train, test));
  if (wanted("sgd_large")) runs.push_back(Train("SGD b" + std::to_string(large), sgd_large, false, large, train, test));
  if (wanted("lars")) runs.push_back(Train("LARS b" + std::to_string(large), lars, true, large, train, test));
  if (wanted("lars8bit")) runs.push_back(Train("LARS8bit b" + std::to_string(large), lars8, true, large, train, test));
  if (runs.empty()) {
    std::fprintf(stderr, "demo: --runs names none of sgd_small, sgd_large, lars, lars8bit\n");
    return 2;
  }

  std::printf("\n%-16s %7s %8s %9s %9s %8s %12s %15s\n", "optimizer", "batch", "peak lr",
              "test acc", "test loss", "time s", "state bytes", "opt. Mparams/s");
  for (const Run& r : runs) {
    std::printf("%-16s %7d %8.3f %9.4f %9.4f %8.1f %12lld %15.1f\n", r.name.c_str(), r.batch,
                r.peak_lr, r.final_acc, r.final_loss, r.seconds,
                static_cast<long long>(r.state_bytes), r.params * r.steps / r.step_seconds / 1e6);
  }
  const std::string out = UserPath(absl::GetFlag(FLAGS_out));
  if (!WriteCurves(out, runs, absl::GetFlag(FLAGS_epochs), hidden)) {
    std::fprintf(stderr, "demo: could not write %s.json / %s.csv\n", out.c_str(), out.c_str());
    return 1;
  }
  std::printf("\ncurves: %s.json, %s.csv\n", out.c_str(), out.c_str());
  std::printf("total %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
