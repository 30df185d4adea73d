"""The kernel matrix built by default (keep it small: every entry is an LLVM run on 2 cores).

Rows here and in runtime/kernels.inc must agree; the registry fails to compile otherwise.
"""

DTYPES = ["f32", "f16", "bf16"]
BACKENDS = ["cpu", "cuda", "opencl"]
GPU_BACKENDS = ["cuda", "opencl"]

# (op, generator family, params) for every op built for every dtype x backend.
OPS = [
    ("norms", "norms", {}),
]

def kernel_name(op, dtype, backend, variant = ""):
    return "_".join([op, dtype, backend] + ([variant] if variant else []))

DEFAULT_KERNELS = [
    (kernel_name(op, dtype, backend), family + "_" + dtype, backend, params)
    for (op, family, params) in OPS
    for dtype in DTYPES
    for backend in BACKENDS
]
