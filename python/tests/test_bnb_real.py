"""halide_lars against the real bitsandbytes (0.50, in the project's .venv): 100-step
trajectories of bitsandbytes' LARS (32-bit, its CPU path) and PytorchLARS against ours on the same
data, LARS8bit where bitsandbytes' kernels agree with the spec (no trust clip: its blockwise
8-bit path has none), and state_dicts saved by bitsandbytes loading into ours and continuing (and
back). bitsandbytes is part of python/requirements.txt: a missing one is a failure, not a skip."""
import copy

import pytest
import torch

import bitsandbytes as bnb  # noqa: E402

import halide_lars  # noqa: E402

SHAPES = [(256, 1024), (4097,), (33, 129), (7,)]
STEPS = 100


def make_params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g)) for s in SHAPES]


def twins(params):
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def grads_for(step, params):
    """Gradients that depend on the parameters (a noisy quadratic bowl), so trajectories that
    drift apart would show it."""
    g = torch.Generator().manual_seed(7919 * step)
    return [0.1 * p.detach() + 0.05 * torch.randn(p.shape, generator=g) for p in params]


def run(opt, params, steps, start=1):
    for step in range(start, start + steps):
        for p, g in zip(params, grads_for(step, params)):
            p.grad = g
        opt.step()


def max_rel_err(a, b):
    return max(((x.detach() - y.detach()).norm() / y.detach().norm()).item() for x, y in zip(a, b))


@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
@pytest.mark.parametrize("max_unorm", [0.02, 0.0])
def test_lars32_trajectory_matches_bitsandbytes(weight_decay, max_unorm):
    ref = make_params()
    ours = twins(ref)
    kw = dict(lr=0.1, momentum=0.9, weight_decay=weight_decay, max_unorm=max_unorm)
    run(bnb.optim.LARS(ref, **kw), ref, STEPS)
    opt = halide_lars.LARS(ours, **kw)
    run(opt, ours, STEPS)
    err = max_rel_err(ours, ref)
    # Both fp32; only the norms' summation order differs (bitsandbytes: torch.norm).
    assert err < 1e-6, err


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=1e-3), dict(dampening=0.1),
                                dict(nesterov=True), dict(max_unorm=0.0)],
                         ids=["defaults", "weight_decay", "dampening", "nesterov", "no_clip"])
def test_matches_bitsandbytes_pytorch_lars(kw):
    ref = make_params(1)
    ours = twins(ref)
    run(bnb.optim.PytorchLARS(ref, lr=0.05, momentum=0.9, **kw), ref, STEPS)
    run(halide_lars.LARS(ours, lr=0.05, momentum=0.9, **kw), ours, STEPS)
    err = max_rel_err(ours, ref)
    assert err < 1e-6, err


def test_lars8bit_tracks_bitsandbytes_blockwise_state():
    """bitsandbytes 0.50's LARS8bit applies no trust clip: compare with max_unorm=0 (both plain
    momentum on 8-bit blockwise state, block 256, the dynamic codebook)."""
    ref = make_params(2)
    ours = twins(ref)
    kw = dict(lr=0.05, momentum=0.9, max_unorm=0.0)
    ob = bnb.optim.LARS8bit(ref, **kw)
    oo = halide_lars.LARS8bit(ours, **kw)
    run(ob, ref, STEPS)
    run(oo, ours, STEPS)
    err = max_rel_err(ours, ref)
    # Quantization noise on both sides (and bitsandbytes' fp32-computed codebook): close, not equal.
    assert err < 2e-2, err
    for p, q in zip(ref, ours):
        sb, so = ob.state[p], oo.state[q]
        assert so["state1"].dtype == sb["state1"].dtype
        assert so["state1"].shape == sb["state1"].shape
        if sb["state1"].dtype == torch.uint8:
            assert so["absmax1"].shape == sb["absmax1"].shape
            assert torch.allclose(so["qmap1"], sb["qmap1"].cpu(), rtol=1e-6, atol=0)


def optimizers(bits):
    """(bitsandbytes class, our class, options) for `bits`-bit state (8-bit: bitsandbytes 0.50
    has no trust clip there, so none on either side)."""
    if bits == 32:
        return bnb.optim.LARS, halide_lars.LARS32bit, dict(lr=0.05, momentum=0.9, max_unorm=0.02)
    return bnb.optim.LARS8bit, halide_lars.LARS8bit, dict(lr=0.05, momentum=0.9, max_unorm=0.0)


@pytest.mark.parametrize("bits", [32, 8])
@pytest.mark.parametrize("direction", ["bnb_to_ours", "ours_to_bnb"])
def test_state_dicts_move_between_bitsandbytes_and_ours(direction, bits):
    """A state_dict saved after 10 steps loads on the other side (codes / momentum exactly,
    bitsandbytes 0.50's nested layout included), and both continue together for 20 steps."""
    cls_b, cls_o, kw = optimizers(bits)
    src_cls, dst_cls = (cls_b, cls_o) if direction == "bnb_to_ours" else (cls_o, cls_b)
    src_params = make_params(3)
    src = src_cls(src_params, **kw)
    run(src, src_params, 10)
    sd = copy.deepcopy(src.state_dict())
    dst_params = twins(src_params)
    dst = dst_cls(dst_params, lr=0.5, momentum=0.5, max_unorm=kw["max_unorm"])
    dst.load_state_dict(sd)
    assert dst.param_groups[0]["lr"] == 0.05
    for p, q in zip(src_params, dst_params):
        assert dst.state[q]["step"] == 10
        s1, d1 = src.state[p]["state1"], dst.state[q]["state1"]
        assert d1.dtype == s1.dtype and d1.shape == s1.shape
        assert torch.equal(d1, s1), "codes / momentum taken over exactly"
    run(src, src_params, 20, start=11)
    run(dst, dst_params, 20, start=11)
    err = max_rel_err(dst_params, src_params)
    assert err < (1e-6 if bits == 32 else 2e-2), err
