"""A thin object over one C optimizer handle (no math here: everything runs in the library)."""
import ctypes

from . import _lib
from ._lib import check, lib


def _by_name(key, value):
    """Whether option `key` is set through the _str calls (enum options; unknown keys given text,
    so that the library names the unknown key)."""
    option = _lib.OPTIONS.get(key)
    return option.is_text if option is not None else isinstance(value, str)


def make_options(**kwargs):
    """lars_options_t with the library's defaults and `kwargs` (None: keep the default)."""
    o = _lib.default_options()
    for key, value in kwargs.items():
        option = _lib.OPTIONS.get(key)
        if option is None:
            raise TypeError(f"unknown option {key!r}")
        if value is None:
            continue
        if option.is_text:
            if value not in option.values:
                raise ValueError(f"{key}: {value!r}, expected {option.expected}")
            value = option.values.index(value)
        elif option.type == _lib.OPTION_FLOAT64:
            value = float(value)
        else:
            value = int(value)
        setattr(o, key, value)
    return o


def validate_options(**options):
    """Raises what creating an optimizer with `options` would raise; creates nothing."""
    check(lib.lars_validate_options(ctypes.byref(make_options(**options))))


class Optimizer:
    """Owns a lars_optimizer_t handle."""

    def __init__(self, **options):
        self._handle = ctypes.c_void_p()
        check(lib.lars_create(ctypes.byref(make_options(**options)), ctypes.byref(self._handle)))

    def close(self):
        if self._handle:
            check(lib.lars_destroy(self._handle))
            self._handle = ctypes.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 -- interpreter shutdown
            pass

    def add_group(self):
        g = ctypes.c_int32()
        check(lib.lars_add_param_group(self._handle, ctypes.byref(g)))
        return g.value

    def set_group_option(self, group, key, value):
        if _by_name(key, value):
            check(lib.lars_set_group_option_str(self._handle, group, key.encode(), str(value).encode()))
        else:
            check(lib.lars_set_group_option(self._handle, group, key.encode(), float(value)))

    def add_param(self, name, param, grad, group):
        check(lib.lars_add_param(self._handle, name.encode(), ctypes.byref(param),
                                 ctypes.byref(grad) if grad is not None else None, group))

    def set_grad(self, name, grad):
        check(lib.lars_set_grad(self._handle, name.encode(),
                                ctypes.byref(grad) if grad is not None else None))

    def override(self, name, key, value):
        if _by_name(key, value):
            check(lib.lars_override_str(self._handle, name.encode(), key.encode(), str(value).encode()))
        else:
            check(lib.lars_override(self._handle, name.encode(), key.encode(), float(value)))

    def step(self, cuda_stream=None):
        check(lib.lars_step(self._handle, cuda_stream))

    def plan_flat(self, numels, groups):
        """Offsets for tensors of `numels` elements in param groups `groups`, laid out as this
        optimizer's flat parameters want them (8-bit-state tensors first, block-size
        alignment), and the flat size: (offsets, total). See Lars::PlanFlatParams."""
        n = len(numels)
        c_numels = (ctypes.c_int64 * max(n, 1))(*numels)
        c_groups = (ctypes.c_int32 * max(n, 1))(*groups)
        c_offsets = (ctypes.c_int64 * max(n, 1))()
        total = ctypes.c_int64()
        check(lib.lars_plan_flat(self._handle, n, c_numels, c_groups, c_offsets,
                                 ctypes.byref(total)))
        return list(c_offsets)[:n], total.value

    def add_flat_params(self, params, grads, names, offsets, numels, groups=None):
        """Flat parameters: tensor i is elements [offsets[i], offsets[i] + numels[i])
        of the flat DLTensors params and grads (see lars_add_flat_params)."""
        n = len(names)
        c_names = (ctypes.c_char_p * n)(*[x.encode() for x in names])
        c_offsets = (ctypes.c_int64 * n)(*offsets)
        c_numels = (ctypes.c_int64 * n)(*numels)
        c_groups = (ctypes.c_int32 * n)(*(groups or [0] * n))
        check(lib.lars_add_flat_params(self._handle, ctypes.byref(params), ctypes.byref(grads), n,
                                       c_names, c_offsets, c_numels, c_groups))

    def last_step_pipelines(self):
        n = ctypes.c_int64()
        check(lib.lars_last_step_pipelines(self._handle, ctypes.byref(n)))
        return n.value

    def set_num_threads(self, n):
        """The CPU kernels' thread budget (0: automatic; see lars_set_num_threads)."""
        check(lib.lars_set_num_threads(self._handle, int(n)))

    def num_threads(self):
        n = ctypes.c_int32()
        check(lib.lars_get_num_threads(self._handle, ctypes.byref(n)))
        return n.value

    def set_grad_scale(self, scale):
        """The following steps read every gradient as g / scale (lars_set_grad_scale)."""
        check(lib.lars_set_grad_scale(self._handle, float(scale)))

    def grad_scale(self):
        s = ctypes.c_double()
        check(lib.lars_get_grad_scale(self._handle, ctypes.byref(s)))
        return s.value

    def set_shard(self, name, offset, full_numel):
        check(lib.lars_set_shard(self._handle, name.encode(), int(offset), int(full_numel)))

    def partials_size(self):
        n = ctypes.c_int64()
        check(lib.lars_partials_size(self._handle, ctypes.byref(n)))
        return n.value

    def step_begin(self, partials, cuda_stream=None):
        """Fills `partials` (a ctypes c_double array of partials_size()) with local sums."""
        check(lib.lars_step_begin(self._handle, partials, len(partials), cuda_stream))

    def step_finish(self, partials, cuda_stream=None):
        check(lib.lars_step_finish(self._handle, partials, len(partials), cuda_stream))

    def step_begin_tensor(self, partials, cuda_stream=None):
        """As step_begin, into a float64 DLTensor (dlpack.from_torch(t, partials=True).dl) on
        any device: on the parameters' GPU for NCCL."""
        check(lib.lars_step_begin_tensor(self._handle, ctypes.byref(partials), cuda_stream))

    def step_finish_tensor(self, partials, cuda_stream=None):
        check(lib.lars_step_finish_tensor(self._handle, ctypes.byref(partials), cuda_stream))

    def param_step(self, name):
        s = ctypes.c_int64()
        check(lib.lars_param_step(self._handle, name.encode(), ctypes.byref(s)))
        return s.value

    def skipped_steps(self, name):
        s = ctypes.c_int64()
        check(lib.lars_param_skipped_steps(self._handle, name.encode(), ctypes.byref(s)))
        return s.value

    def momentum(self, name, numel):
        out = (ctypes.c_float * numel)()
        check(lib.lars_get_momentum(self._handle, name.encode(), out, numel))
        return out

    def param_count(self):
        n = ctypes.c_int64()
        check(lib.lars_param_count(self._handle, ctypes.byref(n)))
        return n.value

    def state_versions(self):
        """(steps, versions) of every parameter in registration order (lars_state_versions)."""
        n = self.param_count()
        steps = (ctypes.c_int64 * max(n, 1))()
        versions = (ctypes.c_uint64 * max(n, 1))()
        check(lib.lars_state_versions(self._handle, n, steps, versions))
        return list(steps)[:n], list(versions)[:n]

    def export_state(self, name):
        """{key: DLManagedTensor pointer} of `name`'s state tensors (lars_export_state); the
        caller owns each pointer (dlpack.managed_to_torch takes it over)."""
        count = ctypes.c_int32()
        check(lib.lars_state_count(self._handle, name.encode(), ctypes.byref(count)))
        out = {}
        for i in range(count.value):
            key = ctypes.c_char_p()
            managed = ctypes.POINTER(_lib.DLManagedTensor)()
            check(lib.lars_export_state(self._handle, name.encode(), i, ctypes.byref(key),
                                        ctypes.byref(managed)))
            out[key.value.decode()] = managed
        return out

    def import_state(self, records):
        """Sets parameters' state from bitsandbytes-layout host arrays (lars_import_state).
        records: dicts with name, step, kind (_lib.STATE_*), block_size, numel and contiguous
        numpy arrays momentum (f32) / codes (u8) / absmax, qmap, gnorm_vec, unorm_vec (f32) or
        None."""
        c = (_lib.ParamState * max(len(records), 1))()
        keep = []
        for slot, r in zip(c, records):
            keep.append(r["name"].encode())
            slot.name = keep[-1]
            slot.step = int(r["step"])
            slot.kind = r["kind"]
            slot.block_size = int(r.get("block_size") or 0)
            slot.numel = int(r["numel"])
            for field in ("momentum", "codes", "absmax", "qmap", "gnorm_vec", "unorm_vec"):
                a = r.get(field)
                if a is not None:
                    keep.append(a)
                    setattr(slot, field, a.ctypes.data)
            if r.get("absmax") is not None:
                slot.absmax_count = r["absmax"].size
        check(lib.lars_import_state(self._handle, len(records), c))

    def state_size(self):
        b = ctypes.c_int64()
        check(lib.lars_state_size(self._handle, ctypes.byref(b)))
        return b.value

    def save_state(self):
        size = ctypes.c_size_t()
        check(lib.lars_save_state(self._handle, None, 0, ctypes.byref(size)))
        buf = (ctypes.c_uint8 * size.value)()
        check(lib.lars_save_state(self._handle, buf, size.value, ctypes.byref(size)))
        return bytes(buf)

    def load_state(self, data):
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"checkpoint must be bytes, got {type(data).__name__}")
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        check(lib.lars_load_state(self._handle, buf, len(data)))


def layout_flat(numels, alignment=0):
    """Offsets packing tensors of `numels` elements into one flat buffer (each offset a multiple
    of `alignment` elements: 0 = 64; 8-bit state needs its block size) and the flat size:
    (offsets, total)."""
    n = len(numels)
    c_numels = (ctypes.c_int64 * max(n, 1))(*numels)
    c_offsets = (ctypes.c_int64 * max(n, 1))()
    total = ctypes.c_int64()
    check(lib.lars_layout_flat(n, c_numels, int(alignment), c_offsets, ctypes.byref(total)))
    return list(c_offsets)[:n], total.value
