#include "bench/reporter.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "bench/bench_util.h"
#include "bench/model_shapes.h"

namespace halide_lars {
namespace bench {
namespace {

// bench/torch_lars.py, from the runfiles (bazel run) or the source tree.
std::string TorchScript() {
  for (const char* p : {"bench/torch_lars.py", "../bench/torch_lars.py"}) {
    if (FILE* f = std::fopen(p, "r")) {
      std::fclose(f);
      return p;
    }
  }
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  return std::string(ws ? ws : ".") + "/bench/torch_lars.py";
}

}  // namespace

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const Run& r : runs) {
    auto it = r.counters.find("GB/s");
    std::string name = r.benchmark_name();
    for (const char* tail : {"/real_time", "/min_time:", "/repeats:"}) {
      const size_t at = name.find(tail);
      if (at != std::string::npos) name.resize(at);
    }
    // Paired cases: the median over their repetitions (the other aggregates are skipped).
    const bool aggregate = r.run_type == Run::RT_Aggregate;
    if (aggregate && r.aggregate_name != "median") continue;
    if (it != r.counters.end()) gbs_[name] = it->second.value / 1e9;
    auto ratio = r.counters.find("ratio");  // BM_PairedVsOneTensor
    if (ratio != r.counters.end()) ratios_[name] = ratio->second.value;
    if (r.counters.count("vs_est") != 0) {  // BM_PairedRoofline
      for (const auto& [k, v] : r.counters) roofline_[name][k] = v.value;
    }
  }
}

void RatioReporter::Summary() const {
  auto get = [&](const std::string& k) {
    auto it = gbs_.find(k);
    return it == gbs_.end() ? 0.0 : it->second;
  };
  const double triad = std::max(get("BM_TriadInPlace"), get("BM_TriadInPlaceDynamic"));
  const double stream = get("BM_TriadStream");
  std::printf("\nn = %lld, %d threads. Ratios of effective GB/s (28 B/param; 8-bit: 23); /triad = "
              "the faster in-place triad:\n",
              static_cast<long long>(N()), omp_get_max_threads());
  std::printf("  %-24s %8s %10s %10s %10s\n", "", "GB/s", "/triad", "/stream", "/handwritten");
  const double hand = get("BM_HandwrittenOpenMP");
  for (const auto& [name, v] : gbs_) {
    std::printf("  %-24s %8.2f %10.3f %10.3f %10.3f\n", name.c_str(), v, triad > 0 ? v / triad : 0,
                stream > 0 ? v / stream : 0, hand > 0 ? v / hand : 0);
    json_["gbps"][name] = v;
    if (triad > 0) json_["vs_triad"][name] = v / triad;
  }
  // torch CPU (2 threads) running the same step, measured now by the companion script in the
  // project's virtualenv (.venv of ./setup.sh; `bazel run` says where the checkout is).
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  const std::string python = ws != nullptr ? std::string(ws) + "/.venv/bin/python" : "python3";
  const std::string cmd = python + " " + TorchScript() + " " + std::to_string(N()) + " 2>/dev/null";
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char line[256] = {0};
    double torch_gbps = 0, torch_ms = 0;
    if (std::fgets(line, sizeof(line), f) != nullptr &&
        std::sscanf(line, "torch_lars_gbps %lf %lf", &torch_gbps, &torch_ms) == 2) {
      const double hl = get("BM_HalideLars/f32/propagate");
      const double hd = get("BM_HalideLars/f32");
      std::printf("  %-24s %8.2f %10.3f   (%.1f ms/step)\n", "torch CPU (python)", torch_gbps,
                  triad > 0 ? torch_gbps / triad : 0, torch_ms);
      if (hd > 0 && hl > 0) {
        std::printf("  halide_lars f32 vs torch CPU: %.2fx (defaults), %.2fx (propagate)\n",
                    hd / torch_gbps, hl / torch_gbps);
      }
      json_["torch"] = {{"gbps", torch_gbps}, {"ms_per_step", torch_ms},
                        {"speedup_defaults", hd / torch_gbps}, {"speedup_propagate", hl / torch_gbps}};
    } else {
      std::printf("  torch baseline unavailable (no .venv: run ./setup.sh)\n");
    }
    pclose(f);
  }
  const double set = get("BM_LarsTensorSet/resnet50");
  std::printf("  Step time / one tensor of the same total size (paired, alternating steps;\n"
              "  *_vs_one_call: / the same set's one-call step):\n");
  for (const auto& [name, ratio] : ratios_) {
    std::printf("    %-40s %.3f\n", name.c_str(), ratio);
    json_["paired_ratio"][name] = ratio;
  }
  const double two = get("BM_LarsTensorSet/resnet50_two_phase");
  if (set > 0 && two > 0) {
    std::printf("  ResNet-50 set: two-phase (sharded) step time / one-call step: %.3f "
                "(exchange: 40 B/tensor = %zu B/step)\n", set / two, 40 * ResNet50Sizes().size());
  }
  if (!roofline_.empty()) {
    std::printf("  Paired roofline (triad, read-only pass, steps alternating; est = the read "
                "pass + the update's bytes at triad speed):\n");
    std::printf("    %-28s %9s %9s %9s %9s %9s %9s\n", "", "triad GB/s", "read/tri", "est/tri",
                "step/tri", "step/est", "step/hand");
    for (const auto& [name, c] : roofline_) {
      auto at = [&](const char* k) { return c.count(k) ? c.at(k) : 0.0; };
      std::printf("    %-28s %9.1f %9.3f %9.3f %9.3f %9.3f %9.3f\n", name.c_str(),
                  at("triad_GB/s"), at("read_vs_triad"), at("est_vs_triad"), at("vs_triad"),
                  at("vs_est"), at("vs_handwritten"));
      for (const auto& [k, v] : c) json_[name][k] = v;
    }
  }
  const double naive = get("BM_NaiveScalar");
  const double hl = get("BM_HalideLars/f32");
  if (naive > 0 && hl > 0) std::printf("  halide_lars f32 vs naive scalar: %.2fx\n", hl / naive);
  WriteJson(absl::GetFlag(FLAGS_json));
}

void RatioReporter::WriteJson(const std::string& path) const {
  if (path.empty()) return;
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::perror(path.c_str());
    return;
  }
  std::fprintf(f, "{\n  \"n\": %lld,\n  \"threads\": %d", static_cast<long long>(N()),
               omp_get_max_threads());
  for (const auto& [section, values] : json_) {
    std::fprintf(f, ",\n  \"%s\": {", section.c_str());
    const char* sep = "";
    for (const auto& [k, v] : values) {
      std::fprintf(f, "%s\n    \"%s\": %.6g", sep, k.c_str(), std::isfinite(v) ? v : 0.0);
      sep = ",";
    }
    std::fprintf(f, "\n  }");
  }
  std::fprintf(f, "\n}\n");
  std::fclose(f);
  std::printf("  summary written to %s\n", path.c_str());
}

}  // namespace bench
}  // namespace halide_lars
