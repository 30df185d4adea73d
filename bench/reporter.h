// The console reporter of //bench:lars_bench: Google Benchmark's table, then the ratios
// (/triad, /stream, /handwritten, torch, paired ratios, the paired roofline) and --json.
#ifndef HALIDE_LARS_BENCH_REPORTER_H_
#define HALIDE_LARS_BENCH_REPORTER_H_

#include <map>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"

namespace halide_lars {
namespace bench {

// Collects every run so the ratios can be printed after the table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override;
  // The ratios, torch CPU (.venv) measured now by bench/torch_lars.py, and --json.
  void Summary() const;
  // {"n":..., "threads":..., "<section>": {"<name>": value, ...}, ...}: sections gbps, vs_triad,
  // paired_ratio, torch, and one per BM_PairedRoofline case (its counters).
  void WriteJson(const std::string& path) const;

 private:
  std::map<std::string, double> gbs_, ratios_;
  std::map<std::string, std::map<std::string, double>> roofline_;
  mutable std::map<std::string, std::map<std::string, double>> json_;
};

}  // namespace bench
}  // namespace halide_lars

#endif  // HALIDE_LARS_BENCH_REPORTER_H_
