#include "lars/flat_set.h"

#include <algorithm>
#include <map>
#include <cmath>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/kernel_abi.h"
#include "base/status_macros.h"
#include "lars/kernel_plan.h"
#include "runtime/lars_kernels.h"
#include "runtime/validate.h"

namespace halide_lars {

static_assert(kFlatAlignment == kFlatAlign, "lars.h and base/kernel_abi.h disagree");

int64_t LayoutFlatParams(std::vector<FlatParam>* params, int64_t alignment) {
  alignment = std::max<int64_t>(alignment, kFlatAlignment);
  int64_t n = 0;
  for (FlatParam& p : *params) {
    n = (n + alignment - 1) / alignment * alignment;
    p.offset = n;
    n += std::max<int64_t>(p.numel, 0);
  }
  return n;
}

namespace internal {
namespace {

absl::StatusOr<DeviceBuffer> UploadI32(const Device& d, const std::vector<int32_t>& v) {
  // i32 tables travel in f32-typed buffers of the same size (BufferView retypes them).
  LARS_ASSIGN_OR_RETURN(DeviceBuffer b,
                        DeviceBuffer::Allocate(d, DType::kF32, static_cast<int64_t>(v.size())));
  LARS_RETURN_IF_ERROR(b.CopyFromHost(v.data()));
  return b;
}

}  // namespace

absl::Status CheckFlatSupported(const ParamSlot& slot, const LarsOptions& o) {
  auto unimplemented = [&](absl::string_view what) {
    return absl::UnimplementedError(absl::StrCat(
        slot.name, ": ", what, " is not supported for flat parameters (AddFlatParams); register "
        "this tensor with AddParam"));
  };
  const StateKind want = DesiredKind(o, slot.param.numel);
  if (want == StateKind::kTensor8) return unimplemented("per-tensor 8-bit state (block_wise=false)");
  if (slot.flat_set != nullptr &&
      (want != slot.kind || (want == StateKind::kBlockwise8 && o.block_size != slot.block_size))) {
    return unimplemented("changing the state kind (fp32, 8-bit, block size) after AddFlatParams");
  }
  if (o.percentile_clipping < 100) return unimplemented("percentile_clipping < 100");
  if (o.step_order == StepOrder::kMomentumFirst) return unimplemented("step_order momentum_first");
  return SelectFlatKernels(o, want, slot.param.dtype, slot.param.device.type);
}

namespace {

// One flat set over `params`/`grads` (already the group's element range; tensor offsets local to
// it) for the tensors idx of `tensors`, all of state `kind` (block size `block` for 8-bit).
// Their slots go to (*slots)[i] for tensor i.
absl::StatusOr<std::unique_ptr<FlatSet>> BuildOneFlat(
    const TensorView& params, const TensorView& grads, const std::vector<FlatParam>& tensors,
    const std::vector<LarsOptions>& options, const std::vector<size_t>& idx, StateKind kind,
    int block, std::vector<std::unique_ptr<ParamSlot>>* slots) {
  std::vector<size_t> order = idx;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  auto flat_set = std::make_unique<FlatSet>();
  flat_set->params = params;
  flat_set->grads = grads;
  flat_set->kind = kind;
  flat_set->block = block;
  const Device& d = params.device;
  const int64_t n = params.numel;
  const int64_t num_t = static_cast<int64_t>(order.size());
  // Table index = rank by offset, so a segment's tensors, chunks and elements are contiguous.
  std::vector<int32_t> ttab(kFlatTensorCols * num_t), ctab, rtab((n + kFlatAlign - 1) / kFlatAlign, -1);
  const bool segmented = d.type == DeviceType::kCPU;
  int64_t seg_elems = 0;
  for (int64_t t = 0; t < num_t; ++t) {
    const FlatParam& f = tensors[order[t]];
    const int64_t nchunks = (f.numel + kFlatChunk - 1) / kFlatChunk;
    const int32_t c_first = static_cast<int32_t>(ctab.size() / kFlatChunkCols);
    ttab[kFlatTensorCols * t + kFlatOffset] = static_cast<int32_t>(f.offset);
    ttab[kFlatTensorCols * t + kFlatNumel] = static_cast<int32_t>(f.numel);
    ttab[kFlatTensorCols * t + kFlatFirstChunk] = c_first;
    ttab[kFlatTensorCols * t + kFlatChunkCount] = static_cast<int32_t>(nchunks);
    for (int64_t k = 0; k < nchunks; ++k) {
      ctab.push_back(static_cast<int32_t>(f.offset + k * kFlatChunk));
      ctab.push_back(static_cast<int32_t>(std::min<int64_t>(kFlatChunk, f.numel - k * kFlatChunk)));
      ctab.push_back(static_cast<int32_t>(t));
    }
    flat_set->max_chunks = std::max<int32_t>(flat_set->max_chunks, static_cast<int32_t>(nchunks));
    for (int64_t r = f.offset / kFlatAlign; r < (f.offset + f.numel + kFlatAlign - 1) / kFlatAlign; ++r) {
      rtab[r] = static_cast<int32_t>(t);
    }
    // Segments: whole tensors, about kFlatSegment elements each on the CPU; one on GPUs.
    if (flat_set->segments.empty() || (segmented && seg_elems >= kFlatSegment)) {
      flat_set->segments.push_back({static_cast<int32_t>(t), static_cast<int32_t>(t), c_first,
                                 c_first, f.offset, f.offset});
      seg_elems = 0;
    }
    FlatSegment& seg = flat_set->segments.back();
    seg.t1 = static_cast<int32_t>(t + 1);
    seg.c1 = static_cast<int32_t>(ctab.size() / kFlatChunkCols);
    seg.x1 = std::max(seg.x1, f.offset + f.numel);
    seg_elems += f.numel;
  }
  if (ctab.empty()) ctab = {0, 0, 0};  // every tensor empty: one empty chunk (no table is empty)
  if (!segmented) {  // one segment: the whole tables and flat buffers (no crops on OpenCL)
    FlatSegment& all = flat_set->segments.back();
    all.c1 = static_cast<int32_t>(ctab.size() / kFlatChunkCols);
    all.x0 = 0;
    all.x1 = n;
  }
  LARS_ASSIGN_OR_RETURN(flat_set->tensors, UploadI32(d, ttab));
  LARS_ASSIGN_OR_RETURN(flat_set->chunks, UploadI32(d, ctab));
  LARS_ASSIGN_OR_RETURN(flat_set->rows, UploadI32(d, rtab));
  LARS_ASSIGN_OR_RETURN(flat_set->opts, DeviceBuffer::Allocate(d, DType::kF32, kFlatOpts * num_t));
  LARS_ASSIGN_OR_RETURN(flat_set->norms, AllocFilled(d, 3 * num_t, 0.0f));
  if (kind == StateKind::kBlockwise8) {
    LARS_RETURN_IF_ERROR(AllocZero8bit(d, n, block, &flat_set->codes, &flat_set->absmax));
  } else {
    LARS_ASSIGN_OR_RETURN(flat_set->momentum, AllocFilled(d, n, 0.0f));
  }
  flat_set->table_bytes = 4 * static_cast<int64_t>(ttab.size() + ctab.size() + rtab.size()) +
                       4 * kFlatOpts * num_t;

  flat_set->members.assign(num_t, nullptr);
  for (int64_t t = 0; t < num_t; ++t) {
    const size_t i = order[t];
    const FlatParam& f = tensors[i];
    auto slot = std::make_unique<ParamSlot>();
    slot->name = f.name;
    slot->group = f.group;
    slot->param = SliceView(params, f.offset, f.numel);
    slot->grad = SliceView(grads, f.offset, f.numel);
    slot->flat_grad = slot->grad;
    LARS_RETURN_IF_ERROR(CheckSupported(*slot, options[i]));
    LARS_RETURN_IF_ERROR(CheckFlatSupported(*slot, options[i]));
    LARS_RETURN_IF_ERROR(AllocateScalarState(slot.get(), options[i]));
    // The state and last norms live in the flat set: the slot borrows its slices.
    if (kind == StateKind::kBlockwise8) {
      slot->codes = DeviceBuffer::Borrow(flat_set->codes.view(), f.offset, f.numel);
      slot->absmax = DeviceBuffer::Borrow(flat_set->absmax.view(), f.offset / block,
                                          (f.numel + block - 1) / block);
    } else {
      slot->momentum = DeviceBuffer::Borrow(flat_set->momentum.view(), f.offset, f.numel);
    }
    slot->norms = DeviceBuffer::Borrow(flat_set->norms.view(), 3 * t, 3);
    slot->flat_set = flat_set.get();
    slot->flat_index = static_cast<int>(t);
    flat_set->members[t] = slot.get();
    (*slots)[i] = std::move(slot);
  }
  return flat_set;
}

}  // namespace

absl::StatusOr<std::vector<std::unique_ptr<FlatSet>>> BuildFlatSets(
    const TensorView& params, const TensorView& grads, const std::vector<FlatParam>& tensors,
    const std::vector<LarsOptions>& options, std::vector<std::unique_ptr<ParamSlot>>* slots) {
  LARS_RETURN_IF_ERROR(ValidateTensor("params", params));
  LARS_RETURN_IF_ERROR(ValidateTensor("grads", grads));
  LARS_RETURN_IF_ERROR(ValidateSameDevice("grads", grads, "params", params));
  if (!IsParamDType(params.dtype) || grads.dtype != params.dtype || grads.numel != params.numel) {
    return absl::InvalidArgumentError(absl::StrCat(
        "flat buffers: params ", params.numel, " x ", DTypeName(params.dtype), ", grads ",
        grads.numel, " x ", DTypeName(grads.dtype), " (need equal f32, f16 or bf16 buffers)"));
  }
  if (tensors.empty()) return absl::InvalidArgumentError("tensors: empty");
  if (Overlap(grads, params)) {
    return absl::InvalidArgumentError("grads: overlaps the flat parameter buffer");
  }
  // Tensors: inside the buffer, aligned, not overlapping.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  absl::flat_hash_set<std::string> names;
  for (const FlatParam& t : tensors) {
    if (t.name.empty()) return absl::InvalidArgumentError("tensors: a name is empty");
    if (!names.insert(t.name).second) {
      return absl::AlreadyExistsError(absl::StrCat("tensors: \"", t.name, "\" appears twice"));
    }
    if (t.numel < 0 || t.offset < 0 || t.offset % kFlatAlignment != 0 ||
        t.numel > params.numel - t.offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          t.name, ": [", t.offset, ", ", t.offset + t.numel, ") is not an aligned range (offset "
          "a multiple of ", kFlatAlignment, ") inside the flat buffer of ", params.numel,
          " elements"));
    }
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const FlatParam &a = tensors[order[i - 1]], &b = tensors[order[i]];
    if (a.offset + a.numel > b.offset) {
      return absl::InvalidArgumentError(
          absl::StrCat(b.name, ": overlaps \"", a.name, "\" in the flat buffer"));
    }
  }

  // One flat set per state kind (fp32 / blockwise 8-bit per block size), over its tensors'
  // element range (on OpenCL, whose cl_mem cannot be sliced, the whole buffer).
  std::map<std::pair<int, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < tensors.size(); ++i) {
    ParamSlot probe;
    probe.name = tensors[i].name;
    probe.param = SliceView(params, tensors[i].offset, tensors[i].numel);
    LARS_RETURN_IF_ERROR(CheckFlatSupported(probe, options[i]));
    const StateKind kind = DesiredKind(options[i], tensors[i].numel);
    const int block = kind == StateKind::kBlockwise8 ? options[i].block_size : 0;
    if (block > 0 && tensors[i].offset % block != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          tensors[i].name, ": offset ", tensors[i].offset, " is not a multiple of its 8-bit block "
          "size ", block, " (lay out with LayoutFlatParams(&tensors, ", block, "))"));
    }
    groups[{static_cast<int>(kind), block}].push_back(i);
  }
  std::vector<std::unique_ptr<ParamSlot>> by_index(tensors.size());
  std::vector<std::unique_ptr<FlatSet>> flat_sets;
  for (const auto& [key, idx] : groups) {
    int64_t x0 = 0, x1 = params.numel;
    if (params.device.type != DeviceType::kOpenCL) {
      x0 = params.numel;
      x1 = 0;
      for (size_t i : idx) {
        x0 = std::min(x0, tensors[i].offset);
        x1 = std::max(x1, tensors[i].offset + tensors[i].numel);
      }
      if (x1 <= x0) {  // only empty tensors: a token range (no row of it is theirs)
        x0 = 0;
        x1 = std::min<int64_t>(params.numel, kFlatAlign);
      }
    }
    std::vector<FlatParam> local = tensors;
    for (size_t i : idx) local[i].offset -= x0;
    LARS_ASSIGN_OR_RETURN(
        std::unique_ptr<FlatSet> flat_set,
        BuildOneFlat(SliceView(params, x0, x1 - x0), SliceView(grads, x0, x1 - x0), local,
                      options, idx, static_cast<StateKind>(key.first), key.second, &by_index));
    flat_sets.push_back(std::move(flat_set));
  }
  for (auto& slot : by_index) slots->push_back(std::move(slot));  // registration order
  return flat_sets;
}

namespace {

bool ChecksNonfinite(const LarsOptions& o) { return o.nonfinite != Nonfinite::kPropagate; }

bool NeedsNormsPass(const LarsOptions& o) { return ChecksNonfinite(o) || NeedsNorms(o); }

}  // namespace

namespace {

// The kernel arguments of a whole flat set.
FlatSetArgs Args(const FlatSet& f) {
  FlatSetArgs a;
  a.params = f.params;
  a.grads = f.grads;
  a.state.kind = f.kind;
  a.state.momentum = f.momentum.view();
  a.state.codes = f.codes.view();
  a.state.absmax = f.absmax.view();
  a.state.block_size = f.block;
  a.opts = f.opts.view();
  a.tensors = f.tensors.view();
  a.chunks = f.chunks.view();
  a.rows = f.rows.view();
  a.max_chunks = f.max_chunks;
  return a;
}

}  // namespace

absl::StatusOr<FlatPlan> FlatBegin(FlatSet* flat_set, const std::vector<LarsOptions>& options,
                                   float grad_unscale) {
  const size_t num_t = flat_set->members.size();
  std::vector<float> opts(kFlatOpts * num_t, 0.0f);
  FlatPlan plan;
  for (size_t t = 0; t < num_t; ++t) {
    const ParamSlot& s = *flat_set->members[t];
    const LarsOptions& o = options[t];
    FlatOptsRow(MakeLarsHyper(o, /*first_step=*/s.step == 0), grad_unscale, s.HasGrad(),
                o.nonfinite == Nonfinite::kSkip, &opts[kFlatOpts * t]);
    if (s.HasGrad()) {
      plan.norms_pass |= NeedsNormsPass(o);
      plan.check |= ChecksNonfinite(o);
    }
  }
  LARS_RETURN_IF_ERROR(flat_set->opts.CopyFromHost(opts.data()));
  return plan;
}

absl::Status FlatNorms(FlatSet* flat_set, const FlatPlan& plan, const FlatSegment& seg,
                        const std::vector<LarsOptions>& options, const ExecContext& exec,
                        std::vector<bool>* finite) {
  if (!plan.norms_pass || seg.t0 == seg.t1) return absl::OkStatus();
  const int64_t nt = seg.t1 - seg.t0;
  if (seg.c0 == seg.c1) {  // only empty tensors (CPU segments only: GPUs have one segment)
    std::vector<float> zeros(3 * nt, 0.0f);
    return DeviceBuffer::Borrow(flat_set->norms.view(), 3 * int64_t{seg.t0}, 3 * nt)
        .CopyFromHost(zeros.data());
  }
  LARS_RETURN_IF_ERROR(RunLarsFlatNorms(Args(*flat_set), seg.t0, seg.t1, seg.c0, seg.c1,
                                        flat_set->norms.view(), exec));
  if (!plan.check) return absl::OkStatus();
  std::vector<float> norms(3 * nt);
  LARS_RETURN_IF_ERROR(DeviceBuffer::Borrow(flat_set->norms.view(), 3 * int64_t{seg.t0}, 3 * nt)
                           .CopyToHost(norms.data()));  // synchronizes a CUDA stream
  for (int64_t i = 0; i < nt; ++i) {
    const int64_t t = seg.t0 + i;
    if (ChecksNonfinite(options[t])) (*finite)[t] = std::isfinite(norms[3 * i + 2]);
  }
  return absl::OkStatus();
}

absl::Status FlatUpdate(FlatSet* flat_set, const FlatSegment& seg, const ExecContext& exec) {
  bool any = false;
  for (int32_t t = seg.t0; t < seg.t1; ++t) any |= flat_set->members[t]->HasGrad();
  if (!any || seg.x0 == seg.x1) return absl::OkStatus();
  const int64_t x0 = seg.x0, nx = seg.x1 - seg.x0;
  // The segment's slice, indexed from 0 (x0 is a tensor offset, a multiple of kFlatAlign and,
  // for 8-bit state, of the block size; 0 for a whole flat set).
  auto slice = [&](const TensorView& t) { return SliceView(t, x0, nx); };
  FlatSetArgs a = Args(*flat_set);
  a.params = slice(a.params);
  a.grads = slice(a.grads);
  if (flat_set->kind == StateKind::kBlockwise8) {
    const int64_t b0 = x0 / flat_set->block, nb = (nx + flat_set->block - 1) / flat_set->block;
    a.state.codes = slice(a.state.codes);
    a.state.absmax = SliceView(a.state.absmax, b0, nb);
  } else {
    a.state.momentum = slice(a.state.momentum);
  }
  return RunLarsFlatUpdate(a, static_cast<int32_t>(x0 / kFlatAlign), flat_set->norms.view(), exec);
}

void FlatCount(FlatSet* flat_set, const std::vector<bool>& finite) {
  for (size_t t = 0; t < flat_set->members.size(); ++t) {
    ParamSlot* s = flat_set->members[t];
    if (!s->HasGrad()) continue;
    if (finite[t]) {
      ++s->step;
    } else {
      ++s->skipped_steps;
    }
  }
}

}  // namespace internal
}  // namespace halide_lars
