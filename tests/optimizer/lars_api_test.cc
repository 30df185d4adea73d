// halide_lars::Lars API: bitsandbytes option names/defaults, validation before anything is
// touched (params, state and registrations unchanged on every error), state inspection.
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "runtime/device_buffer.h"
#include "runtime/devices.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

LarsOptions Valid() {
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  return o;
}

TEST(LarsOptions, DefaultsAreBitsandbytes) {
  const LarsOptions o;
  EXPECT_FALSE(o.lr.has_value());
  EXPECT_EQ(o.momentum, 0.0);
  EXPECT_EQ(o.dampening, 0.0);
  EXPECT_EQ(o.weight_decay, 0.0);
  EXPECT_FALSE(o.nesterov);
  EXPECT_EQ(o.optim_bits, 32);
  EXPECT_EQ(o.min_8bit_size, 4096);
  EXPECT_EQ(o.percentile_clipping, 100);
  EXPECT_EQ(o.max_unorm, 0.02);
  EXPECT_EQ(o.trust_mode, TrustMode::kClip);
}

TEST(LarsOptions, EveryInvalidOptionIsNamed) {
  struct Case {
    const char* key;
    OptionValue value;
    absl::StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"lr", -0.1, absl::StatusCode::kInvalidArgument, "lr: -0.1, expected >= 0"},
      {"lr", NAN, absl::StatusCode::kInvalidArgument, "lr: "},
      {"momentum", 0.0, absl::StatusCode::kUnimplemented, "LARS without momentum is not supported"},
      {"momentum", -0.9, absl::StatusCode::kInvalidArgument, "momentum: -0.9, expected > 0"},
      {"dampening", 1.5, absl::StatusCode::kInvalidArgument, "dampening: 1.5"},
      {"weight_decay", -1e-4, absl::StatusCode::kInvalidArgument, "weight_decay: -0.0001"},
      {"optim_bits", 16, absl::StatusCode::kInvalidArgument, "optim_bits: 16, expected 8 or 32"},
      {"optim_bits", 8.5, absl::StatusCode::kInvalidArgument, "optim_bits: 8.5, expected an integer"},
      {"percentile_clipping", 0, absl::StatusCode::kInvalidArgument, "percentile_clipping: 0"},
      {"percentile_clipping", 101, absl::StatusCode::kInvalidArgument, "in [1, 100]"},
      {"max_unorm", -0.02, absl::StatusCode::kInvalidArgument, "max_unorm: -0.02, expected >= 0"},
      {"min_8bit_size", -1, absl::StatusCode::kInvalidArgument, "min_8bit_size: -1"},
      {"trust_mode", "lamb", absl::StatusCode::kInvalidArgument, "trust_mode: \"lamb\""},
      {"trust_mode", 1.0, absl::StatusCode::kInvalidArgument, "trust_mode: 1"},
      {"trust_coefficient", 0.0, absl::StatusCode::kInvalidArgument, "trust_coefficient: 0"},
      {"eps", -1.0, absl::StatusCode::kInvalidArgument, "eps: -1"},
      {"nesterov", 2.0, absl::StatusCode::kInvalidArgument, "nesterov: 2, expected a boolean"},
      {"lr", "fast", absl::StatusCode::kInvalidArgument, "lr: \"fast\", expected a number"},
      {"learning_rate", 0.1, absl::StatusCode::kInvalidArgument, "unknown option \"learning_rate\""},
  };
  for (const Case& c : cases) {
    LarsOptions o = Valid();
    absl::Status s = SetOption(&o, c.key, c.value);
    const bool set = s.ok();  // a value of the wrong kind is refused by SetOption itself
    if (set) s = ValidateOptions(o);
    EXPECT_EQ(s.code(), c.code) << c.key << "=" << c.value.ToString() << ": " << s;
    EXPECT_NE(s.message().find(c.message), absl::string_view::npos)
        << c.key << "=" << c.value.ToString() << ": " << s;
    if (set) {
      EXPECT_EQ(Lars::Create(o).status().code(), c.code) << c.key;
    }
  }
  LarsOptions no_lr = Valid();
  no_lr.lr.reset();
  EXPECT_EQ(Lars::Create(no_lr).status().message(), "lr: required (no default)");
  LarsOptions nesterov = Valid();
  nesterov.nesterov = true;
  nesterov.dampening = 0.1;
  EXPECT_NE(Lars::Create(nesterov).status().message().find("nesterov: requires"),
            absl::string_view::npos);
  LarsOptions defaults;  // bitsandbytes LARS(params, lr) with momentum=0 raises too
  defaults.lr = 0.1;
  EXPECT_EQ(Lars::Create(defaults).status().code(), absl::StatusCode::kUnimplemented);
}

class LarsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Lars> opt = Lars::Create(Valid());
    ASSERT_TRUE(opt.ok());
    opt_ = std::make_unique<Lars>(std::move(*opt));
    p_.assign(64, 0.5f);
    g_.assign(64, 0.25f);
    ASSERT_TRUE(opt_->AddParam("w", View(p_), View(g_)).ok());
  }
  static TensorView View(std::vector<float>& v, int64_t n = -1) {
    return TensorView{v.data(), DType::kF32, n < 0 ? static_cast<int64_t>(v.size()) : n,
                      Device::Cpu()};
  }
  // Nothing about the optimizer changed.
  void ExpectUnchanged() {
    EXPECT_EQ(opt_->ParamNames(), std::vector<std::string>{"w"});
    absl::StatusOr<ParamStateSnapshot> s = opt_->GetState("w");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->step, 0);
    for (float m : s->momentum) EXPECT_EQ(m, 0.0f);
    for (float v : p_) EXPECT_EQ(v, 0.5f);
    absl::StatusOr<LarsOptions> eff = opt_->EffectiveOptions("w");
    ASSERT_TRUE(eff.ok());
    EXPECT_EQ(*eff->lr, 0.1);
    EXPECT_EQ(eff->weight_decay, 0.0);
    EXPECT_FALSE(eff->nesterov);
  }

  std::unique_ptr<Lars> opt_;
  std::vector<float> p_, g_;
};

TEST_F(LarsApiTest, BadParametersAreRejectedAndNothingIsRegistered) {
  std::vector<float> p(64, 1.0f), g(64, 1.0f), short_g(63, 1.0f);
  std::vector<uint16_t> g16(64, 0);
  struct Case {
    const char* what;
    std::string name;
    TensorView p, g;
    int group;
    absl::StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"empty name", "", View(p), View(g), 0, absl::StatusCode::kInvalidArgument, "name: empty"},
      {"duplicate", "w", View(p), View(g), 0, absl::StatusCode::kAlreadyExists, "already registered"},
      {"null param", "x", TensorView{nullptr, DType::kF32, 64, Device::Cpu()}, View(g), 0,
       absl::StatusCode::kInvalidArgument, "x: param: null data with 64 elements"},
      {"dtype", "x", View(p), TensorView{g16.data(), DType::kF16, 64, Device::Cpu()}, 0,
       absl::StatusCode::kInvalidArgument, "x: grad: dtype f16, param is f32"},
      {"size", "x", View(p), View(short_g), 0, absl::StatusCode::kInvalidArgument,
       "x: grad: 63 elements, param has 64"},
      {"device", "x", View(p), TensorView{g.data(), DType::kF32, 64, Device::OpenCL()}, 0,
       absl::StatusCode::kInvalidArgument, "x: grad: on opencl, param is on cpu"},
      {"alias", "x", View(p), View(p), 0, absl::StatusCode::kInvalidArgument,
       "x: grad: overlaps the parameter's memory"},
      {"partial overlap", "x", View(p, 32),
       TensorView{p.data() + 16, DType::kF32, 32, Device::Cpu()}, 0,
       absl::StatusCode::kInvalidArgument, "overlaps"},
      {"group", "x", View(p), View(g), 3, absl::StatusCode::kOutOfRange, "group 3: there are 1"},
      {"negative group", "x", View(p), View(g), -1, absl::StatusCode::kOutOfRange, "group -1"},
  };
  for (const Case& c : cases) {
    const absl::Status s = opt_->AddParam(c.name, c.p, c.g, c.group);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s;
    EXPECT_NE(s.message().find(c.message), absl::string_view::npos) << c.what << ": " << s;
  }
  ExpectUnchanged();
}

TEST_F(LarsApiTest, BadOverridesAndGradsChangeNothing) {
  EXPECT_EQ(opt_->OverrideConfig("nope", "lr", 0.1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(opt_->OverrideConfig("w", "colour", 1.0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(opt_->OverrideConfig("w", "lr", -1.0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(opt_->OverrideConfig("w", "dampening", 0.5).ok());
  const absl::Status nesterov = opt_->OverrideConfig("w", "nesterov", true);
  EXPECT_EQ(nesterov.code(), absl::StatusCode::kInvalidArgument) << nesterov;
  EXPECT_NE(nesterov.message().find("w: nesterov"), absl::string_view::npos) << nesterov;
  ASSERT_TRUE(opt_->OverrideConfig("w", "dampening", 0.0).ok());
  EXPECT_EQ(opt_->OverrideConfig("w", "optim_bits", 9).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(opt_->SetGroupOption(1, "lr", 0.1).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(opt_->SetGroupOption(0, "weight_decay", -1.0).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> short_g(10);
  EXPECT_EQ(opt_->SetGrad("w", View(short_g)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(opt_->SetGrad("nope", View(g_)).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(opt_->AddParamGroup({{"momentum", 0.0}}).status().code(),
            absl::StatusCode::kUnimplemented);
  ExpectUnchanged();
  // The gradient is still the one registered: a step works and moves p.
  ASSERT_TRUE(opt_->Step().ok());
  EXPECT_NE(p_[0], 0.5f);
}

// Resolved options are cached per parameter; every way of changing options shows at once, in
// EffectiveOptions and in the step (the lr of a schedule changes every step).
TEST_F(LarsApiTest, CachedOptionsFollowEveryChange) {
  auto eff = [&](const char* name = "w") { return *opt_->EffectiveOptions(name); };
  EXPECT_EQ(*eff().lr, 0.1);
  ASSERT_TRUE(opt_->SetGroupOption(0, "lr", 0.05).ok());
  EXPECT_EQ(*eff().lr, 0.05);
  ASSERT_TRUE(opt_->OverrideConfig("w", "weight_decay", 0.01).ok());
  EXPECT_EQ(eff().weight_decay, 0.01);
  absl::StatusOr<std::string> saved = opt_->SaveState();
  ASSERT_TRUE(saved.ok());
  ASSERT_TRUE(opt_->SetGroupOption(0, "lr", 0.2).ok());
  ASSERT_TRUE(opt_->OverrideConfig("w", "weight_decay", 0.0).ok());
  EXPECT_EQ(*eff().lr, 0.2);
  ASSERT_TRUE(opt_->LoadState(*saved).ok());
  EXPECT_EQ(*eff().lr, 0.05);
  EXPECT_EQ(eff().weight_decay, 0.01);
  absl::StatusOr<int> g1 = opt_->AddParamGroup({{"lr", 0.3}});
  ASSERT_TRUE(g1.ok());
  std::vector<float> p2(64, 0.5f), g2(64, 0.25f);
  ASSERT_TRUE(opt_->AddParam("v", View(p2), View(g2), *g1).ok());
  EXPECT_EQ(*eff("v").lr, 0.3);
  EXPECT_EQ(*eff().lr, 0.05);
  // The step uses the current lr: lr 0 leaves p alone, then a change of lr moves it.
  ASSERT_TRUE(opt_->SetGroupOption(0, "lr", 0.0).ok());
  ASSERT_TRUE(opt_->Step().ok());
  for (float v : p_) EXPECT_EQ(v, 0.5f);
  ASSERT_TRUE(opt_->SetGroupOption(0, "lr", 0.1).ok());
  ASSERT_TRUE(opt_->Step().ok());
  EXPECT_LT(p_[0], 0.5f);
}

TEST(LarsApi, Lars8bitAndLars32bitForceTheirStateWidth) {
  absl::StatusOr<Lars> opt = Lars8bit::Create(Valid());
  ASSERT_TRUE(opt.ok());
  EXPECT_EQ(opt->defaults().optim_bits, 8);
  std::vector<float> p(5000), g(5000);
  ASSERT_TRUE(opt->AddParam("w", TensorView{p.data(), DType::kF32, 5000, Device::Cpu()},
                            TensorView{g.data(), DType::kF32, 5000, Device::Cpu()})
                  .ok());
  EXPECT_EQ(opt->GetState("w")->kind, StateKind::kBlockwise8);
  absl::StatusOr<Lars> opt32 = Lars32bit::Create([] {
    LarsOptions o = Valid();
    o.optim_bits = 8;  // Lars32bit forces 32
    return o;
  }());
  ASSERT_TRUE(opt32.ok());
  EXPECT_EQ(opt32->defaults().optim_bits, 32);
  EXPECT_EQ(LarsOptions().block_size, 256);
  LarsOptions bad = Valid();
  bad.block_size = 512;
  EXPECT_NE(Lars::Create(bad).status().message().find("block_size: 512, expected 256 or 2048"),
            absl::string_view::npos);
}

TEST(LarsApi, StepOnADeviceWithoutDriverIsRefused) {
  if (CudaAvailable()) GTEST_SKIP() << "a CUDA device is present";
  absl::StatusOr<Lars> opt = Lars::Create(Valid());
  ASSERT_TRUE(opt.ok());
  std::vector<float> p(10), g(10);
  const absl::Status s = opt->AddParam("w", TensorView{p.data(), DType::kF32, 10, Device::Cuda(0)},
                                       TensorView{g.data(), DType::kF32, 10, Device::Cuda(0)});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(opt->ParamNames().empty());
}

TEST(LarsApi, StateBytesAreExact) {
  absl::StatusOr<Lars> opt = Lars::Create(Valid());
  ASSERT_TRUE(opt.ok());
  std::vector<float> p(1000), g(1000);
  ASSERT_TRUE(opt->AddParam("w", TensorView{p.data(), DType::kF32, 1000, Device::Cpu()},
                            TensorView{g.data(), DType::kF32, 1000, Device::Cpu()})
                  .ok());
  // fp32 momentum + {Σp², Σu², Σg²} (last step's, and this step's scratch) + gradient scale.
  EXPECT_EQ(opt->StateBytes(), 4 * 1000 + 2 * 4 * 3 + 4);
  ASSERT_TRUE(opt->OverrideConfig("w", "percentile_clipping", 5).ok());
  ASSERT_TRUE(opt->Step().ok());
  // + the percentile ring (100 fp32) and {Σg², max|g|}.
  EXPECT_EQ(opt->StateBytes(), 4 * 1000 + 2 * 4 * 3 + 4 + 4 * 100 + 4 * 2);
}

}  // namespace
}  // namespace halide_lars
