// Lars::StateTensors / StateVersions / ImportState: bitsandbytes' state names over the
// optimizer's own memory (zero-copy, every device), versions that tell a cache when to
// re-export, memory that stays valid after a conversion replaced it, and imports of
// bitsandbytes-layout state (exact when the layouts agree, converted otherwise, refused with
// nothing changed when bad).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "halide_lars/lars.h"
#include "runtime/codebook.h"
#include "runtime/device_buffer.h"
#include "tests/test_util.h"

namespace halide_lars {
namespace {

using testing::FromValues;
using testing::UniformValues;

LarsOptions Options() {
  LarsOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 1e-3;
  return o;
}

// Parameters on `dev`: fp32 state (1000), blockwise 8-bit (9000), per-tensor 8-bit (5000),
// and an fp32-state one with percentile clipping (777).
struct Model {
  std::vector<std::string> names = {"dense", "emb8", "emb8t", "clipped"};
  std::vector<int64_t> sizes = {1000, 9000, 5000, 777};
  std::vector<DeviceBuffer> p, g;
  Device dev;

  explicit Model(const Device& d) : dev(d) {
    for (size_t i = 0; i < names.size(); ++i) {
      p.push_back(testing::ToDevice(FromValues(DType::kF32, UniformValues(sizes[i], 7 + i, -1, 1)), d));
      g.push_back(testing::ToDevice(FromValues(DType::kF32, UniformValues(sizes[i], 99 + i, -1, 1)), d));
    }
  }
  Lars Make() {
    absl::StatusOr<Lars> opt = Lars::Create(Options());
    EXPECT_TRUE(opt.ok()) << opt.status();
    for (size_t i = 0; i < names.size(); ++i) {
      EXPECT_TRUE(opt->AddParam(names[i], p[i].view(), g[i].view()).ok());
    }
    for (absl::Status s : {opt->OverrideConfig("emb8", "optim_bits", 8),
                           opt->OverrideConfig("emb8t", "optim_bits", 8),
                           opt->OverrideConfig("emb8t", "block_wise", false),
                           opt->OverrideConfig("clipped", "percentile_clipping", 80)}) {
      EXPECT_TRUE(s.ok()) << s;
    }
    return std::move(*opt);
  }
};

std::vector<std::string> Keys(const std::vector<StateTensorView>& v) {
  std::vector<std::string> k;
  for (const StateTensorView& t : v) k.push_back(t.key);
  return k;
}

const StateTensorView& Get(const std::vector<StateTensorView>& v, const std::string& key) {
  for (const StateTensorView& t : v) {
    if (t.key == key) return t;
  }
  ADD_FAILURE() << "no state tensor " << key;
  return v.front();
}

// A state tensor's elements copied to the host (any device).
template <typename T>
std::vector<T> Read(const StateTensorView& t) {
  std::vector<T> all(t.base.numel);
  const DeviceBuffer b = DeviceBuffer::Borrow(t.base, 0, t.base.numel);
  EXPECT_TRUE(b.CopyToHost(all.data()).ok());
  return std::vector<T>(all.begin() + t.offset, all.begin() + t.offset + t.numel);
}

Device OnDevice(DeviceType t) {
  return t == DeviceType::kCPU ? Device::Cpu() : t == DeviceType::kCUDA ? Device::Cuda() : Device::OpenCL();
}

class StateTensorsTest : public ::testing::TestWithParam<DeviceType> {};

TEST_P(StateTensorsTest, BitsandbytesNamesOverTheLiveState) {
  LARS_REQUIRE_DEVICE(GetParam());
  const Device dev = OnDevice(GetParam());
  Model m(dev);
  Lars opt = m.Make();
  ASSERT_TRUE(opt.Step().ok());
  ASSERT_TRUE(opt.Step().ok());
  using V = std::vector<std::string>;
  absl::StatusOr<std::vector<StateTensorView>> dense = opt.StateTensors("dense");
  absl::StatusOr<std::vector<StateTensorView>> emb8 = opt.StateTensors("emb8");
  absl::StatusOr<std::vector<StateTensorView>> emb8t = opt.StateTensors("emb8t");
  absl::StatusOr<std::vector<StateTensorView>> clipped = opt.StateTensors("clipped");
  ASSERT_TRUE(dense.ok() && emb8.ok() && emb8t.ok() && clipped.ok()) << dense.status();
  // bitsandbytes' key order (Optimizer1State.init_state).
  EXPECT_EQ(Keys(*dense), (V{"state1", "unorm_vec"}));
  EXPECT_EQ(Keys(*emb8), (V{"state1", "qmap1", "absmax1", "unorm_vec"}));
  EXPECT_EQ(Keys(*emb8t), (V{"state1", "qmap1", "max1", "new_max1", "unorm_vec"}));
  EXPECT_EQ(Keys(*clipped), (V{"state1", "gnorm_vec", "unorm_vec"}));
  EXPECT_EQ(opt.StateTensors("nope").status().code(), absl::StatusCode::kNotFound);

  // Every view reads what GetState copies out.
  for (const std::string& name : m.names) {
    absl::StatusOr<ParamStateSnapshot> snap = opt.GetState(name);
    absl::StatusOr<std::vector<StateTensorView>> st = opt.StateTensors(name);
    ASSERT_TRUE(snap.ok() && st.ok());
    for (const StateTensorView& t : *st) EXPECT_EQ(t.base.device, dev) << name << " " << t.key;
    const StateTensorView& s1 = Get(*st, "state1");
    if (snap->kind == StateKind::kFp32) {
      EXPECT_EQ(s1.dtype, DType::kF32);
      EXPECT_EQ(Read<float>(s1), snap->momentum) << name;
    } else {
      EXPECT_EQ(s1.dtype, DType::kU8);
      EXPECT_EQ(Read<uint8_t>(s1), snap->codes) << name;
      const std::vector<float> q = Read<float>(Get(*st, "qmap1"));
      EXPECT_EQ(0, std::memcmp(q.data(), DynamicCodebook().data(), 256 * sizeof(float)));
      EXPECT_EQ(Read<float>(Get(*st, snap->kind == StateKind::kTensor8 ? "max1" : "absmax1")),
                snap->absmax);
    }
    EXPECT_EQ(s1.numel, static_cast<int64_t>(snap->momentum.size()));
    const std::vector<float> u = Read<float>(Get(*st, "unorm_vec"));
    EXPECT_FLOAT_EQ(std::sqrt(u[0]), snap->unorm) << name << ": unorm_vec holds Σu²";
    if (!snap->gnorm_vec.empty()) {
      EXPECT_EQ(Read<float>(Get(*st, "gnorm_vec")), snap->gnorm_vec);
    }
  }
}

TEST_P(StateTensorsTest, WritingThroughAViewChangesTheState) {
  LARS_REQUIRE_DEVICE(GetParam());
  const Device dev = OnDevice(GetParam());
  Model m(dev);
  Lars opt = m.Make();
  ASSERT_TRUE(opt.Step().ok());
  for (const char* name : {"dense", "emb8"}) {
    absl::StatusOr<std::vector<StateTensorView>> st = opt.StateTensors(name);
    ASSERT_TRUE(st.ok());
    const StateTensorView& target = Get(*st, name == std::string("dense") ? "state1" : "absmax1");
    std::vector<float> all(target.base.numel);
    DeviceBuffer b = DeviceBuffer::Borrow(target.base, 0, target.base.numel);
    ASSERT_TRUE(b.CopyToHost(all.data()).ok());
    std::fill(all.begin() + target.offset, all.begin() + target.offset + target.numel, 0.0f);
    ASSERT_TRUE(b.CopyFromHost(all.data()).ok());
    absl::StatusOr<ParamStateSnapshot> snap = opt.GetState(name);
    ASSERT_TRUE(snap.ok());
    for (float x : snap->momentum) ASSERT_EQ(x, 0.0f) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, StateTensorsTest,
                         ::testing::Values(DeviceType::kCPU, DeviceType::kOpenCL,
                                           DeviceType::kCUDA),
                         [](const auto& info) { return std::string(DeviceTypeName(info.param)); });

TEST(StateVersions, AlternateWithTheNormsSwapAndChangeOnConversion) {
  Model m(Device::Cpu());
  Lars opt = m.Make();
  ASSERT_TRUE(opt.Step().ok());
  const std::vector<StateVersion> v1 = opt.StateVersions();
  ASSERT_TRUE(opt.Step().ok());
  const std::vector<StateVersion> v2 = opt.StateVersions();
  ASSERT_TRUE(opt.Step().ok());
  const std::vector<StateVersion> v3 = opt.StateVersions();
  ASSERT_EQ(v1.size(), 4u);
  for (size_t i = 0; i < v1.size(); ++i) {
    EXPECT_EQ(v1[i].step, 1);
    EXPECT_EQ(v3[i].step, 3);
    EXPECT_NE(v1[i].version, v2[i].version) << i << ": max1/unorm_vec moved to the other slot";
    EXPECT_EQ(v1[i].version, v3[i].version) << i << ": and back (two exports suffice)";
  }
  // A new state kind: the version leaves the pair, and the old export stays readable.
  absl::StatusOr<std::vector<StateTensorView>> before = opt.StateTensors("emb8");
  ASSERT_TRUE(before.ok());
  const StateTensorView old = Get(*before, "state1");
  const std::vector<uint8_t> old_codes = Read<uint8_t>(old);
  ASSERT_TRUE(opt.OverrideConfig("emb8", "optim_bits", 32).ok());
  before->clear();  // only `old` pins the 8-bit codes now
  ASSERT_TRUE(opt.Step().ok());
  const std::vector<StateVersion> v4 = opt.StateVersions();
  EXPECT_NE(v4[1].version, v3[1].version);
  EXPECT_NE(v4[1].version, v2[1].version);
  absl::StatusOr<std::vector<StateTensorView>> after = opt.StateTensors("emb8");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Get(*after, "state1").dtype, DType::kF32);
  EXPECT_EQ(Keys(*after), (std::vector<std::string>{"state1", "unorm_vec"}));
  EXPECT_EQ(Read<uint8_t>(old), old_codes) << "the replaced memory is still allocated";
}

TEST(ImportState, SameLayoutIsExactAndContinuesBitForBit) {
  Model m1(Device::Cpu()), m2(Device::Cpu());
  Lars a = m1.Make(), b = m2.Make();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a.Step().ok());
  // b gets a's state through bitsandbytes-layout arrays, and a's parameters.
  std::vector<ImportedState> in;
  for (size_t i = 0; i < m1.names.size(); ++i) {
    absl::StatusOr<ParamStateSnapshot> s = a.GetState(m1.names[i]);
    ASSERT_TRUE(s.ok());
    ImportedState x;
    x.name = m1.names[i];
    x.step = s->step;
    x.kind = s->kind;
    x.block_size = s->kind == StateKind::kBlockwise8 ? 256 : 0;
    if (s->kind == StateKind::kFp32) x.momentum = s->momentum;
    x.codes = s->codes;
    x.absmax = s->absmax;
    if (s->kind != StateKind::kFp32) {
      x.qmap.assign(DynamicCodebook().begin(), DynamicCodebook().end());
      x.qmap[200] = std::nextafter(x.qmap[200], 2.0f);  // bitsandbytes' fp32 map: 1 ulp off
    }
    x.gnorm_vec = s->gnorm_vec;
    x.unorm_vec = {s->unorm * s->unorm};
    in.push_back(x);
    std::vector<float> w(m1.sizes[i]);
    ASSERT_TRUE(m1.p[i].CopyToHost(w.data()).ok());
    ASSERT_TRUE(m2.p[i].CopyFromHost(w.data()).ok());
  }
  ASSERT_TRUE(b.ImportState(in).ok());
  for (size_t i = 0; i < m1.names.size(); ++i) {
    absl::StatusOr<ParamStateSnapshot> sa = a.GetState(m1.names[i]), sb = b.GetState(m1.names[i]);
    EXPECT_EQ(sa->step, sb->step);
    EXPECT_EQ(sa->momentum, sb->momentum) << m1.names[i];
    EXPECT_EQ(sa->codes, sb->codes) << m1.names[i];
  }
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(a.Step().ok());
    ASSERT_TRUE(b.Step().ok());
  }
  for (size_t i = 0; i < m1.names.size(); ++i) {
    EXPECT_EQ(testing::ReadF32(m1.p[i]), testing::ReadF32(m2.p[i])) << m1.names[i];
  }
}

TEST(ImportState, OtherLayoutsAreConvertedByTheKernels) {
  Model m(Device::Cpu());
  Lars opt = m.Make();
  ASSERT_TRUE(opt.Step().ok());
  const std::vector<double> values = UniformValues(9000, 5, -0.3, 0.3);
  // fp32 momentum into the blockwise 8-bit "emb8": quantized, within half a code step.
  ImportedState fp32;
  fp32.name = "emb8";
  fp32.step = 4;
  fp32.kind = StateKind::kFp32;
  fp32.momentum.assign(values.begin(), values.end());
  // Blockwise codes of another block size (2048) into the fp32 "dense": dequantized exactly.
  ImportedState b2048;
  b2048.name = "dense";
  b2048.step = 2;
  b2048.kind = StateKind::kBlockwise8;
  b2048.block_size = 2048;
  for (int i = 0; i < 1000; ++i) b2048.codes.push_back(static_cast<uint8_t>((i * 37) % 256));
  b2048.absmax = {0.5f};
  ASSERT_TRUE(opt.ImportState({fp32, b2048}).ok());
  absl::StatusOr<ParamStateSnapshot> e = opt.GetState("emb8"), d = opt.GetState("dense");
  EXPECT_EQ(e->kind, StateKind::kBlockwise8);
  EXPECT_EQ(e->step, 4);
  for (int i = 0; i < 9000; ++i) {
    const float absmax = e->absmax[i / 256];
    ASSERT_LE(std::abs(e->momentum[i] - fp32.momentum[i]), 0.0075f * absmax) << i;
  }
  EXPECT_EQ(d->kind, StateKind::kFp32);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(d->momentum[i], DynamicCodebook()[b2048.codes[i]] * 0.5f) << i;
  }
  ASSERT_TRUE(opt.Step().ok());
}

TEST(ImportState, BadStateIsRefusedAndChangesNothing) {
  Model m(Device::Cpu());
  Lars opt = m.Make();
  ASSERT_TRUE(opt.Step().ok());
  absl::StatusOr<std::string> before = opt.SaveState();
  ASSERT_TRUE(before.ok());
  ImportedState good;
  good.name = "dense";
  good.step = 3;
  good.momentum.assign(1000, 0.5f);
  struct Case {
    const char* what;
    void (*mutate)(ImportedState*);
    absl::StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"unknown name", [](ImportedState* s) { s->name = "nope"; }, absl::StatusCode::kNotFound,
       "no parameter named"},
      {"short momentum", [](ImportedState* s) { s->momentum.resize(999); },
       absl::StatusCode::kInvalidArgument, "999 elements"},
      {"NaN momentum", [](ImportedState* s) { s->momentum[17] = NAN; },
       absl::StatusCode::kInvalidArgument, "state1[17] is nan"},
      {"negative step", [](ImportedState* s) { s->step = -1; }, absl::StatusCode::kInvalidArgument,
       "negative"},
      {"codes without scales",
       [](ImportedState* s) {
         s->kind = StateKind::kBlockwise8;
         s->block_size = 256;
         s->momentum.clear();
         s->codes.assign(1000, 127);
       },
       absl::StatusCode::kInvalidArgument, "absmax1 has 0 elements"},
      {"per-tensor 8-bit from fp32",
       [](ImportedState* s) { s->name = "emb8t"; s->momentum.assign(5000, 0.1f); },
       absl::StatusCode::kUnimplemented, "per-tensor 8-bit state (block_wise=false) loads only"},
      {"short ring",
       [](ImportedState* s) { s->name = "clipped"; s->momentum.assign(777, 0.1f); s->gnorm_vec = {1}; },
       absl::StatusCode::kInvalidArgument, "gnorm_vec has 1 elements"},
      {"no ring with clipping on",
       [](ImportedState* s) { s->name = "clipped"; s->momentum.assign(777, 0.1f); },
       absl::StatusCode::kInvalidArgument, "no gnorm_vec"},
  };
  for (const Case& c : cases) {
    ImportedState s = good;
    c.mutate(&s);
    // A good entry first: the bad one must stop the whole import.
    ImportedState first = good;
    first.name = "emb8";
    first.momentum.assign(9000, 0.25f);
    absl::Status st = opt.ImportState({first, s});
    EXPECT_EQ(st.code(), c.code) << c.what << ": " << st;
    EXPECT_NE(st.message().find(c.message), absl::string_view::npos) << c.what << ": " << st;
    absl::StatusOr<std::string> after = opt.SaveState();
    ASSERT_TRUE(after.ok());
    EXPECT_TRUE(*after == *before) << c.what << " changed the state";
  }
  EXPECT_FALSE(opt.ImportState({good, good}).ok()) << "a name twice";
}

TEST(Options, RepeatedSettingsReplaceTheirKey) {
  Model m(Device::Cpu());
  Lars opt = m.Make();
  absl::StatusOr<std::string> once = opt.SaveState();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(opt.SetGroupOption(0, "lr", 0.1).ok());
    ASSERT_TRUE(opt.OverrideConfig("emb8", "optim_bits", 8).ok());
  }
  absl::StatusOr<std::string> again = opt.SaveState();
  ASSERT_TRUE(once.ok() && again.ok());
  // One "lr" group entry more than before (group 0 had none), however often it was set.
  EXPECT_LT(again->size(), once->size() + 64);
  ASSERT_TRUE(opt.SetGroupOption(0, "lr", 0.2).ok());
  absl::StatusOr<LarsOptions> o = opt.EffectiveOptions("dense");
  EXPECT_EQ(*o->lr, 0.2);
}

}  // namespace
}  // namespace halide_lars
