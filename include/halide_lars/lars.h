// halide_lars::Lars — the LARS optimizer of bitsandbytes (LARS, LARS8bit, LARS32bit) over
// tensors on the CPU, a CUDA device or an OpenCL device. See docs/spec.md.
//
//   LarsOptions o;
//   o.lr = 0.1;
//   o.momentum = 0.9;
//   absl::StatusOr<Lars> opt = Lars32bit::Create(o);
//   opt->AddParam("fc.weight", weight_view, grad_view);
//   opt->OverrideConfig("fc.bias", "trust_mode", "none");   // after AddParam("fc.bias", ...)
//   opt->Step();                                            // every parameter with a gradient
//
// Parameters are updated in place; gradients are read only and must not alias a parameter.
// Thread-safety: one call at a time per optimizer (Step, AddParam, ... are not concurrent-safe).
// Errors: invalid options/arguments are rejected before anything is modified (params and state
// unchanged). A device failure in the middle of Step (e.g. a lost GPU) is reported, and the
// parameters already stepped in that call stay stepped.
#ifndef HALIDE_LARS_LARS_LARS_H_
#define HALIDE_LARS_LARS_LARS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "halide_lars/options.h"
#include "halide_lars/types.h"

namespace halide_lars {

// StateKind (how a parameter's momentum is stored): halide_lars/types.h.

// A copy of one parameter's optimizer state, for inspection.
struct ParamStateSnapshot {
  int64_t step = 0;                // steps taken so far
  StateKind kind = StateKind::kFp32;
  std::vector<float> momentum;     // the momentum as fp32 (8-bit state: dequantized), numel
  std::vector<uint8_t> codes;      // 8-bit state: state1 codes, numel
  std::vector<float> absmax;       // blockwise: absmax1, one per block; per-tensor: {max1}
  std::vector<float> gnorm_vec;    // percentile ring (100 squared gradient norms), if enabled
  float unorm = 0.0f;              // |u| of the last step when the trust clip is on (unorm_vec)
  int64_t skipped_steps = 0;       // steps skipped for a non-finite gradient (nonfinite=skip)
  LarsOptions options;             // the options in effect (defaults, group, overrides)
};

// One optimizer-state tensor of a parameter under bitsandbytes' name, over the optimizer's own
// memory (zero-copy, on the parameter's device): elements [offset, offset + numel) of `base`
// (an allocation; for OpenCL `base.data` is the cl_mem). Writing through it changes the state,
// as writing torch's or bitsandbytes' `optimizer.state[p]` tensors does. Keys:
//   state1     fp32 momentum (f32, numel) or 8-bit codes (u8, numel)
//   absmax1    blockwise 8-bit: f32, one absmax per block (ceil(numel / block_size))
//   qmap1      8-bit: the 256 f32 codes state1 indexes (one buffer per optimizer and device,
//              shared by its parameters; a copy: the kernels keep their own codebook, so
//              writing it changes nothing)
//   max1       per-tensor 8-bit: f32[1], the scale of state1's codes
//   new_max1   per-tensor 8-bit: f32[1], the other scale slot (the previous step's scale; the
//              two swap every step, as in bitsandbytes)
//   gnorm_vec  percentile clipping: f32[100], the ring of squared gradient norms
//   unorm_vec  trust clip on (max_unorm > 0): f32[1], Σu² of the last step's update
// `keepalive` keeps the memory allocated while held, even after a state conversion or a
// checkpoint load replaced it (the view then no longer aliases the live state: re-export).
// Flat parameters' state1/absmax1/unorm_vec lie in their flat set and live as long as the
// optimizer (keepalive is null for them).
struct StateTensorView {
  std::string key;
  DType dtype = DType::kF32;
  TensorView base;
  int64_t offset = 0;
  int64_t numel = 0;
  std::shared_ptr<const void> keepalive;
};

// One parameter's state in bitsandbytes' layout (host memory), for Lars::ImportState.
struct ImportedState {
  std::string name;
  int64_t step = 0;                // steps taken (bitsandbytes' state["step"])
  StateKind kind = StateKind::kFp32;  // the layout of the arrays below
  int block_size = 0;              // kBlockwise8: elements per absmax
  std::vector<float> momentum;     // kFp32: numel values
  std::vector<uint8_t> codes;      // 8-bit: numel codes
  std::vector<float> absmax;       // kBlockwise8: one per block; kTensor8: {max1}
  std::vector<float> qmap;         // 8-bit: the 256 codes `codes` index (empty: ours)
  std::vector<float> gnorm_vec;    // percentile ring: 100 values, or empty (none saved)
  std::vector<float> unorm_vec;    // {Σu²} of the last step, or empty
};

// Where a parameter's state lives and how far it has got (Lars::StateVersions).
struct StateVersion {
  int64_t step = 0;
  uint64_t version = 0;  // changes exactly when StateTensors would return other memory
};

// One tensor of a flat parameter buffer: elements [offset, offset + numel) of the
// flat parameter and gradient buffers. Offsets are multiples of kFlatAlignment elements.
struct FlatParam {
  std::string name;
  int64_t numel = 0;
  int64_t offset = -1;  // -1: let LayoutFlatParams / AllocateFlatParams choose
  int group = 0;
};
constexpr int64_t kFlatAlignment = 64;

// Packs `params` in order, each offset rounded up to `alignment` (a multiple of
// kFlatAlignment; tensors with blockwise 8-bit state need their block size, e.g. 256);
// returns the flat size.
int64_t LayoutFlatParams(std::vector<FlatParam>* params, int64_t alignment = kFlatAlignment);

// Flat buffers the optimizer owns (AllocateFlatParams); valid while the optimizer lives.
struct FlatBuffers {
  TensorView params;
  TensorView grads;
};

// The kernels' gradient multiplier for an AMP loss scale: float(1 / double(scale)), as
// torch.amp.GradScaler's inv_scale. InvalidArgument unless scale is finite and > 0 with an
// inverse that is a finite, nonzero float (Lars::SetGradScale, the stateless step).
absl::StatusOr<float> GradUnscale(double scale);

class Lars {
 public:
  // Validates `defaults` (the options of param group 0).
  static absl::StatusOr<Lars> Create(const LarsOptions& defaults);

  Lars(Lars&&) noexcept;
  Lars& operator=(Lars&&) noexcept;
  ~Lars();

  // A new param group: the defaults with `overrides` applied. Returns its index (group 0 is the
  // defaults and always exists).
  absl::StatusOr<int> AddParamGroup(const OptionOverrides& overrides);

  // Changes an option of a group for the following steps (e.g. the learning-rate schedule).
  absl::Status SetGroupOption(int group, absl::string_view key, const OptionValue& value);

  // Registers parameter `name` (unique) in `group`. `grad` may be empty (data == nullptr): the
  // parameter is then skipped by Step until SetGrad gives it one. p and grad: same dtype, numel
  // and device; dense. State (fp32 momentum) is allocated on p's device now.
  absl::Status AddParam(absl::string_view name, const TensorView& param, const TensorView& grad,
                        int group = 0);

  // The gradient Step reads for `name`; an empty view (data == nullptr) means "no gradient".
  // A flat parameter's gradient is its slice of the flat gradient buffer: pass an empty view
  // to skip it, or that slice (params/grads data + offset) to take it back.
  absl::Status SetGrad(absl::string_view name, const TensorView& grad);

  // Multi-tensor parameters: many tensors in ONE flat parameter buffer and ONE flat
  // gradient buffer (same dtype, device and numel; offsets from LayoutFlatParams or any
  // non-overlapping multiples of kFlatAlignment). Step then runs two pipelines for the whole
  // set (segmented norms, per-tensor trust scales and options from small tables) instead of two
  // per tensor, with results bit-identical to registering each tensor with AddParam and
  // step_order "norms_first". Each tensor is a parameter like any other (names, groups,
  // overrides, GetState, checkpoints); elements between tensors are never modified.
  // Percentile clipping, per-tensor 8-bit state (block_wise=false) and momentum_first are
  // Unimplemented for flat parameters. Any device: CPU, CUDA, OpenCL (on OpenCL a tensor's
  // SetGrad slice is the flat gradient's cl_mem with the tensor's numel).
  // State kinds: tensors get fp32 or blockwise 8-bit state as the options say (min_8bit_size);
  // each kind present is one flat set (2 pipelines), whose kind is fixed once added. 8-bit tensors
  // need offsets that are multiples of block_size (LayoutFlatParams(&t, block_size)).
  absl::Status AddFlatParams(const TensorView& params, const TensorView& grads,
                             const std::vector<FlatParam>& tensors);
  // The same with flat buffers the optimizer allocates (zeroed; offsets chosen by
  // LayoutFlatParams and written back into `tensors`): copy the initial weights in and let the
  // model use slices of it (the fast path: nothing to gather or scatter).
  absl::StatusOr<FlatBuffers> AllocateFlatParams(const Device& device, DType dtype,
                                                 std::vector<FlatParam>* tensors);
  // The layout AllocateFlatParams uses, for callers who allocate the flat buffers themselves
  // (Python's LARS(flat=True), FSDP-style flat params): writes each tensor's offset and returns
  // the buffer's size in elements. Tensors whose group's options give them blockwise 8-bit
  // state come first, then the fp32 ones (each kind in the given order, so a flat set's state
  // spans its own tensors only); offsets are multiples of kFlatAlignment, or of the largest
  // block size of the 8-bit tensors. A tensor's group must exist.
  absl::StatusOr<int64_t> PlanFlatParams(std::vector<FlatParam>* tensors) const;

  // Pipelines (kernel calls) the last Step ran: 2 per flat buffer set, up to 2 per tensor
  // registered with AddParam (+ percentile clipping / 8-bit conversions when they apply).
  int64_t LastStepPipelines() const;

  // Overrides one option for one parameter (bitsandbytes override_config), e.g.
  // ("fc.bias", "weight_decay", 0.0) or ("bn.weight", "trust_mode", "none").
  absl::Status OverrideConfig(absl::string_view name, absl::string_view key,
                              const OptionValue& value);

  // One step of every parameter that has a gradient. CUDA work is queued on exec's stream (or
  // the default stream of the device's primary context) without synchronizing.
  absl::Status Step(const ExecContext& exec = {});

  // The CPU kernels' thread budget for this optimizer's steps (Step, StepBegin, StepFinish):
  // at most n threads, the caller's included, on the CPUs the process may use whatever the
  // calling thread's own binding (runtime/thread_pool.h). 0 (the default): HL_NUM_THREADS,
  // else OMP_NUM_THREADS, else every CPU the process may use. A call's ExecContext::num_threads,
  // when not 0, takes precedence. Results are bit-identical for every n. n < 0: InvalidArgument.
  absl::Status SetNumThreads(int n);
  int num_threads() const;

  // AMP loss scaling fused into the step (torch.amp.GradScaler's grad_scale): the following
  // steps (Step, StepBegin/StepFinish) read every gradient as g / scale -- the kernels multiply by
  // float(1 / double(scale)) where they already apply the gradient scale, so no pass writes
  // unscaled gradients; percentile clipping keeps its history of unscaled norms. For
  // GradScaler's power-of-two scales the result is bit-identical to unscaling the gradients
  // first. 1 (the default) turns it off. scale must be finite and > 0 (else InvalidArgument,
  // nothing changes). Skipping a step on inf is the caller's (GradScaler's found_inf).
  absl::Status SetGradScale(double scale);
  double grad_scale() const;

  // The parameter's state tensors under bitsandbytes' names (see StateTensorView): state1 and
  // the keys its state kind and options give it. Zero-copy views over the live state.
  absl::StatusOr<std::vector<StateTensorView>> StateTensors(absl::string_view name);
  // Every parameter's step count and state version, in registration order: a caller caching
  // StateTensors re-exports a parameter only when its version changed (state allocated or
  // converted, a checkpoint loaded, and the swap of max1/new_max1 and unorm_vec's slot that
  // every step makes -- the versions then alternate between two values).
  std::vector<StateVersion> StateVersions() const;
  // Sets the state of the named parameters from bitsandbytes-layout arrays (a bitsandbytes
  // state_dict, or edited state tensors): validates all of them first and changes nothing on
  // error. Each is converted to the state kind this optimizer's options give the parameter:
  // codes are kept as they are when kind, block size and codebook match (a qmap within 2 ulp of
  // ours counts as ours), otherwise the momentum is dequantized with the given qmap and scales
  // and re-quantized by the kernels. Per-tensor 8-bit state (block_wise=false) can only be
  // set from per-tensor 8-bit state with our codebook. Parameters not named keep their state.
  absl::Status ImportState(const std::vector<ImportedState>& states);

  // Copies of one parameter's state and effective options.
  absl::StatusOr<ParamStateSnapshot> GetState(absl::string_view name) const;
  absl::StatusOr<LarsOptions> EffectiveOptions(absl::string_view name) const;

  // Steps skipped for non-finite gradients, over all parameters.
  int64_t SkippedSteps() const;

  // Names of the registered parameters, in registration order.
  std::vector<std::string> ParamNames() const;

  // Bytes of optimizer state on all devices (momentum, percentile rings, per-tensor scalars).
  int64_t StateBytes() const;

  // Checkpoints: every parameter's state (step, fp32 momentum or 8-bit codes and scales,
  // percentile ring, last norms) and the options in effect (defaults, param groups, per-parameter
  // overrides) in a versioned binary format ending in a CRC-32. LoadState needs the same
  // parameters registered (names, sizes, dtypes; devices may differ: state moves to each
  // parameter's device). It validates the whole checkpoint first and changes nothing on error
  // (truncation, corruption, wrong version, mismatched parameters). Continuing after a load
  // reproduces the uninterrupted trajectory bit for bit.
  absl::StatusOr<std::string> SaveState() const;
  absl::Status LoadState(absl::string_view bytes);
  absl::Status SaveStateToFile(const std::string& path) const;
  absl::Status LoadStateFromFile(const std::string& path);

  // Sharded parameters (ZeRO-1/2/3, FSDP flat-parameter shards) across processes. Each rank
  // registers only its shard of a tensor (AddParam with the shard's view) and says where it lies:
  // elements [offset, offset + numel) of a tensor of `full_numel` elements. With 8-bit blockwise
  // state, `offset` and (unless the shard ends the tensor) the shard's length must be multiples
  // of the block size, so quantization blocks never straddle ranks. A rank may own no element of
  // a tensor (register an empty view): it still takes part in the exchange.
  absl::Status SetShard(absl::string_view name, int64_t offset, int64_t full_numel);

  // A step in two phases whose norms the caller's collective reduces:
  //   StepBegin(partials)     per-tensor partial sums over the local shard, 5 per registered
  //                           parameter in registration order: {Σp², A, B, C, Σg²} with
  //                           Σu²(s) = A + 2sB + s²C for the percentile-clipping scale s, which
  //                           needs the global Σg² (B = C = 0 without clipping; 0s for a
  //                           parameter without a gradient). Changes no state.
  //   all_reduce(partials, SUM) across ranks (torch.distributed, MPI, NCCL, JAX psum: the
  //                           caller's engine; 40 bytes per tensor, independent of its size)
  //   StepFinish(partials)    the update of every parameter from the global norms.
  // Partials are fp64: each rank's partial is an fp32 tree sum from the kernel, and summing them
  // in fp64 adds no rounding of its own, so the sharded step stays at fp32-rounding distance from
  // the single-process one whatever the world size. Every rank must give the same parameters a
  // gradient. Non-finite handling uses the reduced Σg², so all ranks skip (or fail) together.
  // One exchange per step, percentile clipping included (it costs two extra norms passes over
  // the shard). Per-tensor 8-bit state is Unimplemented in this mode (its scale is a whole-tensor
  // max). Step() stays the one-call path (same kernels) for unsharded use.
  int64_t PartialsSize() const;
  absl::Status StepBegin(double* partials, int64_t n, const ExecContext& exec = {});
  absl::Status StepFinish(const double* partials, int64_t n, const ExecContext& exec = {});
  // The same with the partials in a caller's f64 tensor of PartialsSize() elements on any
  // device -- for NCCL, on the parameters' GPU, so the all-reduce runs there with no host copy
  // of the caller's. StepBegin fills it (one synchronous copy of 40 B per tensor, on
  // exec.cuda_stream for CUDA), StepFinish reads it. A bad tensor (dtype, size, device) is an
  // InvalidArgument before anything runs; a failed copy closes the step again (no state changed).
  absl::Status StepBegin(const TensorView& partials, const ExecContext& exec = {});
  absl::Status StepFinish(const TensorView& partials, const ExecContext& exec = {});

  const LarsOptions& defaults() const;

 private:
  struct Impl;
  absl::Status StepImpl(const ExecContext& exec);
  explicit Lars(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// LARS with fp32 state (optim_bits forced to 32).
struct Lars32bit {
  static absl::StatusOr<Lars> Create(LarsOptions defaults);
};

// LARS with 8-bit blockwise state (optim_bits forced to 8).
struct Lars8bit {
  static absl::StatusOr<Lars> Create(LarsOptions defaults);
};

}  // namespace halide_lars

#endif  // HALIDE_LARS_LARS_LARS_H_
