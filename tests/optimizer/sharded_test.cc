// Sharded two-phase steps (Lars::SetShard / StepBegin / StepFinish): R ranks simulated in one
// process, each owning a slice of every tensor, their partial norms summed in fp64 as an
// all-reduce would; after 20 steps the shards must equal a single-process run. The
// multi-process version over torch.distributed/gloo is //python:sharded_gloo_test.
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
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

struct TensorSpec {
  std::string name;
  int64_t numel;
  std::vector<int64_t> cuts;  // R + 1 shard boundaries, cuts[0] = 0, cuts[R] = numel
};

struct Shard {
  DeviceBuffer p, g;
};

DeviceBuffer Upload(DType t, const std::vector<double>& v, const Device& dev) {
  return testing::ToDevice(FromValues(t, v), dev);
}

std::vector<double> Slice(const std::vector<double>& v, int64_t a, int64_t b) {
  return std::vector<double>(v.begin() + a, v.begin() + b);
}

LarsOptions Opts(int bits, bool nesterov, int percentile = 100) {
  LarsOptions o;
  o.percentile_clipping = percentile;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.weight_decay = 0.01;
  o.nesterov = nesterov;
  o.dampening = 0.0;
  o.optim_bits = bits;
  o.block_size = 256;
  return o;
}

// Runs `steps` steps of a single-process optimizer and of R sharded ones on the same gradients
// (a noisy bowl at the current parameters) and returns max |p_sharded - p_single| / max |p|.
double ShardedVsSingle(const LarsOptions& o, DType dtype, const Device& dev,
                       const std::vector<TensorSpec>& specs, int steps, int* code_flips) {
  *code_flips = 0;
  const int ranks = static_cast<int>(specs[0].cuts.size()) - 1;
  absl::StatusOr<Lars> single = Lars::Create(o);
  EXPECT_TRUE(single.ok());
  std::vector<absl::StatusOr<Lars>> rank;
  for (int r = 0; r < ranks; ++r) rank.push_back(Lars::Create(o));
  std::vector<Shard> whole(specs.size());
  std::vector<std::vector<Shard>> shards(ranks);
  for (auto& v : shards) v.resize(specs.size());
  for (size_t t = 0; t < specs.size(); ++t) {
    const TensorSpec& s = specs[t];
    const std::vector<double> init = testing::UniformValues(s.numel, 7 + t, -1, 1);
    whole[t].p = Upload(dtype, init, dev);
    whole[t].g = Upload(dtype, std::vector<double>(s.numel, 0.0), dev);
    EXPECT_TRUE(single->AddParam(s.name, whole[t].p.view(), whole[t].g.view()).ok());
    for (int r = 0; r < ranks; ++r) {
      const int64_t a = s.cuts[r], b = s.cuts[r + 1];
      Shard& sh = shards[r][t];
      sh.p = Upload(dtype, Slice(init, a, b), dev);
      sh.g = Upload(dtype, std::vector<double>(b - a, 0.0), dev);
      EXPECT_TRUE(rank[r]->AddParam(s.name, sh.p.view(), sh.g.view()).ok());
      const absl::Status st = rank[r]->SetShard(s.name, a, s.numel);
      EXPECT_TRUE(st.ok()) << st;
    }
  }
  for (int step = 1; step <= steps; ++step) {
    for (size_t t = 0; t < specs.size(); ++t) {
      // Each optimizer's gradient at its own parameters.
      const std::vector<double> g1 = testing::BowlGradient(ReadValues(whole[t].p), step, 3);
      EXPECT_TRUE(whole[t].g.CopyFromHost(FromValues(dtype, g1).bytes.data()).ok());
      std::vector<double> p;
      for (int r = 0; r < ranks; ++r) {
        const std::vector<double> part = ReadValues(shards[r][t].p);
        p.insert(p.end(), part.begin(), part.end());
      }
      const std::vector<double> g = testing::BowlGradient(p, step, 3);
      for (int r = 0; r < ranks; ++r) {
        const TensorSpec& s = specs[t];
        if (s.cuts[r + 1] == s.cuts[r]) continue;
        const testing::HostTensor h = FromValues(dtype, Slice(g, s.cuts[r], s.cuts[r + 1]));
        EXPECT_TRUE(shards[r][t].g.CopyFromHost(h.bytes.data()).ok());
      }
    }
    EXPECT_TRUE(single->Step().ok());
    std::vector<double> sum(rank[0]->PartialsSize(), 0.0);
    for (int r = 0; r < ranks; ++r) {
      std::vector<double> part(sum.size());
      const absl::Status st = rank[r]->StepBegin(part.data(), part.size());
      EXPECT_TRUE(st.ok()) << st;
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += part[i];  // the all-reduce
    }
    for (int r = 0; r < ranks; ++r) {
      const absl::Status st = rank[r]->StepFinish(sum.data(), sum.size());
      EXPECT_TRUE(st.ok()) << st;
    }
  }
  double worst = 0, scale = 0;
  for (size_t t = 0; t < specs.size(); ++t) {
    const std::vector<double> want = ReadValues(whole[t].p);
    std::vector<double> got;
    for (int r = 0; r < ranks; ++r) {
      const std::vector<double> part = ReadValues(shards[r][t].p);
      got.insert(got.end(), part.begin(), part.end());
      EXPECT_EQ(rank[r]->GetState(specs[t].name)->kind, single->GetState(specs[t].name)->kind);
      EXPECT_EQ(rank[r]->GetState(specs[t].name)->step, steps);
    }
    std::vector<uint8_t> codes;
    for (int r = 0; r < ranks; ++r) {
      const std::vector<uint8_t> c = rank[r]->GetState(specs[t].name)->codes;
      codes.insert(codes.end(), c.begin(), c.end());
    }
    const std::vector<uint8_t> want_codes = single->GetState(specs[t].name)->codes;
    if (codes.size() == want_codes.size()) {
      int differ = 0;
      for (size_t i = 0; i < codes.size(); ++i) differ += codes[i] != want_codes[i];
      if (differ > 0) {
        std::printf("  %s: %d of %zu 8-bit codes differ\n", specs[t].name.c_str(), differ,
                    codes.size());
      }
      *code_flips += differ;
    }
    for (size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::fabs(got[i] - want[i]));
      scale = std::max(scale, std::fabs(want[i]));
    }
  }
  return worst / scale;
}

// Uneven shards; the last rank owns no element of "bias"; 8-bit cuts on multiples of 256.
std::vector<TensorSpec> Specs(int ranks) {
  if (ranks == 2) {
    return {{"w", 10007, {0, 3 * 256, 10007}}, {"bias", 7, {0, 7, 7}},
            {"v", 5000, {0, 4096, 5000}}};
  }
  return {{"w", 10007, {0, 256, 21 * 256, 10007}}, {"bias", 7, {0, 3, 7, 7}},
          {"v", 5000, {0, 0, 4864, 5000}}};
}

struct Case {
  int bits;
  int ranks;
  bool nesterov;
  DType dtype;
  int percentile = 100;
};

class ShardedTest : public ::testing::TestWithParam<Case> {};

TEST_P(ShardedTest, TwentyStepsEqualSingleProcess) {
  const Case c = GetParam();
  int flips = 0;
  const double err = ShardedVsSingle(Opts(c.bits, c.nesterov, c.percentile), c.dtype,
                                     Device::Cpu(), Specs(c.ranks), 20, &flips);
  // Shards sum their fp32 partials in a different order than one kernel over the whole tensor:
  // the norms (hence the trust ratio) differ by ~1e-6 relative per step, so 20 steps of
  // lr 0.05 stay within 1e-5 of max |p| (measured <= 1.2e-7), plus one bf16 rounding. With
  // 8-bit state such a difference can move a momentum value that sits on a codebook midpoint
  // to the neighbouring code: measured once (1 of 15014 codes, 1.2e-4 of max |p| after the
  // remaining steps). So for 8-bit: at most 3 such flips and 1e-3 of max |p|.
  const double bound =
      (c.bits == 8 ? 1e-3 : 1e-5) + (c.dtype == DType::kF32 ? 0 : 8e-3);
  EXPECT_LE(flips, 3);
  EXPECT_LE(err, bound);
  std::printf("bits %d ranks %d nesterov %d percentile %d %s: max|dp|/max|p| = %.3g\n", c.bits,
              c.ranks, c.nesterov, c.percentile, std::string(DTypeName(c.dtype)).c_str(), err);
}

INSTANTIATE_TEST_SUITE_P(
    All, ShardedTest,
    ::testing::Values(Case{32, 2, false, DType::kF32}, Case{32, 3, true, DType::kF32},
                      Case{8, 2, true, DType::kF32}, Case{8, 3, false, DType::kF32},
                      Case{8, 3, true, DType::kBF16}, Case{32, 2, true, DType::kF32, 10},
                      Case{32, 3, false, DType::kF32, 5}, Case{8, 2, false, DType::kF32, 10},
                      Case{8, 3, true, DType::kF32, 5}),
    [](const ::testing::TestParamInfo<Case>& i) {
      return absl::StrCat("bits", i.param.bits, "_ranks", i.param.ranks,
                          i.param.nesterov ? "_nesterov_" : "_", DTypeName(i.param.dtype),
                          i.param.percentile < 100 ? absl::StrCat("_pct", i.param.percentile)
                                                   : std::string());
    });

// One rank owning whole tensors: the two-phase step is bit-identical to Step() (same kernels,
// fp32 partials round-trip exactly through fp64).
TEST(Sharded, OneRankIsBitIdenticalToStep) {
  for (int bits : {32, 8}) {
    const LarsOptions o = Opts(bits, true);
    const int64_t n = 5000;
    const std::vector<double> init = testing::UniformValues(n, 11, -1, 1);
    Shard a{Upload(DType::kF32, init, Device::Cpu()), {}}, b{Upload(DType::kF32, init, Device::Cpu()), {}};
    a.g = Upload(DType::kF32, std::vector<double>(n, 0.0), Device::Cpu());
    b.g = Upload(DType::kF32, std::vector<double>(n, 0.0), Device::Cpu());
    absl::StatusOr<Lars> one = Lars::Create(o), two = Lars::Create(o);
    ASSERT_TRUE(one->AddParam("w", a.p.view(), a.g.view()).ok());
    ASSERT_TRUE(two->AddParam("w", b.p.view(), b.g.view()).ok());
    ASSERT_TRUE(two->SetShard("w", 0, n).ok());
    for (int step = 1; step <= 10; ++step) {
      const testing::HostTensor g =
          FromValues(DType::kF32, testing::BowlGradient(ReadValues(a.p), step, 5));
      ASSERT_TRUE(a.g.CopyFromHost(g.bytes.data()).ok());
      ASSERT_TRUE(b.g.CopyFromHost(g.bytes.data()).ok());
      ASSERT_TRUE(one->Step().ok());
      std::vector<double> partials(two->PartialsSize());
      ASSERT_TRUE(two->StepBegin(partials.data(), partials.size()).ok());
      ASSERT_TRUE(two->StepFinish(partials.data(), partials.size()).ok());
      ASSERT_EQ(ReadValues(a.p), ReadValues(b.p)) << "bits " << bits << " step " << step;
    }
    EXPECT_EQ(one->GetState("w")->momentum, two->GetState("w")->momentum);
  }
}

TEST(Sharded, BadInputIsAClearErrorAndChangesNothing) {
  LarsOptions o = Opts(8, false);
  const int64_t n = 5096;
  DeviceBuffer p = Upload(DType::kF32, testing::UniformValues(1000, 1, -1, 1), Device::Cpu());
  DeviceBuffer g = Upload(DType::kF32, testing::UniformValues(1000, 2, -1, 1), Device::Cpu());
  absl::StatusOr<Lars> opt = Lars::Create(o);
  ASSERT_TRUE(opt->AddParam("w", p.view(), g.view()).ok());
  // Blocks may not straddle ranks.
  absl::Status st = opt->SetShard("w", 100, n);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("block size 256"), absl::string_view::npos) << st;
  st = opt->SetShard("w", 256, n);  // 1000 elements ending at 1256: not a block multiple
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  st = opt->SetShard("w", 4500, n);  // past the end
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(opt->GetState("w")->kind, StateKind::kFp32);  // unchanged: 1000 < 4096 unsharded
  ASSERT_TRUE(opt->SetShard("w", 4096, n).ok()) << "ends the tensor: any length";
  EXPECT_EQ(opt->GetState("w")->kind, StateKind::kBlockwise8) << "kind follows the full tensor";
  EXPECT_EQ(opt->Step().code(), absl::StatusCode::kFailedPrecondition);
  std::vector<double> partials(opt->PartialsSize());
  EXPECT_EQ(opt->StepFinish(partials.data(), partials.size()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(opt->StepBegin(partials.data(), 2).code(), absl::StatusCode::kInvalidArgument);
  // Per-tensor 8-bit state has a whole-tensor scale: not shardable.
  {
    LarsOptions t = o;
    t.block_wise = false;
    t.trust_mode = TrustMode::kClip;
    absl::StatusOr<Lars> tensor8 = Lars::Create(t);
    ASSERT_TRUE(tensor8->AddParam("w", p.view(), g.view()).ok());
    EXPECT_EQ(tensor8->SetShard("w", 4096, n).code(), absl::StatusCode::kUnimplemented);
  }
  const std::vector<double> p0 = ReadValues(p);
  ASSERT_TRUE(opt->StepBegin(partials.data(), partials.size()).ok());
  EXPECT_EQ(opt->StepBegin(partials.data(), partials.size()).code(),
            absl::StatusCode::kFailedPrecondition);
  // Another rank saw a NaN: the reduced Σg² is NaN, every rank skips (default nonfinite=skip).
  std::vector<double> reduced = partials;
  reduced[4] = std::nan("");  // Σg²
  ASSERT_TRUE(opt->StepFinish(reduced.data(), reduced.size()).ok());
  EXPECT_EQ(ReadValues(p), p0);
  EXPECT_EQ(opt->SkippedSteps(), 1);
  EXPECT_EQ(opt->GetState("w")->step, 0);
  ASSERT_TRUE(opt->StepBegin(partials.data(), partials.size()).ok());
  ASSERT_TRUE(opt->StepFinish(partials.data(), partials.size()).ok());
  EXPECT_NE(ReadValues(p), p0);
  EXPECT_EQ(opt->SetShard("w", 4096, n).code(), absl::StatusCode::kFailedPrecondition);
}

// Partials in a device tensor (the NCCL path: the all-reduce runs where the parameters are):
// the same steps as host partials, bit for bit, on the CPU and on the GPU schedule (pocl, the
// partials in an OpenCL buffer). 8-bit state, nesterov and percentile clipping on; rank 1 owns
// no element of "bias".
TEST(Sharded, DevicePartialsEqualHostPartials) {
  const testing::DeviceRequirement cl = testing::Require(DeviceType::kOpenCL);
  if (cl.fail) FAIL() << cl.reason;
  const LarsOptions o = Opts(8, true, 10);
  const std::vector<TensorSpec> specs = {{"w", 10007, {0, 3 * 256, 10007}}, {"bias", 7, {0, 7, 7}}};
  for (const Device dev : {Device::Cpu(), Device::OpenCL()}) {
    if (dev.type == DeviceType::kOpenCL && !cl.run) continue;
    struct Rank {
      absl::StatusOr<Lars> opt;
      std::vector<Shard> t;
    };
    Rank host[2], device[2];
    for (Rank* set : {host, device}) {
      for (int r = 0; r < 2; ++r) {
        set[r].opt = Lars::Create(o);
        ASSERT_TRUE(set[r].opt.ok());
        set[r].t.resize(specs.size());
        for (size_t i = 0; i < specs.size(); ++i) {
          const int64_t a = specs[i].cuts[r], b = specs[i].cuts[r + 1];
          const std::vector<double> init = testing::UniformValues(specs[i].numel, 3 + i, -1, 1);
          set[r].t[i].p = Upload(DType::kF32, Slice(init, a, b), dev);
          set[r].t[i].g = Upload(DType::kF32, std::vector<double>(b - a, 0.0), dev);
          ASSERT_TRUE(set[r].opt->AddParam(specs[i].name, set[r].t[i].p.view(), set[r].t[i].g.view()).ok());
          ASSERT_TRUE(set[r].opt->SetShard(specs[i].name, a, specs[i].numel).ok());
        }
      }
    }
    const int64_t n = host[0].opt->PartialsSize();
    std::vector<DeviceBuffer> partials;
    for (int r = 0; r < 2; ++r) {
      absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(dev, DType::kF64, n);
      ASSERT_TRUE(b.ok()) << b.status();
      partials.push_back(std::move(*b));
    }
    for (int step = 1; step <= 6; ++step) {
      for (int r = 0; r < 2; ++r) {
        for (size_t i = 0; i < specs.size(); ++i) {
          const int64_t a = specs[i].cuts[r], len = specs[i].cuts[r + 1] - a;
          if (len == 0) continue;
          std::vector<double> g(len);
          for (int64_t k = 0; k < len; ++k) g[k] = std::sin(0.37 * (a + k) + 1.7 * step);
          const testing::HostTensor h = FromValues(DType::kF32, g);
          ASSERT_TRUE(host[r].t[i].g.CopyFromHost(h.bytes.data()).ok());
          ASSERT_TRUE(device[r].t[i].g.CopyFromHost(h.bytes.data()).ok());
        }
      }
      std::vector<double> sum(n, 0.0), part(n);
      for (Rank& rk : host) {
        ASSERT_TRUE(rk.opt->StepBegin(part.data(), n).ok());
        for (int64_t i = 0; i < n; ++i) sum[i] += part[i];
      }
      for (Rank& rk : host) ASSERT_TRUE(rk.opt->StepFinish(sum.data(), n).ok());
      // The device path: each rank fills its device tensor; the "all-reduce" sums them and
      // writes the sum back into every rank's tensor.
      std::vector<double> dsum(n, 0.0);
      for (int r = 0; r < 2; ++r) {
        const absl::Status st = device[r].opt->StepBegin(partials[r].view());
        ASSERT_TRUE(st.ok()) << st;
        ASSERT_TRUE(partials[r].CopyToHost(part.data()).ok());
        for (int64_t i = 0; i < n; ++i) dsum[i] += part[i];
      }
      EXPECT_EQ(dsum, sum) << "step " << step;
      for (int r = 0; r < 2; ++r) {
        ASSERT_TRUE(partials[r].CopyFromHost(dsum.data()).ok());
        const absl::Status st = device[r].opt->StepFinish(partials[r].view());
        ASSERT_TRUE(st.ok()) << st;
      }
    }
    for (int r = 0; r < 2; ++r) {
      for (size_t i = 0; i < specs.size(); ++i) {
        EXPECT_EQ(ReadValues(host[r].t[i].p), ReadValues(device[r].t[i].p))
            << DeviceName(dev) << " rank " << r << " " << specs[i].name;
        EXPECT_EQ(host[r].opt->GetState(specs[i].name)->codes,
                  device[r].opt->GetState(specs[i].name)->codes);
      }
    }
  }
}

// A bad partials tensor is an InvalidArgument naming the problem, before anything runs: the step
// does not open (StepFinish is refused), and f64 is for partials only (not a parameter dtype).
TEST(Sharded, BadPartialsTensorIsAClearErrorAndOpensNoStep) {
  const LarsOptions o = Opts(32, false);
  DeviceBuffer p = Upload(DType::kF32, testing::UniformValues(100, 1, -1, 1), Device::Cpu());
  DeviceBuffer g = Upload(DType::kF32, testing::UniformValues(100, 2, -1, 1), Device::Cpu());
  absl::StatusOr<Lars> opt = Lars::Create(o);
  ASSERT_TRUE(opt->AddParam("w", p.view(), g.view()).ok());
  ASSERT_TRUE(opt->SetShard("w", 0, 100).ok());
  const int64_t n = opt->PartialsSize();
  std::vector<double> f64(n), f64_short(n - 1);
  std::vector<float> f32(n);
  const std::vector<double> p0 = ReadValues(p);
  struct Bad {
    TensorView t;
    const char* says;
  } bad[] = {
      {TensorView{f32.data(), DType::kF32, n, Device::Cpu()}, "dtype f32, expected f64"},
      {TensorView{f64_short.data(), DType::kF64, n - 1, Device::Cpu()}, "4 values for 1 parameters"},
      {TensorView{nullptr, DType::kF64, n, Device::Cpu()}, "null data"},
  };
  for (const Bad& b : bad) {
    absl::Status st = opt->StepBegin(b.t);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    EXPECT_NE(st.message().find(b.says), absl::string_view::npos) << st;
    st = opt->StepFinish(b.t);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  }
  const TensorView good{f64.data(), DType::kF64, n, Device::Cpu()};
  EXPECT_EQ(opt->StepFinish(good).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadValues(p), p0);
  ASSERT_TRUE(opt->StepBegin(good).ok());
  ASSERT_TRUE(opt->StepFinish(good).ok());
  EXPECT_NE(ReadValues(p), p0);
  EXPECT_EQ(opt->GetState("w")->step, 1);
  // f64 parameters are refused with the accepted dtypes named.
  absl::StatusOr<Lars> other = Lars::Create(o);
  std::vector<double> pd(16), gd(16);
  const absl::Status st = other->AddParam("d", TensorView{pd.data(), DType::kF64, 16, Device::Cpu()},
                                          TensorView{gd.data(), DType::kF64, 16, Device::Cpu()});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("dtype f64, expected f32, f16 or bf16"), absl::string_view::npos) << st;
}

// Per-rank checkpoints: with the same sharding, save at step 10 + load into fresh optimizers
// continues bit for bit; a different sharding (world size) is an error naming the mismatch.
TEST(Sharded, PerRankCheckpointsContinueBitExactly) {
  const LarsOptions o = Opts(8, true);
  const std::vector<TensorSpec> specs = Specs(2);
  struct Rank {
    absl::StatusOr<Lars> opt;
    std::vector<Shard> t;
  };
  auto make = [&](int r, const std::vector<TensorSpec>& sp, Rank* out) {
    out->opt = Lars::Create(o);
    out->t.resize(sp.size());
    for (size_t i = 0; i < sp.size(); ++i) {
      const int64_t a = sp[i].cuts[r], b = sp[i].cuts[r + 1];
      const std::vector<double> init = testing::UniformValues(sp[i].numel, 7 + i, -1, 1);
      out->t[i].p = Upload(DType::kF32, Slice(init, a, b), Device::Cpu());
      out->t[i].g = Upload(DType::kF32, std::vector<double>(b - a, 0.0), Device::Cpu());
      ASSERT_TRUE(out->opt->AddParam(sp[i].name, out->t[i].p.view(), out->t[i].g.view()).ok());
      ASSERT_TRUE(out->opt->SetShard(sp[i].name, a, sp[i].numel).ok());
    }
  };
  auto step = [&](std::vector<Rank*> ranks, int s) {
    for (int r = 0; r < 2; ++r) {
      for (size_t i = 0; i < specs.size(); ++i) {
        const int64_t a = specs[i].cuts[r], n = specs[i].cuts[r + 1] - a;
        if (n == 0) continue;
        std::vector<double> g(n);
        for (int64_t k = 0; k < n; ++k) g[k] = std::sin(0.37 * (a + k) + 1.7 * s);
        ASSERT_TRUE(ranks[r]->t[i].g.CopyFromHost(FromValues(DType::kF32, g).bytes.data()).ok());
      }
    }
    std::vector<double> sum(ranks[0]->opt->PartialsSize(), 0.0), part(sum.size());
    for (Rank* rk : ranks) {
      ASSERT_TRUE(rk->opt->StepBegin(part.data(), part.size()).ok());
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += part[i];
    }
    for (Rank* rk : ranks) ASSERT_TRUE(rk->opt->StepFinish(sum.data(), sum.size()).ok());
  };
  Rank a0, a1, b0, b1;
  make(0, specs, &a0);
  make(1, specs, &a1);
  for (int s = 1; s <= 10; ++s) step({&a0, &a1}, s);
  const absl::StatusOr<std::string> c0 = a0.opt->SaveState(), c1 = a1.opt->SaveState();
  ASSERT_TRUE(c0.ok() && c1.ok());
  make(0, specs, &b0);
  make(1, specs, &b1);
  for (size_t i = 0; i < specs.size(); ++i) {  // the parameters as they were at step 10
    for (auto [from, to] : {std::pair{&a0, &b0}, {&a1, &b1}}) {
      std::vector<uint8_t> bytes(from->t[i].p.view().bytes());
      if (!bytes.empty()) {
        ASSERT_TRUE(from->t[i].p.CopyToHost(bytes.data()).ok());
        ASSERT_TRUE(to->t[i].p.CopyFromHost(bytes.data()).ok());
      }
    }
  }
  ASSERT_TRUE(b0.opt->LoadState(*c0).ok());
  ASSERT_TRUE(b1.opt->LoadState(*c1).ok());
  for (int s = 11; s <= 20; ++s) {
    step({&a0, &a1}, s);
    step({&b0, &b1}, s);
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(ReadValues(a0.t[i].p), ReadValues(b0.t[i].p)) << specs[i].name;
    EXPECT_EQ(ReadValues(a1.t[i].p), ReadValues(b1.t[i].p)) << specs[i].name;
    EXPECT_EQ(a1.opt->GetState(specs[i].name)->momentum, b1.opt->GetState(specs[i].name)->momentum);
  }
  // Rank 0's checkpoint into rank 1's optimizer, and into a 3-rank layout: refused, unchanged.
  const absl::StatusOr<std::string> before = b1.opt->SaveState();
  absl::Status st = b1.opt->LoadState(*c0);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("different world size or sharding"), absl::string_view::npos) << st;
  EXPECT_EQ(*b1.opt->SaveState(), *before);
  Rank c;
  make(0, Specs(3), &c);
  st = c.opt->LoadState(*c0);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("saved as shard [0, 768) of 10007 elements, registered as shard "
                              "[0, 256) of 10007"),
            absl::string_view::npos)
      << st;
  // An unsharded optimizer does not take a shard's checkpoint either.
  absl::StatusOr<Lars> whole = Lars::Create(o);
  DeviceBuffer wp = Upload(DType::kF32, std::vector<double>(768, 0.5), Device::Cpu());
  ASSERT_TRUE(whole->AddParam("w", wp.view(), {}).ok());
  ASSERT_TRUE(whole->AddParam("bias", a0.t[1].p.view(), {}).ok());
  ASSERT_TRUE(whole->AddParam("v", a0.t[2].p.view(), {}).ok());
  st = whole->LoadState(*c0);
  EXPECT_NE(st.message().find("registered as the whole tensor"), absl::string_view::npos) << st;
}

}  // namespace
}  // namespace halide_lars
