"""bitsandbytes drop-in at the state level, in bitsandbytes' own test style (tests/test_optim.py:
parametrized over shapes and gtypes, state compared against a torch reference every step, 8-bit
codes dequantized with qmap1/absmax1).

State dicts "written by bitsandbytes" are built here from its layout (docs/spec.md,
bitsandbytes 0.49 / 0.50 Optimizer1State.init_state and Optimizer8bit.state_dict): 0.49 LARS8bit
keeps per-tensor 8-bit state (state1 uint8, qmap1, max1, new_max1), 0.50 blockwise (state1,
qmap1, absmax1 per 256 elements) nested under '__bnb_optimizer_quant_state__'; groups hold lr,
betas = (momentum, dampening), eps = 0 and weight_decay.
"""
import copy
import gc
import io
import itertools

import pytest
import torch

import halide_lars

WRAPPED = "__bnb_optimizer_quant_state__"
GTYPES = [torch.float32, torch.float16, torch.bfloat16]
SHAPES = [(1024, 1024), (4097,), (33, 129), (7,), (1,)]


def bnb_dynamic_map():
    """bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), computed
    the way it does (fp32 torch ops), so values may differ from ours by an ulp."""
    data = []
    for i in range(7):
        fraction_items = 2 ** i + 1
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(6) + i)) * means).tolist()
        data += (-(10 ** (-(6) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    return torch.tensor(sorted(data), dtype=torch.float32)


def expected_keys(numel, bits, block_wise=True, percentile=100, max_unorm=0.02,
                  min_8bit_size=4096):
    keys = {"step", "state1"}
    if bits == 8 and numel >= min_8bit_size:
        keys |= {"qmap1", "absmax1"} if block_wise else {"qmap1", "max1", "new_max1"}
    if percentile < 100:
        keys.add("gnorm_vec")
    if max_unorm > 0:
        keys.add("unorm_vec")
    return keys


def dequantize(st, numel):
    """The momentum an 8-bit state1 encodes, as bitsandbytes dequantizes it."""
    codes = st["state1"].reshape(-1).long()
    values = st["qmap1"][codes]
    if "absmax1" in st:
        block = -(-numel // st["absmax1"].numel())
        block = 256 if -(-numel // 256) == st["absmax1"].numel() else block
        return values * st["absmax1"].repeat_interleave(block)[:numel]
    return values * st["max1"][0]


def momentum_of(st, numel):
    s1 = st["state1"]
    return s1.reshape(-1).double() if s1.dtype == torch.float32 else dequantize(st, numel).double()


def torch_reference(p, g, m, step, lr, momentum, dampening=0.0, weight_decay=0.0,
                    nesterov=False, max_unorm=0.02):
    """One LARS step in float64 (lars_spec.md), torch ops: returns (p, m)."""
    p, g = p.double(), g.double()
    d = g + weight_decay * p
    m = d.clone() if step == 1 else momentum * m + (1 - dampening) * d
    u = d + momentum * m if nesterov else m
    scale = 1.0
    if max_unorm > 0:
        pn, un = p.norm().item(), u.norm().item()
        if un > max_unorm * pn:
            scale = max_unorm * pn / un
    return p - lr * scale * u, m


def make_param(shape, gtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.Parameter(torch.randn(*shape, generator=g).to(gtype))


def set_grads(params, seed):
    g = torch.Generator().manual_seed(1000 + seed)
    for p in params:
        p.grad = (torch.randn(p.shape, generator=g) * 0.1).to(p.dtype)


def c_momentum(opt, p):
    """The momentum as the C ABI reports it (a copy, dequantized): what the optimizer holds."""
    return torch.tensor(list(opt._opt.momentum(opt._names[p], p.numel())), dtype=torch.float32)


def snapshot(opt, params):
    """Everything a refused call must leave alone: parameters and the exact state."""
    return [p.detach().clone() for p in params], opt._opt.save_state()


def assert_unchanged(opt, params, snap):
    for p, before in zip(params, snap[0]):
        assert torch.equal(p.detach(), before), "a refused call changed a parameter"
    assert opt._opt.save_state() == snap[1], "a refused call changed the optimizer state"


# --- live state[p] ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("gtype", GTYPES, ids=lambda t: str(t).split(".")[-1])
@pytest.mark.parametrize("optim", ["lars32", "lars8bit", "lars8bit_tensor", "lars32_pclip"])
def test_state_keys_dtypes_shapes(optim, gtype, shape):
    p = make_param(shape, gtype)
    kw = {"lars32": dict(optim_bits=32), "lars8bit": dict(optim_bits=8),
          "lars8bit_tensor": dict(optim_bits=8, block_wise=False),
          "lars32_pclip": dict(optim_bits=32, percentile_clipping=90)}[optim]
    opt = halide_lars.LARS([p], lr=0.01, momentum=0.9, **kw)
    assert len(opt.state) == 0 or not opt.state[p], "bitsandbytes has no state before step 1"
    set_grads([p], 0)
    opt.step()
    st = opt.state[p]
    n = p.numel()
    bits = kw["optim_bits"]
    assert set(st) == expected_keys(n, bits, kw.get("block_wise", True),
                                    kw.get("percentile_clipping", 100))
    assert st["step"] == 1 and isinstance(st["step"], int)
    eight = bits == 8 and n >= 4096  # min_8bit_size fallback shows in the dtype
    assert st["state1"].dtype == (torch.uint8 if eight else torch.float32)
    assert st["state1"].shape == p.shape and st["state1"].device == p.device
    if eight:
        assert st["qmap1"].dtype == torch.float32 and st["qmap1"].shape == (256,)
        assert torch.allclose(st["qmap1"], bnb_dynamic_map(), rtol=1e-6, atol=0)
        if "absmax1" in st:
            assert st["absmax1"].dtype == torch.float32 and st["absmax1"].shape == (-(-n // 256),)
        else:
            assert st["max1"].shape == (1,) and st["new_max1"].shape == (1,)
    if "gnorm_vec" in st:
        assert st["gnorm_vec"].shape == (100,) and st["gnorm_vec"].dtype == torch.float32
        g2 = p.grad.double().pow(2).sum().item()
        assert torch.allclose(st["gnorm_vec"].double(), torch.full((100,), g2, dtype=torch.float64),
                              rtol=1e-5), "step 1 fills every ring slot with Σg²"
    assert st["unorm_vec"].shape == (1,) and st["unorm_vec"].dtype == torch.float32
    u2 = momentum_of(st, n).pow(2).sum().item()
    assert st["unorm_vec"].item() == pytest.approx(u2, rel=2e-2 if eight else 1e-5)


@pytest.mark.parametrize("shape", [(1024, 1024), (4097,), (33, 129), (7,)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("gtype", GTYPES, ids=lambda t: str(t).split(".")[-1])
@pytest.mark.parametrize("bits,block_wise", [(32, True), (8, True), (8, False)],
                         ids=["fp32", "8bit_blockwise", "8bit_tensor"])
def test_state_tracks_a_torch_reference_every_step(bits, block_wise, gtype, shape):
    p = make_param(shape, gtype, seed=1)
    hp = dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=1e-4, max_unorm=0.02)
    opt = halide_lars.LARS([p], optim_bits=bits, block_wise=block_wise, **hp)
    n = p.numel()
    eight = bits == 8 and n >= 4096
    ptol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[gtype]
    m_prev = None
    for step in range(1, 8):
        set_grads([p], step)
        before = p.detach().clone()
        opt.step()
        st = opt.state[p]
        assert st["step"] == step
        # Teacher forcing (as bitsandbytes' tests): the reference starts from our previous state.
        p_ref, m_ref = torch_reference(before.reshape(-1), p.grad.reshape(-1), m_prev, step, **hp)
        m_got = momentum_of(st, n)
        if eight:
            # One code step of the dynamic map near 1 is < 1.5 %: at most half of it per element.
            scale = (st["absmax1"].repeat_interleave(256)[:n] if block_wise
                     else st["max1"].expand(n)).double()
            assert ((m_got - m_ref).abs() <= 0.0075 * scale + 1e-12).all(), step
        else:
            torch.testing.assert_close(m_got, m_ref, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(p.detach().reshape(-1).double(), p_ref, rtol=ptol,
                                   atol=ptol * p_ref.abs().max().item())
        m_prev = m_got


def test_writing_through_state_tensors_changes_the_optimizer():
    p1, p2 = make_param((64, 128), torch.float32), make_param((64, 128), torch.float32)
    with torch.no_grad():
        p2.copy_(p1)
    o1 = halide_lars.LARS8bit([p1], lr=0.1, momentum=0.9)
    o2 = halide_lars.LARS8bit([p2], lr=0.1, momentum=0.9)
    for s in range(3):
        set_grads([p1], s)
        set_grads([p2], s)
        o1.step()
        o2.step()
    # Zeroing the momentum in place (absmax 0: every code decodes to 0) makes the next step a
    # fresh momentum m = g, in both the 8-bit codes and the parameters.
    st = o1.state[p1]
    st["state1"].fill_(127)
    st["absmax1"].zero_()
    assert torch.equal(c_momentum(o1, p1), torch.zeros(p1.numel()))
    set_grads([p1], 9)
    ref = halide_lars.LARS8bit([torch.nn.Parameter(p1.detach().clone())], lr=0.1, momentum=0.9)
    fresh = ref.param_groups[0]["params"][0]
    fresh.grad = p1.grad.clone()
    o1.step()
    ref.step()
    torch.testing.assert_close(dequantize(o1.state[p1], p1.numel()),
                               dequantize(ref.state[fresh], p1.numel()), rtol=0, atol=0)


def test_replaced_state_entries_are_taken_or_refused():
    p = make_param((50, 100), torch.float32)
    opt = halide_lars.LARS32bit([p], lr=0.1, momentum=0.9)
    set_grads([p], 0)
    opt.step()
    # A new tensor of the right dtype and shape: the optimizer takes it (torch semantics).
    new_m = torch.full(p.shape, 0.25)
    opt.state[p]["state1"] = new_m
    set_grads([p], 1)
    before = p.detach().clone()
    opt.step()
    _, m_ref = torch_reference(before.reshape(-1), p.grad.reshape(-1),
                               new_m.reshape(-1).double(), 2, lr=0.1, momentum=0.9)
    torch.testing.assert_close(opt.state[p]["state1"].reshape(-1).double(), m_ref, rtol=1e-6,
                               atol=1e-7)
    assert opt.state[p]["state1"] is not new_m  # the live tensor again
    # Wrong dtype / shape / a NaN: a clear error at the next step, and nothing changes.
    for bad, msg in [(torch.zeros(p.shape, dtype=torch.float16), "dtype torch.float16"),
                     (torch.zeros(3), "3 elements"),
                     (torch.full(p.shape, float("nan")), "finite")]:
        live = opt.state[p]["state1"]
        snap = snapshot(opt, [p])
        opt.state[p]["state1"] = bad
        set_grads([p], 5)
        with pytest.raises(ValueError, match=msg):
            opt.step()
        assert_unchanged(opt, [p], snap)
        opt.state[p]["state1"] = live
    # Keys of the caller's own are left alone.
    opt.state[p]["my_counter"] = 3
    set_grads([p], 7)
    opt.step()
    assert opt.state[p]["my_counter"] == 3 and opt.state[p]["step"] == 3
    # Clearing state[p] restarts that parameter: the next step is a first step.
    opt.state[p].clear()
    set_grads([p], 6)
    opt.step()
    assert opt.state[p]["step"] == 1
    torch.testing.assert_close(opt.state[p]["state1"], p.grad.float(), rtol=0, atol=0)


def test_live_tensors_outlive_conversions_and_the_optimizer():
    p = make_param((70, 70), torch.float32)
    opt = halide_lars.LARS([p], lr=0.1, momentum=0.9, optim_bits=32)
    set_grads([p], 0)
    opt.step()
    m = opt.state[p]["state1"]
    saved = m.clone()
    opt.override_config(p, "optim_bits", 8)  # the next step converts the state to 8 bits
    set_grads([p], 1)
    opt.step()
    assert opt.state[p]["state1"].dtype == torch.uint8
    assert torch.equal(m, saved), "the old export still reads the memory it viewed"
    codes = opt.state[p]["state1"]
    del opt
    gc.collect()
    assert codes.sum().item() >= 0  # still valid memory after the optimizer is gone
    assert torch.equal(m, saved)


def test_flat_parameters_state_views_their_flat():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(96, 64), torch.nn.Linear(64, 3))
    opt = halide_lars.LARS8bit(model.parameters(), lr=0.1, momentum=0.9, flat=True)
    x = torch.randn(16, 96)
    model(x).sum().backward()
    opt.step()
    w = model[0].weight  # 6144 elements: 8-bit
    st = opt.state[w]
    assert st["state1"].dtype == torch.uint8 and st["absmax1"].shape == (24,)
    assert opt.state[model[0].bias]["state1"].dtype == torch.float32
    st["absmax1"].zero_()
    assert torch.equal(c_momentum(opt, w), torch.zeros(w.numel()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda)")
def test_state_on_cuda_is_zero_copy_on_the_parameters_device():
    p = make_param((256, 64), torch.float32).cuda()
    p = torch.nn.Parameter(p.detach())
    opt = halide_lars.LARS8bit([p], lr=0.1, momentum=0.9)
    p.grad = torch.randn_like(p)
    opt.step()
    st = opt.state[p]
    assert st["state1"].is_cuda and st["absmax1"].is_cuda and st["qmap1"].is_cuda
    st["absmax1"].zero_()
    assert torch.equal(c_momentum(opt, p), torch.zeros(p.numel()))


# --- add_param_group -----------------------------------------------------------------------------

@pytest.mark.parametrize("flat", [False, True])
def test_add_param_group_any_time(flat):
    torch.manual_seed(1)
    body, head = torch.nn.Linear(80, 64), torch.nn.Linear(64, 5)
    opt = halide_lars.LARS8bit(body.parameters(), lr=0.1, momentum=0.9, flat=flat)
    x, y = torch.randn(32, 80), torch.randint(0, 5, (32,))

    def train(steps):
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(head(body(x)), y).backward()
            opt.step()

    train(2)
    head_before = head.weight.detach().clone()
    opt.add_param_group({"params": head.parameters(), "lr": 0.01, "weight_decay": 0.0})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [head.weight]})
    assert len(opt.param_groups) == 2
    train(1)
    # The head's first step: m = g, clipped at max_unorm * |w|, with the group's lr 0.01.
    g = head.weight.grad.double()
    p_ref, _ = torch_reference(head_before.reshape(-1), g.reshape(-1), None, 1, lr=0.01,
                               momentum=0.9)
    torch.testing.assert_close(head.weight.detach().reshape(-1).double(), p_ref, rtol=1e-5,
                               atol=1e-6)
    assert opt.state[head.weight]["step"] == 1 and opt.state[body.weight]["step"] == 3
    sd = opt.state_dict()
    assert len(sd["param_groups"]) == 2 and sd["param_groups"][1]["lr"] == 0.01
    assert len(sd["state"]) == 4

    # A fresh optimizer built the same way loads it and continues bit for bit.
    body2, head2 = copy.deepcopy(body), copy.deepcopy(head)
    opt2 = halide_lars.LARS8bit(body2.parameters(), lr=0.1, momentum=0.9, flat=flat)
    opt2.add_param_group({"params": head2.parameters(), "lr": 0.01, "weight_decay": 0.0})
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    opt2.load_state_dict(torch.load(buf))
    train(3)
    for _ in range(3):
        opt2.zero_grad()
        torch.nn.functional.cross_entropy(head2(body2(x)), y).backward()
        opt2.step()
    for a, b in zip(itertools.chain(body.parameters(), head.parameters()),
                    itertools.chain(body2.parameters(), head2.parameters())):
        assert torch.equal(a, b)


def test_group_options_are_stored_once_and_a_first_group_keeps_its_own():
    # The checkpoint holds each default once (group 0 is the defaults, not a copy of them as
    # overrides), and a first group's own values still reach the kernels.
    p = make_param((10,), torch.float32)
    blob = halide_lars.LARS([p], lr=0.1, momentum=0.9).state_dict()["halide_lars_checkpoint"]
    assert blob.count(b"dampening") == 1 and blob.count(b"trust_coefficient") == 1
    a, b = make_param((10,), torch.float32), make_param((10,), torch.float32)
    b.data.copy_(a.data)
    own = halide_lars.LARS([{"params": [a], "lr": 0.5, "weight_decay": 0.1}], lr=0.1, momentum=0.9)
    plain = halide_lars.LARS([b], lr=0.5, weight_decay=0.1, momentum=0.9)
    for step in range(3):
        set_grads([a], step)
        set_grads([b], step)
        own.step()
        plain.step()
    assert torch.equal(a, b)
    blob = own.state_dict()["halide_lars_checkpoint"]
    assert blob.count(b"dampening") == 1 and blob.count(b"weight_decay") == 2  # default + group


def test_add_param_group_refuses_bad_groups_and_changes_nothing():
    p = make_param((10,), torch.float32)
    opt = halide_lars.LARS([p], lr=0.1, momentum=0.9)
    for group, exc, msg in [({"params": [torch.nn.Parameter(torch.ones(4, 4).t())]}, ValueError,
                             "not contiguous"),
                            ({"params": [make_param((3,), torch.float64)]}, TypeError, "dtype"),
                            ({"params": [make_param((3,), torch.float32)], "lr": -1.0},
                             ValueError, "lr")]:
        with pytest.raises(exc, match=msg):
            opt.add_param_group(group)
        assert len(opt.param_groups) == 1
    q = make_param((3,), torch.float32)
    opt.add_param_group({"params": [q], "lr": 0.5})
    set_grads([p, q], 0)
    opt.step()
    assert opt.state[q]["step"] == 1


# --- state_dict in bitsandbytes' layout ------------------------------------------------------------

def three_params(gtype=torch.float32):
    return [make_param((64, 100), gtype, 0), make_param((7,), gtype, 1),
            make_param((33, 129), gtype, 2)]


def train_steps(opt, params, steps, start=0):
    for s in range(start, start + steps):
        set_grads(params, s)
        opt.step()


@pytest.mark.parametrize("gtype", GTYPES, ids=lambda t: str(t).split(".")[-1])
@pytest.mark.parametrize("kw", [dict(optim_bits=32), dict(optim_bits=8),
                                dict(optim_bits=8, block_wise=False),
                                dict(optim_bits=8, percentile_clipping=95)],
                         ids=["fp32", "8bit", "8bit_tensor", "8bit_pclip"])
def test_state_dict_layout_and_torch_save_round_trip(kw, gtype):
    params = three_params(gtype)
    opt = halide_lars.LARS(params, lr=0.05, momentum=0.9, weight_decay=1e-4, **kw)
    train_steps(opt, params, 3)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups", "halide_lars_checkpoint"}
    assert sd["param_groups"][0]["betas"] == (0.9, 0.0)
    assert sd["param_groups"][0]["params"] == [0, 1, 2]
    for i, p in enumerate(params):
        st = sd["state"][i]
        assert set(st) == expected_keys(p.numel(), kw["optim_bits"], kw.get("block_wise", True),
                                        kw.get("percentile_clipping", 100))
        assert st["state1"].shape == p.shape
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    loaded = torch.load(buf)
    for i in range(3):
        for k, v in sd["state"][i].items():
            assert torch.equal(v, loaded["state"][i][k]) if isinstance(v, torch.Tensor) else v == loaded["state"][i][k]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt2 = halide_lars.LARS(twins, lr=0.05, momentum=0.9, weight_decay=1e-4, **kw)
    opt2.load_state_dict(loaded)
    assert opt2._opt.save_state() == opt._opt.save_state()
    train_steps(opt, params, 4, start=3)
    train_steps(opt2, twins, 4, start=3)
    for a, b in zip(params, twins):
        assert torch.equal(a, b)


def as_bitsandbytes(sd, version):
    """Our state_dict as bitsandbytes `version` writes it: no halide_lars blob, groups with only
    bitsandbytes' keys, tensors nested under WRAPPED from 0.49.2 on."""
    out = {"state": {}, "param_groups": []}
    for g in sd["param_groups"]:
        out["param_groups"].append({"lr": g["lr"], "betas": g["betas"], "eps": 0.0,
                                    "weight_decay": g["weight_decay"], "params": g["params"]})
    for i, st in sd["state"].items():
        st = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in st.items()}
        if version >= (0, 49, 2):
            st = {"step": st.pop("step"), WRAPPED: st}
        out["state"][i] = st
    return out


@pytest.mark.parametrize("version,kw", [((0, 49, 0), dict(optim_bits=8, block_wise=False)),
                                        ((0, 49, 0), dict(optim_bits=32)),
                                        ((0, 50, 0), dict(optim_bits=8)),
                                        ((0, 50, 0), dict(optim_bits=32))],
                         ids=["0.49_8bit_tensor", "0.49_fp32", "0.50_8bit", "0.50_fp32"])
def test_loads_bitsandbytes_state_dicts_and_continues_exactly(version, kw):
    params = three_params()
    opt = halide_lars.LARS(params, lr=0.05, momentum=0.9, **kw)
    train_steps(opt, params, 3)
    bnb = as_bitsandbytes(opt.state_dict(), version)
    if kw["optim_bits"] == 8:  # bitsandbytes' own qmap1 (fp32 torch arithmetic): codes kept
        for st in bnb["state"].values():
            inner = st.get(WRAPPED, st)
            if "qmap1" in inner:
                inner["qmap1"] = bnb_dynamic_map()
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt2 = halide_lars.LARS(twins, lr=0.3, momentum=0.5, **kw)  # groups come from the state_dict
    opt2.load_state_dict(bnb)
    assert opt2.param_groups[0]["lr"] == 0.05 and opt2.param_groups[0]["momentum"] == 0.9
    for p, q in zip(params, twins):
        for k, v in opt.state[p].items():
            w = opt2.state[q][k]
            assert torch.equal(v, w) if isinstance(v, torch.Tensor) and k != "new_max1" else True
    train_steps(opt, params, 4, start=3)
    train_steps(opt2, twins, 4, start=3)
    for a, b in zip(params, twins):
        assert torch.equal(a, b)


def test_bitsandbytes_state_converts_between_kinds():
    params = three_params()
    opt8 = halide_lars.LARS8bit(params, lr=0.05, momentum=0.9)
    train_steps(opt8, params, 3)
    bnb = as_bitsandbytes(opt8.state_dict(), (0, 50, 0))
    # 0.50 blockwise 8-bit -> our fp32 state: exactly the dequantized codes.
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt32 = halide_lars.LARS32bit(twins, lr=0.05, momentum=0.9)
    opt32.load_state_dict(bnb)
    st8, st32 = opt8.state[params[0]], opt32.state[twins[0]]
    assert st32["state1"].dtype == torch.float32
    assert torch.equal(st32["state1"].reshape(-1), dequantize(st8, params[0].numel()))
    # fp32 -> per-tensor 8-bit is refused (clearly) and changes nothing.
    sd32 = as_bitsandbytes(opt32.state_dict(), (0, 49, 0))
    opt_t = halide_lars.LARS8bit([torch.nn.Parameter(p.detach().clone()) for p in params],
                                 lr=0.05, momentum=0.9, block_wise=False)
    snap = snapshot(opt_t, opt_t.param_groups[0]["params"])
    with pytest.raises(NotImplementedError, match="per-tensor 8-bit"):
        opt_t.load_state_dict(sd32)
    assert_unchanged(opt_t, opt_t.param_groups[0]["params"], snap)
    # fp32 -> blockwise 8-bit: quantized by the kernels, within half a code step of the momentum.
    opt_b = halide_lars.LARS8bit([torch.nn.Parameter(p.detach().clone()) for p in params],
                                 lr=0.05, momentum=0.9)
    opt_b.load_state_dict(sd32)
    q = opt_b.param_groups[0]["params"][0]
    m = sd32["state"][0]["state1"].reshape(-1).double()
    scale = opt_b.state[q]["absmax1"].repeat_interleave(256)[:q.numel()].double()
    assert ((dequantize(opt_b.state[q], q.numel()).double() - m).abs() <= 0.0075 * scale).all()


def test_foreign_or_mismatched_state_dicts_raise_and_change_nothing():
    params = three_params()
    opt = halide_lars.LARS8bit(params, lr=0.05, momentum=0.9)
    train_steps(opt, params, 2)
    good = as_bitsandbytes(opt.state_dict(), (0, 50, 0))
    adam = torch.optim.Adam([torch.nn.Parameter(p.detach().clone()) for p in params])
    for p in adam.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    adam.step()

    def edited(fn):
        sd = copy.deepcopy(good)
        fn(sd)
        return sd

    cases = [
        (adam.state_dict(), ValueError, "not LARS state"),
        ({"state": {}}, ValueError, "not an optimizer state_dict"),
        (edited(lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0]))), ValueError,
         "different number of parameter groups"),
        (edited(lambda sd: sd["param_groups"][0]["params"].pop()), ValueError,
         "doesn't match the size"),
        (edited(lambda sd: sd["state"][0][WRAPPED].update(state1=torch.zeros(5, dtype=torch.uint8))),
         ValueError, "5 elements"),
        (edited(lambda sd: sd["state"][0][WRAPPED].pop("absmax1")), ValueError, "neither"),
        (edited(lambda sd: sd["state"][0][WRAPPED].update(absmax1=torch.ones(5))), ValueError,
         "no block size"),
        (edited(lambda sd: sd["state"][0][WRAPPED]["absmax1"].fill_(float("inf"))), ValueError,
         "finite"),
        (edited(lambda sd: sd["state"][1].update(step=-3)), ValueError, "non-negative"),
        (edited(lambda sd: sd["param_groups"][0].update(betas=(0.0, 0.0))), ValueError,
         "momentum"),
    ]
    for sd, exc, msg in cases:
        snap = snapshot(opt, params)
        groups = copy.deepcopy([{k: v for k, v in g.items() if k != "params"}
                                for g in opt.param_groups])
        with pytest.raises(exc, match=msg):
            opt.load_state_dict(sd)
        assert_unchanged(opt, params, snap)
        assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == groups
    # And the optimizer still works after all of that.
    train_steps(opt, params, 1, start=2)
    assert opt.state[params[0]]["step"] == 3


def test_add_param_group_with_a_process_group():
    """One gloo rank on 127.0.0.1: a group added later brings its shards and joins the exchange."""
    import socket

    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        p, q = make_param((300,), torch.float32, 0), make_param((40,), torch.float32, 1)
        opt = halide_lars.LARS([p], lr=0.1, momentum=0.9, process_group=dist.group.WORLD,
                               shards={p: (0, 300)})
        set_grads([p], 0)
        opt.step()
        with pytest.raises(ValueError, match="no entry in shards"):
            opt.add_param_group({"params": [q]})
        assert len(opt.param_groups) == 1
        opt.add_param_group({"params": [q], "lr": 0.05, "shards": {q: (0, 40)}})
        assert "shards" not in opt.param_groups[1]
        set_grads([p, q], 1)
        q_before = q.detach().clone()
        opt.step()
        assert opt.state[p]["step"] == 2 and opt.state[q]["step"] == 1
        p_ref, _ = torch_reference(q_before, q.grad, None, 1, lr=0.05, momentum=0.9)
        torch.testing.assert_close(q.detach().double(), p_ref, rtol=1e-5, atol=1e-6)
    finally:
        dist.destroy_process_group()
