// AMP loss scaling fused into the step (Lars::SetGradScale, lars_set_grad_scale): an optimizer
// fed gradients scaled by a moving power-of-two loss scale S and told S must stay bit-identical
// to one fed the unscaled gradients -- per-tensor, flat and sharded (2 ranks) steps, fp32 and
// 8-bit state, percentile clipping, every trust form, fp32 and bf16 parameters. A scale of 3
// (not a power of two) stays within rounding; bad scales are refused and change nothing.
#include <cmath>
#include <cstring>
#include <limits>
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

enum class Path { kTensor, kFlat, kSharded };
constexpr int kRanks = 2;
const std::vector<int64_t> kSizes = {1, 7, 255, 257, 4097};

struct Case {
  std::string name;
  LarsOptions options;
  DType dtype = DType::kF32;
};

LarsOptions Base() {
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 1e-3;
  o.min_8bit_size = 0;
  return o;
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  auto add = [&](std::string name, auto edit, DType dtype = DType::kF32) {
    LarsOptions o = Base();
    edit(&o);
    cases.push_back({std::move(name), o, dtype});
  };
  add("clip", [](LarsOptions*) {});
  add("classic_nesterov", [](LarsOptions* o) {
    o->trust_mode = TrustMode::kClassic;
    o->nesterov = true;
  });
  add("exact_lr_inside", [](LarsOptions* o) {
    o->trust_mode = TrustMode::kExact;
    o->eps = 0.0;
    o->lr_in_momentum = true;
  });
  add("larc_clip", [](LarsOptions* o) { o->trust_mode = TrustMode::kLarcClip; });
  add("blockwise8", [](LarsOptions* o) { o->optim_bits = 8; });
  add("percentile90", [](LarsOptions* o) { o->percentile_clipping = 90; });
  add("percentile50_8bit", [](LarsOptions* o) {
    o->percentile_clipping = 50;
    o->optim_bits = 8;
  });
  add("bf16", [](LarsOptions*) {}, DType::kBF16);
  return cases;
}

// One optimizer (a rank of a sharded run, or the whole model) and the host memory it steps.
struct Rank {
  explicit Rank(const LarsOptions& o) : lars(*Lars::Create(o)) {}
  Lars lars;
  std::vector<DeviceBuffer> own;    // per-tensor p, g (kTensor, kSharded)
  std::vector<TensorView> p, g;     // per tensor
  std::vector<int64_t> begin, end;  // the tensor elements this rank holds
};

void Write(const TensorView& t, const std::vector<double>& v) {
  const testing::HostTensor h = FromValues(t.dtype, v);
  std::memcpy(t.data, h.bytes.data(), h.bytes.size());
}

std::vector<double> Read(const TensorView& t) {
  return testing::ReadValues(DeviceBuffer::Borrow(t, 0, t.numel));
}

// Rank r's first element of a tensor split over n ranks: uneven; on block boundaries for 8-bit
// state (a shard's blocks are its own).
int64_t Cut(const Case& c, int64_t numel, int r, int n) {
  const int64_t at = numel * r / n;
  if (r == n || c.options.optim_bits != 8) return at;
  return at / c.options.block_size * c.options.block_size;
}

// The model's tensors on `ranks` optimizers along `path`.
std::vector<Rank> Build(const Case& c, Path path) {
  std::vector<Rank> ranks;
  const int n = path == Path::kSharded ? kRanks : 1;
  for (int r = 0; r < n; ++r) ranks.emplace_back(c.options);
  for (int r = 0; r < n; ++r) {
    Rank& k = ranks[r];
    if (path == Path::kFlat) {
      std::vector<FlatParam> t;
      for (size_t i = 0; i < kSizes.size(); ++i) t.push_back({absl::StrCat("t", i), kSizes[i]});
      auto bufs = k.lars.AllocateFlatParams(Device::Cpu(), c.dtype, &t);
      EXPECT_TRUE(bufs.ok()) << bufs.status();
      for (const FlatParam& f : t) {
        k.p.push_back(SliceView(bufs->params, f.offset, f.numel));
        k.g.push_back(SliceView(bufs->grads, f.offset, f.numel));
        k.begin.push_back(0);
        k.end.push_back(f.numel);
      }
      continue;
    }
    for (size_t i = 0; i < kSizes.size(); ++i) {
      const int64_t a = Cut(c, kSizes[i], r, n), b = Cut(c, kSizes[i], r + 1, n);
      k.own.push_back(testing::ToDevice(FromValues(c.dtype, std::vector<double>(b - a)),
                                        Device::Cpu()));
      k.own.push_back(testing::ToDevice(FromValues(c.dtype, std::vector<double>(b - a)),
                                        Device::Cpu()));
      k.p.push_back(k.own[k.own.size() - 2].view());
      k.g.push_back(k.own.back().view());
      k.begin.push_back(a);
      k.end.push_back(b);
      const std::string name = absl::StrCat("t", i);
      EXPECT_TRUE(k.lars.AddParam(name, k.p.back(), k.g.back()).ok());
      if (path == Path::kSharded) {
        EXPECT_TRUE(k.lars.SetShard(name, a, kSizes[i]).ok());
      }
    }
  }
  return ranks;
}

absl::Status StepAll(std::vector<Rank>* ranks, Path path) {
  if (path != Path::kSharded) return (*ranks)[0].lars.Step();
  const int64_t n = (*ranks)[0].lars.PartialsSize();
  std::vector<std::vector<double>> part(ranks->size(), std::vector<double>(n));
  std::vector<double> sum(n, 0.0);
  for (size_t r = 0; r < ranks->size(); ++r) {
    if (absl::Status s = (*ranks)[r].lars.StepBegin(part[r].data(), n); !s.ok()) return s;
    for (int64_t i = 0; i < n; ++i) sum[i] += part[r][i];
  }
  for (Rank& k : *ranks) {
    if (absl::Status s = k.lars.StepFinish(sum.data(), n); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Every parameter value and every state byte of a run, in a fixed order.
struct Snapshot {
  std::vector<double> params;
  std::vector<uint8_t> state;
};

Snapshot Take(std::vector<Rank>& ranks) {
  Snapshot s;
  for (Rank& k : ranks) {
    for (size_t i = 0; i < k.p.size(); ++i) {
      for (double v : Read(k.p[i])) s.params.push_back(v);
      auto views = k.lars.StateTensors(absl::StrCat("t", i));
      EXPECT_TRUE(views.ok()) << views.status();
      for (const StateTensorView& v : *views) {
        const uint8_t* base = static_cast<const uint8_t*>(v.base.data) + v.offset * DTypeSize(v.dtype);
        s.state.insert(s.state.end(), base, base + v.numel * DTypeSize(v.dtype));
      }
    }
  }
  return s;
}

// Steps a run `steps` times; the gradient of step t is the bowl's at the full parameter, times
// scales[t] (0: no gradient scaling told to the optimizer, gradients unscaled).
Snapshot Trajectory(const Case& c, Path path, const std::vector<double>& scales,
                    bool tell = true) {
  std::vector<Rank> ranks = Build(c, path);
  std::vector<std::vector<double>> full(kSizes.size());
  for (size_t i = 0; i < kSizes.size(); ++i) {
    full[i] = testing::UniformValues(kSizes[i], 11 + i, -1, 1);
    full[i] = testing::ReadValues(testing::ToDevice(FromValues(c.dtype, full[i]), Device::Cpu()));
  }
  for (Rank& k : ranks) {
    for (size_t i = 0; i < kSizes.size(); ++i) {
      Write(k.p[i], std::vector<double>(full[i].begin() + k.begin[i], full[i].begin() + k.end[i]));
    }
  }
  for (size_t t = 0; t < scales.size(); ++t) {
    for (size_t i = 0; i < kSizes.size(); ++i) {
      std::vector<double> p;
      for (Rank& k : ranks) {
        for (double v : Read(k.p[i])) p.push_back(v);
      }
      std::vector<double> g = testing::BowlGradient(p, static_cast<int>(t), 5 + i);
      // Rounded to the dtype first, so that only the (exact) power-of-two scaling differs.
      g = FromValues(c.dtype, g).values;
      for (double& v : g) v *= scales[t];
      for (Rank& k : ranks) {
        Write(k.g[i], std::vector<double>(g.begin() + k.begin[i], g.begin() + k.end[i]));
      }
    }
    for (Rank& k : ranks) {
      const absl::Status s = k.lars.SetGradScale(tell ? scales[t] : 1.0);
      EXPECT_TRUE(s.ok()) << s;
    }
    const absl::Status s = StepAll(&ranks, path);
    EXPECT_TRUE(s.ok()) << c.name << " step " << t << ": " << s;
  }
  return Take(ranks);
}

class GradScaleTest : public ::testing::TestWithParam<std::tuple<Case, Path>> {};

bool Supported(const Case& c, Path path) {
  return !(path == Path::kFlat && c.options.percentile_clipping < 100);
}

// GradScaler's moving scale: 2^16, backing off and growing again.
const std::vector<double> kScales = {65536.0, 65536.0, 32768.0, 32768.0, 65536.0, 1024.0,
                                     2048.0,  1.0,     0.25,    131072.0, 131072.0, 8.0};

TEST_P(GradScaleTest, PowerOfTwoScalesAreBitIdenticalToUnscaledGradients) {
  const auto& [c, path] = GetParam();
  if (!Supported(c, path)) GTEST_SKIP() << "flat sets have no percentile clipping";
  const Snapshot want = Trajectory(c, path, std::vector<double>(kScales.size(), 1.0));
  const Snapshot got = Trajectory(c, path, kScales);
  ASSERT_EQ(got.params.size(), want.params.size());
  for (size_t i = 0; i < want.params.size(); ++i) {
    ASSERT_EQ(got.params[i], want.params[i]) << c.name << " element " << i;
  }
  ASSERT_EQ(got.state, want.state) << c.name;
  // The test can fail: gradients scaled but the scale not told move the parameters elsewhere.
  const Snapshot untold = Trajectory(c, path, kScales, /*tell=*/false);
  EXPECT_NE(untold.params, want.params) << c.name;
}

TEST_P(GradScaleTest, OtherScalesStayWithinRounding) {
  const auto& [c, path] = GetParam();
  if (!Supported(c, path)) GTEST_SKIP() << "flat sets have no percentile clipping";
  if (c.options.optim_bits == 8 || c.dtype != DType::kF32) {
    GTEST_SKIP() << "a last-bit difference may move an 8-bit code or a bf16 rounding";
  }
  const Snapshot want = Trajectory(c, path, std::vector<double>(kScales.size(), 1.0));
  const Snapshot got = Trajectory(c, path, std::vector<double>(kScales.size(), 3.0));
  EXPECT_LT(testing::RelErr(got.params, want.params), 1e-6) << c.name;
}

std::string Name(const ::testing::TestParamInfo<std::tuple<Case, Path>>& info) {
  const char* paths[] = {"tensor", "flat", "sharded"};
  return std::get<0>(info.param).name + "_" +
         paths[static_cast<int>(std::get<1>(info.param))];
}

INSTANTIATE_TEST_SUITE_P(All, GradScaleTest,
                         ::testing::Combine(::testing::ValuesIn(Cases()),
                                            ::testing::Values(Path::kTensor, Path::kFlat,
                                                              Path::kSharded)),
                         Name);

TEST(GradScale, BadScalesAreRefusedAndChangeNothing) {
  Lars lars = *Lars::Create(Base());
  ASSERT_TRUE(lars.SetGradScale(1024.0).ok());
  for (double bad : {0.0, -2.0, std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN(), 1e-300}) {
    const absl::Status s = lars.SetGradScale(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("grad_scale"), absl::string_view::npos) << s;
    EXPECT_EQ(lars.grad_scale(), 1024.0);
  }
  ASSERT_TRUE(lars.SetGradScale(1.0).ok());
  EXPECT_EQ(lars.grad_scale(), 1.0);
}

}  // namespace
}  // namespace halide_lars
