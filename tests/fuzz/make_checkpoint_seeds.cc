// Writes valid checkpoints (fp32, blockwise 8-bit, per-tensor 8-bit, percentile ring, groups)
// into the checkpoint fuzz corpus: bazel run //tests/fuzz:make_checkpoint_seeds -- DIR
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "halide_lars/lars.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  using halide_lars::DType;
  const halide_lars::Device cpu = halide_lars::Device::Cpu();
  int seed = 0;
  for (int variant = 0; variant < 4; ++variant) {
    std::vector<float> a(5000, 0.5f), ga(5000, 0.1f), b(7, 0.5f), gb(7, 0.1f);
    halide_lars::LarsOptions o;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.percentile_clipping = variant == 3 ? 100 : 50;
    halide_lars::Lars opt = *halide_lars::Lars::Create(o);
    (void)opt.AddParam("a", {a.data(), DType::kF32, 5000, cpu}, {ga.data(), DType::kF32, 5000, cpu});
    (void)opt.AddParam("b", {b.data(), DType::kF32, 7, cpu}, {gb.data(), DType::kF32, 7, cpu});
    if (variant != 0) (void)opt.OverrideConfig("a", "optim_bits", 8);
    if (variant == 2) (void)opt.OverrideConfig("a", "block_wise", false);
    if (variant == 3) (void)opt.AddParamGroup({{"lr", 0.01}});
    for (int s = 0; s <= variant; ++s) (void)opt.Step();
    const std::string bytes = *opt.SaveState();
    std::ofstream(std::string(argv[1]) + "/seed" + std::to_string(seed++), std::ios::binary)
        << bytes;
  }
  std::printf("wrote %d seeds\n", seed);
  return 0;
}
