"""The kernel matrix built by default (keep it small: every entry is an LLVM run on 2 cores).

Rows here and in runtime/kernels.inc must agree; the registry fails to compile otherwise.
"""

DTYPES = ["f32", "f16", "bf16"]
BACKENDS = ["cpu", "cuda", "opencl"]
GPU_BACKENDS = ["cuda", "opencl"]

# (op, registered generator name with {dtype}, dtypes, GeneratorParams), built for every backend.
OPS = [
    ("norms", "norms_{dtype}", DTYPES, {}),
    ("lars_norms", "lars_norms_{dtype}", DTYPES, {}),
    ("lars_update", "lars_update_{dtype}", DTYPES, {}),
    ("percentile_clip", "percentile_clip", ["f32"], {}),
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
    for (op, generator, dtypes, params) in OPS
    for dtype in dtypes
    for backend in BACKENDS
]
