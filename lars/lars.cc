#include "halide_lars/lars.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "lars/flat_set.h"
#include "lars/lars_impl.h"
#include "runtime/halide_call.h"
#include "lars/step.h"
#include "runtime/codebook.h"
#include "runtime/device_buffer.h"
#include "runtime/devices.h"
#include "base/status_macros.h"
#include "runtime/validate.h"

namespace halide_lars {


Lars::Lars(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Lars::Lars(Lars&&) noexcept = default;
Lars& Lars::operator=(Lars&&) noexcept = default;
Lars::~Lars() = default;

absl::StatusOr<Lars> Lars::Create(const LarsOptions& defaults) {
  LARS_RETURN_IF_ERROR(ValidateOptions(defaults));
  auto impl = std::make_unique<Impl>();
  impl->defaults = defaults;
  impl->group_overrides.emplace_back();
  return Lars(std::move(impl));
}

absl::StatusOr<Lars> Lars32bit::Create(LarsOptions defaults) {
  defaults.optim_bits = 32;
  return Lars::Create(defaults);
}

absl::StatusOr<Lars> Lars8bit::Create(LarsOptions defaults) {
  defaults.optim_bits = 8;
  return Lars::Create(defaults);
}

const LarsOptions& Lars::defaults() const { return impl_->defaults; }

absl::StatusOr<int> Lars::AddParamGroup(const OptionOverrides& overrides) {
  LarsOptions o = impl_->defaults;
  LARS_RETURN_IF_ERROR(ApplyOverrides(overrides, &o));
  impl_->group_overrides.push_back(overrides);
  impl_->OptionsChanged();
  return static_cast<int>(impl_->group_overrides.size()) - 1;
}

namespace {

void EraseKey(OptionOverrides* list, absl::string_view key) {
  list->erase(std::remove_if(list->begin(), list->end(),
                             [&](const auto& e) { return e.first == key; }),
              list->end());
}

// The latest value of a key wins: it replaces an earlier one rather than growing the list (and
// checkpoints) with every repeated setting (a Python binding re-sends its groups after a load).
void SetOverride(OptionOverrides* list, const std::pair<std::string, OptionValue>& kv) {
  EraseKey(list, kv.first);
  list->push_back(kv);
}

// Every option equal, value for value (numbers exactly; NaN never equals).
bool SameOptions(const LarsOptions& a, const LarsOptions& b) {
  const OptionOverrides x = OptionsAsOverrides(a), y = OptionsAsOverrides(b);
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    const OptionValue &u = x[i].second, &v = y[i].second;
    if (x[i].first != y[i].first || u.is_text() != v.is_text() ||
        (u.is_text() ? u.text() != v.text() : u.number() != v.number())) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status Lars::SetGroupOption(int group, absl::string_view key, const OptionValue& value) {
  LARS_RETURN_IF_ERROR(impl_->CheckGroup(group));
  const OptionOverrides extra = {{std::string(key), value}};
  LARS_ASSIGN_OR_RETURN(const LarsOptions with, impl_->GroupOptions(group, &extra));
  for (const auto& p : impl_->params) {
    if (p->group == group) LARS_RETURN_IF_ERROR(impl_->ParamOptions(*p, &extra).status());
  }
  // A group holds only what differs from the defaults: a value the group would have anyway
  // (e.g. group 0, made from the defaults, given them again by a binding) is not stored, so a
  // checkpoint has each option once.
  OptionOverrides overrides = impl_->group_overrides[group];
  EraseKey(&overrides, key);
  LarsOptions inherited = impl_->defaults;
  LARS_RETURN_IF_ERROR(ApplyOverrides(overrides, &inherited));
  if (!SameOptions(inherited, with)) overrides.push_back(extra[0]);
  impl_->group_overrides[group] = std::move(overrides);
  impl_->OptionsChanged();
  return absl::OkStatus();
}

absl::Status Lars::AddParam(absl::string_view name, const TensorView& param,
                            const TensorView& grad, int group) {
  if (name.empty()) return absl::InvalidArgumentError("name: empty");
  LARS_RETURN_IF_ERROR(impl_->CheckNewName(name));
  LARS_RETURN_IF_ERROR(impl_->CheckGroup(group));
  auto slot = std::make_unique<ParamSlot>();
  slot->name = std::string(name);
  slot->group = group;
  slot->param = param;
  LARS_RETURN_IF_ERROR(internal::ValidateParamAndGrad(*slot, grad));
  slot->grad = grad;
  LARS_ASSIGN_OR_RETURN(LarsOptions options, impl_->ParamOptions(*slot));
  LARS_RETURN_IF_ERROR(internal::CheckSupported(*slot, options));
  LARS_RETURN_IF_ERROR(internal::AllocateState(slot.get(), options));
  impl_->by_name[slot->name] = slot.get();
  impl_->params.push_back(std::move(slot));
  return absl::OkStatus();
}

absl::Status Lars::SetGrad(absl::string_view name, const TensorView& grad) {
  LARS_ASSIGN_OR_RETURN(ParamSlot * slot, impl_->Find(name));
  if (slot->flat_set != nullptr && grad.data != nullptr) {
    const TensorView& own = slot->flat_grad;
    if (grad.data != own.data || grad.numel != own.numel || grad.dtype != own.dtype ||
        grad.device != own.device) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": a flat parameter's gradient is its slice of the flat gradient buffer (pass "
          "that slice, or an empty view for no gradient)"));
    }
  }
  LARS_RETURN_IF_ERROR(internal::ValidateParamAndGrad(*slot, grad));
  slot->grad = grad;
  return absl::OkStatus();
}

absl::Status Lars::OverrideConfig(absl::string_view name, absl::string_view key,
                                  const OptionValue& value) {
  LARS_ASSIGN_OR_RETURN(ParamSlot * slot, impl_->Find(name));
  const OptionOverrides extra = {{std::string(key), value}};
  LARS_ASSIGN_OR_RETURN(LarsOptions options, impl_->ParamOptions(*slot, nullptr, &extra));
  LARS_RETURN_IF_ERROR(internal::CheckSupported(*slot, options));
  if (slot->flat_set != nullptr) LARS_RETURN_IF_ERROR(internal::CheckFlatSupported(*slot, options));
  SetOverride(&slot->overrides, extra[0]);
  impl_->OptionsChanged();
  return absl::OkStatus();
}

absl::Status Lars::Step(const ExecContext& exec) {
  if (impl_->sharded_step_open) {
    return absl::FailedPreconditionError("Step: a sharded step is open (StepBegin without StepFinish)");
  }
  const int64_t calls_before = internal::PipelineCalls();
  absl::Status status = StepImpl(impl_->Exec(exec));
  impl_->last_step_pipelines = internal::PipelineCalls() - calls_before;
  return status;
}

int64_t Lars::LastStepPipelines() const { return impl_->last_step_pipelines; }

absl::Status Lars::SetNumThreads(int n) {
  if (n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads: ", n, ", expected >= 0 (0: automatic)"));
  }
  impl_->num_threads = n;
  return absl::OkStatus();
}

int Lars::num_threads() const { return impl_->num_threads; }

absl::StatusOr<float> GradUnscale(double scale) {
  const float inv = static_cast<float>(1.0 / scale);
  if (!std::isfinite(scale) || !(scale > 0.0) || !std::isfinite(inv) || inv == 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("grad_scale: ", scale, ", expected finite and > 0 (1: no loss scaling)"));
  }
  return inv;
}

absl::Status Lars::SetGradScale(double scale) {
  LARS_ASSIGN_OR_RETURN(const float inv, GradUnscale(scale));
  impl_->grad_scale = scale;
  impl_->grad_unscale = inv;
  return absl::OkStatus();
}

double Lars::grad_scale() const { return impl_->grad_scale; }

absl::Status Lars::StepImpl(const ExecContext& exec) {
  // Validate everything and prepare every buffer first: nothing is modified on bad input.
  LARS_ASSIGN_OR_RETURN(Impl::Work work, impl_->StepWork(/*sharded=*/false));
  LARS_ASSIGN_OR_RETURN(auto flat_options, impl_->FlatWork());
  for (auto& [slot, options] : work) {
    LARS_RETURN_IF_ERROR(internal::PrepareStep(slot, options, exec, impl_->grad_unscale));
  }
  auto& flat_sets = impl_->flat_sets;
  // Phase 1 (no state changes) runs the passes that read a gradient first and checks it; phase 2
  // writes. With nonfinite=error anywhere, every check precedes every write (nothing may change
  // if any gradient is bad); otherwise each tensor's two phases run back to back, so its second
  // pass finds the tensor still in cache.
  bool any_error = false;
  for (auto& [slot, options] : work) any_error |= options.nonfinite == Nonfinite::kError;
  for (const auto& opts : flat_options) {
    for (const LarsOptions& o : opts) any_error |= o.nonfinite == Nonfinite::kError;
  }
  // Flat parameter sets: per segment, the norms pass (no state written) and check, then the
  // update; with nonfinite=error anywhere, every segment's check before any update.
  std::vector<std::vector<bool>> flat_finite(flat_sets.size());
  std::vector<internal::FlatPlan> flat_plans(flat_sets.size());
  for (size_t a = 0; a < flat_sets.size(); ++a) {
    flat_finite[a].assign(flat_sets[a]->members.size(), true);
  }
  auto flat_check = [&](size_t a, const internal::FlatSegment& seg) -> absl::Status {
    LARS_RETURN_IF_ERROR(internal::FlatNorms(flat_sets[a].get(), flat_plans[a], seg,
                                              flat_options[a], exec, &flat_finite[a]));
    for (int32_t t = seg.t0; t < seg.t1; ++t) {
      const ParamSlot* slot = flat_sets[a]->members[t];
      if (!flat_finite[a][t] && flat_options[a][t].nonfinite == Nonfinite::kError) {
        return absl::InvalidArgumentError(absl::StrCat(
            slot->name, ": gradient has NaN or Inf (nonfinite=error): no parameter was updated"));
      }
    }
    return absl::OkStatus();
  };
  for (size_t a = 0; a < flat_sets.size(); ++a) {
    LARS_ASSIGN_OR_RETURN(flat_plans[a], internal::FlatBegin(flat_sets[a].get(), flat_options[a],
                                                             impl_->grad_unscale));
  }
  auto finish = [&](size_t i, bool finite, const internal::StepPlan& plan) -> absl::Status {
    auto& [slot, options] = work[i];
    if (!finite) {
      ++slot->skipped_steps;  // nonfinite=skip: parameter and state stay bit-identical
      return absl::OkStatus();
    }
    return internal::FinishStep(slot, options, exec, plan);
  };
  if (!any_error) {
    for (size_t i = 0; i < work.size(); ++i) {
      internal::StepPlan plan;
      LARS_ASSIGN_OR_RETURN(bool finite,
                            internal::CheckGradient(work[i].first, work[i].second, exec, &plan));
      LARS_RETURN_IF_ERROR(finish(i, finite, plan));
    }
    for (size_t a = 0; a < flat_sets.size(); ++a) {
      for (const internal::FlatSegment& seg : flat_sets[a]->segments) {
        LARS_RETURN_IF_ERROR(flat_check(a, seg));
        LARS_RETURN_IF_ERROR(internal::FlatUpdate(flat_sets[a].get(), seg, exec));
      }
      internal::FlatCount(flat_sets[a].get(), flat_finite[a]);
    }
    return absl::OkStatus();
  }
  for (size_t a = 0; a < flat_sets.size(); ++a) {
    for (const internal::FlatSegment& seg : flat_sets[a]->segments) {
      LARS_RETURN_IF_ERROR(flat_check(a, seg));
    }
  }
  std::vector<internal::StepPlan> plans(work.size());
  std::vector<bool> finite(work.size(), true);
  for (size_t i = 0; i < work.size(); ++i) {
    auto& [slot, options] = work[i];
    LARS_ASSIGN_OR_RETURN(bool ok, internal::CheckGradient(slot, options, exec, &plans[i]));
    finite[i] = ok;
    if (!ok && options.nonfinite == Nonfinite::kError) {
      return absl::InvalidArgumentError(absl::StrCat(
          slot->name, ": gradient has NaN or Inf (nonfinite=error): no parameter was updated"));
    }
  }
  for (size_t i = 0; i < work.size(); ++i) LARS_RETURN_IF_ERROR(finish(i, finite[i], plans[i]));
  for (size_t a = 0; a < flat_sets.size(); ++a) {
    for (const internal::FlatSegment& seg : flat_sets[a]->segments) {
      LARS_RETURN_IF_ERROR(internal::FlatUpdate(flat_sets[a].get(), seg, exec));
    }
    internal::FlatCount(flat_sets[a].get(), flat_finite[a]);
  }
  return absl::OkStatus();
}

absl::Status Lars::AddFlatParams(const TensorView& params, const TensorView& grads,
                                 const std::vector<FlatParam>& tensors) {
  std::vector<LarsOptions> options;
  for (const FlatParam& t : tensors) {
    LARS_RETURN_IF_ERROR(impl_->CheckNewName(t.name));
    if (absl::Status s = impl_->CheckGroup(t.group); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(t.name, ": ", s.message()));
    }
    LARS_ASSIGN_OR_RETURN(options.emplace_back(), impl_->GroupOptions(t.group));
  }
  std::vector<std::unique_ptr<ParamSlot>> slots;
  LARS_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<internal::FlatSet>> flat_sets,
                        internal::BuildFlatSets(params, grads, tensors, options, &slots));
  for (auto& slot : slots) {
    impl_->by_name[slot->name] = slot.get();
    impl_->params.push_back(std::move(slot));
  }
  for (auto& flat_set : flat_sets) impl_->flat_sets.push_back(std::move(flat_set));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Lars::PlanFlatParams(std::vector<FlatParam>* tensors) const {
  if (tensors == nullptr) return absl::InvalidArgumentError("tensors: null");
  // Which tensors get blockwise 8-bit state (from their group's options); the layout is
  // aligned for the largest block size any of them asks for.
  std::vector<bool> eight_bit(tensors->size(), false);
  int64_t alignment = kFlatAlignment;
  for (size_t i = 0; i < tensors->size(); ++i) {
    const FlatParam& t = (*tensors)[i];
    if (t.numel < 0) {
      return absl::InvalidArgumentError(absl::StrCat(t.name, ": ", t.numel, " elements"));
    }
    LARS_RETURN_IF_ERROR(impl_->CheckGroup(t.group));
    LARS_ASSIGN_OR_RETURN(LarsOptions o, impl_->GroupOptions(t.group));
    if (internal::DesiredKind(o, t.numel) == StateKind::kBlockwise8) {
      eight_bit[i] = true;
      alignment = std::max<int64_t>(alignment, o.block_size);
    }
  }
  // Tensors of one state kind side by side (8-bit first, then fp32; each kind in the given
  // order): a flat set's buffers and CPU segments span its own tensors only. Interleaved, the fp32
  // flat set of a LARS8bit ResNet-50 (its small tensors) spanned the whole buffer: 4 B of momentum
  // per parameter for ~50K fp32 elements, and an update pass over every row.
  std::vector<size_t> order(tensors->size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_partition(order.begin(), order.end(), [&](size_t i) { return eight_bit[i]; });
  std::vector<FlatParam> by_kind;
  for (size_t i : order) by_kind.push_back((*tensors)[i]);
  const int64_t total = LayoutFlatParams(&by_kind, alignment);
  for (size_t k = 0; k < order.size(); ++k) (*tensors)[order[k]].offset = by_kind[k].offset;
  return total;
}

absl::StatusOr<FlatBuffers> Lars::AllocateFlatParams(const Device& device, DType dtype,
                                                     std::vector<FlatParam>* tensors) {
  if (tensors == nullptr) return absl::InvalidArgumentError("tensors: null");
  std::vector<FlatParam> laid = *tensors;
  LARS_ASSIGN_OR_RETURN(int64_t total, PlanFlatParams(&laid));
  const int64_t n = std::max<int64_t>(total, 1);
  std::vector<DeviceBuffer> bufs;
  const std::vector<uint8_t> zeros(n * DTypeSize(dtype), 0);
  for (int i = 0; i < 2; ++i) {
    LARS_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(device, dtype, n));
    LARS_RETURN_IF_ERROR(b.CopyFromHost(zeros.data()));
    bufs.push_back(std::move(b));
  }
  FlatBuffers views{bufs[0].view(), bufs[1].view()};
  const size_t first_flat = impl_->flat_sets.size();
  LARS_RETURN_IF_ERROR(AddFlatParams(views.params, views.grads, laid));
  impl_->flat_sets[first_flat]->owned_params = std::move(bufs[0]);  // freed with the optimizer
  impl_->flat_sets[first_flat]->owned_grads = std::move(bufs[1]);
  *tensors = std::move(laid);
  return views;
}

absl::StatusOr<ParamStateSnapshot> Lars::GetState(absl::string_view name) const {
  LARS_ASSIGN_OR_RETURN(const ParamSlot* slot, impl_->Find(name));
  LARS_ASSIGN_OR_RETURN(LarsOptions options, impl_->ParamOptions(*slot));
  return internal::Snapshot(*slot, options);
}

namespace {

// Element `offset` (and `numel` on) of buffer `b` as state tensor `key`.
StateTensorView StateOf(const char* key, DType dtype, DeviceBuffer& b, int64_t offset,
                        int64_t numel) {
  StateTensorView v;
  v.key = key;
  v.dtype = dtype;
  v.base = b.base();
  v.offset = b.base_offset() + offset;
  v.numel = numel;
  v.keepalive = b.Pin();
  return v;
}

bool HasUnormVec(const LarsOptions& o) {
  return o.trust_mode == TrustMode::kClip && o.max_unorm > 0.0;
}

}  // namespace

absl::StatusOr<std::vector<StateTensorView>> Lars::StateTensors(absl::string_view name) {
  LARS_ASSIGN_OR_RETURN(ParamSlot* slot, impl_->Find(name));
  LARS_ASSIGN_OR_RETURN(LarsOptions options, impl_->ParamOptions(*slot));
  const int64_t n = slot->param.numel;
  std::vector<StateTensorView> out;
  if (slot->kind == StateKind::kFp32) {
    out.push_back(StateOf("state1", DType::kF32, slot->momentum, 0, n));
  } else {
    out.push_back(StateOf("state1", DType::kU8, slot->codes, 0, n));
    // The codebook, once per device: bitsandbytes shares one qmap tensor among its parameters.
    const Device& d = slot->param.device;
    auto key = std::make_pair(static_cast<int>(d.type), d.id);
    auto it = impl_->qmaps.find(key);
    if (it == impl_->qmaps.end()) {
      const std::array<float, 256>& code = DynamicCodebook();
      LARS_ASSIGN_OR_RETURN(DeviceBuffer q, DeviceBuffer::Allocate(d, DType::kF32, 256));
      LARS_RETURN_IF_ERROR(q.CopyFromHost(code.data()));
      it = impl_->qmaps.emplace(key, std::move(q)).first;
    }
    out.push_back(StateOf("qmap1", DType::kF32, it->second, 0, 256));
    if (slot->kind == StateKind::kBlockwise8) {  // bitsandbytes' order: state1, qmap1, absmax1
      out.push_back(StateOf("absmax1", DType::kF32, slot->absmax, 0, slot->absmax.view().numel));
    }
    if (slot->kind == StateKind::kTensor8) {
      out.push_back(StateOf("max1", DType::kF32, slot->norms, 3, 1));
      out.push_back(StateOf("new_max1", DType::kF32, slot->scratch_norms, 3, 1));
    }
  }
  if (slot->ring.view().numel > 0 && options.percentile_clipping < 100) {
    out.push_back(StateOf("gnorm_vec", DType::kF32, slot->ring, 0, slot->ring.view().numel));
  }
  if (HasUnormVec(options) && slot->norms.view().numel > 1) {
    out.push_back(StateOf("unorm_vec", DType::kF32, slot->norms, 1, 1));
  }
  return out;
}

std::vector<StateVersion> Lars::StateVersions() const {
  std::vector<StateVersion> out;
  out.reserve(impl_->params.size());
  for (const auto& p : impl_->params) {
    uint64_t h = static_cast<uint64_t>(p->kind) + 0x9e3779b97f4a7c15ull;
    for (const DeviceBuffer* b :
         {&p->momentum, &p->codes, &p->absmax, &p->norms, &p->scratch_norms, &p->ring}) {
      const TensorView base = b->base();
      for (uint64_t x : {reinterpret_cast<uint64_t>(base.data),
                         static_cast<uint64_t>(b->base_offset()),
                         static_cast<uint64_t>(b->view().numel)}) {
        h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      }
    }
    out.push_back({p->step, h});
  }
  return out;
}

absl::StatusOr<LarsOptions> Lars::EffectiveOptions(absl::string_view name) const {
  LARS_ASSIGN_OR_RETURN(const ParamSlot* slot, impl_->Find(name));
  return impl_->ParamOptions(*slot);
}

std::vector<std::string> Lars::ParamNames() const {
  std::vector<std::string> names;
  for (const auto& p : impl_->params) names.push_back(p->name);
  return names;
}

int64_t Lars::SkippedSteps() const {
  int64_t n = 0;
  for (const auto& p : impl_->params) n += p->skipped_steps;
  return n;
}

int64_t Lars::StateBytes() const {
  int64_t bytes = 0;
  for (const auto& p : impl_->params) {
    // A flat tensor's momentum / codes / absmax / norms are slices of its flat set's buffers,
    // counted once below with the flat set's (whose range may include other tensors' elements).
    bytes += p->flat_set == nullptr ? internal::StateBytes(*p) : internal::OwnStateBytes(*p);
  }
  for (const auto& a : impl_->flat_sets) {
    bytes += a->table_bytes;
    for (const DeviceBuffer* d : {&a->momentum, &a->codes, &a->absmax, &a->norms}) {
      bytes += static_cast<int64_t>(d->view().bytes());
    }
  }
  return bytes;
}

}  // namespace halide_lars
