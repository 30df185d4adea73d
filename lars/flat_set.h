// Flat parameter sets: many tensors of one dtype and device in one flat parameter
// buffer, stepped by two pipelines (lars_flat_norms, lars_flat_update) whatever their count.
// Internal to lars/.
#ifndef HALIDE_LARS_LARS_FLAT_SET_H_
#define HALIDE_LARS_LARS_FLAT_SET_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "halide_lars/lars.h"
#include "halide_lars/options.h"
#include "lars/step.h"
#include "runtime/device_buffer.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace internal {

// Elements per CPU segment: a flat set is stepped segment by segment (norms pass, then update,
// of whole tensors totalling about this many elements), so the update finds the segment's
// p, g and m still in the last-level cache. GPUs step the whole flat set at once.
constexpr int64_t kFlatSegment = int64_t{1} << 20;

struct FlatSegment {
  int32_t t0 = 0, t1 = 0;  // tensors [t0, t1) (table order = offset order)
  int32_t c0 = 0, c1 = 0;  // their chunks
  int64_t x0 = 0, x1 = 0;  // their elements (and the gaps between them)
};

struct FlatSet {
  // This flat set's element range of the flat buffers (the caller's, or owned_* below): all
  // members have one state kind; an AddFlatParams call makes one flat set per kind present.
  TensorView params, grads;
  DeviceBuffer owned_params, owned_grads;
  StateKind kind = StateKind::kFp32;
  int block = 0;                     // blockwise 8-bit: the block size (offsets are multiples)
  DeviceBuffer momentum;             // fp32: f32 x N; members' momentum DeviceBuffers borrow slices
  DeviceBuffer codes, absmax;        // 8-bit: u8 x N, f32 x ceil(N / block); borrowed likewise
  DeviceBuffer norms;                // f32 x 3T: the last norms pass; members borrow triples
  DeviceBuffer opts;                 // f32 x kFlatOpts*T, rewritten every step
  DeviceBuffer tensors, chunks, rows;  // i32 tables (base/kernel_abi.h), fixed
  std::vector<ParamSlot*> members;   // tensor t of the tables (sorted by offset)
  std::vector<FlatSegment> segments;
  int32_t max_chunks = 1;
  int64_t table_bytes = 0;
};

// Options a flat parameter can be stepped with (fp32 or blockwise 8-bit state -- the kind it
// was added with --, no percentile clipping, not momentum_first); Unimplemented otherwise.
absl::Status CheckFlatSupported(const ParamSlot& slot, const LarsOptions& options);

// Validates the flat buffers and tensors (names unique among themselves), and builds one flat set
// per state kind present with the member slots (state zero; `slots` in `tensors` order).
// Nothing is registered on error.
absl::StatusOr<std::vector<std::unique_ptr<FlatSet>>> BuildFlatSets(
    const TensorView& params, const TensorView& grads, const std::vector<FlatParam>& tensors,
    const std::vector<LarsOptions>& options, std::vector<std::unique_ptr<ParamSlot>>* slots);

// One step of the flat set's members, `options[t]` for member t (flat set->members order):
//   FlatBegin: writes this step's options table; says which passes run.
//   FlatNorms(segment): the norms pass of one segment (no state is written); when some member
//     checks for non-finite gradients, reads its norms back and clears `finite[t]` for those
//     whose Σg² is not finite.
//   FlatUpdate(segment): the update (members skipped for a non-finite gradient, or without
//     one, stay bit-identical).
//   FlatCount: the members' step and skipped-step counts.
struct FlatPlan {
  bool norms_pass = false;
  bool check = false;
};
// grad_unscale: 1 / the AMP loss scale (Lars::SetGradScale), every row's gradient scale.
absl::StatusOr<FlatPlan> FlatBegin(FlatSet* flat_set, const std::vector<LarsOptions>& options,
                                   float grad_unscale);
absl::Status FlatNorms(FlatSet* flat_set, const FlatPlan& plan, const FlatSegment& seg,
                        const std::vector<LarsOptions>& options, const ExecContext& exec,
                        std::vector<bool>* finite);
absl::Status FlatUpdate(FlatSet* flat_set, const FlatSegment& seg, const ExecContext& exec);
void FlatCount(FlatSet* flat_set, const std::vector<bool>& finite);

}  // namespace internal
}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_FLAT_SET_H_
