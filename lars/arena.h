// Flat ("arena") parameter sets: many tensors of one dtype and device in one flat parameter
// buffer, stepped by two pipelines (lars_arena_norms, lars_arena_update) whatever their count.
// Internal to lars/.
#ifndef HALIDE_LARS_LARS_ARENA_H_
#define HALIDE_LARS_LARS_ARENA_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lars/lars.h"
#include "lars/options.h"
#include "lars/step.h"
#include "runtime/device_buffer.h"
#include "runtime/types.h"

namespace halide_lars {
namespace internal {

struct Arena {
  TensorView params, grads;          // the flat buffers (the caller's, or owned_* below)
  DeviceBuffer owned_params, owned_grads;
  DeviceBuffer momentum;             // f32 x N; members' momentum DeviceBuffers borrow slices
  DeviceBuffer norms;                // f32 x 3T: the last norms pass; members borrow triples
  DeviceBuffer opts;                 // f32 x kArenaOpts*T, rewritten every step
  DeviceBuffer tensors, chunks, rows;  // i32 tables (generators/arena_abi.h), fixed
  std::vector<ParamSlot*> members;   // tensor t of the tables
  int32_t max_chunks = 1;
  int64_t table_bytes = 0;
};

// Options a flat parameter can be stepped with (fp32 state, no percentile clipping, not
// momentum_first); Unimplemented naming the option otherwise.
absl::Status CheckFlatSupported(const ParamSlot& slot, const LarsOptions& options);

// Validates the flat buffers and tensors (names unique among themselves and not in `taken`),
// and builds the arena with its member slots (state zero). Nothing is registered on error.
absl::StatusOr<std::unique_ptr<Arena>> BuildArena(
    const TensorView& params, const TensorView& grads, const std::vector<FlatParam>& tensors,
    const std::vector<LarsOptions>& options, std::vector<std::unique_ptr<ParamSlot>>* slots);

// One step of the arena's members with a gradient: `options[t]` for member t. Phase 1 runs the
// norms pass (no state is written) and, when some member checks for non-finite gradients,
// reads the norms back and reports in `finite` whether each member's Σg² is finite.
absl::Status ArenaNormsPhase(Arena* arena, const std::vector<LarsOptions>& options,
                             const ExecContext& exec, std::vector<bool>* finite);
// Phase 2: the update (members skipped for a non-finite gradient, or without one, unchanged)
// and the step counts.
absl::Status ArenaUpdatePhase(Arena* arena, const ExecContext& exec,
                              const std::vector<bool>& finite);

}  // namespace internal
}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_ARENA_H_
