"""halide_lars from Python (ctypes over libhalide_lars.so), against a float64 reference of
docs/spec.md written here in numpy."""
import math
import os
import sys

import numpy as np
import pytest
import torch

import halide_lars


def reference_step(p, g, m, step, lr, momentum, dampening=0.0, weight_decay=0.0,
                   nesterov=False, max_unorm=0.02):
    """One LARS step (clip trust mode, no percentile clipping) in float64."""
    d = g + weight_decay * p
    m = d.copy() if step == 1 else momentum * m + (1 - dampening) * d
    u = d + momentum * m if nesterov else m
    scale = 1.0
    if max_unorm > 0:
        pn, un = np.linalg.norm(p), np.linalg.norm(u)
        if un > max_unorm * pn:
            scale = max_unorm * pn / un
    return p - lr * scale * u, m


def test_interpreter_and_library():
    # The project's virtualenv (./setup.sh, python/requirements.txt), not Debian's python3.
    assert "/.venv/" in sys.executable, sys.executable
    assert int(torch.__version__.split(".")[0]) >= 2, torch.__version__
    assert halide_lars.ABI_VERSION == 3
    assert "halide_lars" in halide_lars.__version__


def make_data(n=512, d=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, classes))
    y = np.argmax(x @ w + 0.3 * rng.normal(size=(n, classes)), axis=1)
    return torch.from_numpy(x), torch.from_numpy(y)


def test_mlp_training_matches_the_float64_reference():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x, y = make_data()
    model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    opt = halide_lars.LARS(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    params = list(model.parameters())
    ref_p = [p.detach().double().numpy().copy() for p in params]
    ref_m = [None] * len(params)
    losses = []
    for step in range(1, 41):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        grads = [p.grad.detach().double().numpy().copy() for p in params]
        before = [p.detach().double().numpy().copy() for p in params]
        opt.step()
        for i, p in enumerate(params):
            # The reference steps from the same parameters and gradients (teacher forcing), with
            # its own float64 momentum carried across steps.
            ref_p[i], ref_m[i] = reference_step(before[i], grads[i], ref_m[i], step, lr=0.5,
                                                momentum=0.9, weight_decay=1e-4)
            got = p.detach().double().numpy()
            err = np.linalg.norm(got - ref_p[i]) / np.linalg.norm(ref_p[i])
            assert err < 1e-5, (step, i, err)
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses  # it actually trains
    assert opt.state[params[0]]["step"] == 40


def test_param_groups_closure_schedulers_and_overrides():
    torch.manual_seed(1)
    w = torch.nn.Parameter(torch.randn(300))
    b = torch.nn.Parameter(torch.randn(10))
    opt = halide_lars.LARS32bit([{"params": [w]}, {"params": [b], "lr": 0.01}], lr=0.1,
                                momentum=0.9, weight_decay=0.1)
    opt.override_config(b, "weight_decay", 0.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    mw = mb = None
    for step in range(1, 6):
        gw, gb = torch.randn(300), torch.randn(10)
        w0, b0 = w.detach().double().numpy().copy(), b.detach().double().numpy().copy()
        lr_w, lr_b = opt.param_groups[0]["lr"], opt.param_groups[1]["lr"]

        def closure():
            w.grad, b.grad = gw.clone(), gb.clone()
            return torch.tensor(1.0)

        assert opt.step(closure).item() == 1.0
        sched.step()
        rw, mw = reference_step(w0, gw.double().numpy(), mw, step, lr_w, 0.9, weight_decay=0.1)
        rb, mb = reference_step(b0, gb.double().numpy(), mb, step, lr_b, 0.9, weight_decay=0.0)
        assert np.allclose(w.detach().numpy(), rw, rtol=1e-5, atol=1e-6), step
        assert np.allclose(b.detach().numpy(), rb, rtol=1e-5, atol=1e-6), step


def test_parameters_without_gradient_are_skipped():
    a, b = torch.nn.Parameter(torch.ones(50)), torch.nn.Parameter(torch.ones(50))
    opt = halide_lars.LARS([a, b], lr=0.1, momentum=0.9)
    a.grad = torch.full((50,), 0.5)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(50))
    assert not torch.equal(a.detach(), torch.ones(50))


def test_flat_parameters_train_bit_identically_with_two_pipelines():
    """flat=True: the model's parameters live in one flat buffer, a step runs two pipelines,
    and the trajectory equals flat=False bit for bit (also across zero_grad(set_to_none=True),
    a parameter without gradient, and param groups with their own options)."""
    x, y = make_data(seed=5)
    models, opts = [], []
    for flat in (False, True):
        torch.manual_seed(7)
        model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 33), torch.nn.Tanh(),
                                    torch.nn.Linear(33, 17), torch.nn.Tanh(),
                                    torch.nn.Linear(17, 4))
        groups = [{"params": [model[0].weight, model[2].weight, model[4].weight]},
                  {"params": [model[0].bias, model[2].bias, model[4].bias], "lr": 0.05,
                   "weight_decay": 0.0, "trust_mode": "none"}]
        models.append(model)
        opts.append(halide_lars.LARS(groups, lr=0.2, momentum=0.9, weight_decay=1e-4, flat=flat))
    flat_model = models[1]
    first = flat_model[0].weight
    assert first.data_ptr() + first.numel() * 4 <= flat_model[2].weight.data_ptr()
    for step in range(1, 16):
        for model, opt in zip(models, opts):
            opt.zero_grad(set_to_none=(step % 3 == 0))
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            if step == 5:
                model[2].bias.grad = None  # no gradient this step
            opt.step()
        for a, b in zip(models[0].parameters(), models[1].parameters()):
            assert torch.equal(a.detach(), b.detach()), step
    assert opts[1].last_step_pipelines() == 2  # one flat buffer: norms + update
    assert opts[0].last_step_pipelines() == 2 * 6  # norms + update per tensor

def test_flat_parameters_with_8bit_state():
    """LARS8bit(flat=True): the big layer gets blockwise 8-bit state, the rest fp32 (two flat sets,
    four pipelines); the trajectory equals flat=False bit for bit."""
    x, y = make_data(seed=6)
    models, opts = [], []
    for flat in (False, True):
        torch.manual_seed(8)
        model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 300), torch.nn.Tanh(),
                                    torch.nn.Linear(300, 4))
        models.append(model)
        opts.append(halide_lars.LARS8bit(model.parameters(), lr=0.1, momentum=0.9,
                                         weight_decay=1e-4, flat=flat))
    for step in range(1, 9):
        for model, opt in zip(models, opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        for a, b in zip(models[0].parameters(), models[1].parameters()):
            assert torch.equal(a.detach(), b.detach()), step
    assert opts[1].last_step_pipelines() == 4  # fp32 flat set + 8-bit flat set, norms + update each


def test_flat_8bit_tensors_are_laid_out_first():
    """LARS8bit(flat=True) puts the 8-bit-state tensors side by side at the start of the flat
    buffer and the fp32 ones after them, so each flat set's state covers its own tensors only."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 2048),
                                torch.nn.Linear(2048, 3))
    opt = halide_lars.LARS8bit(model.parameters(), lr=0.1, momentum=0.9, flat=True)
    params = list(model.parameters())  # w 4x8, b 4, w 2048x4 (8-bit), b 2048, w 3x2048 (8-bit), b 3
    assert params[2].storage_offset() == 0
    assert params[4].storage_offset() == 8192
    assert min(params[i].storage_offset() for i in (0, 1, 3, 5)) >= 8192 + 6144
    assert opt._opt.state_size() < 2 * 14336 + 4 * 4096  # ~1 B/param + small fp32 state


def test_state_dict_round_trip_continues_bit_for_bit():
    torch.manual_seed(2)
    x, y = make_data(seed=3)

    def build():
        torch.manual_seed(5)
        m = torch.nn.Sequential(torch.nn.Linear(20, 300), torch.nn.ReLU(), torch.nn.Linear(300, 4))
        return m, halide_lars.LARS8bit(m.parameters(), lr=0.2, momentum=0.9, percentile_clipping=50)

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    m1, o1 = build()
    train(m1, o1, 3)
    sd = o1.state_dict()
    weights = [p.detach().clone() for p in m1.parameters()]
    assert sd["state"][0]["state1"].dtype == torch.uint8  # 6000 elements: 8-bit codes
    assert isinstance(sd["halide_lars_checkpoint"], bytes)
    train(m1, o1, 4)

    m2, o2 = build()
    with torch.no_grad():
        for p, w in zip(m2.parameters(), weights):
            p.copy_(w)
    o2.load_state_dict(sd)
    train(m2, o2, 4)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2)


def test_bad_input_raises_with_the_c_message():
    with pytest.raises(NotImplementedError, match="LARS without momentum"):
        halide_lars.LARS([torch.nn.Parameter(torch.ones(3))], lr=0.1)
    with pytest.raises(ValueError, match="lr: -1"):
        halide_lars.LARS([torch.nn.Parameter(torch.ones(3))], lr=-1.0, momentum=0.9)
    with pytest.raises(ValueError, match="percentile_clipping"):
        halide_lars.LARS([torch.nn.Parameter(torch.ones(3))], lr=0.1, momentum=0.9,
                         percentile_clipping=0)
    with pytest.raises(TypeError, match="torch.float32, float16 or bfloat16"):
        halide_lars.LARS([torch.nn.Parameter(torch.ones(3, dtype=torch.float64))], lr=0.1,
                         momentum=0.9)
    with pytest.raises(ValueError, match="not contiguous"):
        halide_lars.LARS([torch.nn.Parameter(torch.ones(4, 4).t())], lr=0.1, momentum=0.9)
    p = torch.nn.Parameter(torch.ones(8))
    opt = halide_lars.LARS([p], lr=0.1, momentum=0.9)
    # torch itself refuses such .grad assignments; other bindings can pass them to the C ABI.
    from halide_lars.dlpack import from_torch
    wrong_size, wrong_dtype = torch.ones(9), torch.ones(8, dtype=torch.float16)
    with pytest.raises(ValueError, match="9 elements, param has 8"):
        opt._opt.set_grad("g0.p0", from_torch(wrong_size).dl)
    with pytest.raises(ValueError, match="dtype f16, param is f32"):
        opt._opt.set_grad("g0.p0", from_torch(wrong_dtype).dl)
    with pytest.raises(KeyError, match="no parameter named"):
        opt._opt.set_grad("nope", from_torch(torch.ones(8)).dl)
    opt.step()  # no gradient: nothing happens
    assert torch.equal(p.detach(), torch.ones(8)), "a refused call changed the parameter"
    with pytest.raises(ValueError, match="checkpoint"):
        opt._opt.load_state(b"garbage")
    with pytest.raises(TypeError):
        opt._opt.load_state("not bytes")


def test_sharded_step_with_partials_tensor():
    """The two-phase step with the partials in a float64 torch tensor (what LARS(process_group=)
    passes; on the parameters' GPU for NCCL) equals the ctypes-array form bit for bit."""
    import ctypes
    from halide_lars.dlpack import from_torch
    opts = []
    ps = [torch.linspace(-1, 1, 500) for _ in range(2)]
    for p in ps:
        o = halide_lars._Optimizer(lr=0.1, momentum=0.9, weight_decay=0.01)
        o.add_param("w", from_torch(p).dl, None, 0)
        o.set_shard("w", 500, 1500)
        opts.append(o)
    n = opts[0].partials_size()
    arr = (ctypes.c_double * n)()
    t = torch.zeros(n, dtype=torch.float64)
    ref = from_torch(t, partials=True)
    with pytest.raises(TypeError, match="expected torch.float64"):
        from_torch(torch.zeros(n), partials=True)
    with pytest.raises(ValueError, match="expected float64"):
        opts[1].step_begin_tensor(from_torch(torch.zeros(n)).dl)
    short = from_torch(torch.zeros(n - 1, dtype=torch.float64), partials=True)
    with pytest.raises(ValueError, match=f"{n - 1} values for 1 parameters"):
        opts[1].step_begin_tensor(short.dl)
    for step in range(3):
        g = torch.cos(torch.arange(500) * 0.1 + step)
        gs = [g.clone() for _ in range(2)]  # kept alive: the refs do not own them
        for o, gi in zip(opts, gs):
            o.set_grad("w", from_torch(gi).dl)
        opts[0].step_begin(arr)
        opts[1].step_begin_tensor(ref.dl)
        assert list(arr) == t.tolist()
        for i in range(n):
            arr[i] *= 3  # a 3-rank all-reduce of equal shards
        t.mul_(3)
        opts[0].step_finish(arr)
        opts[1].step_finish_tensor(ref.dl)
    assert torch.equal(ps[0], ps[1]) and not torch.equal(ps[0], torch.linspace(-1, 1, 500))


def test_nonfinite_gradients():
    p = torch.nn.Parameter(torch.ones(100))
    q = torch.nn.Parameter(torch.ones(100))
    opt = halide_lars.LARS([p, q], lr=0.1, momentum=0.9)  # nonfinite='skip' by default
    p.grad = torch.ones(100)
    p.grad[7] = float("nan")
    q.grad = torch.ones(100)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(100)), "skipped parameter changed"
    assert not torch.equal(q.detach(), torch.ones(100))
    assert opt._opt.skipped_steps("g0.p0") == 1
    err = halide_lars.LARS([p], lr=0.1, momentum=0.9, nonfinite="error")
    p.grad[7] = float("inf")
    with pytest.raises(ValueError, match="gradient has NaN or Inf"):
        err.step()
    with pytest.raises(ValueError, match="nonfinite"):
        halide_lars.LARS([p], lr=0.1, momentum=0.9, nonfinite="ignore")


def test_bf16_and_fp16_parameters():
    for dtype in (torch.bfloat16, torch.float16):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 1000).to(dtype))
        opt = halide_lars.LARS([p], lr=0.1, momentum=0.9)
        p.grad = torch.linspace(1, -1, 1000).to(dtype)
        before = p.detach().double().numpy()
        opt.step()
        ref, _ = reference_step(before, p.grad.double().numpy(), None, 1, 0.1, 0.9)
        got = p.detach().double().numpy()
        assert np.max(np.abs(got - ref)) <= 2 ** -7 * np.max(np.abs(ref)), dtype


def test_numpy_api():
    rng = np.random.default_rng(4)
    w = rng.normal(size=1000).astype(np.float32)
    b = rng.normal(size=10).astype(np.float32)
    opt = halide_lars.NumpyLARS({"w": w, "b": b}, lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.override("b", "trust_mode", "none")
    m = None
    for step in range(1, 4):
        gw = rng.normal(size=1000).astype(np.float32)
        w0 = w.astype(np.float64)
        opt.step({"w": gw})  # b has no gradient: skipped
        ref, m = reference_step(w0, gw.astype(np.float64), m, step, 0.1, 0.9, weight_decay=0.01)
        assert np.allclose(w, ref, rtol=1e-5, atol=1e-6)
    assert opt.state("w")["step"] == 3 and opt.state("b")["step"] == 0
    st = opt.state("w")  # bitsandbytes' names, live over the optimizer's memory
    assert st["state1"].dtype == np.float32 and st["state1"].shape == w.shape
    assert np.array_equal(st["state1"], st["momentum"])
    st["state1"][:] = 0.0
    assert not opt.state("w")["momentum"].any(), "writing state1 changes the optimizer"
    blob = opt.state_dict()
    opt.load_state_dict(blob)
    with pytest.raises(TypeError):
        halide_lars.NumpyLARS({"w": w.astype(np.float64)}, lr=0.1, momentum=0.9)


def test_options_come_from_the_library_table():
    """The bindings take their option list from lars_option_info: every option of the table is
    a keyword of LARS and NumpyLARS (step_order included), its default is the library's, and a
    name outside the table is refused."""
    from halide_lars import _lib
    table = _lib.OPTIONS
    assert list(table)[:9] == ["lr", "momentum", "dampening", "weight_decay", "nesterov",
                               "optim_bits", "min_8bit_size", "percentile_clipping", "max_unorm"]
    assert {"trust_mode", "step_order", "nonfinite", "block_size"} <= set(table)
    assert table["step_order"].values == ["auto", "norms_first", "momentum_first"]
    assert table["step_order"].default == "auto" and table["lr"].default is None
    assert table["max_unorm"].default == 0.02 and table["block_wise"].default is True
    w = torch.nn.Parameter(torch.ones(300))
    opt = halide_lars.LARS([w], lr=0.1, momentum=0.9, step_order="norms_first")
    assert opt.param_groups[0]["step_order"] == "norms_first"
    assert set(opt.param_groups[0]) >= set(table)
    assert "step_order = 'auto'" in halide_lars.LARS.__doc__
    w.grad = torch.full((300,), 0.5)
    opt.step()
    assert not torch.equal(w.detach(), torch.ones(300))
    with pytest.raises(TypeError, match="step_ordr"):
        halide_lars.LARS([w], lr=0.1, momentum=0.9, step_ordr="auto")
    with pytest.raises(ValueError, match="step_order"):
        halide_lars.LARS([w], lr=0.1, momentum=0.9, step_order="sideways")
    a = np.ones(100, np.float32)
    with pytest.raises(TypeError, match="unknown option"):
        halide_lars.NumpyLARS({"a": a}, lr=0.1, momentum=0.9, trust_modee="clip")
    np_opt = halide_lars.NumpyLARS({"a": a}, lr=0.1, momentum=0.9, step_order="momentum_first")
    np_opt.step({"a": np.full(100, 0.5, np.float32)})
    assert a[0] != 1.0


def test_thread_budget_follows_torch_and_results_do_not_depend_on_it():
    """LARS's CPU kernels use torch.get_num_threads() threads unless num_threads is given; every
    count gives the same parameters and state (bit for bit)."""
    threads = torch.get_num_threads()

    def run(num_threads, torch_threads):
        torch.set_num_threads(torch_threads)
        g = torch.Generator().manual_seed(3)
        p = torch.nn.Parameter(torch.randn(300001, generator=g))
        kw = {} if num_threads is None else {"num_threads": num_threads}
        opt = halide_lars.LARS8bit([p], lr=0.1, momentum=0.9, weight_decay=1e-3, **kw)
        for step in range(5):
            p.grad = torch.sin(p.detach() * (step + 1))
            opt.step()
        return opt, p.detach().clone(), opt.state[p]["state1"].clone()

    try:
        opt, p1, s1 = run(None, 1)
        assert opt._opt.num_threads() == 1  # followed torch
        torch.set_num_threads(2)
        opt.step()
        assert opt._opt.num_threads() == 2  # and follows its changes
        opt, p2, s2 = run(3, 1)
        assert opt._opt.num_threads() == 3  # given: fixed
        opt, p0, s0 = run(0, 2)
        assert opt._opt.num_threads() == 0  # automatic
        for p, s in ((p2, s2), (p0, s0)):
            assert torch.equal(p, p1) and torch.equal(s, s1)
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="num_threads"):
        halide_lars.LARS([torch.nn.Parameter(torch.ones(3))], lr=0.1, momentum=0.9, num_threads=-1)
    w = np.ones(5000, np.float32)
    o = halide_lars.NumpyLARS({"w": w}, lr=0.1, momentum=0.9, num_threads=2)
    assert o._opt.num_threads() == 2
    with pytest.raises(ValueError, match="num_threads"):
        halide_lars.NumpyLARS({"w": w}, lr=0.1, momentum=0.9, num_threads=-2)
