// Flat parameters: AddFlatParams / AllocateFlatParams step a whole tensor set with two
// pipelines, bit-identical to registering every tensor with AddParam (step_order norms_first),
// over multi-step trajectories with per-tensor options, groups, lr schedules, tensors without a
// gradient and non-finite gradients; elements between tensors are never written; checkpoints
// continue bit for bit; bad input changes nothing.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "HalideRuntime.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using testing::HostTensor;
using testing::RandomTensor;

LarsOptions Defaults() {
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  o.max_unorm = 0.02;
  o.step_order = StepOrder::kNormsFirst;
  return o;
}

// Sizes around every boundary the kernels have: 0, 1, a vector, a row (64), a reduction chunk
// (2^15), several chunks with a tail; and one tensor past the CPU segment size (2^20 elements,
// lars/flat set.h), so the CPU steps the set in two segments (t0-t7, t8-t13).
const std::vector<int64_t> kSizes = {7, 0, 1, 64, 65, 63, 32767, (1 << 20) + 3, 32768, 32769,
                                     3 * 32768 + 5, 1000, 4096, 17};

TensorView View(std::vector<uint8_t>* bytes, DType dtype, int64_t offset, int64_t numel) {
  return TensorView{bytes->data() + offset * DTypeSize(dtype), dtype, numel, Device::Cpu()};
}

DeviceBuffer Upload(const std::vector<uint8_t>& bytes, DType dtype, const Device& device) {
  const int64_t n = static_cast<int64_t>(bytes.size() / DTypeSize(dtype));
  absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(device, dtype, n);
  EXPECT_TRUE(b.ok()) << b.status();
  if (n > 0) {
    EXPECT_TRUE(b->CopyFromHost(bytes.data()).ok());
  }
  return std::move(*b);
}

std::vector<uint8_t> Download(const DeviceBuffer& b) {
  std::vector<uint8_t> bytes(b.view().bytes());
  if (!bytes.empty()) {
    EXPECT_TRUE(b.CopyToHost(bytes.data()).ok());
  }
  return bytes;
}

struct Config {
  DeviceType device;
  DType dtype;
};

// The same tensors twice: in one flat set (with gaps holding sentinels) and one buffer each,
// on the device under test.
struct Pair {
  Device device;
  DType dtype;
  std::vector<FlatParam> tensors;
  int64_t n = 0;
  std::vector<uint8_t> host_g;  // the flat gradient as uploaded
  DeviceBuffer flat_p, flat_g;
  std::vector<DeviceBuffer> p, g;
  Lars per_tensor, flat_set;

  static Pair Make(const Config& c, const LarsOptions& o, int64_t gap = 0,
                   int64_t alignment = kFlatAlignment) {
    Pair s{Device{c.device, 0}, c.dtype, {}, 0, {}, {}, {}, {}, {}, *Lars::Create(o),
           *Lars::Create(o)};
    for (size_t i = 0; i < kSizes.size(); ++i) {
      s.tensors.push_back({absl::StrCat("t", i), kSizes[i], -1, 0});
    }
    s.n = LayoutFlatParams(&s.tensors, alignment);
    for (FlatParam& t : s.tensors) t.offset += gap * (&t - s.tensors.data() + 1) * kFlatAlignment;
    s.n += gap * static_cast<int64_t>(s.tensors.size() + 1) * kFlatAlignment;
    const size_t es = DTypeSize(s.dtype);
    // Everything not covered by a tensor holds 0xA5 bytes: it must never change.
    std::vector<uint8_t> flat(s.n * es, 0xA5);
    s.host_g = flat;
    for (size_t i = 0; i < s.tensors.size(); ++i) {
      HostTensor init = RandomTensor(s.dtype, s.tensors[i].numel, 100 + i, 0.5);
      std::copy(init.bytes.begin(), init.bytes.end(), flat.begin() + s.tensors[i].offset * es);
      s.p.push_back(Upload(init.bytes, s.dtype, s.device));
      s.g.push_back(Upload(init.bytes, s.dtype, s.device));
    }
    s.flat_p = Upload(flat, s.dtype, s.device);
    s.flat_g = Upload(s.host_g, s.dtype, s.device);
    return s;
  }

  // Tensor i's gradient as SetGrad takes it: its slice of the flat gradient (on OpenCL, the
  // flat cl_mem with the tensor's numel).
  TensorView GradSlice(size_t i) const {
    return SliceView(flat_g.view(), tensors[i].offset, tensors[i].numel);
  }

  void Register(int group_of_odd = 0) {
    for (FlatParam& t : tensors) t.group = (&t - tensors.data()) % 2 ? group_of_odd : 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      ASSERT_TRUE(per_tensor.AddParam(tensors[i].name, p[i].view(), g[i].view(), tensors[i].group)
                      .ok());
    }
    absl::Status s = flat_set.AddFlatParams(flat_p.view(), flat_g.view(), tensors);
    ASSERT_TRUE(s.ok()) << s;
  }

  // Gradients of step `step` in both layouts; `nan_tensor` (if >= 0) gets a NaN.
  void SetGradients(int step, int nan_tensor = -1) {
    const size_t es = DTypeSize(dtype);
    for (size_t i = 0; i < tensors.size(); ++i) {
      HostTensor gr = RandomTensor(dtype, tensors[i].numel, 1000 * step + i, 1.0 + i % 3);
      if (static_cast<int>(i) == nan_tensor && !gr.values.empty()) {
        HostTensor nan = testing::FromValues(dtype, {NAN});
        std::memcpy(gr.bytes.data(), nan.bytes.data(), es);
      }
      if (!gr.bytes.empty()) {
        ASSERT_TRUE(g[i].CopyFromHost(gr.bytes.data()).ok());
      }
      std::copy(gr.bytes.begin(), gr.bytes.end(), host_g.begin() + tensors[i].offset * es);
    }
    ASSERT_TRUE(flat_g.CopyFromHost(host_g.data()).ok());
  }

  void Step() {
    ASSERT_TRUE(per_tensor.Step().ok());
    absl::Status s = flat_set.Step();
    ASSERT_TRUE(s.ok()) << s;
  }

  // Parameters, momentum, step counts: bit for bit.
  void ExpectIdentical(const std::string& when) {
    const size_t es = DTypeSize(dtype);
    const std::vector<uint8_t> flat = Download(flat_p);
    for (size_t i = 0; i < tensors.size(); ++i) {
      const FlatParam& t = tensors[i];
      const std::vector<uint8_t> mine = Download(p[i]);
      ASSERT_TRUE(std::equal(mine.begin(), mine.end(), flat.begin() + t.offset * es))
          << when << ": param " << t.name << " (" << t.numel << " elements)";
      auto a = per_tensor.GetState(t.name), b = flat_set.GetState(t.name);
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(a->step, b->step) << when << ": " << t.name;
      ASSERT_EQ(a->skipped_steps, b->skipped_steps) << when << ": " << t.name;
      ASSERT_EQ(a->momentum.size(), b->momentum.size());
      ASSERT_TRUE(std::equal(a->momentum.begin(), a->momentum.end(), b->momentum.begin(),
                             [](float x, float y) { return std::memcmp(&x, &y, 4) == 0; }))
          << when << ": momentum " << t.name;
    }
  }

  // Bytes outside every tensor still hold the 0xA5 fill.
  void ExpectGapsUntouched() {
    const size_t es = DTypeSize(dtype);
    const std::vector<uint8_t> flat = Download(flat_p);
    std::vector<bool> covered(n, false);
    for (const FlatParam& t : tensors) {
      for (int64_t x = t.offset; x < t.offset + t.numel; ++x) covered[x] = true;
    }
    for (int64_t x = 0; x < n; ++x) {
      if (covered[x]) continue;
      for (size_t b = 0; b < es; ++b) ASSERT_EQ(flat[x * es + b], 0xA5) << "element " << x;
    }
  }
};

class FlatTest : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override { LARS_REQUIRE_DEVICE(GetParam().device); }
};

// Per-tensor options of every kind, a second group with its own lr schedule, 30 steps.
TEST_P(FlatTest, TrajectoryIsBitIdenticalToPerTensorSteps) {
  Pair s = Pair::Make(GetParam(), Defaults(), /*gap=*/1);
  for (Lars* opt : {&s.per_tensor, &s.flat_set}) {
    ASSERT_EQ(*opt->AddParamGroup({{"nesterov", true}, {"lr", 0.05}}), 1);
  }
  s.Register(/*group_of_odd=*/1);
  const std::vector<std::pair<std::string, std::pair<std::string, OptionValue>>> overrides = {
      {"t0", {"trust_mode", "none"}},        {"t2", {"weight_decay", 0.0}},
      {"t3", {"trust_mode", "classic"}},     {"t4", {"max_unorm", 0.0}},
      {"t8", {"trust_mode", "classic"}},     {"t9", {"nonfinite", "propagate"}},
      {"t10", {"max_unorm", 1e-3}},          {"t12", {"momentum", 0.5}},
      {"t6", {"dampening", 0.1}},            {"t6", {"nesterov", false}},
      {"t5", {"trust_mode", "larc_clip"}},   {"t11", {"trust_mode", "exact"}},
      {"t7", {"trust_mode", "exact"}},       {"t2", {"trust_mode", "classic"}},
      {"t2", {"always_adapt", false}},       {"t11", {"lr_in_momentum", true}},
      {"t5", {"lr_in_momentum", true}}};
  for (const auto& [name, kv] : overrides) {
    for (Lars* opt : {&s.per_tensor, &s.flat_set}) {
      ASSERT_TRUE(opt->OverrideConfig(name, kv.first, kv.second).ok()) << name;
    }
  }
  for (int step = 1; step <= 30; ++step) {
    for (Lars* opt : {&s.per_tensor, &s.flat_set}) {  // an lr schedule in group 1
      ASSERT_TRUE(opt->SetGroupOption(1, "lr", 0.05 * std::cos(step * 0.05)).ok());
    }
    s.SetGradients(step);
    s.Step();
    s.ExpectIdentical(absl::StrCat("step ", step));
    // One norms and one update pipeline per segment: two segments on the CPU, one on GPUs.
    EXPECT_EQ(s.flat_set.LastStepPipelines(), GetParam().device == DeviceType::kCPU ? 4 : 2);
  }
  EXPECT_GE(s.per_tensor.LastStepPipelines(), 2 * 12);  // two per non-empty tensor
  s.ExpectGapsUntouched();
}

// LARS8bit: tensors of >= 4096 elements get blockwise 8-bit state, the others fp32 -- two
// flat sets (two state kinds), four pipelines per step on GPUs; bit-identical to per-tensor steps
// for blocks of 256 and 2048, with a tensor without gradient and a NaN gradient on the way.
TEST_P(FlatTest, EightBitStateIsBitIdenticalToPerTensorSteps) {
  for (int block : {256, 2048}) {
    LarsOptions o = Defaults();
    o.optim_bits = 8;
    o.block_size = block;
    Pair s = Pair::Make(GetParam(), o, /*gap=*/0, /*alignment=*/block);
    s.Register();
    for (Lars* opt : {&s.per_tensor, &s.flat_set}) {
      ASSERT_TRUE(opt->OverrideConfig("t9", "trust_mode", "classic").ok());
      ASSERT_TRUE(opt->OverrideConfig("t10", "nesterov", true).ok());
      ASSERT_TRUE(opt->OverrideConfig("t7", "trust_mode", "exact").ok());
      ASSERT_TRUE(opt->OverrideConfig("t8", "trust_mode", "larc_clip").ok());
    }
    ASSERT_EQ(s.flat_set.GetState("t7")->kind, StateKind::kBlockwise8);
    ASSERT_EQ(s.flat_set.GetState("t2")->kind, StateKind::kFp32);
    const int steps = GetParam().device == DeviceType::kCPU ? 12 : 5;  // pocl is slow at 8-bit
    for (int step = 1; step <= steps; ++step) {
      s.SetGradients(step, step == 3 ? 8 : -1);
      const TensorView none{nullptr, s.dtype, 0, s.device};
      const bool no_grad = step == 4;
      ASSERT_TRUE(s.per_tensor.SetGrad("t10", no_grad ? none : s.g[10].view()).ok());
      ASSERT_TRUE(s.flat_set.SetGrad("t10", no_grad ? none : s.GradSlice(10)).ok());
      s.Step();
      s.ExpectIdentical(absl::StrCat("block ", block, " step ", step));
      for (const FlatParam& t : s.tensors) {
        auto a = s.per_tensor.GetState(t.name), b = s.flat_set.GetState(t.name);
        ASSERT_EQ(a->codes, b->codes) << t.name << " step " << step;
        ASSERT_EQ(a->absmax, b->absmax) << t.name << " step " << step;
      }
    }
    EXPECT_EQ(s.flat_set.LastStepPipelines(), GetParam().device == DeviceType::kCPU ? 6 : 4)
        << "2 per flat set (fp32, 8-bit), 2 per CPU segment";
    EXPECT_EQ(s.flat_set.GetState("t8")->skipped_steps, 1);
    // A checkpoint continues bit for bit in a fresh optimizer.
    absl::StatusOr<std::string> saved = s.flat_set.SaveState();
    ASSERT_TRUE(saved.ok()) << saved.status();
    DeviceBuffer p2 = Upload(Download(s.flat_p), s.dtype, s.device);
    DeviceBuffer g2 = Upload(s.host_g, s.dtype, s.device);
    Lars resumed = *Lars::Create(o);
    ASSERT_TRUE(resumed.AddFlatParams(p2.view(), g2.view(), s.tensors).ok());
    for (const char* name : {"t9", "t10"}) {
      ASSERT_TRUE(resumed.OverrideConfig(name, name[1] == '9' ? "trust_mode" : "nesterov",
                                         name[1] == '9' ? OptionValue("classic") : OptionValue(true))
                      .ok());
    }
    absl::Status load = resumed.LoadState(*saved);
    ASSERT_TRUE(load.ok()) << load;
    s.SetGradients(steps + 1);
    ASSERT_TRUE(g2.CopyFromHost(s.host_g.data()).ok());
    ASSERT_TRUE(s.flat_set.Step().ok());
    ASSERT_TRUE(resumed.Step().ok());
    EXPECT_EQ(Download(p2), Download(s.flat_p)) << "block " << block;
    // The state kind is fixed once added: an override that would change it is refused.
    EXPECT_EQ(s.flat_set.OverrideConfig("t7", "optim_bits", 32).code(),
              absl::StatusCode::kUnimplemented);
  }
}

TEST_P(FlatTest, TensorsWithoutGradientAndNonfiniteGradients) {
  LarsOptions o = Defaults();
  Pair s = Pair::Make(GetParam(), o);
  s.Register();
  for (Lars* opt : {&s.per_tensor, &s.flat_set}) {
    ASSERT_TRUE(opt->OverrideConfig("t5", "nonfinite", "propagate").ok());
  }
  for (int step = 1; step <= 8; ++step) {
    // t4 has no gradient on steps 2-3; t7 gets a NaN on step 3 (skipped), t5 on step 5
    // (propagated: NaN flows into its parameter, as bitsandbytes).
    const bool no_grad = step == 2 || step == 3;
    s.SetGradients(step, step == 3 ? 7 : step == 5 ? 5 : -1);
    const TensorView none{nullptr, s.dtype, 0, s.device};
    ASSERT_TRUE(s.per_tensor.SetGrad("t4", no_grad ? none : s.g[4].view()).ok());
    absl::Status set = s.flat_set.SetGrad("t4", no_grad ? none : s.GradSlice(4));
    ASSERT_TRUE(set.ok()) << set;
    s.Step();
    s.ExpectIdentical(absl::StrCat("step ", step));
  }
  EXPECT_EQ(s.flat_set.GetState("t4")->step, 6);
  EXPECT_EQ(s.flat_set.GetState("t7")->skipped_steps, 1);
  EXPECT_EQ(s.flat_set.SkippedSteps(), 1);
}

TEST_P(FlatTest, NonfiniteErrorChangesNothingAnywhere) {
  LarsOptions o = Defaults();
  o.nonfinite = Nonfinite::kError;
  Pair s = Pair::Make(GetParam(), o);
  // One more tensor registered per tensor in the flat set optimizer: it must not move either.
  DeviceBuffer extra_p = Upload(RandomTensor(s.dtype, 100, 7).bytes, s.dtype, s.device);
  DeviceBuffer extra_g = Upload(RandomTensor(s.dtype, 100, 8).bytes, s.dtype, s.device);
  s.Register();
  ASSERT_TRUE(s.flat_set.AddParam("extra", extra_p.view(), extra_g.view()).ok());
  s.SetGradients(1);
  ASSERT_TRUE(s.flat_set.Step().ok());
  s.SetGradients(2, /*nan_tensor=*/9);
  const std::vector<uint8_t> before = Download(s.flat_p), extra_before = Download(extra_p);
  const std::vector<float> m_before = s.flat_set.GetState("t8")->momentum;
  absl::Status st = s.flat_set.Step();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(st.message()).find("t9: gradient has NaN or Inf"), std::string::npos) << st;
  EXPECT_EQ(Download(s.flat_p), before);
  EXPECT_EQ(Download(extra_p), extra_before);
  EXPECT_EQ(s.flat_set.GetState("t8")->momentum, m_before);
  EXPECT_EQ(s.flat_set.GetState("t8")->step, 1);
}

TEST_P(FlatTest, CheckpointContinuesBitForBit) {
  Pair s = Pair::Make(GetParam(), Defaults());
  s.Register();
  for (int step = 1; step <= 37; ++step) {
    s.SetGradients(step);
    ASSERT_TRUE(s.flat_set.Step().ok());
  }
  absl::StatusOr<std::string> saved = s.flat_set.SaveState();
  ASSERT_TRUE(saved.ok()) << saved.status();
  // A fresh optimizer over a copy of the parameters, loading the checkpoint.
  DeviceBuffer p2 = Upload(Download(s.flat_p), s.dtype, s.device);
  DeviceBuffer g2 = Upload(s.host_g, s.dtype, s.device);
  Lars resumed = *Lars::Create(Defaults());
  ASSERT_TRUE(resumed.AddFlatParams(p2.view(), g2.view(), s.tensors).ok());
  absl::Status load = resumed.LoadState(*saved);
  ASSERT_TRUE(load.ok()) << load;
  for (int step = 38; step <= 45; ++step) {
    s.SetGradients(step);
    ASSERT_TRUE(g2.CopyFromHost(s.host_g.data()).ok());
    ASSERT_TRUE(s.flat_set.Step().ok());
    ASSERT_TRUE(resumed.Step().ok());
    ASSERT_EQ(Download(p2), Download(s.flat_p)) << "step " << step;
  }
  for (const FlatParam& t : s.tensors) {
    EXPECT_EQ(resumed.GetState(t.name)->momentum, s.flat_set.GetState(t.name)->momentum) << t.name;
    EXPECT_EQ(resumed.GetState(t.name)->step, 45) << t.name;
  }
}

// The same 10-step flat set trajectory with 1, 2 and 3 Halide threads and the default: identical
// bits (fixed reduction trees, no atomics; segments run in a fixed order).
TEST_P(FlatTest, BitIdenticalAcrossThreadCounts) {
  std::vector<uint8_t> first;
  for (int threads : {1, 2, 3, 0}) {  // 0 restores Halide's default
    halide_set_num_threads(threads);
    Pair s = Pair::Make(GetParam(), Defaults());
    s.Register();
    for (int step = 1; step <= 10; ++step) {
      s.SetGradients(step);
      ASSERT_TRUE(s.flat_set.Step().ok());
    }
    std::vector<uint8_t> bits = Download(s.flat_p);
    for (const FlatParam& t : s.tensors) {
      const std::vector<float> m = s.flat_set.GetState(t.name)->momentum;
      const auto* b = reinterpret_cast<const uint8_t*>(m.data());
      bits.insert(bits.end(), b, b + 4 * m.size());
    }
    if (first.empty()) first = bits;
    EXPECT_EQ(bits, first) << "threads=" << threads;
  }
}

std::vector<Config> AllConfigs() {
  std::vector<Config> all;
  for (DeviceType d : {DeviceType::kCPU, DeviceType::kOpenCL, DeviceType::kCUDA}) {
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) all.push_back({d, t});
  }
  return all;
}

INSTANTIATE_TEST_SUITE_P(All, FlatTest, ::testing::ValuesIn(AllConfigs()),
                         [](const ::testing::TestParamInfo<Config>& i) {
                           return absl::StrCat(DeviceTypeName(i.param.device), "_",
                                               DTypeName(i.param.dtype));
                         });

TEST(FlatApi, AllocateFlatParamsOwnsAlignedBuffers) {
  Lars opt = *Lars::Create(Defaults());
  std::vector<FlatParam> tensors = {{"w", 1000}, {"b", 10}, {"bn", 3}};
  absl::StatusOr<FlatBuffers> flat = opt.AllocateFlatParams(Device::Cpu(), DType::kF32, &tensors);
  ASSERT_TRUE(flat.ok()) << flat.status();
  EXPECT_EQ(tensors[0].offset, 0);
  EXPECT_EQ(tensors[1].offset, 1024);
  EXPECT_EQ(tensors[2].offset, 1088);
  EXPECT_EQ(flat->params.numel, 1091);
  auto* p = static_cast<float*>(flat->params.data);
  auto* g = static_cast<float*>(flat->grads.data);
  for (int i = 0; i < 1091; ++i) {
    EXPECT_EQ(p[i], 0.0f);
    p[i] = 1.0f;
    g[i] = 0.5f;
  }
  ASSERT_TRUE(opt.Step().ok());
  EXPECT_LT(p[0], 1.0f);
  EXPECT_EQ(p[1000], 1.0f) << "a gap element was written";
  EXPECT_LT(p[1090], 1.0f);
  EXPECT_EQ(opt.ParamNames(), (std::vector<std::string>{"w", "b", "bn"}));
}

// LARS8bit: AllocateFlatParams puts the 8-bit tensors side by side, then the fp32 ones (each
// kind in the caller's order), so each flat set's buffers span its own tensors; StateBytes counts
// the flat sets' real buffers.
TEST(FlatApi, AllocateFlatParamsGroupsStateKinds) {
  LarsOptions o = Defaults();
  o.optim_bits = 8;  // block 256, min_8bit_size 4096
  Lars opt = *Lars::Create(o);
  std::vector<FlatParam> tensors = {{"w1", 8192}, {"b1", 10}, {"w2", 8192}, {"b2", 10}};
  absl::StatusOr<FlatBuffers> flat = opt.AllocateFlatParams(Device::Cpu(), DType::kF32, &tensors);
  ASSERT_TRUE(flat.ok()) << flat.status();
  EXPECT_EQ(tensors[0].offset, 0);
  EXPECT_EQ(tensors[2].offset, 8192);
  EXPECT_EQ(tensors[1].offset, 16384);
  EXPECT_EQ(tensors[3].offset, 16384 + 256);
  EXPECT_EQ(opt.ParamNames(), (std::vector<std::string>{"w1", "b1", "w2", "b2"}));
  // 8-bit: 16384 codes + 64 absmax; fp32: momentum over [16384, 16650) only; plus norms and
  // tables. Interleaved, the fp32 momentum alone would span 8458 floats (33.8 KB).
  const int64_t bytes = opt.StateBytes();
  EXPECT_GT(bytes, 16384 + 64 * 4 + 266 * 4);
  EXPECT_LT(bytes, 16384 + 64 * 4 + 266 * 4 + 8192) << "state spans other kinds' tensors";
  auto* p = static_cast<float*>(flat->params.data);
  auto* g = static_cast<float*>(flat->grads.data);
  for (const FlatParam& t : tensors) {
    for (int64_t i = 0; i < t.numel; ++i) {
      p[t.offset + i] = 0.5f;
      g[t.offset + i] = 0.01f * static_cast<float>(i % 7 + 1);
    }
  }
  ASSERT_TRUE(opt.Step().ok());
  for (const FlatParam& t : tensors) {
    EXPECT_LT(p[t.offset], 0.5f) << t.name;
    absl::StatusOr<ParamStateSnapshot> s = opt.GetState(t.name);
    ASSERT_TRUE(s.ok()) << s.status();
  }
}

TEST(FlatApi, BadInputIsRejectedAndRegistersNothing) {
  std::vector<uint8_t> p(4 * 1024), g(4 * 1024), g16(2 * 1024);
  const TensorView pv = View(&p, DType::kF32, 0, 1024), gv = View(&g, DType::kF32, 0, 1024);
  struct Case {
    std::vector<FlatParam> tensors;
    TensorView params, grads;
    absl::StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {{{"a", 10, 3}}, pv, gv, absl::StatusCode::kInvalidArgument, "a: [3, 13) is not an aligned"},
      {{{"a", 100, 960}}, pv, gv, absl::StatusCode::kInvalidArgument, "inside the flat buffer"},
      {{{"a", 100, 0}, {"b", 10, 64}}, pv, gv, absl::StatusCode::kInvalidArgument,
       "b: overlaps \"a\""},
      {{{"a", 10, 0}, {"a", 10, 64}}, pv, gv, absl::StatusCode::kAlreadyExists, "appears twice"},
      {{{"taken", 10, 0}}, pv, gv, absl::StatusCode::kAlreadyExists, "already registered"},
      {{{"a", 10, 0, 5}}, pv, gv, absl::StatusCode::kOutOfRange, "group 5"},
      {{}, pv, gv, absl::StatusCode::kInvalidArgument, "tensors: empty"},
      {{{"a", 10, 0}}, pv, View(&g16, DType::kF16, 0, 1024), absl::StatusCode::kInvalidArgument,
       "flat buffers"},
      {{{"a", 10, 0}}, pv, View(&p, DType::kF32, 0, 1024), absl::StatusCode::kInvalidArgument,
       "overlaps the flat parameter buffer"},
      {{{"a", 10, 0}}, pv, TensorView{g.data(), DType::kF32, 1024, Device::OpenCL()},
       absl::StatusCode::kInvalidArgument, "grads"},
  };
  for (const Case& c : cases) {
    Lars opt = *Lars::Create(Defaults());
    std::vector<uint8_t> tp(400), tg(400);
    ASSERT_TRUE(opt.AddParam("taken", View(&tp, DType::kF32, 0, 100),
                             View(&tg, DType::kF32, 0, 100)).ok());
    absl::Status s = opt.AddFlatParams(c.params, c.grads, c.tensors);
    EXPECT_EQ(s.code(), c.code) << c.message << ": " << s;
    EXPECT_NE(std::string(s.message()).find(c.message), std::string::npos) << s;
    EXPECT_EQ(opt.ParamNames(), std::vector<std::string>{"taken"});
  }
}

TEST(FlatApi, UnsupportedOptionsAndOperationsAreNamed) {
  std::vector<uint8_t> p(4 * 8192), g(4 * 8192);
  const TensorView pv = View(&p, DType::kF32, 0, 8192), gv = View(&g, DType::kF32, 0, 8192);
  {
    LarsOptions o = Defaults();
    o.optim_bits = 8;  // the 8192-element tensor gets blockwise 8-bit state
    o.block_wise = false;
    Lars opt = *Lars::Create(o);
    absl::Status s = opt.AddFlatParams(pv, gv, {{"big", 8192, 0}});
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
    EXPECT_NE(std::string(s.message()).find("big: per-tensor 8-bit state"), std::string::npos) << s;
    // Small tensors keep fp32 state in 8-bit mode: those are fine.
    EXPECT_TRUE(opt.AddFlatParams(pv, gv, {{"small", 100, 0}}).ok());
    o.block_wise = true;
    Lars blockwise = *Lars::Create(o);
    s = blockwise.AddFlatParams(pv, gv, {{"a", 64, 0}, {"big", 4096, 64}});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(std::string(s.message()).find("big: offset 64 is not a multiple of its 8-bit block "
                                            "size 256"), std::string::npos) << s;
    EXPECT_TRUE(blockwise.ParamNames().empty());
    EXPECT_TRUE(blockwise.AddFlatParams(pv, gv, {{"a", 64, 0}, {"big", 4096, 256}}).ok());
  }
  Lars opt = *Lars::Create(Defaults());
  ASSERT_TRUE(opt.AddFlatParams(pv, gv, {{"w", 8000, 0}}).ok());
  for (auto [key, value] : std::vector<std::pair<std::string, OptionValue>>{
           {"percentile_clipping", 90}, {"step_order", "momentum_first"}, {"optim_bits", 8}}) {
    absl::Status s = opt.OverrideConfig("w", key, value);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << key << ": " << s;
  }
  // A group option that a flat parameter cannot take fails the Step, which changes nothing.
  ASSERT_TRUE(opt.SetGroupOption(0, "percentile_clipping", 50).ok());
  const std::vector<uint8_t> before = p;
  EXPECT_EQ(opt.Step().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(p, before);
  ASSERT_TRUE(opt.SetGroupOption(0, "percentile_clipping", 100).ok());
  // Gradients: only the flat buffer's slice or nothing.
  std::vector<uint8_t> other(4 * 8000);
  EXPECT_EQ(opt.SetGrad("w", View(&other, DType::kF32, 0, 8000)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(opt.SetGrad("w", TensorView{nullptr, DType::kF32, 0, Device::Cpu()}).ok());
  EXPECT_TRUE(opt.SetGrad("w", View(&g, DType::kF32, 0, 8000)).ok());
  // Not a shard, not in a sharded step.
  EXPECT_EQ(opt.SetShard("w", 0, 16000).code(), absl::StatusCode::kFailedPrecondition);
  std::vector<double> partials(opt.PartialsSize());
  EXPECT_EQ(opt.StepBegin(partials.data(), opt.PartialsSize()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(opt.Step().ok());
}

}  // namespace
}  // namespace halide_lars
