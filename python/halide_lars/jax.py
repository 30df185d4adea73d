"""halide_lars under JAX: LARS as an optax GradientTransformation whose update runs our Halide
kernels through XLA's FFI (the stateless step of include/halide_lars/stateless.h, CPU).

    import halide_lars.jax as hlj
    tx = hlj.lars(learning_rate=optax.cosine_decay_schedule(0.2, 1000), weight_decay=1e-6,
                  weight_decay_mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)      # optax's protocol (optax.chain works)
    params = optax.apply_updates(params, updates)
    # or in place, no apply_updates copy:
    step = jax.jit(tx.step, donate_argnums=(0, 1))
    params, state = step(params, state, grads)

Defaults and names are optax.lars's (it reproduces optax.lars: trust_mode "exact" with
lr_in_momentum), plus our options by their bitsandbytes / include/halide_lars/options.inc names (trust_mode,
optim_bits=8 for blockwise 8-bit momentum, block_size, min_8bit_size, nonfinite, dampening, ...).
State: per parameter TensorState(count, momentum) (fp32) or (count, codes, absmax) (8-bit):
plain arrays, so it round-trips through any pytree checkpointing.

shard_map: lars(..., axis_name="x", sharded=...) inside jax.shard_map: leaves marked sharded
(True for all, a pytree of bools or a callable on params) hold a shard each; their norms are
psummed over axis_name between two FFI calls; 8-bit state too, where each device's shard is a
whole number of blocks (shard the state's codes and absmax like the parameter). vmap is not supported (the FFI
calls have no batching rule: an error from JAX).
"""
import ctypes
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _lib
from .core import check, make_options

_P = ctypes.c_void_p
_TARGETS = ("step", "begin", "finish")
_registered = False


def _register():
    global _registered
    if _registered:
        return
    for name in _TARGETS:
        fn = getattr(_lib.lib, "halide_lars_xla_" + name)
        jax.ffi.register_ffi_target("halide_lars_" + name, jax.ffi.pycapsule(fn), platform="cpu")
    _registered = True


class TensorState(NamedTuple):
    """One parameter's state: count (int32, the steps it took), and fp32 momentum or blockwise
    8-bit codes (uint8, flat) + absmax (float32, one per block); the unused fields are None."""
    count: Any
    momentum: Any = None
    codes: Any = None
    absmax: Any = None


class LarsState(NamedTuple):
    tensors: Any  # a pytree of TensorState, the params' structure


class Transformation(optax.GradientTransformation):
    """optax.GradientTransformation (init, update: optax.chain and friends take it), plus
    step(params, state, grads) -> (params, state): the update applied to the parameters in
    place (jit it with donate_argnums=(0, 1): XLA then reuses their buffers)."""
    __slots__ = ()

    def step(self, params, state, grads):
        return self.update.step(params, state, grads)


def _resolve_mask(mask, params):
    """optax's mask forms: a bool, a pytree of bools, or a callable on params."""
    if callable(mask):
        mask = mask(params)
    if isinstance(mask, bool):
        return jax.tree.map(lambda _: mask, params)
    return mask


def _options_text(o):
    return ";".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in o.items())


def lars(learning_rate, weight_decay=0.0, weight_decay_mask=True, trust_coefficient=0.001,
         eps=0.0, trust_ratio_mask=True, momentum=0.9, nesterov=False, *, axis_name=None,
         sharded=True, **options) -> Transformation:
    """optax.lars's signature and defaults (learning_rate a float or a schedule of the step
    count), and our options by name (trust_mode="exact" and lr_in_momentum=True reproduce
    optax.lars; trust_mode="clip", lr_in_momentum=False, optim_bits=8 ... bitsandbytes')."""
    _register()
    base = dict(momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient,
                eps=eps, nesterov=nesterov, trust_mode="exact", lr_in_momentum=True)
    base.update(options)
    if base.get("percentile_clipping", 100) != 100:
        raise ValueError("percentile_clipping needs a Lars optimizer's history (torch / C API)")
    schedule = learning_rate if callable(learning_rate) else (lambda _: learning_rate)

    def leaf_options(params):
        wd = _resolve_mask(weight_decay_mask, params)
        tr = _resolve_mask(trust_ratio_mask, params)

        def one(_, w, t):
            o = dict(base)
            if not w:
                o["weight_decay"] = 0.0
            if not t:
                o["trust_mode"] = "none"
            return o
        return jax.tree.map(one, params, wd, tr)

    def kind(o, numel):
        k = ctypes.c_int32()
        check(_lib.lib.lars_tensor_state_kind(ctypes.byref(make_options(lr=0.0, **o)),
                                              int(numel), ctypes.byref(k)))
        return k.value  # 0: fp32, 1: blockwise 8-bit

    kind(base, 0)  # every option name and value checked once, here (ValueError)

    def block_size(o):  # of blockwise 8-bit state: the option, else the library's default
        return int(o.get("block_size", _lib.OPTIONS["block_size"].default))

    def init(params):
        opts = leaf_options(params)

        def one(p, o):
            p = jnp.asarray(p)
            if p.dtype not in (jnp.float32, jnp.float16, jnp.bfloat16):
                raise TypeError(f"parameters must be float32, float16 or bfloat16, not {p.dtype}")
            count = jnp.zeros((), jnp.int32)
            if kind(o, p.size) == 0:
                return TensorState(count, momentum=jnp.zeros(p.shape, jnp.float32))
            block = block_size(o)
            return TensorState(count, codes=jnp.full((p.size,), 127, jnp.uint8),
                               absmax=jnp.zeros((-(-p.size // block),), jnp.float32))
        return LarsState(jax.tree.map(one, params, opts))

    def call(target, outs, p, g, st, lr, state, extra=(), **attrs):
        """Operands (p, g, lr, count, *extra, *state); results (p, count, *state) alias them
        (begin's partials alias nothing)."""
        k = 2 + len(extra)
        alias = {0: 0, 3: 1, **{k + 2 + i: 2 + i for i in range(len(state))}} \
            if target != "begin" else {}
        return jax.ffi.ffi_call(f"halide_lars_{target}", outs, input_output_aliases=alias)(
            p, g, lr, st.count, *extra, *state, **attrs)

    def step_leaf(p, g, st, o, lr, shard):
        p = jnp.asarray(p)
        g = jnp.asarray(g)
        if g.shape != p.shape or g.dtype != p.dtype:
            raise ValueError(f"gradient {g.shape} {g.dtype} for a parameter {p.shape} {p.dtype}")
        text = _options_text(o)
        state = (st.momentum,) if st.momentum is not None else (st.codes, st.absmax)
        outs = (jax.ShapeDtypeStruct(p.shape, p.dtype), jax.ShapeDtypeStruct((), jnp.int32)) + \
            tuple(jax.ShapeDtypeStruct(s.shape, s.dtype) for s in state)
        if not shard:
            res = call("step", outs, p, g, st, lr, state, options=text)
        else:
            block = block_size(o)
            if st.momentum is None and p.size % block != 0:
                # Each device quantizes its own blocks: they must not straddle two devices.
                raise ValueError(f"shard_map: a sharded leaf with 8-bit state needs a local "
                                 f"size that is a multiple of block_size {block}; this device "
                                 f"holds {p.size} elements (use fp32 for it, or shard it so)")
            n = int(jax.lax.psum(1, axis_name)) * p.size
            attrs = dict(options=text, shard_offset=np.int64(0), full_numel=np.int64(n))
            part = call("begin", jax.ShapeDtypeStruct((5,), jnp.float32), p, g, st, lr, state,
                        **attrs)
            reduced = jax.lax.psum(part, axis_name)
            res = call("finish", outs, p, g, st, lr, state, extra=(reduced,), **attrs)
        p_new, count, *state_new = res
        if st.momentum is not None:
            return p_new, TensorState(count, momentum=state_new[0])
        return p_new, TensorState(count, codes=state_new[0], absmax=state_new[1])

    def step(params, state, grads):
        if not isinstance(state, LarsState):
            raise TypeError("state: a halide_lars.jax LarsState (from init)")
        opts = leaf_options(params)
        shards = _resolve_mask(sharded, params) if axis_name is not None else \
            jax.tree.map(lambda _: False, params)
        p_leaves, treedef = jax.tree.flatten(params)
        g_leaves = treedef.flatten_up_to(grads)
        s_leaves = treedef.flatten_up_to(state.tensors)
        o_leaves = treedef.flatten_up_to(opts)
        h_leaves = treedef.flatten_up_to(shards)
        new_p, new_s = [], []
        for p, g, st, o, sh in zip(p_leaves, g_leaves, s_leaves, o_leaves, h_leaves):
            if not isinstance(st, TensorState):
                raise TypeError("state: its structure does not match the parameters'")
            # optax's schedules see the step count before this step (0 first).
            lr = jnp.asarray(schedule(st.count), jnp.float32)
            a, b = step_leaf(p, g, st, o, lr, bool(sh))
            new_p.append(a)
            new_s.append(b)
        return treedef.unflatten(new_p), LarsState(treedef.unflatten(new_s))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("halide_lars.jax.lars needs params in update(grads, state, params)")
        new_params, new_state = step(params, state, updates)
        deltas = jax.tree.map(lambda n, p: n - p, new_params, params)
        return deltas, new_state

    update.step = step
    return Transformation(init, update)
