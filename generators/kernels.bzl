"""The kernel matrix built by default (keep it small: every entry is an LLVM run on 2 cores).

Rows here and in runtime/kernels.inc must agree; the registry fails to compile otherwise.
"""

DTYPES = ["f32", "f16", "bf16"]
BACKENDS = ["cpu", "cuda", "opencl"]
GPU_BACKENDS = ["cuda", "opencl"]

# (op, registered generator name with {dtype}, dtypes, backends, GeneratorParams).
OPS = [
    ("norms", "norms_{dtype}", DTYPES, BACKENDS, {}),
    ("lars_norms", "lars_norms_{dtype}", DTYPES, BACKENDS, {}),
    ("lars_update", "lars_update_{dtype}", DTYPES, BACKENDS, {}),
    ("percentile_clip", "percentile_clip", ["f32"], BACKENDS, {}),
    # Momentum-first order (28 B/param): the fused reduce-then-write pass needs compute_with
    # inside one CPU loop nest, so it is CPU-only (GPUs use lars_norms + lars_update).
    ("lars_momentum", "lars_momentum_{dtype}", DTYPES, ["cpu"], {}),
    ("lars_apply", "lars_apply_{dtype}", DTYPES, ["cpu"], {}),
]

GENERATOR_SRCS = [
    "common.cc",
    "common.h",
    "lars_math.cc",
    "lars_math.h",
    "lars_update_generator.cc",
    "norms_generator.cc",
    "percentile_generator.cc",
]

def kernel_name(op, dtype, backend, variant = ""):
    return "_".join([op, dtype, backend] + ([variant] if variant else []))

# (name, registered generator, backend, params)
DEFAULT_KERNELS = [
    (kernel_name(op, dtype, backend), generator.format(dtype = dtype), backend, params)
    for (op, generator, dtypes, backends, params) in OPS
    for dtype in dtypes
    for backend in backends
]
