"""DLTensor views (zero-copy) of numpy arrays and torch tensors for the C ABI."""
import ctypes

from . import _lib


class TensorRef:
    """A DLTensor describing existing memory; keeps its shape/strides arrays alive."""

    def __init__(self, data_ptr, shape, strides, dtype_code, bits, device_type, device_id):
        self.shape = (ctypes.c_int64 * max(len(shape), 1))(*shape)
        self.strides = (ctypes.c_int64 * max(len(strides), 1))(*strides)
        self.dl = _lib.DLTensor()
        self.dl.data = data_ptr
        self.dl.device = _lib.DLDevice(device_type, device_id)
        self.dl.ndim = len(shape)
        self.dl.dtype = _lib.DLDataType(dtype_code, bits, 1)
        self.dl.shape = self.shape
        self.dl.strides = self.strides
        self.dl.byte_offset = 0


def from_numpy(a):
    import numpy as np

    if not isinstance(a, np.ndarray):
        raise TypeError(f"expected a numpy.ndarray, got {type(a).__name__}")
    codes = {np.dtype(np.float32): (_lib.kDLFloat, 32), np.dtype(np.float16): (_lib.kDLFloat, 16)}
    if a.dtype not in codes:
        raise TypeError(f"dtype {a.dtype}: expected float32 or float16 (bfloat16: use torch)")
    code, bits = codes[a.dtype]
    strides = [s // a.itemsize for s in a.strides]  # DLPack strides count elements
    return TensorRef(a.ctypes.data, a.shape, strides, code, bits, _lib.kDLCPU, 0)


def from_torch(t, partials=False):
    """partials=True: the sharded step's partial sums, which are float64 (and only those)."""
    import torch

    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(t).__name__}")
    codes = {torch.float32: (_lib.kDLFloat, 32), torch.float16: (_lib.kDLFloat, 16),
             torch.bfloat16: (_lib.kDLBfloat, 16)}
    if partials:
        codes = {torch.float64: (_lib.kDLFloat, 64)}
    if t.dtype not in codes:
        want = "torch.float64" if partials else "torch.float32, float16 or bfloat16"
        raise TypeError(f"dtype {t.dtype}: expected {want}")
    code, bits = codes[t.dtype]
    if t.device.type == "cpu":
        dev, idx = _lib.kDLCPU, 0
    elif t.device.type == "cuda":
        dev, idx = _lib.kDLCUDA, t.device.index or 0
    else:
        raise ValueError(f"device {t.device}: expected cpu or cuda")
    return TensorRef(t.data_ptr(), list(t.shape), list(t.stride()), code, bits, dev, idx)


# Our own prototype of PyCapsule_New: ctypes.pythonapi.PyCapsule_New is one shared object whose
# argtypes other libraries rewrite (jax.ffi.pycapsule sets a CFUNCTYPE destructor).
_PyCapsule_New = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p,
                                   ctypes.c_void_p)(("PyCapsule_New", ctypes.pythonapi))
_DLTENSOR = b"dltensor"  # the capsule name DLPack consumers look for (kept alive here)


def managed_to_torch(managed):
    """A torch tensor over a DLManagedTensor* (a ctypes pointer) that halide_lars exported:
    zero-copy; torch calls its deleter when the tensor's storage is freed."""
    import torch.utils.dlpack

    try:
        capsule = _PyCapsule_New(ctypes.cast(managed, ctypes.c_void_p), _DLTENSOR, None)
        return torch.utils.dlpack.from_dlpack(capsule)
    except Exception:
        managed.contents.deleter(managed)  # not taken over: release it here
        raise


class _Export:
    """Owns one exported DLManagedTensor: releases it (and the memory it pins) when collected."""

    def __init__(self, managed):
        self.managed = managed

    def __del__(self):
        self.managed.contents.deleter(self.managed)


def managed_to_numpy(managed):
    """A numpy array over a CPU DLManagedTensor* that halide_lars exported (zero-copy; the
    export is released when the array and its views are gone)."""
    import numpy as np

    owner = _Export(managed)
    t = managed.contents.dl_tensor
    if t.device.device_type != _lib.kDLCPU:
        raise ValueError(f"device type {t.device.device_type}: numpy views CPU memory only")
    ctype, dtype = ((ctypes.c_uint8, np.uint8) if t.dtype.code == _lib.kDLUInt
                    else (ctypes.c_float, np.float32))
    n = t.shape[0] if t.ndim == 1 else 0
    buf = (ctype * n).from_address(t.data + t.byte_offset) if n else (ctype * 0)()
    buf._halide_lars_export = owner  # the array's base keeps the export alive
    return np.frombuffer(buf, dtype=dtype)
