// The C ABI (include/halide_lars/lars_c.h): a table of bad DLPack tensors and bad calls, each an error code
// with a message naming the problem and no change; handle lifecycle; checkpoints through C.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "halide_lars/lars_c.h"

namespace {

struct Tensor {
  std::vector<float> data;
  std::vector<int64_t> shape, strides;
  DLTensor dl{};
  explicit Tensor(int64_t n, float value = 1.0f) : data(n, value), shape{n} {
    dl.data = data.data();
    dl.device = {kDLCPU, 0};
    dl.ndim = 1;
    dl.dtype = {kDLFloat, 32, 1};
    dl.shape = shape.data();
  }
};

lars_optimizer_t* Make() {
  lars_options_t o;
  EXPECT_EQ(lars_options_default(&o), LARS_OK);
  o.lr = 0.1;
  o.momentum = 0.9;
  lars_optimizer_t* opt = nullptr;
  EXPECT_EQ(lars_create(&o, &opt), LARS_OK) << lars_last_error();
  return opt;
}

TEST(CApi, DefaultsAreBitsandbytes) {
  lars_options_t o;
  ASSERT_EQ(lars_options_default(&o), LARS_OK);
  EXPECT_TRUE(std::isnan(o.lr));
  EXPECT_EQ(o.momentum, 0.0);
  EXPECT_EQ(o.optim_bits, 32);
  EXPECT_EQ(o.min_8bit_size, 4096);
  EXPECT_EQ(o.percentile_clipping, 100);
  EXPECT_EQ(o.max_unorm, 0.02);
  lars_optimizer_t* opt = nullptr;
  EXPECT_EQ(lars_create(&o, &opt), LARS_INVALID_ARGUMENT);
  EXPECT_STREQ(lars_last_error(), "lr: required (no default)");
  EXPECT_EQ(opt, nullptr);
  o.lr = 0.1;
  EXPECT_EQ(lars_create(&o, &opt), LARS_UNIMPLEMENTED);  // momentum 0, as bitsandbytes
  EXPECT_NE(std::string(lars_last_error()).find("LARS without momentum"), std::string::npos);
  EXPECT_EQ(lars_abi_version(), LARS_C_ABI_VERSION);
}

// lars_validate_options answers exactly what lars_create would (code and message) and creates
// nothing: the one check the bindings run on a param group or a loaded state_dict's options.
TEST(CApi, ValidateOptionsAgreesWithCreate) {
  lars_options_t o;
  ASSERT_EQ(lars_options_default(&o), LARS_OK);
  struct Case {
    const char* what;
    void (*edit)(lars_options_t*);
    lars_status_t want;
    const char* message;
  };
  const Case cases[] = {
      {"no lr", [](lars_options_t*) {}, LARS_INVALID_ARGUMENT, "lr: required"},
      {"momentum 0", [](lars_options_t* x) { x->lr = 0.1; }, LARS_UNIMPLEMENTED, "momentum"},
      {"negative lr", [](lars_options_t* x) { x->lr = -1, x->momentum = 0.9; },
       LARS_INVALID_ARGUMENT, "lr"},
      {"bad trust mode", [](lars_options_t* x) { x->lr = 0.1, x->momentum = 0.9, x->trust_mode = 9; },
       LARS_INVALID_ARGUMENT, "trust_mode"},
      {"clip with lr_in_momentum",
       [](lars_options_t* x) { x->lr = 0.1, x->momentum = 0.9, x->lr_in_momentum = 1; },
       LARS_INVALID_ARGUMENT, "lr_in_momentum"},
      {"good", [](lars_options_t* x) { x->lr = 0.1, x->momentum = 0.9; }, LARS_OK, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    lars_options_t x = o;
    c.edit(&x);
    ASSERT_EQ(lars_validate_options(&x), c.want) << lars_last_error();
    const std::string validated = lars_last_error();
    EXPECT_NE(validated.find(c.message), std::string::npos) << validated;
    lars_optimizer_t* opt = nullptr;
    EXPECT_EQ(lars_create(&x, &opt), c.want);
    EXPECT_EQ(std::string(lars_last_error()), validated);
    EXPECT_EQ(opt != nullptr, c.want == LARS_OK);
    lars_destroy(opt);
  }
  EXPECT_EQ(lars_validate_options(nullptr), LARS_INVALID_ARGUMENT);
}

// The option table (lars_option_info) is what Python and Julia build lars_options_t from: every
// field of the struct once, at its offset, with lars_options_default's value as its default.
TEST(CApi, OptionTableDescribesTheStruct) {
  lars_options_t o;
  ASSERT_EQ(lars_options_default(&o), LARS_OK);
  ASSERT_EQ(lars_options_size(), static_cast<int64_t>(sizeof(lars_options_t)));
  const std::vector<std::pair<std::string, size_t>> fields = {
      {"lr", offsetof(lars_options_t, lr)},
      {"momentum", offsetof(lars_options_t, momentum)},
      {"dampening", offsetof(lars_options_t, dampening)},
      {"weight_decay", offsetof(lars_options_t, weight_decay)},
      {"nesterov", offsetof(lars_options_t, nesterov)},
      {"optim_bits", offsetof(lars_options_t, optim_bits)},
      {"min_8bit_size", offsetof(lars_options_t, min_8bit_size)},
      {"percentile_clipping", offsetof(lars_options_t, percentile_clipping)},
      {"max_unorm", offsetof(lars_options_t, max_unorm)},
      {"trust_mode", offsetof(lars_options_t, trust_mode)},
      {"trust_coefficient", offsetof(lars_options_t, trust_coefficient)},
      {"eps", offsetof(lars_options_t, eps)},
      {"block_wise", offsetof(lars_options_t, block_wise)},
      {"block_size", offsetof(lars_options_t, block_size)},
      {"step_order", offsetof(lars_options_t, step_order)},
      {"nonfinite", offsetof(lars_options_t, nonfinite)},
      {"always_adapt", offsetof(lars_options_t, always_adapt)},
      {"lr_in_momentum", offsetof(lars_options_t, lr_in_momentum)},
  };
  ASSERT_EQ(lars_option_count(), static_cast<int32_t>(fields.size()));
  lars_optimizer_t* opt = Make();
  const char* bytes = reinterpret_cast<const char*>(&o);
  for (int32_t i = 0; i < lars_option_count(); ++i) {
    lars_option_info_t info;
    ASSERT_EQ(lars_option_info(i, &info), LARS_OK);
    SCOPED_TRACE(info.name);
    EXPECT_EQ(info.name, fields[i].first);  // the order of lars_set_group_option and checkpoints
    EXPECT_EQ(info.offset, static_cast<int64_t>(fields[i].second));
    EXPECT_GT(std::strlen(info.doc), 10u);
    double value = 0.0;
    switch (info.type) {
      case LARS_OPTION_FLOAT64: {
        std::memcpy(&value, bytes + info.offset, sizeof(double));
        break;
      }
      case LARS_OPTION_INT64: {
        int64_t v;
        std::memcpy(&v, bytes + info.offset, sizeof(v));
        value = static_cast<double>(v);
        break;
      }
      default: {
        int32_t v;
        std::memcpy(&v, bytes + info.offset, sizeof(v));
        value = v;
      }
    }
    if (std::isnan(info.default_value)) {
      EXPECT_TRUE(std::isnan(value));
    } else {
      EXPECT_EQ(value, info.default_value);
    }
    EXPECT_EQ(info.type == LARS_OPTION_ENUM, std::strlen(info.values) > 0);
    if (info.type == LARS_OPTION_ENUM) {
      // Every value name is accepted by name; the expected text names them all.
      std::string values = info.values;
      for (size_t start = 0, end; start <= values.size(); start = end + 1) {
        end = std::min(values.find(',', start), values.size());
        const std::string v = values.substr(start, end - start);
        EXPECT_EQ(lars_set_group_option_str(opt, 0, info.name, v.c_str()), LARS_OK) << v;
        EXPECT_NE(std::string(info.expected).find(v), std::string::npos) << info.expected;
      }
      EXPECT_EQ(lars_set_group_option_str(opt, 0, info.name, "bogus"), LARS_INVALID_ARGUMENT);
    }
  }
  lars_option_info_t info;
  EXPECT_EQ(lars_option_info(lars_option_count(), &info), LARS_OUT_OF_RANGE);
  EXPECT_EQ(lars_option_info(-1, &info), LARS_OUT_OF_RANGE);
  EXPECT_EQ(lars_option_info(0, nullptr), LARS_INVALID_ARGUMENT);
  EXPECT_EQ(lars_destroy(opt), LARS_OK);
}

// step_order reaches the optimizer through the struct: a bad value names the option, and
// momentum_first (no flat-parameter kernels) is refused for flat parameters.
TEST(CApi, StepOrderIsAStructField) {
  lars_options_t o;
  ASSERT_EQ(lars_options_default(&o), LARS_OK);
  EXPECT_EQ(o.step_order, LARS_STEP_ORDER_AUTO);
  o.lr = 0.1;
  o.momentum = 0.9;
  o.step_order = 7;
  lars_optimizer_t* opt = nullptr;
  EXPECT_EQ(lars_create(&o, &opt), LARS_INVALID_ARGUMENT);
  EXPECT_STREQ(lars_last_error(), "step_order: 7, expected auto, norms_first or momentum_first");
  o.step_order = LARS_STEP_ORDER_MOMENTUM_FIRST;
  ASSERT_EQ(lars_create(&o, &opt), LARS_OK) << lars_last_error();
  Tensor p(128), g(128);
  const char* names[] = {"a", "b"};
  const int64_t offsets[] = {0, 64};
  const int64_t numels[] = {64, 64};
  EXPECT_EQ(lars_add_flat_params(opt, &p.dl, &g.dl, 2, names, offsets, numels, nullptr),
            LARS_UNIMPLEMENTED);
  EXPECT_NE(std::string(lars_last_error()).find("step_order momentum_first"), std::string::npos)
      << lars_last_error();
  ASSERT_EQ(lars_set_group_option_str(opt, 0, "step_order", "norms_first"), LARS_OK);
  ASSERT_EQ(lars_add_flat_params(opt, &p.dl, &g.dl, 2, names, offsets, numels, nullptr), LARS_OK)
      << lars_last_error();
  EXPECT_EQ(lars_step(opt, nullptr), LARS_OK) << lars_last_error();
  EXPECT_NE(p.data[0], 1.0f);
  EXPECT_EQ(lars_destroy(opt), LARS_OK);
}

TEST(CApi, BadTensorsAreRejectedWithTheirReason) {
  lars_optimizer_t* opt = Make();
  struct Case {
    const char* what;
    void (*mutate)(Tensor*);
    const char* message;
  };
  const Case cases[] = {
      {"float64", [](Tensor* t) { t->dl.dtype = {kDLFloat, 64, 1}; }, "expected float32, float16 or bfloat16"},
      {"int32", [](Tensor* t) { t->dl.dtype = {kDLInt, 32, 1}; }, "dtype code 0"},
      {"lanes", [](Tensor* t) { t->dl.dtype.lanes = 4; }, "4 lanes"},
      {"device", [](Tensor* t) { t->dl.device = {kDLVulkan, 0}; }, "device type 7"},
      {"null data", [](Tensor* t) { t->dl.data = nullptr; }, "null data with 64 elements"},
      {"non-contiguous", [](Tensor* t) {
         t->shape = {8, 8};
         t->strides = {1, 8};
         t->dl.ndim = 2;
         t->dl.shape = t->shape.data();
         t->dl.strides = t->strides.data();
       }, "not contiguous"},
      {"negative extent", [](Tensor* t) { t->shape[0] = -1; }, "negative extent"},
      {"misaligned", [](Tensor* t) { t->dl.byte_offset = 2; }, "not aligned"},
      {"bad ndim", [](Tensor* t) { t->dl.ndim = 1; t->dl.shape = nullptr; }, "bad shape"},
  };
  for (const Case& c : cases) {
    Tensor p(64), g(64);
    c.mutate(&p);
    EXPECT_NE(lars_add_param(opt, c.what, &p.dl, &g.dl, 0), LARS_OK) << c.what;
    EXPECT_NE(std::string(lars_last_error()).find(c.message), std::string::npos)
        << c.what << ": " << lars_last_error();
  }
  Tensor p(64), g(64);
  EXPECT_EQ(lars_add_param(opt, "w", nullptr, &g.dl, 0), LARS_INVALID_ARGUMENT);
  EXPECT_EQ(lars_add_param(opt, nullptr, &p.dl, &g.dl, 0), LARS_INVALID_ARGUMENT);
  EXPECT_EQ(lars_add_param(opt, "w", &p.dl, &g.dl, 5), LARS_OUT_OF_RANGE);
  // A 2-D contiguous tensor (strides given explicitly) is fine.
  Tensor p2(64), g2(64);
  p2.shape = {8, 8};
  p2.strides = {8, 1};
  p2.dl.ndim = 2;
  p2.dl.shape = p2.shape.data();
  p2.dl.strides = p2.strides.data();
  ASSERT_EQ(lars_add_param(opt, "w2d", &p2.dl, &g2.dl, 0), LARS_OK) << lars_last_error();
  EXPECT_EQ(lars_add_param(opt, "w2d", &p2.dl, &g2.dl, 0), LARS_ALREADY_EXISTS);
  // Nothing but w2d was registered: a step changes only w2d.
  ASSERT_EQ(lars_step(opt, nullptr), LARS_OK);
  int64_t step = -1;
  ASSERT_EQ(lars_param_step(opt, "w2d", &step), LARS_OK);
  EXPECT_EQ(step, 1);
  EXPECT_EQ(lars_param_step(opt, "w", &step), LARS_NOT_FOUND);
  for (float v : p.data) EXPECT_EQ(v, 1.0f);
  EXPECT_EQ(lars_destroy(opt), LARS_OK);
}

TEST(CApi, HandlesAreCheckedNeverDereferencedBlindly) {
  lars_optimizer_t* opt = Make();
  ASSERT_EQ(lars_destroy(opt), LARS_OK);
  EXPECT_EQ(lars_step(opt, nullptr), LARS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(lars_last_error()).find("not a live handle"), std::string::npos);
  EXPECT_EQ(lars_destroy(opt), LARS_INVALID_ARGUMENT);  // double destroy
  EXPECT_EQ(lars_destroy(nullptr), LARS_OK);
  int fake = 0;
  EXPECT_EQ(lars_step(reinterpret_cast<lars_optimizer_t*>(&fake), nullptr), LARS_INVALID_ARGUMENT);
  EXPECT_EQ(lars_step(nullptr, nullptr), LARS_INVALID_ARGUMENT);
  int64_t bytes;
  EXPECT_EQ(lars_state_size(nullptr, &bytes), LARS_INVALID_ARGUMENT);
}

TEST(CApi, StepGroupsOverridesAndCheckpointsThroughC) {
  lars_optimizer_t* opt = Make();
  Tensor w(100, 0.5f), gw(100, 0.25f), b(10, 0.5f), gb(10, 0.25f);
  int32_t group = -1;
  ASSERT_EQ(lars_add_param_group(opt, &group), LARS_OK);
  EXPECT_EQ(group, 1);
  ASSERT_EQ(lars_set_group_option(opt, group, "lr", 0.01), LARS_OK);
  EXPECT_EQ(lars_set_group_option(opt, group, "lr", -1.0), LARS_INVALID_ARGUMENT);
  ASSERT_EQ(lars_set_group_option_str(opt, group, "trust_mode", "classic"), LARS_OK);
  EXPECT_EQ(lars_set_group_option_str(opt, group, "trust_mode", "lamb"), LARS_INVALID_ARGUMENT);
  ASSERT_EQ(lars_add_param(opt, "w", &w.dl, &gw.dl, 0), LARS_OK);
  ASSERT_EQ(lars_add_param(opt, "b", &b.dl, nullptr, group), LARS_OK);  // no gradient yet
  ASSERT_EQ(lars_override(opt, "w", "weight_decay", 0.0), LARS_OK);
  EXPECT_EQ(lars_override(opt, "w", "no_such_option", 1.0), LARS_INVALID_ARGUMENT);
  ASSERT_EQ(lars_step(opt, nullptr), LARS_OK);
  int64_t step;
  ASSERT_EQ(lars_param_step(opt, "b", &step), LARS_OK);
  EXPECT_EQ(step, 0);
  ASSERT_EQ(lars_set_grad(opt, "b", &gb.dl), LARS_OK);
  ASSERT_EQ(lars_step(opt, nullptr), LARS_OK);
  // Save, keep training, load, retrain: identical.
  size_t size = 0;
  ASSERT_EQ(lars_save_state(opt, nullptr, 0, &size), LARS_OK);
  std::vector<uint8_t> ckpt(size);
  EXPECT_EQ(lars_save_state(opt, ckpt.data(), size - 1, &size), LARS_OUT_OF_RANGE);
  ASSERT_EQ(lars_save_state(opt, ckpt.data(), ckpt.size(), &size), LARS_OK);
  const std::vector<float> w_saved = w.data, b_saved = b.data;
  ASSERT_EQ(lars_step(opt, nullptr), LARS_OK);
  const std::vector<float> w_after = w.data;
  w.data = w_saved;
  b.data = b_saved;
  ASSERT_EQ(lars_load_state(opt, ckpt.data(), ckpt.size()), LARS_OK);
  ASSERT_EQ(lars_step(opt, nullptr), LARS_OK);
  EXPECT_EQ(w.data, w_after);
  ckpt[ckpt.size() / 2] ^= 1;
  EXPECT_EQ(lars_load_state(opt, ckpt.data(), ckpt.size()), LARS_DATA_LOSS);
  EXPECT_EQ(lars_load_state(opt, nullptr, 10), LARS_INVALID_ARGUMENT);
  std::vector<float> m(100);
  ASSERT_EQ(lars_get_momentum(opt, "w", m.data(), m.size()), LARS_OK);
  EXPECT_NE(m[0], 0.0f);
  EXPECT_EQ(lars_get_momentum(opt, "w", m.data(), 99), LARS_INVALID_ARGUMENT);
  const std::string path = ::testing::TempDir() + "/c_api.ckpt";
  ASSERT_EQ(lars_save_state_file(opt, path.c_str()), LARS_OK);
  ASSERT_EQ(lars_load_state_file(opt, path.c_str()), LARS_OK);
  EXPECT_EQ(lars_load_state_file(opt, "/no/such/file"), LARS_NOT_FOUND);
  ASSERT_EQ(lars_destroy(opt), LARS_OK);
}

// The sharded step through C with the partials in a float64 DLTensor (what NCCL users pass from
// the parameters' GPU; here on the CPU): the same parameters as the pointer form, bit for bit;
// a float32 partials tensor is refused with the expected dtype named, and opens no step.
TEST(CApi, ShardedStepWithPartialsTensor) {
  lars_optimizer_t* a = Make();
  lars_optimizer_t* b = Make();
  Tensor wa(300, 0.5f), ga(300, 0.25f), wb(300, 0.5f), gb(300, 0.25f);
  ASSERT_EQ(lars_add_param(a, "w", &wa.dl, &ga.dl, 0), LARS_OK);
  ASSERT_EQ(lars_add_param(b, "w", &wb.dl, &gb.dl, 0), LARS_OK);
  for (lars_optimizer_t* o : {a, b}) ASSERT_EQ(lars_set_shard(o, "w", 100, 1000), LARS_OK);
  int64_t n = 0;
  ASSERT_EQ(lars_partials_size(b, &n), LARS_OK);
  std::vector<double> host(n), dev(n);
  std::vector<int64_t> shape{n};
  DLTensor t{};
  t.data = dev.data();
  t.device = {kDLCPU, 0};
  t.ndim = 1;
  t.dtype = {kDLFloat, 64, 1};
  t.shape = shape.data();
  DLTensor f32 = t;
  f32.dtype = {kDLFloat, 32, 1};
  EXPECT_EQ(lars_step_begin_tensor(b, &f32, nullptr), LARS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(lars_last_error()).find("expected float64"), std::string::npos)
      << lars_last_error();
  EXPECT_EQ(lars_step_finish_tensor(b, &t, nullptr), LARS_FAILED_PRECONDITION) << "no step open";
  EXPECT_EQ(lars_step_begin_tensor(b, nullptr, nullptr), LARS_INVALID_ARGUMENT);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < ga.data.size(); ++i) ga.data[i] = gb.data[i] = std::sin(0.1f * i + step);
    ASSERT_EQ(lars_step_begin(a, host.data(), n, nullptr), LARS_OK);
    ASSERT_EQ(lars_step_begin_tensor(b, &t, nullptr), LARS_OK) << lars_last_error();
    EXPECT_EQ(dev, host);
    for (int64_t i = 0; i < n; ++i) host[i] = dev[i] = 2 * host[i];  // a 2-rank all-reduce
    ASSERT_EQ(lars_step_finish(a, host.data(), n, nullptr), LARS_OK);
    ASSERT_EQ(lars_step_finish_tensor(b, &t, nullptr), LARS_OK) << lars_last_error();
  }
  EXPECT_EQ(wa.data, wb.data);
  EXPECT_NE(wa.data, std::vector<float>(300, 0.5f));
  ASSERT_EQ(lars_destroy(a), LARS_OK);
  ASSERT_EQ(lars_destroy(b), LARS_OK);
}

// lars_plan_flat lays tensors out as this optimizer's flat parameters want them: with 8-bit
// state (group 1, block 2048) the tensors above min_8bit_size come first on block multiples,
// then the fp32 ones; the plan is what lars_add_flat_params then accepts. A missing group is an
// error naming it.
TEST(CApi, PlanFlatFollowsTheOptionsStateKinds) {
  lars_optimizer_t* opt = Make();
  int32_t g8 = -1;
  ASSERT_EQ(lars_add_param_group(opt, &g8), LARS_OK);
  ASSERT_EQ(lars_set_group_option(opt, g8, "optim_bits", 8), LARS_OK);
  ASSERT_EQ(lars_set_group_option(opt, g8, "block_size", 2048), LARS_OK);
  const std::vector<int64_t> numels = {100, 5000, 4096, 7};
  const std::vector<int32_t> groups = {g8, g8, 0, g8};  // 100 and 7 < 4096: fp32 state
  std::vector<int64_t> offsets(numels.size());
  int64_t total = 0;
  ASSERT_EQ(lars_plan_flat(opt, 4, numels.data(), groups.data(), offsets.data(), &total), LARS_OK)
      << lars_last_error();
  EXPECT_EQ(offsets, (std::vector<int64_t>{6144, 0, 8192, 12288})) << "5000 first, on 2048s";
  EXPECT_EQ(total, 12295);
  std::vector<Tensor> bufs;
  bufs.emplace_back(total, 0.5f);
  bufs.emplace_back(total, 0.25f);
  const char* names[] = {"a", "b", "c", "d"};
  ASSERT_EQ(lars_add_flat_params(opt, &bufs[0].dl, &bufs[1].dl, 4, names, offsets.data(),
                                 numels.data(), groups.data()),
            LARS_OK)
      << lars_last_error();
  ASSERT_EQ(lars_step(opt, nullptr), LARS_OK) << lars_last_error();
  const std::vector<int32_t> bad = {0, 7, 0, 0};
  EXPECT_EQ(lars_plan_flat(opt, 4, numels.data(), bad.data(), offsets.data(), &total),
            LARS_OUT_OF_RANGE);
  EXPECT_NE(std::string(lars_last_error()).find("group 7"), std::string::npos) << lars_last_error();
  ASSERT_EQ(lars_destroy(opt), LARS_OK);
}

TEST(CApi, FlatParamsMatchPerTensorParamsBitForBit) {
  const std::vector<int64_t> numels = {100, 3, 0, 1000};
  std::vector<int64_t> offsets(numels.size());
  int64_t total = 0;
  ASSERT_EQ(lars_layout_flat(4, numels.data(), 256, offsets.data(), &total), LARS_OK);
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 256, 512, 512}));
  EXPECT_EQ(lars_layout_flat(4, numels.data(), 100, offsets.data(), &total), LARS_INVALID_ARGUMENT);
  ASSERT_EQ(lars_layout_flat(4, numels.data(), 0, offsets.data(), &total), LARS_OK);
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 128, 192, 192}));
  EXPECT_EQ(total, 1192);
  EXPECT_EQ(lars_layout_flat(1, std::vector<int64_t>{-1}.data(), 0, offsets.data(), &total),
            LARS_INVALID_ARGUMENT);
  // The same tensors flat (one optimizer) and one by one (another).
  Tensor flat_p(total), flat_g(total);
  std::vector<Tensor> p, g;
  for (size_t i = 0; i < numels.size(); ++i) {
    p.emplace_back(numels[i]);
    g.emplace_back(numels[i]);
    for (int64_t k = 0; k < numels[i]; ++k) {
      const float pv = 0.01f * static_cast<float>((k * 7 + i) % 23), gv = 0.1f * std::sin(k + i);
      p[i].data[k] = flat_p.data[offsets[i] + k] = pv;
      g[i].data[k] = flat_g.data[offsets[i] + k] = gv;
    }
  }
  const char* names[] = {"w", "b", "empty", "fc"};
  const int32_t groups[] = {0, 1, 0, 1};
  lars_optimizer_t *flat = Make(), *single = Make();
  for (lars_optimizer_t* opt : {flat, single}) {
    int32_t group = -1;
    ASSERT_EQ(lars_add_param_group(opt, &group), LARS_OK);
    ASSERT_EQ(lars_set_group_option_str(opt, group, "trust_mode", "classic"), LARS_OK);
    ASSERT_EQ(lars_set_group_option_str(opt, 0, "step_order", "norms_first"), LARS_OK);
  }
  ASSERT_EQ(lars_add_flat_params(flat, &flat_p.dl, &flat_g.dl, 4, names, offsets.data(),
                                 numels.data(), groups), LARS_OK) << lars_last_error();
  for (size_t i = 0; i < numels.size(); ++i) {
    ASSERT_EQ(lars_add_param(single, names[i], &p[i].dl, &g[i].dl, groups[i]), LARS_OK);
  }
  // Bad calls: a misaligned offset, null tables, names taken, a foreign gradient.
  lars_optimizer_t* fresh = Make();
  const int64_t bad_offsets[] = {0, 100, 192, 192};
  EXPECT_EQ(lars_add_flat_params(fresh, &flat_p.dl, &flat_g.dl, 4, names, bad_offsets,
                                 numels.data(), nullptr), LARS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(lars_last_error()).find("b: [100, 103)"), std::string::npos)
      << lars_last_error();
  EXPECT_EQ(lars_add_flat_params(fresh, &flat_p.dl, &flat_g.dl, 4, nullptr, offsets.data(),
                                 numels.data(), groups), LARS_INVALID_ARGUMENT);
  ASSERT_EQ(lars_destroy(fresh), LARS_OK);
  EXPECT_EQ(lars_add_flat_params(flat, &flat_p.dl, &flat_g.dl, 4, names, offsets.data(),
                                 numels.data(), groups), LARS_ALREADY_EXISTS);
  EXPECT_EQ(lars_set_grad(flat, "w", &g[0].dl), LARS_INVALID_ARGUMENT);
  for (int step = 0; step < 5; ++step) {
    ASSERT_EQ(lars_step(flat, nullptr), LARS_OK) << lars_last_error();
    ASSERT_EQ(lars_step(single, nullptr), LARS_OK);
  }
  int64_t pipelines = 0;
  ASSERT_EQ(lars_last_step_pipelines(flat, &pipelines), LARS_OK);
  EXPECT_EQ(pipelines, 2);
  ASSERT_EQ(lars_last_step_pipelines(single, &pipelines), LARS_OK);
  EXPECT_EQ(pipelines, 6);  // norms + update for each non-empty tensor
  for (size_t i = 0; i < numels.size(); ++i) {
    EXPECT_TRUE(std::equal(p[i].data.begin(), p[i].data.end(), flat_p.data.begin() + offsets[i]))
        << names[i];
    std::vector<float> ma(numels[i]), mb(numels[i]);
    ASSERT_EQ(lars_get_momentum(flat, names[i], ma.data(), ma.size()), LARS_OK);
    ASSERT_EQ(lars_get_momentum(single, names[i], mb.data(), mb.size()), LARS_OK);
    EXPECT_EQ(ma, mb) << names[i];
  }
  EXPECT_EQ(flat_p.data[110], 1.0f) << "a gap element changed";
  ASSERT_EQ(lars_destroy(flat), LARS_OK);
  ASSERT_EQ(lars_destroy(single), LARS_OK);
}

TEST(CApi, StateExportIsZeroCopyAndOutlivesTheHandle) {
  lars_optimizer_t* opt = Make();
  Tensor p(10, 1.0f), g(10, 0.5f);
  ASSERT_EQ(lars_add_param(opt, "w", &p.dl, &g.dl, 0), LARS_OK) << lars_last_error();
  ASSERT_EQ(lars_step(opt, nullptr), LARS_OK) << lars_last_error();
  int64_t n = 0;
  ASSERT_EQ(lars_param_count(opt, &n), LARS_OK);
  ASSERT_EQ(n, 1);
  int64_t step = 0;
  uint64_t version = 0;
  ASSERT_EQ(lars_state_versions(opt, 1, &step, &version), LARS_OK);
  EXPECT_EQ(step, 1);
  EXPECT_EQ(lars_state_versions(opt, 2, &step, &version), LARS_INVALID_ARGUMENT);
  int32_t count = 0;
  ASSERT_EQ(lars_state_count(opt, "w", &count), LARS_OK);
  ASSERT_EQ(count, 2);  // state1, unorm_vec
  const char* key = nullptr;
  DLManagedTensor* m = nullptr;
  EXPECT_EQ(lars_export_state(opt, "w", 2, &key, &m), LARS_OUT_OF_RANGE);
  EXPECT_EQ(lars_export_state(opt, "nope", 0, &key, &m), LARS_NOT_FOUND);
  ASSERT_EQ(lars_export_state(opt, "w", 0, &key, &m), LARS_OK) << lars_last_error();
  EXPECT_STREQ(key, "state1");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->dl_tensor.device.device_type, kDLCPU);
  EXPECT_EQ(m->dl_tensor.ndim, 1);
  EXPECT_EQ(m->dl_tensor.shape[0], 10);
  EXPECT_EQ(m->dl_tensor.dtype.code, kDLFloat);
  EXPECT_EQ(m->dl_tensor.dtype.bits, 32);
  float* state1 = static_cast<float*>(m->dl_tensor.data);
  float momentum[10];
  ASSERT_EQ(lars_get_momentum(opt, "w", momentum, 10), LARS_OK);
  EXPECT_EQ(0, std::memcmp(momentum, state1, sizeof(momentum)));  // step 1: m = g
  EXPECT_EQ(state1[3], 0.5f);
  state1[3] = -2.0f;  // writing through it changes the optimizer
  ASSERT_EQ(lars_get_momentum(opt, "w", momentum, 10), LARS_OK);
  EXPECT_EQ(momentum[3], -2.0f);
  ASSERT_EQ(lars_destroy(opt), LARS_OK);
  EXPECT_EQ(state1[3], -2.0f) << "the export keeps the memory (and optimizer) alive";
  m->deleter(m);  // frees the optimizer now (ASan/valgrind check the order)
}

TEST(CApi, ImportStateTakesBitsandbytesArraysOrRefusesThem) {
  lars_optimizer_t* opt = Make();
  Tensor p(6000, 1.0f), g(6000, 0.5f);
  ASSERT_EQ(lars_override(opt, "w", "optim_bits", 8), LARS_NOT_FOUND);
  ASSERT_EQ(lars_add_param(opt, "w", &p.dl, &g.dl, 0), LARS_OK);
  ASSERT_EQ(lars_override(opt, "w", "optim_bits", 8), LARS_OK);
  std::vector<uint8_t> codes(6000);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i % 256);
  std::vector<float> absmax(24, 2.0f);
  lars_param_state_t s{};
  s.name = "w";
  s.step = 5;
  s.kind = LARS_STATE_BLOCKWISE8;
  s.block_size = 256;
  s.numel = 6000;
  s.codes = codes.data();
  s.absmax = absmax.data();
  s.absmax_count = 24;
  lars_param_state_t bad = s;
  bad.kind = 7;
  EXPECT_EQ(lars_import_state(opt, 1, &bad), LARS_INVALID_ARGUMENT);
  bad = s;
  bad.codes = nullptr;
  EXPECT_EQ(lars_import_state(opt, 1, &bad), LARS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(lars_last_error()).find("null array"), std::string::npos);
  bad = s;
  bad.absmax_count = 23;
  EXPECT_EQ(lars_import_state(opt, 1, &bad), LARS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(lars_last_error()).find("absmax1 has 23 elements"), std::string::npos);
  int64_t step = -1;
  ASSERT_EQ(lars_param_step(opt, "w", &step), LARS_OK);
  EXPECT_EQ(step, 0) << "a refused import changed the step";
  ASSERT_EQ(lars_import_state(opt, 1, &s), LARS_OK) << lars_last_error();
  ASSERT_EQ(lars_param_step(opt, "w", &step), LARS_OK);
  EXPECT_EQ(step, 5);
  const char* key = nullptr;
  DLManagedTensor* m = nullptr;
  ASSERT_EQ(lars_export_state(opt, "w", 0, &key, &m), LARS_OK);
  EXPECT_EQ(m->dl_tensor.dtype.code, kDLUInt);
  EXPECT_EQ(0, std::memcmp(m->dl_tensor.data, codes.data(), codes.size())) << "codes kept exactly";
  m->deleter(m);
  ASSERT_EQ(lars_destroy(opt), LARS_OK);
}

}  // namespace
