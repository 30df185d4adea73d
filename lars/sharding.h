// Sharded parameters (Lars::SetShard, StepBegin, StepFinish): per-tensor partial norms of the
// local shard, reduced across processes by the caller (internal to lars/).
#ifndef HALIDE_LARS_LARS_SHARDING_H_
#define HALIDE_LARS_LARS_SHARDING_H_

#include "absl/status/status.h"
#include "halide_lars/options.h"
#include "lars/param_state.h"
#include "halide_lars/types.h"

namespace halide_lars {
namespace internal {

// Sharded steps. ShardPartials writes the local shard's {Σp², A, B, C, Σg²} (zeros for an
// empty shard) and changes no state: the update u is linear in the percentile-clipping scale s
// (u = a + s·b elementwise), so Σu²(s) = A + 2sB + s²C, and the three coefficients come from
// norms passes at s = 0, 1, -1 before s is known (it needs the global Σg²). Without percentile
// clipping: one pass at s = 1, A = Σu², B = C = 0. ShardFinish takes the reduced values: the
// percentile pass on the global Σg², then Σu²(s), then the update.
constexpr int kPartialsPerTensor = 5;
// Whether the state `options` ask for (per-tensor 8-bit: no; blockwise: block-aligned shard)
// can be stepped sharded. Judged before PrepareStep, which may convert the state.
absl::Status CheckShardable(const ParamSlot& slot, const LarsOptions& options);
absl::Status ShardPartials(ParamSlot* slot, const LarsOptions& options, const ExecContext& exec,
                           double out[kPartialsPerTensor]);
absl::Status ShardFinish(ParamSlot* slot, const LarsOptions& options, const ExecContext& exec,
                         const double reduced[kPartialsPerTensor]);

}  // namespace internal
}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_SHARDING_H_
