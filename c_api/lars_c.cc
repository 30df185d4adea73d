// The C ABI's entry points (include/halide_lars/lars_c.h) over halide_lars::Lars and the
// stateless step. Every entry point runs Guarded (c_handles.h: handles checked, exceptions caught,
// errors reported through lars_last_error()) and converts its arguments with c_convert.h.
#include "halide_lars/lars_c.h"

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "c_api/c_convert.h"
#include "c_api/c_handles.h"
#include "halide_lars/lars.h"
#include "halide_lars/options.h"
#include "halide_lars/stateless.h"


namespace {

using halide_lars::Device;
using halide_lars::DeviceType;
using halide_lars::DType;
using halide_lars::FlatParam;
using halide_lars::LayoutFlatParams;
using halide_lars::TensorView;
using halide_lars::c_api::CheckHandle;
using halide_lars::c_api::CheckString;
using halide_lars::c_api::FromDLPack;
using halide_lars::c_api::Guarded;
using halide_lars::c_api::OptionTableForC;
using halide_lars::c_api::ToOptions;

static_assert(LARS_FLAT_ALIGNMENT == halide_lars::kFlatAlignment, "lars_c.h and lars.h disagree");
// The C enums are the C++ ones, value for value (the C ABI casts between them).
static_assert(LARS_TRUST_CLIP == static_cast<int>(halide_lars::TrustMode::kClip) &&
                  LARS_TRUST_CLASSIC == static_cast<int>(halide_lars::TrustMode::kClassic) &&
                  LARS_TRUST_NONE == static_cast<int>(halide_lars::TrustMode::kNone) &&
                  LARS_TRUST_LARC_CLIP == static_cast<int>(halide_lars::TrustMode::kLarcClip) &&
                  LARS_TRUST_EXACT == static_cast<int>(halide_lars::TrustMode::kExact),
              "lars_trust_mode_t and TrustMode disagree");
static_assert(LARS_STEP_ORDER_AUTO == static_cast<int>(halide_lars::StepOrder::kAuto) &&
                  LARS_STEP_ORDER_NORMS_FIRST == static_cast<int>(halide_lars::StepOrder::kNormsFirst) &&
                  LARS_STEP_ORDER_MOMENTUM_FIRST ==
                      static_cast<int>(halide_lars::StepOrder::kMomentumFirst),
              "lars_step_order_t and StepOrder disagree");
static_assert(LARS_NONFINITE_SKIP == static_cast<int>(halide_lars::Nonfinite::kSkip) &&
                  LARS_NONFINITE_ERROR == static_cast<int>(halide_lars::Nonfinite::kError) &&
                  LARS_NONFINITE_PROPAGATE == static_cast<int>(halide_lars::Nonfinite::kPropagate),
              "lars_nonfinite_t and Nonfinite disagree");
static_assert(LARS_STATE_FP32 == static_cast<int>(halide_lars::StateKind::kFp32) &&
                  LARS_STATE_BLOCKWISE8 == static_cast<int>(halide_lars::StateKind::kBlockwise8) &&
                  LARS_STATE_TENSOR8 == static_cast<int>(halide_lars::StateKind::kTensor8),
              "lars_state_kind_t and StateKind disagree");
static_assert(LARS_UNAUTHENTICATED == static_cast<int>(absl::StatusCode::kUnauthenticated) &&
                  LARS_INVALID_ARGUMENT == static_cast<int>(absl::StatusCode::kInvalidArgument),
              "lars_status_t and absl::StatusCode disagree");

// lars_layout_flat / lars_plan_flat: the arrays and counts.
absl::Status CheckLayoutArrays(int64_t count, const int64_t* numels, const int64_t* offsets_out,
                               const int64_t* total_out) {
  if (count < 0) return absl::InvalidArgumentError(absl::StrCat("count: ", count));
  if (count > 0 && (numels == nullptr || offsets_out == nullptr)) {
    return absl::InvalidArgumentError("numels or offsets_out: null");
  }
  if (total_out == nullptr) return absl::InvalidArgumentError("total_out: null");
  for (int64_t i = 0; i < count; ++i) {
    if (numels[i] < 0) return absl::InvalidArgumentError(absl::StrCat("numels[", i, "]: ", numels[i]));
  }
  return absl::OkStatus();
}

// lars_step_begin_tensor / lars_step_finish_tensor: `phase` is Lars::StepBegin or StepFinish.
using PartialsPhase = absl::Status (halide_lars::Lars::*)(const TensorView&,
                                                          const halide_lars::ExecContext&);
lars_status_t PartialsTensorCall(lars_optimizer_t* opt, const DLTensor* partials,
                                 void* cuda_stream, PartialsPhase phase) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_ASSIGN_OR_RETURN(TensorView v, FromDLPack(partials, "partials", /*partials=*/true));
    halide_lars::ExecContext exec;
    exec.cuda_stream = cuda_stream;
    return (opt->lars.*phase)(v, exec);
  });
}

}  // namespace

extern "C" {

int32_t lars_abi_version(void) { return LARS_C_ABI_VERSION; }

const char* lars_version(void) { return "halide_lars 0.1.0"; }

const char* lars_last_error(void) { return halide_lars::c_api::LastError().c_str(); }

lars_status_t lars_options_default(lars_options_t* options) {
  return Guarded([&] {
    if (options == nullptr) return absl::InvalidArgumentError("options: null");
    halide_lars::c_api::FromOptions(halide_lars::LarsOptions(), options);
    return absl::OkStatus();
  });
}

int32_t lars_option_count(void) {
  return static_cast<int32_t>(OptionTableForC().infos.size());
}

lars_status_t lars_option_info(int32_t index, lars_option_info_t* out) {
  return Guarded([&] {
    const std::vector<lars_option_info_t>& infos = OptionTableForC().infos;
    if (out == nullptr) return absl::InvalidArgumentError("out: null");
    if (index < 0 || index >= static_cast<int32_t>(infos.size())) {
      return absl::OutOfRangeError(
          absl::StrCat("index ", index, ": there are ", infos.size(), " options"));
    }
    *out = infos[index];
    return absl::OkStatus();
  });
}

int64_t lars_options_size(void) { return sizeof(lars_options_t); }

lars_status_t lars_validate_options(const lars_options_t* options) {
  return Guarded([&]() -> absl::Status {
    if (options == nullptr) return absl::InvalidArgumentError("options: null");
    return halide_lars::ValidateOptions(ToOptions(*options));
  });
}

lars_status_t lars_create(const lars_options_t* options, lars_optimizer_t** out) {
  return Guarded([&]() -> absl::Status {
    if (options == nullptr) return absl::InvalidArgumentError("options: null");
    if (out == nullptr) return absl::InvalidArgumentError("out: null");
    LARS_ASSIGN_OR_RETURN(halide_lars::Lars lars, halide_lars::Lars::Create(ToOptions(*options)));
    auto* opt = new lars_optimizer(std::move(lars));
    halide_lars::c_api::RegisterHandle(opt);
    *out = opt;
    return absl::OkStatus();
  });
}

lars_status_t lars_destroy(lars_optimizer_t* opt) {
  return Guarded([&]() -> absl::Status {
    if (opt == nullptr) return absl::OkStatus();
    if (!halide_lars::c_api::UnregisterHandle(opt)) {
      return absl::InvalidArgumentError(
          "optimizer: not a live handle (destroyed twice or never created)");
    }
    delete opt;
    return absl::OkStatus();
  });
}

lars_status_t lars_add_param_group(lars_optimizer_t* opt, int32_t* group_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (group_out == nullptr) return absl::InvalidArgumentError("group_out: null");
    LARS_ASSIGN_OR_RETURN(int g, opt->lars.AddParamGroup({}));
    *group_out = g;
    return absl::OkStatus();
  });
}

lars_status_t lars_set_group_option(lars_optimizer_t* opt, int32_t group, const char* key,
                                    double value) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(key, "key"));
    return opt->lars.SetGroupOption(group, key, value);
  });
}

lars_status_t lars_set_group_option_str(lars_optimizer_t* opt, int32_t group, const char* key,
                                        const char* value) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(key, "key"));
    LARS_RETURN_IF_ERROR(CheckString(value, "value"));
    return opt->lars.SetGroupOption(group, key, std::string(value));
  });
}

lars_status_t lars_add_param(lars_optimizer_t* opt, const char* name, const DLTensor* param,
                             const DLTensor* grad, int32_t group) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    LARS_ASSIGN_OR_RETURN(TensorView p, FromDLPack(param, absl::StrCat(name, ": param")));
    TensorView g;
    g.dtype = p.dtype;
    g.device = p.device;
    if (grad != nullptr) {
      LARS_ASSIGN_OR_RETURN(TensorView gv, FromDLPack(grad, absl::StrCat(name, ": grad")));
      g = gv;
    }
    return opt->lars.AddParam(name, p, g, group);
  });
}

lars_status_t lars_set_grad(lars_optimizer_t* opt, const char* name, const DLTensor* grad) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    if (grad == nullptr) return opt->lars.SetGrad(name, TensorView{});
    LARS_ASSIGN_OR_RETURN(TensorView g, FromDLPack(grad, absl::StrCat(name, ": grad")));
    return opt->lars.SetGrad(name, g);
  });
}

lars_status_t lars_override(lars_optimizer_t* opt, const char* name, const char* key,
                            double value) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    LARS_RETURN_IF_ERROR(CheckString(key, "key"));
    return opt->lars.OverrideConfig(name, key, value);
  });
}

lars_status_t lars_override_str(lars_optimizer_t* opt, const char* name, const char* key,
                                const char* value) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    LARS_RETURN_IF_ERROR(CheckString(key, "key"));
    LARS_RETURN_IF_ERROR(CheckString(value, "value"));
    return opt->lars.OverrideConfig(name, key, std::string(value));
  });
}

lars_status_t lars_step(lars_optimizer_t* opt, void* cuda_stream) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    halide_lars::ExecContext exec;
    exec.cuda_stream = cuda_stream;
    return opt->lars.Step(exec);
  });
}

lars_status_t lars_set_shard(lars_optimizer_t* opt, const char* name, int64_t offset,
                             int64_t full_numel) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    return opt->lars.SetShard(name, offset, full_numel);
  });
}

lars_status_t lars_layout_flat(int64_t count, const int64_t* numels, int64_t alignment,
                               int64_t* offsets_out, int64_t* total_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckLayoutArrays(count, numels, offsets_out, total_out));
    std::vector<FlatParam> tensors(count);
    for (int64_t i = 0; i < count; ++i) tensors[i].numel = numels[i];
    if (alignment < 0 || (alignment > 0 && alignment % LARS_FLAT_ALIGNMENT != 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "alignment: ", alignment, ", expected 0 or a multiple of ", LARS_FLAT_ALIGNMENT));
    }
    const int64_t total = LayoutFlatParams(&tensors, alignment == 0 ? LARS_FLAT_ALIGNMENT : alignment);
    for (int64_t i = 0; i < count; ++i) offsets_out[i] = tensors[i].offset;
    *total_out = total;
    return absl::OkStatus();
  });
}

lars_status_t lars_plan_flat(lars_optimizer_t* opt, int64_t count, const int64_t* numels,
                             const int32_t* groups, int64_t* offsets_out, int64_t* total_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckLayoutArrays(count, numels, offsets_out, total_out));
    std::vector<FlatParam> tensors(count);
    for (int64_t i = 0; i < count; ++i) {
      tensors[i].name = absl::StrCat("numels[", i, "]");
      tensors[i].numel = numels[i];
      tensors[i].group = groups == nullptr ? 0 : groups[i];
    }
    LARS_ASSIGN_OR_RETURN(int64_t total, opt->lars.PlanFlatParams(&tensors));
    for (int64_t i = 0; i < count; ++i) offsets_out[i] = tensors[i].offset;
    *total_out = total;
    return absl::OkStatus();
  });
}

lars_status_t lars_add_flat_params(lars_optimizer_t* opt, const DLTensor* params,
                                   const DLTensor* grads, int64_t count, const char* const* names,
                                   const int64_t* offsets, const int64_t* numels,
                                   const int32_t* groups) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (count < 0) return absl::InvalidArgumentError(absl::StrCat("count: ", count));
    if (count > 0 && (names == nullptr || offsets == nullptr || numels == nullptr)) {
      return absl::InvalidArgumentError("names, offsets or numels: null");
    }
    LARS_ASSIGN_OR_RETURN(TensorView p, FromDLPack(params, "params"));
    LARS_ASSIGN_OR_RETURN(TensorView g, FromDLPack(grads, "grads"));
    std::vector<FlatParam> tensors(count);
    for (int64_t i = 0; i < count; ++i) {
      LARS_RETURN_IF_ERROR(CheckString(names[i], absl::StrCat("names[", i, "]").c_str()));
      tensors[i] = {names[i], numels[i], offsets[i], groups == nullptr ? 0 : groups[i]};
    }
    return opt->lars.AddFlatParams(p, g, tensors);
  });
}

lars_status_t lars_last_step_pipelines(lars_optimizer_t* opt, int64_t* out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (out == nullptr) return absl::InvalidArgumentError("out: null");
    *out = opt->lars.LastStepPipelines();
    return absl::OkStatus();
  });
}

lars_status_t lars_set_num_threads(lars_optimizer_t* opt, int32_t n) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    return opt->lars.SetNumThreads(n);
  });
}

lars_status_t lars_get_num_threads(lars_optimizer_t* opt, int32_t* out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (out == nullptr) return absl::InvalidArgumentError("out: null");
    *out = opt->lars.num_threads();
    return absl::OkStatus();
  });
}

lars_status_t lars_set_grad_scale(lars_optimizer_t* opt, double scale) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    return opt->lars.SetGradScale(scale);
  });
}

lars_status_t lars_get_grad_scale(lars_optimizer_t* opt, double* out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (out == nullptr) return absl::InvalidArgumentError("out: null");
    *out = opt->lars.grad_scale();
    return absl::OkStatus();
  });
}

lars_status_t lars_tensor_state_kind(const lars_options_t* options, int64_t numel,
                                     int32_t* kind_out) {
  return Guarded([&]() -> absl::Status {
    if (options == nullptr || kind_out == nullptr) {
      return absl::InvalidArgumentError("options / kind_out: null");
    }
    const halide_lars::LarsOptions o = ToOptions(*options);
    LARS_RETURN_IF_ERROR(halide_lars::ValidateOptions(o));
    LARS_ASSIGN_OR_RETURN(halide_lars::StateKind kind, halide_lars::StatelessStateKind(o, numel));
    *kind_out = kind == halide_lars::StateKind::kFp32 ? LARS_STATE_FP32 : LARS_STATE_BLOCKWISE8;
    return absl::OkStatus();
  });
}

lars_status_t lars_step_tensor(const lars_options_t* options, const DLTensor* param,
                               const DLTensor* grad, const DLTensor* momentum,
                               const DLTensor* codes, const DLTensor* absmax, int64_t step,
                               double grad_scale, void* cuda_stream, int32_t* stepped_out) {
  return Guarded([&]() -> absl::Status {
    if (options == nullptr || stepped_out == nullptr) {
      return absl::InvalidArgumentError("options / stepped_out: null");
    }
    halide_lars::TensorStep t;
    LARS_ASSIGN_OR_RETURN(t.param, FromDLPack(param, "param"));
    LARS_ASSIGN_OR_RETURN(t.grad, FromDLPack(grad, "grad"));
    if (momentum != nullptr) {
      LARS_ASSIGN_OR_RETURN(t.state.momentum, FromDLPack(momentum, "momentum", false, true));
    }
    if (codes != nullptr) {
      LARS_ASSIGN_OR_RETURN(t.state.codes, FromDLPack(codes, "codes", false, true));
    }
    if (absmax != nullptr) {
      LARS_ASSIGN_OR_RETURN(t.state.absmax, FromDLPack(absmax, "absmax", false, true));
    }
    t.step = step;
    t.grad_scale = grad_scale;
    halide_lars::ExecContext exec;
    exec.cuda_stream = cuda_stream;
    LARS_ASSIGN_OR_RETURN(bool stepped, halide_lars::StepTensor(ToOptions(*options), t, exec));
    *stepped_out = stepped ? 1 : 0;
    return absl::OkStatus();
  });
}

lars_status_t lars_partials_size(lars_optimizer_t* opt, int64_t* n_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (n_out == nullptr) return absl::InvalidArgumentError("n_out: null");
    *n_out = opt->lars.PartialsSize();
    return absl::OkStatus();
  });
}

lars_status_t lars_step_begin(lars_optimizer_t* opt, double* partials, int64_t n,
                              void* cuda_stream) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    halide_lars::ExecContext exec;
    exec.cuda_stream = cuda_stream;
    return opt->lars.StepBegin(partials, n, exec);
  });
}

lars_status_t lars_step_finish(lars_optimizer_t* opt, const double* partials, int64_t n,
                               void* cuda_stream) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    halide_lars::ExecContext exec;
    exec.cuda_stream = cuda_stream;
    return opt->lars.StepFinish(partials, n, exec);
  });
}

lars_status_t lars_step_begin_tensor(lars_optimizer_t* opt, const DLTensor* partials,
                                     void* cuda_stream) {
  return PartialsTensorCall(opt, partials, cuda_stream, &halide_lars::Lars::StepBegin);
}

lars_status_t lars_step_finish_tensor(lars_optimizer_t* opt, const DLTensor* partials,
                                      void* cuda_stream) {
  return PartialsTensorCall(opt, partials, cuda_stream, &halide_lars::Lars::StepFinish);
}

lars_status_t lars_param_step(lars_optimizer_t* opt, const char* name, int64_t* step_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    if (step_out == nullptr) return absl::InvalidArgumentError("step_out: null");
    LARS_ASSIGN_OR_RETURN(halide_lars::ParamStateSnapshot st, opt->lars.GetState(name));
    *step_out = st.step;
    return absl::OkStatus();
  });
}

lars_status_t lars_param_skipped_steps(lars_optimizer_t* opt, const char* name, int64_t* out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    if (out == nullptr) return absl::InvalidArgumentError("out: null");
    LARS_ASSIGN_OR_RETURN(halide_lars::ParamStateSnapshot st, opt->lars.GetState(name));
    *out = st.skipped_steps;
    return absl::OkStatus();
  });
}

lars_status_t lars_get_momentum(lars_optimizer_t* opt, const char* name, float* out, size_t n) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    LARS_ASSIGN_OR_RETURN(halide_lars::ParamStateSnapshot st, opt->lars.GetState(name));
    if (n != st.momentum.size()) {
      return absl::InvalidArgumentError(absl::StrCat("n: ", n, ", the parameter has ",
                                                     st.momentum.size(), " elements"));
    }
    if (out == nullptr && n > 0) return absl::InvalidArgumentError("out: null");
    std::copy(st.momentum.begin(), st.momentum.end(), out);
    return absl::OkStatus();
  });
}

lars_status_t lars_param_count(lars_optimizer_t* opt, int64_t* n_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (n_out == nullptr) return absl::InvalidArgumentError("n_out: null");
    *n_out = static_cast<int64_t>(opt->lars.ParamNames().size());
    return absl::OkStatus();
  });
}

lars_status_t lars_state_versions(lars_optimizer_t* opt, int64_t n, int64_t* steps_out,
                                  uint64_t* versions_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    const std::vector<halide_lars::StateVersion> v = opt->lars.StateVersions();
    if (n != static_cast<int64_t>(v.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("n: ", n, ", the optimizer has ", v.size(), " parameters"));
    }
    if (n > 0 && (steps_out == nullptr || versions_out == nullptr)) {
      return absl::InvalidArgumentError("steps_out/versions_out: null");
    }
    for (size_t i = 0; i < v.size(); ++i) {
      steps_out[i] = v[i].step;
      versions_out[i] = v[i].version;
    }
    return absl::OkStatus();
  });
}

lars_status_t lars_state_count(lars_optimizer_t* opt, const char* name, int32_t* count_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    if (count_out == nullptr) return absl::InvalidArgumentError("count_out: null");
    LARS_ASSIGN_OR_RETURN(std::vector<halide_lars::StateTensorView> st, opt->lars.StateTensors(name));
    *count_out = static_cast<int32_t>(st.size());
    return absl::OkStatus();
  });
}

namespace {

// What an exported DLManagedTensor owns: its shape, the memory and the optimizer.
struct ExportContext {
  DLManagedTensor managed{};
  int64_t shape[1] = {0};
  std::shared_ptr<const void> keepalive;
  std::shared_ptr<halide_lars::Lars> owner;
};

void DeleteExport(DLManagedTensor* t) { delete static_cast<ExportContext*>(t->manager_ctx); }

// The static spelling of a state key (key_out outlives every call).
const char* StaticKey(const std::string& key) {
  static const char* const kKeys[] = {"state1", "absmax1", "qmap1", "max1",
                                      "new_max1", "gnorm_vec", "unorm_vec"};
  for (const char* k : kKeys) {
    if (key == k) return k;
  }
  return "?";
}

}  // namespace

lars_status_t lars_export_state(lars_optimizer_t* opt, const char* name, int32_t index,
                                const char** key_out, DLManagedTensor** out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(name, "name"));
    if (key_out == nullptr || out == nullptr) return absl::InvalidArgumentError("key_out/out: null");
    LARS_ASSIGN_OR_RETURN(std::vector<halide_lars::StateTensorView> st, opt->lars.StateTensors(name));
    if (index < 0 || index >= static_cast<int32_t>(st.size())) {
      return absl::OutOfRangeError(absl::StrCat("index ", index, ": \"", name, "\" has ",
                                                st.size(), " state tensors"));
    }
    const halide_lars::StateTensorView& v = (st)[index];
    auto ctx = std::make_unique<ExportContext>();
    ctx->shape[0] = v.numel;
    ctx->keepalive = v.keepalive;
    ctx->owner = opt->owner;
    DLTensor& t = ctx->managed.dl_tensor;
    const size_t elem = halide_lars::DTypeSize(v.dtype);
    const uint64_t offset_bytes = static_cast<uint64_t>(v.offset) * elem;
    switch (v.base.device.type) {
      case DeviceType::kCPU:
        t.device = {kDLCPU, 0};
        break;
      case DeviceType::kCUDA:
        t.device = {kDLCUDA, v.base.device.id};
        break;
      case DeviceType::kOpenCL:
        t.device = {kDLOpenCL, v.base.device.id};
        break;
    }
    if (v.base.device.type == DeviceType::kOpenCL) {  // a cl_mem handle plus a byte offset
      t.data = v.base.data;
      t.byte_offset = offset_bytes;
    } else {
      t.data = v.base.data == nullptr ? nullptr : static_cast<char*>(v.base.data) + offset_bytes;
      t.byte_offset = 0;
    }
    t.ndim = 1;
    t.shape = ctx->shape;
    t.strides = nullptr;
    t.dtype = v.dtype == DType::kU8 ? DLDataType{kDLUInt, 8, 1} : DLDataType{kDLFloat, 32, 1};
    ctx->managed.manager_ctx = ctx.get();
    ctx->managed.deleter = DeleteExport;
    *key_out = StaticKey(v.key);
    *out = &ctx.release()->managed;
    return absl::OkStatus();
  });
}

lars_status_t lars_import_state(lars_optimizer_t* opt, int64_t count,
                                const lars_param_state_t* states) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (count < 0 || (count > 0 && states == nullptr)) {
      return absl::InvalidArgumentError("states: null or negative count");
    }
    std::vector<halide_lars::ImportedState> in(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      const lars_param_state_t& c = states[i];
      halide_lars::ImportedState& s = in[i];
      const std::string what = absl::StrCat("states[", i, "]");
      LARS_RETURN_IF_ERROR(CheckString(c.name, what.c_str()));
      if (c.kind < LARS_STATE_FP32 || c.kind > LARS_STATE_TENSOR8) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": kind ", c.kind));
      }
      if (c.numel < 0 || c.absmax_count < 0) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": negative numel/absmax_count"));
      }
      const bool fp32 = c.kind == LARS_STATE_FP32;
      if ((c.numel > 0 && (fp32 ? c.momentum == nullptr : c.codes == nullptr)) ||
          (c.absmax_count > 0 && c.absmax == nullptr)) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": null array"));
      }
      s.name = c.name;
      s.step = c.step;
      s.kind = static_cast<halide_lars::StateKind>(c.kind);
      s.block_size = c.block_size;
      if (fp32) {
        s.momentum.assign(c.momentum, c.momentum + c.numel);
      } else {
        s.codes.assign(c.codes, c.codes + c.numel);
      }
      if (c.absmax != nullptr) s.absmax.assign(c.absmax, c.absmax + c.absmax_count);
      if (c.qmap != nullptr) s.qmap.assign(c.qmap, c.qmap + 256);
      if (c.gnorm_vec != nullptr) s.gnorm_vec.assign(c.gnorm_vec, c.gnorm_vec + 100);
      if (c.unorm_vec != nullptr) s.unorm_vec.assign(c.unorm_vec, c.unorm_vec + 1);
    }
    return opt->lars.ImportState(in);
  });
}

lars_status_t lars_state_size(lars_optimizer_t* opt, int64_t* bytes_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (bytes_out == nullptr) return absl::InvalidArgumentError("bytes_out: null");
    *bytes_out = opt->lars.StateBytes();
    return absl::OkStatus();
  });
}

lars_status_t lars_save_state(lars_optimizer_t* opt, uint8_t* buffer, size_t capacity,
                              size_t* size_out) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (size_out == nullptr) return absl::InvalidArgumentError("size_out: null");
    LARS_ASSIGN_OR_RETURN(std::string bytes, opt->lars.SaveState());
    *size_out = bytes.size();
    if (buffer == nullptr) return absl::OkStatus();
    if (capacity < bytes.size()) {
      return absl::OutOfRangeError(absl::StrCat("capacity: ", capacity, " bytes, the checkpoint needs ",
                                                bytes.size()));
    }
    std::copy(bytes.begin(), bytes.end(), buffer);
    return absl::OkStatus();
  });
}

lars_status_t lars_load_state(lars_optimizer_t* opt, const uint8_t* data, size_t size) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    if (data == nullptr && size > 0) return absl::InvalidArgumentError("data: null");
    return opt->lars.LoadState(
        absl::string_view(reinterpret_cast<const char*>(data), data == nullptr ? 0 : size));
  });
}

lars_status_t lars_save_state_file(lars_optimizer_t* opt, const char* path) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(path, "path"));
    return opt->lars.SaveStateToFile(path);
  });
}

lars_status_t lars_load_state_file(lars_optimizer_t* opt, const char* path) {
  return Guarded([&]() -> absl::Status {
    LARS_RETURN_IF_ERROR(CheckHandle(opt));
    LARS_RETURN_IF_ERROR(CheckString(path, "path"));
    return opt->lars.LoadStateFromFile(path);
  });
}

}  // extern "C"
