"""The kernel matrix built by default (keep it small: every entry is an LLVM run on 2 cores).

The registry's rows (generators/kernels.inc, the genrule :kernels_inc) are generated from OPS:
a kernel is built exactly when it is registered. The ops' arguments: runtime/kernel_ops.inc.
Schedule GeneratorParams come from the tuning table (tools/autotune writes it).
"""

load(":tuning_table.bzl", "TUNING")

DTYPES = ["f32", "f16", "bf16"]
BACKENDS = ["cpu", "cuda", "opencl"]
GPU_BACKENDS = ["cuda", "opencl"]

DEFAULT = [("", {})]

# Quantization block sizes: 256 (default, no suffix) and 2048 (suffix b2048).
BLOCKS = [("", {"block": "256"}), ("b2048", {"block": "2048"})]

# (op, registered generator name with {dtype}, dtypes, backends, [(variant, GeneratorParams)]).
OPS = [
    ("norms", "norms_{dtype}", DTYPES, BACKENDS, DEFAULT),
    ("lars_norms", "lars_norms_{dtype}", DTYPES, BACKENDS, DEFAULT),
    ("lars_update", "lars_update_{dtype}", DTYPES, BACKENDS, DEFAULT),
    ("percentile_clip", "percentile_clip", ["f32"], BACKENDS, DEFAULT),
    # Multi-tensor (flat set) step: two launches per (dtype, device) group, whatever the tensor count.
    ("lars_flat_norms", "lars_flat_norms_{dtype}", DTYPES, BACKENDS, DEFAULT),
    ("lars_flat_update", "lars_flat_update_{dtype}", DTYPES, BACKENDS, DEFAULT),
    ("lars8bit_flat_norms", "lars8bit_flat_norms_{dtype}", DTYPES, BACKENDS, BLOCKS),
    ("lars8bit_flat_update", "lars8bit_flat_update_{dtype}", DTYPES, BACKENDS, BLOCKS),
    # Momentum-first order (28 B/param): the fused reduce-then-write pass needs compute_with
    # inside one CPU loop nest, so it is CPU-only (GPUs use lars_norms + lars_update).
    ("lars_momentum", "lars_momentum_{dtype}", DTYPES, ["cpu"], DEFAULT),
    ("lars_apply", "lars_apply_{dtype}", DTYPES, ["cpu"], DEFAULT),
    ("quantize_blockwise", "quantize_blockwise_{dtype}", DTYPES, BACKENDS, BLOCKS),
    ("dequantize_blockwise", "dequantize_blockwise_{dtype}", DTYPES, BACKENDS, BLOCKS),
    ("lars8bit_norms", "lars8bit_norms_{dtype}", DTYPES, BACKENDS, BLOCKS),
    ("lars8bit_update", "lars8bit_update_{dtype}", DTYPES, BACKENDS, BLOCKS),
    ("lars8bit_tensor_norms", "lars8bit_tensor_norms_{dtype}", DTYPES, BACKENDS, DEFAULT),
    ("lars8bit_tensor_update", "lars8bit_tensor_update_{dtype}", DTYPES, BACKENDS, DEFAULT),
]

GENERATOR_SRCS = [
    "codebook.cc",
    "codebook.h",
    "common.h",
    "contracts.cc",
    "contracts.h",
    "float16.cc",
    "float16.h",
    "schedules.cc",
    "schedules.h",
    "flat_common.h",
    "lars_flat_generator.cc",
    "lars_math.cc",
    "lars_math.h",
    "lars8bit_update_generator.cc",
    "lars_update_generator.cc",
    "norms_generator.cc",
    "percentile_generator.cc",
    "quantize_generator.cc",
]

def kernel_name(op, dtype, backend, variant = ""):
    return "_".join([op, dtype, backend] + ([variant] if variant else []))

# Ops that take another op's tuned GeneratorParams: the flat set norms must keep lars_norms'
# reduction tree (bit-identical steps); the flat set update is lars_update's loop with a lookup.
TUNING_SOURCE = {
    "lars_flat_norms": "lars_norms",
    "lars_flat_update": "lars_update",
    "lars8bit_flat_norms": "lars8bit_norms",
    "lars8bit_flat_update": "lars8bit_update",
}

# GeneratorParams of a source op that its flat set twin does not have: the flat set's per-tensor
# options (first step, nesterov) come from a table, so there is no steady-state specialization.
NOT_SHARED = ["specialize_steady"]

def tuned_params(op, backend, params):
    """The tuning table's GeneratorParams for (op, backend), then the variant's own."""
    source = TUNING_SOURCE.get(op, op)
    merged = {
        k: v
        for k, v in TUNING.get(source + "/" + backend, {}).items()
        if source == op or k not in NOT_SHARED
    }
    merged.update(params)
    return merged

# (name, registered generator, backend, params)
DEFAULT_KERNELS = [
    (kernel_name(op, dtype, backend, variant), generator.format(dtype = dtype), backend,
     tuned_params(op, backend, params))
    for (op, generator, dtypes, backends, variants) in OPS
    for dtype in dtypes
    for backend in backends
    for (variant, params) in variants
]

# The registry's rows (generators/kernels.inc): LARS_KERNEL(op, dtype, backend) or
# LARS_KERNEL_VARIANT(op, dtype, backend, _variant), one per DEFAULT_KERNELS entry, same order.
KERNEL_INC_ROWS = [
    ("LARS_KERNEL_VARIANT(%s, %s, %s, _%s)" % (op, dtype, backend, variant)) if variant else ("LARS_KERNEL(%s, %s, %s)" % (op, dtype, backend))
    for (op, generator, dtypes, backends, variants) in OPS
    for dtype in dtypes
    for backend in backends
    for (variant, params) in variants
]
