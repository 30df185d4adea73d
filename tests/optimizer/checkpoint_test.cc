// Lars::SaveState / LoadState: bit-for-bit continuation for every state kind, moving state
// between devices, and a loader that rejects every truncation and every single-bit flip of a
// checkpoint while leaving the live optimizer unchanged.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using testing::FromValues;
using testing::ReadValues;

LarsOptions Options() {
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 1e-3;
  o.percentile_clipping = 30;
  return o;
}

// A small model: an fp32-state tensor, a blockwise 8-bit one, a per-tensor 8-bit one and a
// bf16 one in a second group, with overrides.
struct Model {
  std::vector<std::string> names = {"dense", "emb8", "emb8t", "head_bf16"};
  std::vector<int64_t> sizes = {1000, 9000, 5000, 333};
  std::vector<DType> dtypes = {DType::kF32, DType::kF32, DType::kF32, DType::kBF16};
  std::vector<DeviceBuffer> p, g;

  Model(const Device& dev, uint32_t seed) {
    for (size_t i = 0; i < names.size(); ++i) {
      p.push_back(testing::ToDevice(FromValues(dtypes[i], testing::UniformValues(sizes[i], seed + i, -1, 1)), dev));
      g.push_back(testing::ToDevice(FromValues(dtypes[i], testing::UniformValues(sizes[i], 99, -1, 1)), dev));
    }
  }
  absl::StatusOr<Lars> MakeOptimizer() {
    absl::StatusOr<Lars> opt = Lars::Create(Options());
    if (!opt.ok()) return opt;
    absl::StatusOr<int> group = opt->AddParamGroup({{"lr", 0.05}, {"trust_mode", "classic"}});
    if (!group.ok()) return group.status();
    for (size_t i = 0; i < names.size(); ++i) {
      absl::Status s = opt->AddParam(names[i], p[i].view(), g[i].view(), i == 3 ? *group : 0);
      if (!s.ok()) return s;
    }
    for (absl::Status s : {opt->OverrideConfig("emb8", "optim_bits", 8),
                           opt->OverrideConfig("emb8t", "optim_bits", 8),
                           opt->OverrideConfig("emb8t", "block_wise", false),
                           opt->OverrideConfig("dense", "weight_decay", 0.0)}) {
      if (!s.ok()) return s;
    }
    return opt;
  }
  void Step(Lars* opt, int step) {
    for (size_t i = 0; i < names.size(); ++i) {
      testing::HostTensor h = FromValues(dtypes[i], testing::UniformValues(sizes[i], 1000 * step + i, -1, 1));
      ASSERT_TRUE(g[i].CopyFromHost(h.bytes.data()).ok());
    }
    const absl::Status s = opt->Step();
    ASSERT_TRUE(s.ok()) << s;
  }
  std::vector<std::vector<double>> Params() const {
    std::vector<std::vector<double>> out;
    for (const DeviceBuffer& b : p) out.push_back(ReadValues(b));
    return out;
  }
  void SetParams(const std::vector<std::vector<double>>& v) {
    for (size_t i = 0; i < p.size(); ++i) {
      ASSERT_TRUE(p[i].CopyFromHost(FromValues(dtypes[i], v[i]).bytes.data()).ok());
    }
  }
};

class CheckpointTest : public ::testing::TestWithParam<DeviceType> {};

TEST_P(CheckpointTest, ContinuingAfterALoadIsBitIdentical) {
  LARS_REQUIRE_DEVICE(GetParam());
  const Device dev{GetParam(), 0};
  Model a(dev, 1);
  absl::StatusOr<Lars> opt_a = a.MakeOptimizer();
  ASSERT_TRUE(opt_a.ok()) << opt_a.status();
  for (int s = 1; s <= 7; ++s) a.Step(&*opt_a, s);
  absl::StatusOr<std::string> ckpt = opt_a->SaveState();
  ASSERT_TRUE(ckpt.ok());
  const std::vector<std::vector<double>> params_at_save = a.Params();
  for (int s = 8; s <= 15; ++s) a.Step(&*opt_a, s);

  // A fresh process: same parameters (restored from the model's own checkpoint), new optimizer.
  Model b(dev, 50);
  b.SetParams(params_at_save);
  absl::StatusOr<Lars> opt_b = b.MakeOptimizer();
  ASSERT_TRUE(opt_b.ok());
  ASSERT_TRUE(opt_b->LoadState(*ckpt).ok());
  for (const std::string& name : b.names) EXPECT_EQ(opt_b->GetState(name)->step, 7) << name;
  EXPECT_EQ(opt_b->GetState("emb8")->kind, StateKind::kBlockwise8);
  EXPECT_EQ(opt_b->GetState("emb8t")->kind, StateKind::kTensor8);
  for (int s = 8; s <= 15; ++s) b.Step(&*opt_b, s);
  EXPECT_EQ(b.Params(), a.Params());
  for (const std::string& name : a.names) {
    EXPECT_EQ(opt_b->GetState(name)->momentum, opt_a->GetState(name)->momentum) << name;
    EXPECT_EQ(opt_b->GetState(name)->gnorm_vec, opt_a->GetState(name)->gnorm_vec) << name;
  }
  std::printf("checkpoint of %zu bytes for %lld state bytes\n", ckpt->size(),
              static_cast<long long>(opt_a->StateBytes()));
}

INSTANTIATE_TEST_SUITE_P(Backends, CheckpointTest,
                         ::testing::Values(DeviceType::kCPU, DeviceType::kOpenCL, DeviceType::kCUDA),
                         [](const ::testing::TestParamInfo<DeviceType>& info) {
                           return std::string(DeviceTypeName(info.param));
                         });

// State saved on the CPU continues on the GPU schedule (pocl) within fp32 tolerance.
TEST(Checkpoint, StateMovesBetweenDevices) {
  LARS_REQUIRE_DEVICE(DeviceType::kOpenCL);
  Model cpu(Device::Cpu(), 1);
  absl::StatusOr<Lars> opt_cpu = cpu.MakeOptimizer();
  ASSERT_TRUE(opt_cpu.ok());
  for (int s = 1; s <= 5; ++s) cpu.Step(&*opt_cpu, s);
  absl::StatusOr<std::string> ckpt = opt_cpu->SaveState();
  ASSERT_TRUE(ckpt.ok());
  Model gpu(Device::OpenCL(), 50);
  gpu.SetParams(cpu.Params());
  absl::StatusOr<Lars> opt_gpu = gpu.MakeOptimizer();
  ASSERT_TRUE(opt_gpu.ok());
  ASSERT_TRUE(opt_gpu->LoadState(*ckpt).ok());
  for (int s = 6; s <= 10; ++s) {
    cpu.Step(&*opt_cpu, s);
    gpu.Step(&*opt_gpu, s);
  }
  const auto a = cpu.Params(), b = gpu.Params();
  for (size_t t = 0; t < a.size(); ++t) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a[t].size(); ++i) {
      num += (a[t][i] - b[t][i]) * (a[t][i] - b[t][i]);
      den += a[t][i] * a[t][i];
    }
    EXPECT_LE(std::sqrt(num / den), t == 3 ? 1e-2 : 1e-4) << cpu.names[t];
  }
}

class CheckpointCorruption : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Lars> opt = Lars::Create(Options());
    ASSERT_TRUE(opt.ok());
    opt_ = std::make_unique<Lars>(std::move(*opt));
    p_.assign(8, 0.5f);
    g_.assign(8, 0.25f);
    ASSERT_TRUE(opt_->AddParam("w", {p_.data(), DType::kF32, 8, Device::Cpu()},
                               {g_.data(), DType::kF32, 8, Device::Cpu()})
                    .ok());
    ASSERT_TRUE(opt_->Step().ok());
    absl::StatusOr<std::string> s = opt_->SaveState();
    ASSERT_TRUE(s.ok());
    good_ = *s;
    ASSERT_TRUE(opt_->Step().ok());  // the live state now differs from the checkpoint
    absl::StatusOr<std::string> live = opt_->SaveState();
    ASSERT_TRUE(live.ok());
    live_ = *live;
  }
  void ExpectUnchanged(const std::string& what) {
    absl::StatusOr<std::string> now = opt_->SaveState();
    ASSERT_TRUE(now.ok());
    ASSERT_EQ(*now, live_) << what << ": the live optimizer changed";
  }
  std::unique_ptr<Lars> opt_;
  std::vector<float> p_, g_;
  std::string good_, live_;
};

TEST_F(CheckpointCorruption, EveryTruncationIsRejected) {
  for (size_t len = 0; len < good_.size(); ++len) {
    const absl::Status s = opt_->LoadState(absl::string_view(good_).substr(0, len));
    ASSERT_FALSE(s.ok()) << "truncated to " << len << " bytes was accepted";
    ExpectUnchanged(absl::StrCat("truncated to ", len));
  }
  std::printf("%zu truncations of a %zu-byte checkpoint rejected\n", good_.size(), good_.size());
}

TEST_F(CheckpointCorruption, EverySingleBitFlipIsRejected) {
  for (size_t byte = 0; byte < good_.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good_;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      const absl::Status s = opt_->LoadState(bad);
      ASSERT_FALSE(s.ok()) << "flip of bit " << bit << " of byte " << byte << " was accepted";
    }
    ExpectUnchanged(absl::StrCat("flips in byte ", byte));
  }
}

TEST_F(CheckpointCorruption, WrongVersionAndMismatchedParametersAreClearErrors) {
  std::string v9 = good_;
  v9[8] = 9;
  EXPECT_EQ(opt_->LoadState(v9).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(opt_->LoadState(v9).message().find("version 9"), absl::string_view::npos);
  EXPECT_EQ(opt_->LoadState("not a checkpoint at all").code(), absl::StatusCode::kDataLoss);
  // A checkpoint of a different model.
  absl::StatusOr<Lars> other = Lars::Create(Options());
  std::vector<float> q(9), gq(9);
  ASSERT_TRUE(other->AddParam("w", {q.data(), DType::kF32, 9, Device::Cpu()},
                              {gq.data(), DType::kF32, 9, Device::Cpu()})
                  .ok());
  const absl::Status s = other->LoadState(good_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("8 elements"), absl::string_view::npos) << s;
  ExpectUnchanged("mismatch");
  ASSERT_TRUE(opt_->LoadState(good_).ok());
  EXPECT_EQ(opt_->GetState("w")->step, 1);
}

TEST_F(CheckpointCorruption, FilesRoundTripAtomically) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/ckpt.bin");
  ASSERT_TRUE(opt_->SaveStateToFile(path).ok());
  ASSERT_TRUE(opt_->LoadStateFromFile(path).ok());
  ExpectUnchanged("file round trip");
  EXPECT_EQ(opt_->LoadStateFromFile(path + ".missing").code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(opt_->SaveStateToFile("/nonexistent-dir/x.bin").ok());
}

}  // namespace
}  // namespace halide_lars
