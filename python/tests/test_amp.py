"""torch.amp.GradScaler with the unscale fused into our step (_step_supports_amp_scaling).

Three runs of the same 50 steps with 4 injected overflows, the scale backing off and growing:
  fused   scaler.scale(loss).backward(); scaler.step(opt)  -- our kernels unscale as they read
  torch   ... scaler.unscale_(opt); scaler.step(opt)       -- torch's own unscale pass first
  hand    loss.backward() unscaled, the step skipped by hand on inf
GradScaler's scales are powers of two, so all three must agree bit for bit (parameters and every
state tensor) on every state kind, flat buffers, percentile clipping and bf16 parameters; the
fused run must leave .grad scaled (no pass wrote it) and skip inf steps without touching
anything. fp16 parameters, which torch's own unscale refuses, train under the fused path.
"""
import pytest
import torch

import halide_lars

INF_STEPS = (4, 5, 17, 33)
STEPS = 50


def make_model(dtype=torch.float32):
    torch.manual_seed(0)
    # 37 x 129 = 4773 weights: 8-bit state under LARS8bit (min_8bit_size 4096); odd sizes.
    return torch.nn.Sequential(torch.nn.Linear(37, 129), torch.nn.ReLU(),
                               torch.nn.LayerNorm(129), torch.nn.Linear(129, 11)).to(dtype)


def last_bias(model):
    return list(model.parameters())[-1]


def batch(step, dtype):
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(64, 37, generator=g).to(dtype), torch.randint(0, 11, (64,), generator=g)


CONFIGS = {
    "lars32_clip": (halide_lars.LARS, {}, torch.float32),
    "lars8bit": (halide_lars.LARS8bit, {}, torch.float32),
    "exact_lr_inside": (halide_lars.LARS, dict(trust_mode="exact", eps=0.0, lr_in_momentum=True,
                                               exclude_bias_and_norm=True), torch.float32),
    "classic_nesterov": (halide_lars.LARS, dict(trust_mode="classic", nesterov=True),
                         torch.float32),
    "percentile90": (halide_lars.LARS, dict(percentile_clipping=90), torch.float32),
    "flat": (halide_lars.LARS, dict(flat=True), torch.float32),
    "flat_8bit": (halide_lars.LARS8bit, dict(flat=True), torch.float32),
    "bf16": (halide_lars.LARS, {}, torch.bfloat16),
}


def run(config, mode, steps=STEPS, watch_step=None):
    cls, kw, dtype = CONFIGS[config]
    model = make_model(dtype)
    opt = cls(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4, **kw)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, growth_interval=10)
    seen = {}
    for step in range(1, steps + 1):
        x, y = batch(step, dtype)
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        overflow = step in INF_STEPS  # one gradient element overflows: the whole step is skipped
        if mode == "hand":
            loss.backward()
            if overflow:
                last_bias(model).grad[3] = float("inf")
            if all(torch.isfinite(p.grad).all() for p in model.parameters()):
                opt.step()
            if step == watch_step:
                seen["grads"] = [p.grad.clone() for p in model.parameters()]
            continue
        scaler.scale(loss).backward()
        if overflow:
            last_bias(model).grad[3] = float("inf")
        if mode == "torch":
            scaler.unscale_(opt)
        before = [p.detach().clone() for p in model.parameters()]
        scaler.step(opt)
        if step == watch_step:
            seen["grads"] = [p.grad.clone() for p in model.parameters()]
            seen["scale"] = scaler.get_scale()
        if step in INF_STEPS:
            seen.setdefault("untouched", []).append(
                all(torch.equal(a, p) for a, p in zip(before, model.parameters())))
        scaler.update()
    return model, opt, seen


def state_of(opt, model):
    out = []
    for p in model.parameters():
        st = opt.state[p]
        out.append({k: v.clone() if torch.is_tensor(v) else v for k, v in st.items()})
    return out


def assert_identical(a, b, what):
    (m1, o1), (m2, o2) = a, b
    for (n, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        assert torch.equal(p1, p2), f"{what}: {n} differs by {(p1 - p2).abs().max().item()}"
    for s1, s2 in zip(state_of(o1, m1), state_of(o2, m2)):
        assert s1.keys() == s2.keys()
        for k in s1:
            if torch.is_tensor(s1[k]):
                assert torch.equal(s1[k], s2[k]), f"{what}: state {k}"
            else:
                assert s1[k] == s2[k], f"{what}: state {k}"


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fused_unscale_equals_torch_unscale_and_hand(config):
    fused = run(config, "fused", watch_step=9)
    torch_run = run(config, "torch")
    hand = run(config, "hand", watch_step=9)
    assert_identical(fused[:2], torch_run[:2], "fused vs torch's unscale")
    assert_identical(fused[:2], hand[:2], "fused vs unscaled by hand")
    model, opt, seen = fused
    assert all(seen["untouched"]), "an inf step changed a parameter"
    assert opt.state[next(model.parameters())]["step"] == STEPS - len(INF_STEPS)
    # Fused: nothing wrote the gradients -- they still hold scale x the true gradient.
    scale = seen["scale"]
    assert scale != 1.0
    for g_fused, g_hand in zip(seen["grads"], hand[2]["grads"]):
        assert torch.equal(g_fused, g_hand * scale)


def test_fp16_parameters_train_under_the_fused_unscale():
    """torch's own unscale refuses fp16 gradients; the fused one takes them (read as fp32 and
    unscaled in fp32), close to unscaling them in fp16 by hand."""
    def model16():
        return make_model(torch.float16)

    model = model16()
    opt = halide_lars.LARS(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    x, y = batch(1, torch.float16)
    scaler.scale(torch.nn.functional.cross_entropy(model(x).float(), y)).backward()
    with pytest.raises(ValueError, match="FP16"):
        scaler.unscale_(opt)

    ref = model16()
    ref_opt = halide_lars.LARS(ref.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    model = model16()
    opt = halide_lars.LARS(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    for step in range(1, 21):
        x, y = batch(step, torch.float16)
        for m, o in ((model, opt), (ref, ref_opt)):
            o.zero_grad(set_to_none=True)
        scale = scaler.get_scale()
        scaler.scale(torch.nn.functional.cross_entropy(model(x).float(), y)).backward()
        scaler.step(opt)
        scaler.update()
        (torch.nn.functional.cross_entropy(ref(x).float(), y) * scale).backward()
        for p in ref.parameters():
            p.grad.mul_(1.0 / scale)  # fp16 unscale by hand (rounds tiny values)
        ref_opt.step()
    assert opt.state[next(model.parameters())]["step"] == 20
    for (n, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.isfinite(p).all(), n
        torch.testing.assert_close(p.float(), q.float(), rtol=2e-3, atol=2e-3, msg=n)


def test_a_bad_grad_scale_raises_and_changes_nothing():
    model = make_model()
    opt = halide_lars.LARS(model.parameters(), lr=0.5, momentum=0.9)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in model.parameters()]
    for bad in (0.0, -4.0, float("inf"), float("nan")):
        opt.grad_scale = torch.tensor(bad)
        with pytest.raises(ValueError, match="grad_scale"):
            opt.step()
        assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
        assert not opt.state[next(model.parameters())]  # no state, no step counted
    del opt.grad_scale
    opt.step()
    assert opt.state[next(model.parameters())]["step"] == 1
