/* halide_lars C ABI: the LARS optimizer (bitsandbytes LARS / LARS8bit / LARS32bit) for any
 * language. Plain C99; tensors are DLPack DLTensors (dlpack/dlpack.h).
 *
 * Conventions
 *  - Every function returns lars_status_t (values equal absl::StatusCode); on error
 *    lars_last_error() returns the message (thread-local, valid until this thread's next call).
 *    No function aborts or throws on bad input; on error nothing is modified.
 *  - Handles are opaque. A handle used after lars_destroy(), or never created, is an error
 *    (LARS_INVALID_ARGUMENT), not a crash.
 *  - Tensors are BORROWED: lars_add_param keeps the parameter's DLTensor data pointer (not the
 *    struct) until the optimizer is destroyed; gradients are read at each lars_step. halide_lars
 *    never calls a DLManagedTensor deleter. Only dense tensors (strides NULL or compact row-major)
 *    of float32, float16 or bfloat16 on kDLCPU, kDLCUDA or kDLOpenCL are accepted.
 *  - Thread-safety: one call at a time per optimizer; different optimizers are independent.
 */
#ifndef HALIDE_LARS_C_API_LARS_C_H_
#define HALIDE_LARS_C_API_LARS_C_H_

#include <stddef.h>
#include <stdint.h>

#include "dlpack/dlpack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2: lars_options_t gained step_order (at the end); the option table (lars_option_info).
 * 3: lars_options_t gained always_adapt and lr_in_momentum (at the end); trust modes larc_clip
 *    and exact. */
#define LARS_C_ABI_VERSION 3

typedef enum {
  LARS_OK = 0,
  LARS_CANCELLED = 1,
  LARS_UNKNOWN = 2,
  LARS_INVALID_ARGUMENT = 3,
  LARS_DEADLINE_EXCEEDED = 4,
  LARS_NOT_FOUND = 5,
  LARS_ALREADY_EXISTS = 6,
  LARS_PERMISSION_DENIED = 7,
  LARS_RESOURCE_EXHAUSTED = 8,
  LARS_FAILED_PRECONDITION = 9,
  LARS_ABORTED = 10,
  LARS_OUT_OF_RANGE = 11,
  LARS_UNIMPLEMENTED = 12,
  LARS_INTERNAL = 13,
  LARS_UNAVAILABLE = 14,
  LARS_DATA_LOSS = 15,
  LARS_UNAUTHENTICATED = 16
} lars_status_t;

/* The trust forms (docs/spec.md "Trust forms"): bitsandbytes' clip, You et al./timm classic,
 * none, LARC / timm trust_clip (larc_clip), and the SSL/optax exact-norm form (exact). */
typedef enum {
  LARS_TRUST_CLIP = 0,
  LARS_TRUST_CLASSIC = 1,
  LARS_TRUST_NONE = 2,
  LARS_TRUST_LARC_CLIP = 3,
  LARS_TRUST_EXACT = 4
} lars_trust_mode_t;

/* A gradient with NaN/Inf: skip that parameter's step (state bit-identical, counted), fail the
 * whole step changing nothing, or let it propagate (bitsandbytes). */
/* Kernel order of a clip-mode step (results agree within fp32 rounding; speed differs). */
typedef enum {
  LARS_STEP_ORDER_AUTO = 0,
  LARS_STEP_ORDER_NORMS_FIRST = 1,
  LARS_STEP_ORDER_MOMENTUM_FIRST = 2
} lars_step_order_t;

typedef enum {
  LARS_NONFINITE_SKIP = 0,
  LARS_NONFINITE_ERROR = 1,
  LARS_NONFINITE_PROPAGATE = 2
} lars_nonfinite_t;

/* Options with bitsandbytes' names and defaults (see lars_options_default). One field per option
 * of the option table (lars_option_info; include/halide_lars/options.inc in the sources), named alike. */
typedef struct {
  double lr; /* required: NaN (the default) means "not set" and lars_create fails */
  double momentum;
  double dampening;
  double weight_decay;
  int32_t nesterov;
  int32_t optim_bits;
  int64_t min_8bit_size;
  int32_t percentile_clipping;
  double max_unorm;
  int32_t trust_mode; /* lars_trust_mode_t */
  double trust_coefficient;
  double eps;
  int32_t block_wise;
  int32_t block_size;
  int32_t nonfinite; /* lars_nonfinite_t */
  int32_t step_order; /* lars_step_order_t */
  int32_t always_adapt; /* 0: classic/larc_clip/exact adapt only where weight_decay != 0 (timm) */
  int32_t lr_in_momentum; /* 1: m = momentum m + lr q d, p -= m (optax); not with clip */
} lars_options_t;

/* The option table, for bindings that build their option lists at load time instead of copying
 * them: lars_option_count() options, lars_option_info(i) describes option i (in the order
 * lars_set_group_option and checkpoints use) and where its field is in lars_options_t. */
typedef enum {
  LARS_OPTION_FLOAT64 = 0, /* double */
  LARS_OPTION_INT32 = 1,   /* int32_t */
  LARS_OPTION_INT64 = 2,   /* int64_t */
  LARS_OPTION_BOOL = 3,    /* int32_t, 0 or 1 */
  LARS_OPTION_ENUM = 4     /* int32_t, the index of a name in `values`; by name: the _str calls */
} lars_option_type_t;

typedef struct {
  const char* name;      /* "lr", "momentum", ... */
  const char* values;    /* LARS_OPTION_ENUM: the names in index order, comma-separated; else "" */
  const char* expected;  /* valid values in words ("> 0", "in [0, 1]", "clip, classic or none") */
  const char* doc;       /* one line */
  int64_t offset;        /* offsetof(lars_options_t, <name>) */
  double default_value;  /* as lars_options_default sets it (NaN for lr: no default) */
  int32_t type;          /* lars_option_type_t */
} lars_option_info_t;

int32_t lars_option_count(void);
lars_status_t lars_option_info(int32_t index, lars_option_info_t* out);
/* sizeof(lars_options_t) in this library. */
int64_t lars_options_size(void);

typedef struct lars_optimizer lars_optimizer_t;

/* The C ABI version this library implements (LARS_C_ABI_VERSION) and the package version. */
int32_t lars_abi_version(void);
const char* lars_version(void);

/* The message of this thread's last failed call ("" if none). */
const char* lars_last_error(void);

/* bitsandbytes defaults: lr unset (NaN), momentum 0, dampening 0, weight_decay 0, nesterov 0,
 * optim_bits 32, min_8bit_size 4096, percentile_clipping 100, max_unorm 0.02; ours: trust_mode
 * clip, trust_coefficient 0.001, eps 1e-8, block_wise 1, block_size 256, nonfinite skip,
 * step_order auto (lars_option_info has each default). */
lars_status_t lars_options_default(lars_options_t* options);

/* LARS_OK when lars_create would take `options`; else the error lars_create would give
 * (InvalidArgument naming the first bad option, Unimplemented for momentum 0), creating nothing.
 * The one check of a set of options for bindings (a param group before it is added, a loaded
 * state_dict's groups). */
lars_status_t lars_validate_options(const lars_options_t* options);

/* Creates an optimizer with `options` as the defaults (param group 0). */
lars_status_t lars_create(const lars_options_t* options, lars_optimizer_t** out);
/* Destroys it (NULL is a no-op). The handle is invalid afterwards. */
lars_status_t lars_destroy(lars_optimizer_t* opt);

/* A new param group with the defaults; returns its index. */
lars_status_t lars_add_param_group(lars_optimizer_t* opt, int32_t* group_out);
/* Sets an option of a group by name ("lr", "weight_decay", ...); for the enum options
 * ("trust_mode", "step_order", "nonfinite": LARS_OPTION_ENUM) use the _str variant. */
lars_status_t lars_set_group_option(lars_optimizer_t* opt, int32_t group, const char* key,
                                    double value);
lars_status_t lars_set_group_option_str(lars_optimizer_t* opt, int32_t group, const char* key,
                                        const char* value);

/* Registers parameter `name` in `group`. `grad` may be NULL (no gradient until lars_set_grad). */
lars_status_t lars_add_param(lars_optimizer_t* opt, const char* name, const DLTensor* param,
                             const DLTensor* grad, int32_t group);
/* The gradient of `name` for the next steps; NULL means "no gradient" (the step skips it). */
lars_status_t lars_set_grad(lars_optimizer_t* opt, const char* name, const DLTensor* grad);
/* bitsandbytes override_config for one parameter. */
lars_status_t lars_override(lars_optimizer_t* opt, const char* name, const char* key,
                            double value);
lars_status_t lars_override_str(lars_optimizer_t* opt, const char* name, const char* key,
                                const char* value);

/* One step of every parameter with a gradient. CUDA: work is queued on `cuda_stream` (a
 * CUstream; NULL = the default stream) in the current device's primary context; no sync. */
lars_status_t lars_step(lars_optimizer_t* opt, void* cuda_stream);

/* Sharded parameters across processes (ZeRO, FSDP): see Lars::SetShard / StepBegin /
 * StepFinish in include/halide_lars/lars.h. `name` holds elements [offset, offset + numel) of a tensor of
 * `full_numel` elements (before its first step). A sharded step: lars_step_begin fills
 * `partials` (5 fp64 per registered parameter, registration order, local sums: see
 * Lars::StepBegin; lars_partials_size gives the count) and changes no state; the caller all-reduces them
 * (SUM) across ranks; lars_step_finish(reduced) updates every parameter with a gradient. */
lars_status_t lars_set_shard(lars_optimizer_t* opt, const char* name, int64_t offset,
                             int64_t full_numel);
lars_status_t lars_partials_size(lars_optimizer_t* opt, int64_t* n_out);
lars_status_t lars_step_begin(lars_optimizer_t* opt, double* partials, int64_t n,
                              void* cuda_stream);
lars_status_t lars_step_finish(lars_optimizer_t* opt, const double* partials, int64_t n,
                               void* cuda_stream);
/* The same with the partials in a float64 DLTensor of lars_partials_size elements on any device
 * (for NCCL: on the parameters' GPU, so the all-reduce needs no host copy). */
lars_status_t lars_step_begin_tensor(lars_optimizer_t* opt, const DLTensor* partials,
                                     void* cuda_stream);
lars_status_t lars_step_finish_tensor(lars_optimizer_t* opt, const DLTensor* partials,
                                      void* cuda_stream);

/* Flat parameters (Lars::AddFlatParams in include/halide_lars/lars.h): `count` tensors, tensor i is
 * elements [offsets[i], offsets[i] + numels[i]) of the 1-D `params` and `grads` buffers (same
 * dtype, device and size), named names[i], in param group groups[i] (groups may be NULL: all in
 * group 0). Offsets are multiples of LARS_FLAT_ALIGNMENT elements (lars_layout_flat packs
 * them). A step then runs 2 pipelines for the whole set (CPU: 2 per ~1M-element segment)
 * instead of 2 per tensor, bit-identical to per-tensor steps with step_order "norms_first".
 * fp32 and blockwise 8-bit state (one flat set, 2 more pipelines, per state kind); no percentile
 * clipping for these tensors. lars_set_grad on
 * such a tensor takes NULL (no gradient) or its slice of `grads` (on OpenCL: `grads` itself
 * with the tensor's shape). */
#define LARS_FLAT_ALIGNMENT 64
/* alignment: 0 for LARS_FLAT_ALIGNMENT; tensors with blockwise 8-bit state need their block
 * size (e.g. 256). */
lars_status_t lars_layout_flat(int64_t count, const int64_t* numels, int64_t alignment,
                               int64_t* offsets_out, int64_t* total_out);
/* The layout lars_add_flat_params expects from this optimizer's options (Lars::PlanFlatParams):
 * tensors whose group (groups[i]; NULL: all group 0) gives them blockwise 8-bit state first,
 * then the fp32 ones, offsets on the block size / LARS_FLAT_ALIGNMENT; *total_out = the flat
 * buffers' size in elements. */
lars_status_t lars_plan_flat(lars_optimizer_t* opt, int64_t count, const int64_t* numels,
                             const int32_t* groups, int64_t* offsets_out, int64_t* total_out);
lars_status_t lars_add_flat_params(lars_optimizer_t* opt, const DLTensor* params,
                                   const DLTensor* grads, int64_t count, const char* const* names,
                                   const int64_t* offsets, const int64_t* numels,
                                   const int32_t* groups);
/* Pipelines (kernel calls) the last lars_step ran. */
lars_status_t lars_last_step_pipelines(lars_optimizer_t* opt, int64_t* out);

/* The CPU kernels' thread budget of this optimizer's steps: at most n threads (the caller's
 * included) on the CPUs the process may use, whatever the calling thread's binding. 0 (the
 * default): HL_NUM_THREADS, else OMP_NUM_THREADS, else every CPU the process may use. Results
 * are bit-identical for every n. n < 0: LARS_INVALID_ARGUMENT. */
lars_status_t lars_set_num_threads(lars_optimizer_t* opt, int32_t n);
lars_status_t lars_get_num_threads(lars_optimizer_t* opt, int32_t* out);

/* AMP loss scaling fused into the step: the following steps read every gradient as g / scale
 * (the kernels multiply by float(1 / scale) where they apply the gradient scale; no extra pass
 * over the gradients). For power-of-two scales (torch.amp.GradScaler's) bit-identical to
 * unscaling the gradients first. 1 (the default): off. scale must be finite and > 0, else
 * LARS_INVALID_ARGUMENT and nothing changes. Skipping a step on inf is the caller's. */
lars_status_t lars_set_grad_scale(lars_optimizer_t* opt, double scale);
lars_status_t lars_get_grad_scale(lars_optimizer_t* opt, double* out);

/* The stateless step: one LARS step of one tensor whose state the caller owns (nothing is kept
 * between calls; JAX's FFI handlers run on it). The same kernels and step as lars_step: a
 * sequence of calls is bit-identical to an optimizer with these options. options->lr must be
 * set; percentile clipping and block_wise = 0 need an optimizer (LARS_INVALID_ARGUMENT /
 * LARS_UNIMPLEMENTED). The state is what lars_tensor_state_kind says for the tensor: fp32
 * `momentum` (float32 x numel; codes, absmax NULL) or blockwise 8-bit `codes` (uint8 x numel,
 * zero state: code 127) + `absmax` (float32 x ceil(numel / block_size)) (momentum NULL); all on
 * the parameter's device, contiguous, not overlapping. step: the steps this tensor took before
 * (0: the first). grad_scale: gradients are read as g / grad_scale (1: none). *stepped_out: 1
 * when stepped, 0 when skipped for a non-finite gradient (nonfinite = skip; nothing changed).
 * On error nothing changes. */
lars_status_t lars_tensor_state_kind(const lars_options_t* options, int64_t numel,
                                     int32_t* kind_out);
lars_status_t lars_step_tensor(const lars_options_t* options, const DLTensor* param,
                               const DLTensor* grad, const DLTensor* momentum,
                               const DLTensor* codes, const DLTensor* absmax, int64_t step,
                               double grad_scale, void* cuda_stream, int32_t* stepped_out);

/* XLA FFI handlers of the stateless step (CPU), for jax.ffi.register_ffi_target (Python:
 * halide_lars.jax): XLA_FFI_Error* (XLA_FFI_CallFrame*) in xla/ffi/api/c_api.h's terms; operands,
 * results and attributes in c_api/xla_ffi.cc. Not for calling from C. */
void* halide_lars_xla_step(void* call_frame);
void* halide_lars_xla_begin(void* call_frame);
void* halide_lars_xla_finish(void* call_frame);

/* Steps taken by a parameter, and its momentum as fp32 (dequantized for 8-bit state) copied to
 * host memory of `n` floats (n must equal the parameter's element count). */
lars_status_t lars_param_step(lars_optimizer_t* opt, const char* name, int64_t* step_out);
/* Steps of `name` skipped for a non-finite gradient (nonfinite = skip). */
lars_status_t lars_param_skipped_steps(lars_optimizer_t* opt, const char* name, int64_t* out);
lars_status_t lars_get_momentum(lars_optimizer_t* opt, const char* name, float* out, size_t n);

/* Optimizer state under bitsandbytes' names, zero-copy (see StateTensorView in include/halide_lars/lars.h).
 * Keys: "state1" (f32 momentum, or u8 codes; numel elements), "absmax1" (blockwise 8-bit: f32
 * per block), "qmap1" (8-bit: the f32[256] codebook, shared per device, read-only in effect),
 * "max1" / "new_max1" (per-tensor 8-bit: f32[1] each), "gnorm_vec" (percentile clipping:
 * f32[100]), "unorm_vec" (trust clip: f32[1], the last update's squared norm). */
typedef enum {
  LARS_STATE_FP32 = 0,       /* state1 f32 */
  LARS_STATE_BLOCKWISE8 = 1, /* state1 u8 codes + absmax1 per block */
  LARS_STATE_TENSOR8 = 2     /* state1 u8 codes + max1 (block_wise = 0, bitsandbytes' LARS8bit) */
} lars_state_kind_t;

/* Registered parameters (their order is the registration order). */
lars_status_t lars_param_count(lars_optimizer_t* opt, int64_t* n_out);
/* For every parameter (n = lars_param_count), its step count and a state version that changes
 * exactly when the memory lars_export_state returns changes (state converted or loaded; and the
 * per-step swap of max1/new_max1 and of unorm_vec's slot, so it alternates between two values).
 * Cache exports per (parameter, version). */
lars_status_t lars_state_versions(lars_optimizer_t* opt, int64_t n, int64_t* steps_out,
                                  uint64_t* versions_out);
/* Number of state tensors `name` has now. */
lars_status_t lars_state_count(lars_optimizer_t* opt, const char* name, int32_t* count_out);
/* State tensor `index` (< lars_state_count) of `name`: *key_out (a static string) and a
 * DLManagedTensor over the optimizer's memory on the parameter's device (1-D, dense, kDLFloat
 * 32 or kDLUInt 8). Writing through it changes the optimizer's state. The caller owns the
 * DLManagedTensor: call its deleter when done (it keeps the memory -- and the optimizer, even
 * after lars_destroy -- alive until then). After a version change it views memory the optimizer
 * no longer uses: export again. */
lars_status_t lars_export_state(lars_optimizer_t* opt, const char* name, int32_t index,
                                const char** key_out, DLManagedTensor** out);

/* One parameter's state in bitsandbytes' layout, in host memory (lars_import_state). */
typedef struct {
  const char* name;
  int64_t step;             /* steps taken (bitsandbytes' state["step"]) */
  int32_t kind;             /* lars_state_kind_t: the layout of the arrays below */
  int32_t block_size;       /* LARS_STATE_BLOCKWISE8: elements per absmax */
  int64_t numel;            /* elements of momentum / codes (must be the parameter's) */
  const float* momentum;    /* LARS_STATE_FP32: numel floats, else NULL */
  const uint8_t* codes;     /* 8-bit: numel codes, else NULL */
  const float* absmax;      /* BLOCKWISE8: absmax_count = ceil(numel / block_size); TENSOR8: 1 */
  int64_t absmax_count;
  const float* qmap;        /* 8-bit: the 256 codes `codes` index, or NULL (the built-in one) */
  const float* gnorm_vec;   /* 100 floats (percentile ring), or NULL */
  const float* unorm_vec;   /* 1 float, or NULL */
} lars_param_state_t;
/* Sets the state of `count` named parameters (Lars::ImportState): all validated first, nothing
 * changed on error; converted to the kind this optimizer gives each parameter (8-bit codes kept
 * exactly when kind, block size and codebook match). */
lars_status_t lars_import_state(lars_optimizer_t* opt, int64_t count,
                                const lars_param_state_t* states);

/* Bytes of optimizer state on all devices. */
lars_status_t lars_state_size(lars_optimizer_t* opt, int64_t* bytes_out);

/* Checkpoints. lars_save_state: with buffer == NULL (or too small) only *size_out is set
 * (LARS_OK, resp. LARS_OUT_OF_RANGE); otherwise the checkpoint is written to buffer.
 * Loading validates everything first and changes nothing on error. */
lars_status_t lars_save_state(lars_optimizer_t* opt, uint8_t* buffer, size_t capacity,
                              size_t* size_out);
lars_status_t lars_load_state(lars_optimizer_t* opt, const uint8_t* data, size_t size);
lars_status_t lars_save_state_file(lars_optimizer_t* opt, const char* path);
lars_status_t lars_load_state_file(lars_optimizer_t* opt, const char* path);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HALIDE_LARS_C_API_LARS_C_H_ */
