"""halide_lars: the LARS optimizer of bitsandbytes (LARS, LARS8bit, LARS32bit) over Halide
kernels, through the C ABI of libhalide_lars.so (ctypes; no compilation, no PyPI dependencies).

    import halide_lars
    opt = halide_lars.LARS(model.parameters(), lr=0.1, momentum=0.9)   # torch
    opt = halide_lars.NumpyLARS({"w": w}, lr=0.1, momentum=0.9)        # numpy
"""
from ._lib import lib as _clib

from .core import Optimizer as _Optimizer  # noqa: F401
from .numpy_api import NumpyLARS  # noqa: F401

try:  # torch is optional
    from .torch_optim import LARS, LARS8bit, LARS32bit, exclude_bias_and_norm  # noqa: F401
    from .distributed import fsdp1_sharding  # noqa: F401
except ImportError:  # pragma: no cover
    pass

__version__ = _clib.lars_version().decode()
ABI_VERSION = _clib.lars_abi_version()
