#include "lars/param_state.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/codebook.h"
#include "runtime/halide_call.h"
#include "runtime/quantize.h"
#include "base/status_macros.h"

namespace halide_lars {
namespace internal {
namespace {

template <typename T>
absl::Status Fill(const DeviceBuffer& b, T value, const ExecContext& exec) {
  std::vector<T> host(b.view().numel, value);
  CallContext ctx;
  LARS_RETURN_IF_ERROR(MakeCallContext(b.view().device, exec, &ctx));
  return CopyHostToTensor(host.data(), b.view(), &ctx);
}

}  // namespace

absl::StatusOr<DeviceBuffer> AllocFilled(const Device& d, int64_t n, float value) {
  LARS_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(d, DType::kF32, n));
  LARS_RETURN_IF_ERROR(Fill(b, value, {}));
  return b;
}

absl::Status AllocZero8bit(const Device& d, int64_t n, int block, DeviceBuffer* codes,
                           DeviceBuffer* absmax) {
  LARS_ASSIGN_OR_RETURN(DeviceBuffer c, DeviceBuffer::Allocate(d, DType::kU8, n));
  LARS_RETURN_IF_ERROR(Fill<uint8_t>(c, kZeroCode, {}));
  LARS_ASSIGN_OR_RETURN(DeviceBuffer a, AllocFilled(d, NumQuantBlocks(n, block), 0.0f));
  *codes = std::move(c);
  *absmax = std::move(a);
  return absl::OkStatus();
}

StateKind DesiredKind(const LarsOptions& o, int64_t numel) {
  // bitsandbytes: small tensors keep 32-bit state (min_8bit_size, and never below 4096).
  if (o.optim_bits == 8 && numel >= std::max<int64_t>(o.min_8bit_size, 4096)) {
    return o.block_wise ? StateKind::kBlockwise8 : StateKind::kTensor8;
  }
  return StateKind::kFp32;
}

absl::Status AllocateScalarState(ParamSlot* slot, const LarsOptions& options) {
  const Device& d = slot->param.device;
  slot->kind = DesiredKind(options, FullNumel(*slot));
  if (slot->kind == StateKind::kBlockwise8) slot->block_size = options.block_size;
  slot->momentum = DeviceBuffer();
  slot->codes = DeviceBuffer();
  slot->absmax = DeviceBuffer();
  const int norms = slot->kind == StateKind::kTensor8 ? 4 : 3;  // + max1
  LARS_ASSIGN_OR_RETURN(slot->norms, AllocFilled(d, norms, 0.0f));
  LARS_ASSIGN_OR_RETURN(slot->scratch_norms, AllocFilled(d, norms, 0.0f));
  LARS_ASSIGN_OR_RETURN(slot->gscale, AllocFilled(d, 1, 1.0f));
  slot->gscale_filled = 1.0f;
  return absl::OkStatus();
}

absl::Status AllocateState(ParamSlot* slot, const LarsOptions& options) {
  LARS_RETURN_IF_ERROR(AllocateScalarState(slot, options));
  const Device& d = slot->param.device;
  const int64_t n = slot->param.numel;
  if (slot->kind == StateKind::kBlockwise8) {
    return AllocZero8bit(d, n, slot->block_size, &slot->codes, &slot->absmax);
  }
  if (slot->kind == StateKind::kTensor8) {
    LARS_ASSIGN_OR_RETURN(slot->codes, DeviceBuffer::Allocate(d, DType::kU8, n));
    return Fill<uint8_t>(slot->codes, kZeroCode, {});
  }
  LARS_ASSIGN_OR_RETURN(slot->momentum, AllocFilled(d, n, 0.0f));
  return absl::OkStatus();
}

namespace {

// Re-represents the momentum as `kind` (block size `block` for 8-bit): quantizes or
// dequantizes on the device. The old buffers are released only once the new ones are written.
absl::Status ConvertState(ParamSlot* slot, StateKind kind, int block, const ExecContext& exec) {
  const Device& d = slot->param.device;
  const int64_t n = slot->param.numel;
  DeviceBuffer fp32;  // the momentum as fp32, old or new
  if (slot->kind == StateKind::kFp32) {
    fp32 = std::move(slot->momentum);
  } else {
    LARS_ASSIGN_OR_RETURN(fp32, DeviceBuffer::Allocate(d, DType::kF32, n));
    absl::Status s =
        DequantizeBlockwise(slot->codes.view(), slot->absmax.view(), fp32.view(), slot->block_size, exec);
    if (!s.ok()) return s;
  }
  if (kind == StateKind::kFp32) {
    slot->momentum = std::move(fp32);
    slot->codes = DeviceBuffer();
    slot->absmax = DeviceBuffer();
  } else {
    DeviceBuffer codes, absmax;
    absl::Status s = AllocZero8bit(d, n, block, &codes, &absmax);
    if (s.ok()) s = QuantizeBlockwise(fp32.view(), codes.view(), absmax.view(), block, exec);
    if (!s.ok()) {
      if (slot->kind == StateKind::kFp32) slot->momentum = std::move(fp32);  // unchanged
      return s;
    }
    slot->codes = std::move(codes);
    slot->absmax = std::move(absmax);
    slot->momentum = DeviceBuffer();
    slot->block_size = block;
  }
  slot->kind = kind;
  return absl::OkStatus();
}

}  // namespace

absl::Status PrepareStep(ParamSlot* slot, const LarsOptions& options, const ExecContext& exec,
                         float grad_unscale) {
  const StateKind want = DesiredKind(options, FullNumel(*slot));
  if (want != slot->kind ||
      (want == StateKind::kBlockwise8 && options.block_size != slot->block_size)) {
    if (slot->step == 0 || want == StateKind::kTensor8 || slot->kind == StateKind::kTensor8) {
      // Nothing learned yet (or per-tensor state, which only changes before the first step):
      // a fresh zero state of the new kind.
      LARS_RETURN_IF_ERROR(AllocateState(slot, options));
    } else {
      LARS_RETURN_IF_ERROR(ConvertState(slot, want, options.block_size, exec));
    }
  }
  if (options.percentile_clipping < 100 && slot->ring.view().numel == 0) {
    LARS_ASSIGN_OR_RETURN(slot->ring, AllocFilled(slot->param.device, kRing, 0.0f));
  }
  if ((options.percentile_clipping < 100 || options.nonfinite != Nonfinite::kPropagate) &&
      slot->gnorm.view().numel == 0) {
    LARS_ASSIGN_OR_RETURN(slot->gnorm, AllocFilled(slot->param.device, 2, 0.0f));
  }
  slot->grad_unscale = grad_unscale;
  if (options.percentile_clipping == 100 && !(slot->gscale_filled == grad_unscale)) {
    LARS_RETURN_IF_ERROR(Fill(slot->gscale, grad_unscale, exec));
    slot->gscale_filled = grad_unscale;
  }
  return absl::OkStatus();
}

absl::StatusOr<ParamStateSnapshot> Snapshot(const ParamSlot& slot, const LarsOptions& options) {
  ParamStateSnapshot s;
  s.step = slot.step;
  s.skipped_steps = slot.skipped_steps;
  s.kind = slot.kind;
  s.options = options;
  s.momentum.resize(slot.param.numel);
  if (slot.kind == StateKind::kFp32) {
    LARS_RETURN_IF_ERROR(slot.momentum.CopyToHost(s.momentum.data()));
  } else {
    s.codes.resize(slot.codes.view().numel);
    LARS_RETURN_IF_ERROR(slot.codes.CopyToHost(s.codes.data()));
    int64_t per_scale = slot.block_size;
    if (slot.kind == StateKind::kTensor8) {
      float norms[4];
      LARS_RETURN_IF_ERROR(slot.norms.CopyToHost(norms));
      s.absmax = {norms[3]};  // max1
      per_scale = std::max<int64_t>(slot.param.numel, 1);
    } else {
      s.absmax.resize(slot.absmax.view().numel);
      LARS_RETURN_IF_ERROR(slot.absmax.CopyToHost(s.absmax.data()));
    }
    const std::array<float, 256>& code = DynamicCodebook();
    for (size_t i = 0; i < s.codes.size(); ++i) {
      s.momentum[i] = code[s.codes[i]] * s.absmax[i / per_scale];
    }
  }
  if (slot.ring.view().numel > 0) {
    s.gnorm_vec.resize(kRing);
    LARS_RETURN_IF_ERROR(slot.ring.CopyToHost(s.gnorm_vec.data()));
  }
  if (options.trust_mode == TrustMode::kClip && options.max_unorm > 0.0) {
    float norms[4];
    LARS_RETURN_IF_ERROR(slot.norms.CopyToHost(norms));
    s.unorm = std::sqrt(norms[1]);
  }
  return s;
}

int64_t OwnStateBytes(const ParamSlot& slot) {
  int64_t b = 0;
  for (const DeviceBuffer* d : {&slot.scratch_norms, &slot.gscale, &slot.gnorm, &slot.ring}) {
    b += static_cast<int64_t>(d->view().bytes());
  }
  return b;
}

int64_t StateBytes(const ParamSlot& slot) {
  int64_t b = OwnStateBytes(slot);
  for (const DeviceBuffer* d : {&slot.momentum, &slot.codes, &slot.absmax, &slot.norms}) {
    b += static_cast<int64_t>(d->view().bytes());
  }
  return b;
}

}  // namespace internal
}  // namespace halide_lars
