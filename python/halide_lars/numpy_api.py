"""numpy-level API: LARS over a dict of float32/float16 numpy arrays, updated in place."""
import numpy as np

from .core import Optimizer
from .dlpack import from_numpy, managed_to_numpy


class NumpyLARS:
    """LARS over named numpy arrays (updated in place).

        opt = NumpyLARS({"w": w, "b": b}, lr=0.1, momentum=0.9, weight_decay=1e-4)
        opt.override("b", "weight_decay", 0.0)
        opt.step({"w": gw, "b": gb})        # arrays missing from the dict are skipped
    """

    def __init__(self, params, lr, num_threads=0, **options):
        """`options`: any option of the library's table (halide_lars._lib.OPTIONS: bitsandbytes'
        momentum, weight_decay, ... and ours), with its defaults; unknown names raise TypeError.
        num_threads: the CPU kernels' thread budget (0: HL_NUM_THREADS, else OMP_NUM_THREADS,
        else every CPU the process may use); results are the same for every value."""
        if not isinstance(params, dict):
            raise TypeError("params: expected a dict of name -> numpy array")
        self._opt = Optimizer(lr=lr, **options)
        self._opt.set_num_threads(num_threads)
        self._params = dict(params)
        for name, a in self._params.items():
            if not a.flags.c_contiguous:
                raise ValueError(f"{name}: array is not contiguous")
            self._opt.add_param(name, from_numpy(a).dl, None, 0)

    def override(self, name, key, value):
        self._opt.override(name, key, value)

    def step(self, grads):
        for name in self._params:
            g = grads.get(name)
            self._opt.set_grad(name, from_numpy(g).dl if g is not None else None)
        self._opt.step()

    def state(self, name):
        """step, the momentum as fp32 (a copy; dequantized for 8-bit state), and bitsandbytes'
        state tensors as live numpy arrays over the optimizer's memory (state1, qmap1,
        absmax1 or max1/new_max1, gnorm_vec, unorm_vec: writing them changes the optimizer)."""
        out = {"step": self._opt.param_step(name),
               "momentum": np.ctypeslib.as_array(self._opt.momentum(name, self._params[name].size))}
        for key, managed in self._opt.export_state(name).items():
            a = managed_to_numpy(managed)
            out[key] = a.reshape(self._params[name].shape) if key == "state1" else a
        return out

    def state_dict(self):
        return self._opt.save_state()

    def load_state_dict(self, data):
        self._opt.load_state(data)
