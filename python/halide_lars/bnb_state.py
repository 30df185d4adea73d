"""bitsandbytes' per-parameter state layout <-> halide_lars' import records (no math here).

bitsandbytes (0.49 and 0.50, Optimizer1State.init_state) keeps, per parameter:
  step       int, steps taken
  state1     float32 momentum (p's shape), or uint8 codes for 8-bit state
  qmap1      8-bit: float32[256], the dynamic codebook the codes index
  absmax1    blockwise 8-bit (0.50, and 0.49 with block_wise=True): float32[ceil(n / 256)]
  max1, new_max1   per-tensor 8-bit (0.49 LARS8bit): float32[1] each; max1 is the codes' scale
  gnorm_vec  percentile clipping (0.49): float32[100], squared gradient norms
  unorm_vec  max_unorm > 0: float32[1]
and from 0.49.2 its state_dict() nests the tensors of each entry under
"__bnb_optimizer_quant_state__" (its load_state_dict unwraps them again).
"""
import numpy as np
import torch

from . import _lib

WRAPPED = "__bnb_optimizer_quant_state__"
TENSOR_KEYS = ("state1", "qmap1", "absmax1", "max1", "new_max1", "gnorm_vec", "unorm_vec")
# Block sizes bitsandbytes has used for blockwise optimizer state (256 since 0.45; 2048 before).
_BLOCK_SIZES = (256, 2048, 4096, 1024, 512, 128, 64)


def unwrap(entry):
    """One saved per-parameter entry with bitsandbytes' nesting (0.49.2+) undone."""
    if not isinstance(entry, dict):
        raise ValueError(f"a state entry is a {type(entry).__name__}, expected a dict")
    if WRAPPED not in entry:
        return entry
    flat = {k: v for k, v in entry.items() if k != WRAPPED}
    flat.update(entry[WRAPPED])
    return flat


def _tensor(entry, key, where, dtype, numel=None):
    t = entry[key]
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{where}: {key!r} is a {type(t).__name__}, expected a torch.Tensor")
    if t.dtype != dtype:
        raise ValueError(f"{where}: {key!r} has dtype {t.dtype}, expected {dtype}")
    if numel is not None and t.numel() != numel:
        raise ValueError(f"{where}: {key!r} has {t.numel()} elements (shape "
                         f"{tuple(t.shape)}), expected {numel}")
    return np.ascontiguousarray(t.detach().reshape(-1).cpu().numpy())


def _step(entry, where):
    s = entry.get("step", 0)
    if isinstance(s, torch.Tensor):
        if s.numel() != 1:
            raise ValueError(f"{where}: 'step' is a tensor of {s.numel()} elements")
        s = s.item()
    if isinstance(s, float) and s.is_integer():
        s = int(s)
    if not isinstance(s, int) or isinstance(s, bool) or s < 0:
        raise ValueError(f"{where}: 'step' is {s!r}, expected a non-negative int")
    return s


def record(name, param, entry, where):
    """The import record (core.Optimizer.import_state) of one parameter's bitsandbytes-layout
    state `entry`; an empty entry restarts the parameter (step 0, zero momentum). Raises
    ValueError naming `where` for anything that is not LARS state of this parameter."""
    n = param.numel()
    entry = unwrap(entry)
    if not entry:
        return {"name": name, "step": 0, "kind": _lib.STATE_FP32, "numel": n,
                "momentum": np.zeros(n, np.float32)}
    if "state1" not in entry:
        raise ValueError(f"{where}: keys {sorted(entry)}: not LARS state (bitsandbytes' 'state1' "
                         "is missing; a state_dict of another optimizer?)")
    unknown = set(entry) - set(TENSOR_KEYS) - {"step"}
    if unknown:
        raise ValueError(f"{where}: unexpected keys {sorted(unknown)} (LARS state has "
                         f"{['step', *TENSOR_KEYS]})")
    rec = {"name": name, "step": _step(entry, where), "numel": n}
    s1 = entry["state1"]
    if not isinstance(s1, torch.Tensor):
        raise ValueError(f"{where}: 'state1' is a {type(s1).__name__}, expected a torch.Tensor")
    if s1.dtype == torch.float32:
        rec["kind"] = _lib.STATE_FP32
        rec["momentum"] = _tensor(entry, "state1", where, torch.float32, n)
    elif s1.dtype == torch.uint8:
        rec["codes"] = _tensor(entry, "state1", where, torch.uint8, n)
        if "qmap1" not in entry:
            raise ValueError(f"{where}: 8-bit 'state1' without 'qmap1' (its codebook)")
        rec["qmap"] = _tensor(entry, "qmap1", where, torch.float32, 256)
        if "absmax1" in entry:
            absmax = _tensor(entry, "absmax1", where, torch.float32)
            sizes = [b for b in _BLOCK_SIZES if -(-n // b) == absmax.size]
            if not sizes:
                raise ValueError(f"{where}: 'absmax1' has {absmax.size} elements: no block size "
                                 f"gives that many blocks for {n} elements")
            rec.update(kind=_lib.STATE_BLOCKWISE8, block_size=sizes[0], absmax=absmax)
        elif "max1" in entry:
            rec.update(kind=_lib.STATE_TENSOR8, absmax=_tensor(entry, "max1", where, torch.float32, 1))
        else:
            raise ValueError(f"{where}: 8-bit 'state1' with neither 'absmax1' (blockwise) nor "
                             "'max1' (per-tensor) scales")
    else:
        raise ValueError(f"{where}: 'state1' has dtype {s1.dtype}, expected torch.float32 (fp32 "
                         "state) or torch.uint8 (8-bit codes)")
    if "gnorm_vec" in entry:
        rec["gnorm_vec"] = _tensor(entry, "gnorm_vec", where, torch.float32, 100)
    if "unorm_vec" in entry:
        rec["unorm_vec"] = _tensor(entry, "unorm_vec", where, torch.float32, 1)
    return rec
