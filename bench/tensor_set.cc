#include "bench/tensor_set.h"

#include <cstring>
#include <string>
#include <utility>

#include "bench/bench_util.h"

namespace halide_lars {
namespace bench {

absl::StatusOr<TensorSet> TensorSet::Make(const std::vector<int64_t>& sizes, SetMode mode,
                                          int optim_bits, Nonfinite nonfinite) {
  LarsOptions o = BenchOptions();
  o.optim_bits = optim_bits;
  o.nonfinite = nonfinite;
  absl::StatusOr<Lars> opt = Lars::Create(o);
  if (!opt.ok()) return opt.status();
  TensorSet s;
  s.mode = mode;
  s.opt = std::make_unique<Lars>(std::move(*opt));
  if (mode == SetMode::kFlat) {
    std::vector<FlatParam> tensors;
    for (size_t i = 0; i < sizes.size(); ++i) tensors.push_back({"t" + std::to_string(i), sizes[i]});
    absl::StatusOr<FlatBuffers> flat = s.opt->AllocateFlatParams(Device::Cpu(), DType::kF32, &tensors);
    if (!flat.ok()) return flat.status();  // (8-bit: offsets on the block size)
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::vector<float> init = RandomVector(sizes[i], static_cast<uint32_t>(i));
      std::memcpy(static_cast<float*>(flat->params.data) + tensors[i].offset, init.data(), 4 * sizes[i]);
      std::memcpy(static_cast<float*>(flat->grads.data) + tensors[i].offset, init.data(), 4 * sizes[i]);
      s.total += sizes[i];
    }
  } else {
    for (size_t i = 0; i < sizes.size(); ++i) {
      s.p.push_back(*DeviceBuffer::Allocate(Device::Cpu(), DType::kF32, sizes[i]));
      s.g.push_back(*DeviceBuffer::Allocate(Device::Cpu(), DType::kF32, sizes[i]));
      std::vector<float> init = RandomVector(sizes[i], static_cast<uint32_t>(i));
      (void)s.p.back().CopyFromHost(init.data());
      (void)s.g.back().CopyFromHost(init.data());
      absl::Status st = s.opt->AddParam("t" + std::to_string(i), s.p.back().view(), s.g.back().view());
      if (st.ok() && mode == SetMode::kTwoPhase) st = s.opt->SetShard("t" + std::to_string(i), 0, sizes[i]);
      if (!st.ok()) return st;
      s.total += sizes[i];
    }
    if (mode == SetMode::kTwoPhase) s.partials.resize(s.opt->PartialsSize());
  }
  return s;
}

absl::Status TensorSet::Step() {
  if (mode != SetMode::kTwoPhase) return opt->Step();
  absl::Status st = opt->StepBegin(partials.data(), partials.size());
  return st.ok() ? opt->StepFinish(partials.data(), partials.size()) : st;
}

}  // namespace bench
}  // namespace halide_lars
