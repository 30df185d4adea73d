// A parameter's slot and state: allocation, conversion between state kinds, snapshots
// (internal to lars/).
#ifndef HALIDE_LARS_LARS_PARAM_STATE_H_
#define HALIDE_LARS_LARS_PARAM_STATE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "halide_lars/lars.h"
#include "halide_lars/options.h"
#include "runtime/device_buffer.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace internal {

// Entries of the percentile-clipping ring (bitsandbytes' gnorm_vec).
constexpr int kRing = 100;

struct FlatSet;

struct ParamSlot {
  std::string name;
  int group = 0;
  TensorView param;
  TensorView grad;  // data == nullptr (and numel > 0): no gradient
  OptionOverrides overrides;
  // Lars::Impl::ParamOptions' cache: the resolved options as of options epoch `options_epoch`
  // (0: none yet). Options are resolved from override strings only when they change.
  mutable uint64_t options_epoch = 0;
  mutable LarsOptions options;
  int64_t step = 0;
  // State on param.device. Exactly one representation of the momentum is allocated.
  StateKind kind = StateKind::kFp32;
  int block_size = 0;     // 8-bit state
  DeviceBuffer momentum;  // fp32: f32 x numel (state1)
  DeviceBuffer codes;     // 8-bit: u8 x numel (state1)
  DeviceBuffer absmax;    // 8-bit: f32 x ceil(numel / block_size) (absmax1)
  DeviceBuffer norms;     // f32 x 3 ({Σp², Σu², Σg²} of the last step), x 4 for kTensor8 (+ max1)
  DeviceBuffer scratch_norms;  // this step's norms until the update is done (then swapped)
  int64_t skipped_steps = 0;
  DeviceBuffer gscale;    // f32 x 1: the gradient scale s (percentile clipping x AMP unscale)
  // The value gscale was filled with (1 at first; the AMP unscale without percentile clipping);
  // NaN after the percentile kernel wrote it.
  float gscale_filled = 1.0f;
  float grad_unscale = 1.0f;  // this step's 1 / AMP loss scale (PrepareStep, Lars::SetGradScale)
  DeviceBuffer gnorm;     // f32 x 2: {Σg², max|g|} (percentile clipping only)
  DeviceBuffer ring;      // f32 x 100: gnorm_vec (percentile clipping only)

  // Sharding (Lars::SetShard): this slot holds elements [shard_offset, shard_offset + numel) of
  // a tensor of full_numel elements (-1: not sharded, the slot is the whole tensor).
  int64_t shard_offset = 0;
  int64_t full_numel = -1;

  // Flat parameters (Lars::AddFlatParams): the flat set holding the tensor, its index there, and
  // its slice of the flat gradient (what SetGrad may give back after an empty view).
  FlatSet* flat_set = nullptr;
  int flat_index = -1;
  TensorView flat_grad;

  bool HasGrad() const { return grad.data != nullptr || param.numel == 0; }
};

// Elements of the whole tensor (of which the slot may hold a shard).
inline int64_t FullNumel(const ParamSlot& slot) {
  return slot.full_numel >= 0 ? slot.full_numel : slot.param.numel;
}

// The state kind `options` ask for, for a tensor of `numel` elements.
StateKind DesiredKind(const LarsOptions& options, int64_t numel);

// Allocates the momentum (fp32 zeros, or 8-bit zero codes) and per-tensor scalars.
absl::Status AllocateState(ParamSlot* slot, const LarsOptions& options);
// The same without the momentum itself: the state kind, block size and per-tensor scalars (for
// flat parameters, whose momentum is a slice of their flat set's).
absl::Status AllocateScalarState(ParamSlot* slot, const LarsOptions& options);

// Buffers of `n` f32 equal to `value`; zero blockwise 8-bit momentum (the zero code, absmax 0).
absl::StatusOr<DeviceBuffer> AllocFilled(const Device& d, int64_t n, float value);
absl::Status AllocZero8bit(const Device& d, int64_t n, int block, DeviceBuffer* codes,
                           DeviceBuffer* absmax);

// Makes the state match `options` before a step: allocates the percentile ring, resets the
// gradient scale, converts the momentum between fp32 and blockwise 8-bit (or block sizes) when
// an override changed the state kind (per-tensor 8-bit only before the first step), and records
// the step's gradient unscale (1 / the AMP loss scale; gscale is filled with it when percentile
// clipping is off). On error the momentum keeps its previous representation.
absl::Status PrepareStep(ParamSlot* slot, const LarsOptions& options, const ExecContext& exec,
                         float grad_unscale);

absl::StatusOr<ParamStateSnapshot> Snapshot(const ParamSlot& slot, const LarsOptions& options);

// The slot's own buffers only (not momentum / codes / absmax / norms, which a flat tensor
// borrows from its flat set).
int64_t OwnStateBytes(const ParamSlot& slot);
int64_t StateBytes(const ParamSlot& slot);

}  // namespace internal
}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_PARAM_STATE_H_
