// The table layout shared by the arena (multi-tensor) LARS kernels and the runtime that fills
// the tables (plain C++: included by the generators and by lars/). One arena = the parameters
// of one (dtype, device) in one flat buffer, their gradients in another, the fp32 momentum in a
// third, all with the same offsets. Every table is a 1-D buffer:
//   opts    f32 [kArenaOpts * T]   per-tensor options of this step, opts[k + kArenaOpts * t]
//   tensors i32 [kArenaTensorCols * T]  offset, numel, first chunk, chunk count of tensor t
//   chunks  i32 [kArenaChunkCols * C]   start, length, tensor of chunk c (length <= chunk size;
//           chunk k of a tensor starts at its offset + k * chunk size: each tensor's reduction
//           tree is the one the per-tensor lars_norms kernel builds, so the results agree bit
//           for bit)
//   rows    i32 [ceil(N / kArenaAlign)]  tensor owning row r (elements [r*A, r*A + A)), -1: none
//   norms   f32 [3 * T]             {Σp², Σu², Σg²} of tensor t at 3t..3t+2
#ifndef HALIDE_LARS_GENERATORS_ARENA_ABI_H_
#define HALIDE_LARS_GENERATORS_ARENA_ABI_H_

namespace halide_lars {

// Tensor offsets in an arena are multiples of this many elements (256 B of fp32), so a row of
// kArenaAlign elements belongs to at most one tensor.
constexpr int kArenaAlign = 64;

// Elements per reduction chunk (lars_norms and lars_arena_norms: the shared reduction tree).
constexpr int kArenaChunk = 1 << 15;

enum ArenaOpt {
  kArenaLr = 0,
  kArenaMomentum,
  kArenaDampening,
  kArenaWeightDecay,
  kArenaNesterov,      // 0 or 1
  kArenaFirstStep,     // 0 or 1
  kArenaTrustMode,     // kTrustClip, kTrustClassic, kTrustNone
  kArenaMaxUnorm,
  kArenaTrustCoefficient,
  kArenaEps,
  kArenaGradScale,     // the gradient scale s (1: no percentile clipping)
  kArenaActive,        // 1: stepped this call; 0: left bit-identical (no gradient)
  kArenaSkipNonfinite, // 1: a tensor whose Σg² is not finite is left bit-identical
  kArenaOpts,
};

enum ArenaTensorCol { kArenaOffset = 0, kArenaNumel, kArenaFirstChunk, kArenaChunkCount,
                      kArenaTensorCols };
enum ArenaChunkCol { kArenaChunkStart = 0, kArenaChunkLength, kArenaChunkTensor, kArenaChunkCols };

}  // namespace halide_lars

#endif  // HALIDE_LARS_GENERATORS_ARENA_ABI_H_
