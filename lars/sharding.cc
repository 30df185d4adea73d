#include "lars/sharding.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "halide_lars/lars.h"
#include "lars/lars_impl.h"
#include "lars/kernel_plan.h"
#include "lars/step.h"
#include "runtime/device_buffer.h"
#include "runtime/devices.h"
#include "base/status_macros.h"
#include "runtime/validate.h"

namespace halide_lars {
namespace internal {

absl::Status CheckShardable(const ParamSlot& slot, const LarsOptions& o) {
  // The state PrepareStep will give the slot (before it converts anything).
  const StateKind kind = DesiredKind(o, FullNumel(slot));
  if (kind == StateKind::kTensor8) {
    return absl::UnimplementedError(absl::StrCat(
        slot.name, ": per-tensor 8-bit state in a sharded step (use blockwise 8-bit state)"));
  }
  if (kind == StateKind::kBlockwise8 && slot.full_numel >= 0) {
    const int64_t b = o.block_size;
    const bool ends = slot.shard_offset + slot.param.numel == slot.full_numel;
    if (slot.shard_offset % b != 0 || (!ends && slot.param.numel % b != 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          slot.name, ": shard [", slot.shard_offset, ", ", slot.shard_offset + slot.param.numel,
          ") of ", slot.full_numel, " elements does not start and end on a multiple of the 8-bit "
          "block size ", b, " (blocks may not straddle ranks)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ShardPartials(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec,
                           double out[kPartialsPerTensor]) {
  for (int i = 0; i < kPartialsPerTensor; ++i) out[i] = 0.0;
  if (slot->param.numel == 0) return absl::OkStatus();
  float n[3];
  if (o.percentile_clipping == 100) {
    LARS_RETURN_IF_ERROR(NormsPass(slot, o, exec));
    LARS_RETURN_IF_ERROR(slot->scratch_norms.CopyToHost(n));  // synchronizes a CUDA stream
    out[0] = n[0];
    out[1] = n[1];
    out[4] = n[2];
    return absl::OkStatus();
  }
  // Probe scales in a scratch buffer: the slot's gradient scale (state) stays as it is.
  DeviceBuffer probe;
  LARS_ASSIGN_OR_RETURN(probe, DeviceBuffer::Allocate(slot->param.device, DType::kF32, 1));
  std::swap(slot->gscale, probe);
  double u[3];
  absl::Status st;
  // Probes in units of the AMP unscale u (1 without): the partials are those of the unscaled
  // gradient, bit for bit when u is a power of two, and the clip factor c = s / u scales them.
  const float u_s = slot->grad_unscale;
  const float scales[3] = {0.0f, u_s, -u_s};
  for (int i = 0; i < 3 && st.ok(); ++i) {
    st = slot->gscale.CopyFromHost(&scales[i]);
    if (st.ok()) st = NormsPass(slot, o, exec);
    if (st.ok()) st = slot->scratch_norms.CopyToHost(n);
    u[i] = n[1];
  }
  std::swap(slot->gscale, probe);
  LARS_RETURN_IF_ERROR(st);
  out[0] = n[0];
  out[1] = u[0];                       // A = Σu²(0)
  out[2] = (u[1] - u[2]) / 4.0;        // B: Σu²(1) - Σu²(-1) = 4B
  out[3] = (u[1] + u[2]) / 2.0 - u[0]; // C: Σu²(1) + Σu²(-1) = 2A + 2C
  out[4] = n[2];
  return absl::OkStatus();
}

absl::Status ShardFinish(ParamSlot* slot, const LarsOptions& o, const ExecContext& exec,
                         const double reduced[kPartialsPerTensor]) {
  StepPlan plan;
  plan.norms_done = true;
  if (slot->param.numel > 0) {
    double unorm2 = reduced[1];
    if (o.percentile_clipping < 100) {
      const float gnorm[2] = {static_cast<float>(reduced[4]), 0.0f};
      LARS_RETURN_IF_ERROR(slot->gnorm.CopyFromHost(gnorm));
      LARS_RETURN_IF_ERROR(PercentilePass(slot, o, exec, slot->step + 1));
      plan.clip_done = true;
      float s;
      LARS_RETURN_IF_ERROR(slot->gscale.CopyToHost(&s));  // synchronizes a CUDA stream
      const double c = double{s} / slot->grad_unscale;  // the clip factor (ShardPartials' unit)
      unorm2 = std::max(0.0, reduced[1] + 2.0 * c * reduced[2] + c * c * reduced[3]);
    }
    std::vector<float> n(slot->scratch_norms.view().numel, 0.0f);
    n[0] = static_cast<float>(reduced[0]);
    n[1] = static_cast<float>(unorm2);
    n[2] = static_cast<float>(reduced[4]);
    LARS_RETURN_IF_ERROR(slot->scratch_norms.CopyFromHost(n.data()));
  }
  const bool norms_pass = RunsNormsPass(o, slot->kind);
  LARS_RETURN_IF_ERROR(FinishStep(slot, o, exec, plan));
  // Without a norms pass FinishStep keeps the previous norms; the sharded ones are the truth.
  if (!norms_pass && slot->param.numel > 0) std::swap(slot->norms, slot->scratch_norms);
  return absl::OkStatus();
}

}  // namespace internal

namespace {

// The partials buffer of a sharded step: kPartialsPerTensor values per registered parameter.
absl::Status CheckPartials(const double* partials, int64_t n, int64_t want, size_t params) {
  if (partials == nullptr && n > 0) return absl::InvalidArgumentError("partials: null");
  if (n != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        "partials: ", n, " values for ", params, " parameters (need ", want, ": ",
        internal::kPartialsPerTensor, " per parameter)"));
  }
  return absl::OkStatus();
}

// A partials tensor: f64, PartialsSize() elements, on a device this build supports.
absl::Status CheckPartialsTensor(const TensorView& t, int64_t want, size_t params) {
  LARS_RETURN_IF_ERROR(internal::ValidateTensor("partials", t));
  if (t.dtype != DType::kF64) {
    return absl::InvalidArgumentError(
        absl::StrCat("partials: dtype ", DTypeName(t.dtype), ", expected f64"));
  }
  LARS_RETURN_IF_ERROR(CheckPartials(static_cast<const double*>(t.data), t.numel, want, params));
  return DeviceStatus(t.device);
}

}  // namespace

absl::Status Lars::SetShard(absl::string_view name, int64_t offset, int64_t full_numel) {
  LARS_ASSIGN_OR_RETURN(ParamSlot * slot, impl_->Find(name));
  if (slot->flat_set != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": a flat parameter (AddFlatParams) cannot be a shard"));
  }
  if (slot->step > 0 || impl_->sharded_step_open) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": SetShard after the first step (the state is per shard)"));
  }
  if (offset < 0 || full_numel < 0 || offset > full_numel ||
      slot->param.numel > full_numel - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": shard [", offset, ", ", offset + slot->param.numel, ") is not inside a tensor of ",
        full_numel, " elements"));
  }
  LARS_ASSIGN_OR_RETURN(LarsOptions options, impl_->ParamOptions(*slot));
  ParamSlot trial = ParamSlot();
  trial.name = slot->name;
  trial.param = slot->param;
  trial.shard_offset = offset;
  trial.full_numel = full_numel;
  LARS_RETURN_IF_ERROR(internal::CheckSupported(trial, options));
  LARS_RETURN_IF_ERROR(internal::CheckShardable(trial, options));
  // The state kind follows the whole tensor's size (every rank picks the same one).
  LARS_RETURN_IF_ERROR(internal::AllocateState(&trial, options));
  slot->shard_offset = offset;
  slot->full_numel = full_numel;
  slot->kind = trial.kind;
  slot->block_size = trial.block_size;
  for (auto [to, from] : {std::pair{&slot->momentum, &trial.momentum},
                          {&slot->codes, &trial.codes}, {&slot->absmax, &trial.absmax},
                          {&slot->norms, &trial.norms}, {&slot->scratch_norms, &trial.scratch_norms},
                          {&slot->gscale, &trial.gscale}}) {
    *to = std::move(*from);
  }
  slot->gscale_filled = trial.gscale_filled;
  return absl::OkStatus();
}

int64_t Lars::PartialsSize() const {
  return internal::kPartialsPerTensor * static_cast<int64_t>(impl_->params.size());
}

absl::Status Lars::StepBegin(double* partials, int64_t n, const ExecContext& call) {
  const ExecContext exec = impl_->Exec(call);
  if (impl_->sharded_step_open) {
    return absl::FailedPreconditionError("StepBegin: the previous StepBegin has no StepFinish");
  }
  LARS_RETURN_IF_ERROR(CheckPartials(partials, n, PartialsSize(), impl_->params.size()));
  std::vector<size_t> index;
  LARS_ASSIGN_OR_RETURN(Impl::Work work, impl_->StepWork(/*sharded=*/true, &index));
  for (auto& [slot, options] : work) {
    LARS_RETURN_IF_ERROR(internal::PrepareStep(slot, options, exec, impl_->grad_unscale));
  }
  std::vector<double> out(n, 0.0);
  for (size_t w = 0; w < work.size(); ++w) {
    LARS_RETURN_IF_ERROR(internal::ShardPartials(
        work[w].first, work[w].second, exec, &out[internal::kPartialsPerTensor * index[w]]));
  }
  std::copy(out.begin(), out.end(), partials);
  impl_->sharded_work = std::move(work);
  impl_->sharded_index = std::move(index);
  impl_->sharded_step_open = true;
  return absl::OkStatus();
}

absl::Status Lars::StepFinish(const double* partials, int64_t n, const ExecContext& call) {
  const ExecContext exec = impl_->Exec(call);
  if (!impl_->sharded_step_open) {
    return absl::FailedPreconditionError("StepFinish: no open sharded step (call StepBegin)");
  }
  LARS_RETURN_IF_ERROR(CheckPartials(partials, n, PartialsSize(), impl_->params.size()));
  const std::vector<size_t>& index = impl_->sharded_index;
  // Every check precedes every write: the reduced Σg² decides for all ranks alike.
  std::vector<bool> finite(index.size(), true);
  for (size_t w = 0; w < index.size(); ++w) {
    const double* q = &partials[internal::kPartialsPerTensor * index[w]];
    auto& [slot, options] = impl_->sharded_work[w];
    if (q[0] < 0 || q[1] < 0 || q[4] < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          slot->name, ": reduced partial sums of squares are negative (not an all-reduce SUM "
                      "of StepBegin's output?); the sharded step stays open"));
    }
    if (options.nonfinite == Nonfinite::kPropagate) continue;
    finite[w] = std::isfinite(static_cast<float>(q[4]));  // as the kernels will see it
    if (!finite[w] && options.nonfinite == Nonfinite::kError) {
      return absl::InvalidArgumentError(absl::StrCat(
          slot->name, ": gradient has NaN or Inf on some rank (nonfinite=error): no parameter "
                      "was updated; the sharded step stays open"));
    }
  }
  impl_->sharded_step_open = false;
  const Impl::Work work = std::move(impl_->sharded_work);
  impl_->sharded_work.clear();
  // Last tensor first: StepBegin's last norms passes left those tensors in cache.
  for (size_t w = index.size(); w-- > 0;) {
    auto& [slot, options] = work[w];
    if (!finite[w]) {
      ++slot->skipped_steps;
      continue;
    }
    LARS_RETURN_IF_ERROR(internal::ShardFinish(
        slot, options, exec, &partials[internal::kPartialsPerTensor * index[w]]));
  }
  return absl::OkStatus();
}

absl::Status Lars::StepBegin(const TensorView& partials, const ExecContext& exec) {
  LARS_RETURN_IF_ERROR(CheckPartialsTensor(partials, PartialsSize(), impl_->params.size()));
  std::vector<double> host(partials.numel);
  LARS_RETURN_IF_ERROR(StepBegin(host.data(), partials.numel, exec));
  DeviceBuffer out = DeviceBuffer::Borrow(partials, 0, partials.numel, exec);
  if (absl::Status st = out.CopyFromHost(host.data()); !st.ok()) {
    impl_->sharded_step_open = false;  // as if StepBegin had not run (it changed no state)
    impl_->sharded_work.clear();
    return st;
  }
  return absl::OkStatus();
}

absl::Status Lars::StepFinish(const TensorView& partials, const ExecContext& exec) {
  LARS_RETURN_IF_ERROR(CheckPartialsTensor(partials, PartialsSize(), impl_->params.size()));
  std::vector<double> host(partials.numel);
  const DeviceBuffer in = DeviceBuffer::Borrow(partials, 0, partials.numel, exec);
  LARS_RETURN_IF_ERROR(in.CopyToHost(host.data()));
  return StepFinish(host.data(), partials.numel, exec);
}

}  // namespace halide_lars
