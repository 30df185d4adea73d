"""ctypes declarations of include/halide_lars/lars_c.h: every C function is declared here exactly once.

The shared library is found through $HALIDE_LARS_LIB, next to this package, or in the Bazel
output tree (bazel-bin/c_api/libhalide_lars.so). Nothing is compiled at import.
"""
import ctypes
import math
import os
import pathlib

# --- DLPack (dlpack/dlpack.h, v0.6) -------------------------------------------------------
kDLCPU, kDLCUDA, kDLCUDAHost, kDLOpenCL = 1, 2, 3, 4
kDLInt, kDLUInt, kDLFloat, kDLBfloat = 0, 1, 2, 4


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class Options(ctypes.Structure):
    """lars_options_t; its fields come from the library's option table at import (_options)."""


class OptionInfo(ctypes.Structure):
    """lars_option_info_t"""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("values", ctypes.c_char_p),
        ("expected", ctypes.c_char_p),
        ("doc", ctypes.c_char_p),
        ("offset", ctypes.c_int64),
        ("default_value", ctypes.c_double),
        ("type", ctypes.c_int32),
    ]


class DLManagedTensor(ctypes.Structure):
    pass


DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))),
]


class ParamState(ctypes.Structure):
    """lars_param_state_t"""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("step", ctypes.c_int64),
        ("kind", ctypes.c_int32),
        ("block_size", ctypes.c_int32),
        ("numel", ctypes.c_int64),
        ("momentum", ctypes.c_void_p),
        ("codes", ctypes.c_void_p),
        ("absmax", ctypes.c_void_p),
        ("absmax_count", ctypes.c_int64),
        ("qmap", ctypes.c_void_p),
        ("gnorm_vec", ctypes.c_void_p),
        ("unorm_vec", ctypes.c_void_p),
    ]


STATE_FP32, STATE_BLOCKWISE8, STATE_TENSOR8 = 0, 1, 2

_P = ctypes.c_void_p
_S = ctypes.c_char_p
_T = ctypes.POINTER(DLTensor)
_I32 = ctypes.c_int32
_I64 = ctypes.c_int64
# name -> (restype, argtypes)
FUNCTIONS = {
    "lars_abi_version": (ctypes.c_int32, []),
    "lars_version": (ctypes.c_char_p, []),
    "lars_last_error": (ctypes.c_char_p, []),
    "lars_option_count": (ctypes.c_int32, []),
    "lars_option_info": (ctypes.c_int, [_I32, ctypes.POINTER(OptionInfo)]),
    "lars_options_size": (ctypes.c_int64, []),
    "lars_options_default": (ctypes.c_int, [ctypes.POINTER(Options)]),
    "lars_create": (ctypes.c_int, [ctypes.POINTER(Options), ctypes.POINTER(_P)]),
    "lars_validate_options": (ctypes.c_int, [ctypes.POINTER(Options)]),
    "lars_destroy": (ctypes.c_int, [_P]),
    "lars_add_param_group": (ctypes.c_int, [_P, ctypes.POINTER(_I32)]),
    "lars_set_group_option": (ctypes.c_int, [_P, _I32, _S, ctypes.c_double]),
    "lars_set_group_option_str": (ctypes.c_int, [_P, _I32, _S, _S]),
    "lars_add_param": (ctypes.c_int, [_P, _S, _T, _T, _I32]),
    "lars_set_grad": (ctypes.c_int, [_P, _S, _T]),
    "lars_override": (ctypes.c_int, [_P, _S, _S, ctypes.c_double]),
    "lars_override_str": (ctypes.c_int, [_P, _S, _S, _S]),
    "lars_step": (ctypes.c_int, [_P, _P]),
    "lars_set_shard": (ctypes.c_int, [_P, _S, _I64, _I64]),
    "lars_layout_flat": (ctypes.c_int, [_I64, ctypes.POINTER(_I64), _I64, ctypes.POINTER(_I64),
                                        ctypes.POINTER(_I64)]),
    "lars_plan_flat": (ctypes.c_int, [_P, _I64, ctypes.POINTER(_I64), ctypes.POINTER(_I32),
                                      ctypes.POINTER(_I64), ctypes.POINTER(_I64)]),
    "lars_add_flat_params": (ctypes.c_int, [_P, _T, _T, _I64, ctypes.POINTER(_S),
                                            ctypes.POINTER(_I64), ctypes.POINTER(_I64),
                                            ctypes.POINTER(_I32)]),
    "lars_last_step_pipelines": (ctypes.c_int, [_P, ctypes.POINTER(_I64)]),
    "lars_set_num_threads": (ctypes.c_int, [_P, ctypes.c_int32]),
    "lars_get_num_threads": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_int32)]),
    "lars_set_grad_scale": (ctypes.c_int, [_P, ctypes.c_double]),
    "lars_get_grad_scale": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_double)]),
    "lars_tensor_state_kind": (ctypes.c_int, [_P, ctypes.c_int64, ctypes.POINTER(ctypes.c_int32)]),
    "lars_step_tensor": (ctypes.c_int, [_P, _P, _P, _P, _P, _P, ctypes.c_int64, ctypes.c_double,
                                        _P, ctypes.POINTER(ctypes.c_int32)]),
    "lars_partials_size": (ctypes.c_int, [_P, ctypes.POINTER(_I64)]),
    "lars_step_begin": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_double), _I64, _P]),
    "lars_step_finish": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_double), _I64, _P]),
    "lars_step_begin_tensor": (ctypes.c_int, [_P, _T, _P]),
    "lars_step_finish_tensor": (ctypes.c_int, [_P, _T, _P]),
    "lars_param_step": (ctypes.c_int, [_P, _S, ctypes.POINTER(_I64)]),
    "lars_param_skipped_steps": (ctypes.c_int, [_P, _S, ctypes.POINTER(_I64)]),
    "lars_get_momentum": (ctypes.c_int, [_P, _S, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t]),
    "lars_state_size": (ctypes.c_int, [_P, ctypes.POINTER(_I64)]),
    "lars_param_count": (ctypes.c_int, [_P, ctypes.POINTER(_I64)]),
    "lars_state_versions": (ctypes.c_int, [_P, _I64, ctypes.POINTER(_I64),
                                           ctypes.POINTER(ctypes.c_uint64)]),
    "lars_state_count": (ctypes.c_int, [_P, _S, ctypes.POINTER(_I32)]),
    "lars_export_state": (ctypes.c_int, [_P, _S, _I32, ctypes.POINTER(ctypes.c_char_p),
                                         ctypes.POINTER(ctypes.POINTER(DLManagedTensor))]),
    "lars_import_state": (ctypes.c_int, [_P, _I64, ctypes.POINTER(ParamState)]),
    "lars_save_state": (ctypes.c_int, [_P, ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]),
    "lars_load_state": (ctypes.c_int, [_P, ctypes.c_void_p, ctypes.c_size_t]),
    "lars_save_state_file": (ctypes.c_int, [_P, _S]),
    "lars_load_state_file": (ctypes.c_int, [_P, _S]),
}

# lars_status_t -> Python exception (one table, used by check()).
_ERRORS = {
    3: ValueError,  # INVALID_ARGUMENT
    5: KeyError,  # NOT_FOUND
    6: ValueError,  # ALREADY_EXISTS
    9: RuntimeError,  # FAILED_PRECONDITION
    11: IndexError,  # OUT_OF_RANGE
    12: NotImplementedError,  # UNIMPLEMENTED
    14: RuntimeError,  # UNAVAILABLE
    15: ValueError,  # DATA_LOSS
}


def _find_library():
    env = os.environ.get("HALIDE_LARS_LIB")
    candidates = [env] if env else []
    here = pathlib.Path(__file__).resolve().parent
    candidates.append(str(here / "libhalide_lars.so"))
    for parent in [here] + list(here.parents):
        candidates.append(str(parent / "bazel-bin" / "c_api" / "libhalide_lars.so"))
    for c in candidates:
        if c and os.path.exists(c):
            return c
    raise ImportError(
        "libhalide_lars.so not found: build it with `bazel build //c_api:halide_lars_shared` "
        "and set HALIDE_LARS_LIB to its path")


def _load():
    lib = ctypes.CDLL(_find_library())
    for name, (restype, argtypes) in FUNCTIONS.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib = _load()

# --- The option table (lars_option_info): names, types, defaults, enum values ------------
OPTION_FLOAT64, OPTION_INT32, OPTION_INT64, OPTION_BOOL, OPTION_ENUM = range(5)


class Option:
    """One option of the library's table (include/halide_lars/options.inc)."""

    def __init__(self, info):
        self.name = info.name.decode()
        self.type = info.type
        self.values = info.values.decode().split(",") if info.values else []
        self.expected = info.expected.decode()
        self.doc = info.doc.decode()
        self.offset = info.offset
        d = info.default_value
        if self.type == OPTION_ENUM:
            self.default = self.values[int(d)]
        elif self.type == OPTION_BOOL:
            self.default = bool(d)
        elif self.type in (OPTION_INT32, OPTION_INT64):
            self.default = int(d)
        else:
            self.default = None if math.isnan(d) else d

    @property
    def is_text(self):
        """Set by name ("clip", "norms_first", ...) through the _str calls."""
        return self.type == OPTION_ENUM

    def __repr__(self):
        return f"Option({self.name!r}, default={self.default!r}, expected {self.expected!r})"


def _option_table():
    table = {}
    for i in range(lib.lars_option_count()):
        info = OptionInfo()
        if lib.lars_option_info(i, ctypes.byref(info)) != 0:
            raise ImportError(f"lars_option_info({i}): {lib.lars_last_error().decode()}")
        table[info.name.decode()] = Option(info)
    return table


OPTIONS = _option_table()
"""name -> Option, in the library's order (lars_set_group_option, checkpoints)."""

_CTYPES = {OPTION_FLOAT64: ctypes.c_double, OPTION_INT32: ctypes.c_int32,
           OPTION_INT64: ctypes.c_int64, OPTION_BOOL: ctypes.c_int32, OPTION_ENUM: ctypes.c_int32}
Options._fields_ = [(o.name, _CTYPES[o.type]) for o in sorted(OPTIONS.values(), key=lambda o: o.offset)]
if ctypes.sizeof(Options) != lib.lars_options_size() or any(
        getattr(Options, o.name).offset != o.offset for o in OPTIONS.values()):
    raise ImportError("lars_options_t: the option table's offsets do not match a C struct of its "
                      "fields (a library built from different sources?)")


def check(status):
    """Raises the exception of a non-zero lars_status_t with the C ABI's message."""
    if status != 0:
        msg = lib.lars_last_error().decode()
        raise _ERRORS.get(status, RuntimeError)(msg)


def default_options():
    o = Options()
    check(lib.lars_options_default(ctypes.byref(o)))
    return o


NAN = math.nan
