#!/usr/bin/env python3
"""halide_lars next to the optimizers users would take instead: the same tensors, one
process, the peers interleaved round by round (each round times every peer once; the median of
the rounds is reported, so a slow phase of the machine hits every peer alike), on the GPU when
there is one, else the CPU:

  roofline        CPU: the in-place triad a += s*b (torch, 12 B/elem); GPU: dst.copy_(src)
                  (read + write, 8 B/elem)
  halide_lars     LARS (fp32 state) per tensor and flat=True, LARS8bit per tensor and flat:
                  torch tensors (on a GPU, work queued on torch's current stream)
  bitsandbytes    bnb.optim.LARS and LARS8bit (its CPU path on the CPU), when installed
  torch SGD       momentum 0.9 with foreach=True and fused=True (the lower bound for any LARS:
                  no trust ratio)
  timm Lars       timm.optim.Lars (trust clipping on), when timm is installed
  optax lars      optax.lars under jax.jit (donated buffers; XLA CPU or GPU), when installed

Tensor sets: one tensor (--n; default 32M on the CPU, 64M on a GPU), ResNet-50 (161 tensors,
25.6M) and BERT-base (199 tensors, 110M) from `gpu_bench --shapes` (one definition:
bench/model_shapes.cc). BERT-base's peers run one after another (their state would not fit
side by side). Prints a table with ratios to the roofline and to halide_lars LARS; --json.
    ./setup.sh --peers && bazel run -c opt //bench:peers -- [--quick] [--json F]
    python3 bench/peers.py --gpu-bench bazel-bin/bench/gpu_bench [--quick] [--json F]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time


def shapes(gpu_bench):
    out = subprocess.run([gpu_bench, "--shapes"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def time_once(torch, device, fn, inner):
    """ms per call of `fn` over `inner` calls, synchronized."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) * 1e3 / inner


def _build(torch, make, sizes, device, notes, set_name, name):
    """(step, params) of a peer on fresh tensors, warmed up twice; (None, None) and a note when
    the peer cannot run here."""
    params = make_params(torch, sizes, device)
    try:
        step = make(params)
        step()
        step()
        return step, params
    except Exception as e:  # noqa: BLE001 -- a peer that cannot run is reported, not fatal
        notes.append(dict(set=set_name, peer=name, note=f"failed: {type(e).__name__}: {e}"[:160]))
        return None, None


def make_params(torch, sizes, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    params = []
    for s in sizes:
        p = torch.nn.Parameter(torch.randn(s, generator=g).to(device))
        p.grad = (torch.randn(s, generator=g) * 0.01).to(device)
        params.append(p)
    return params


def peers(torch, device):
    """(name, factory(params) -> step callable, bytes per param) for every peer importable here;
    a peer that cannot run says why instead."""
    import halide_lars

    def ours(cls, **kw):
        def make(params):
            opt = cls(params, lr=0.1, momentum=0.9, weight_decay=1e-4, nonfinite="propagate", **kw)
            return opt.step
        return make

    def sgd(**kw):
        def make(params):
            opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4, **kw)
            opt.step()  # probes the option (fused is CUDA-only in some versions)
            return opt.step
        return make

    out = [("halide_lars LARS", ours(halide_lars.LARS), 28),
           ("halide_lars LARS flat", ours(halide_lars.LARS, flat=True), 28),
           ("halide_lars LARS8bit", ours(halide_lars.LARS8bit), 23),
           ("halide_lars LARS8bit flat", ours(halide_lars.LARS8bit, flat=True), 23)]
    try:
        import bitsandbytes as bnb

        def bnb_lars(cls):
            def make(params):
                opt = cls(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
                opt.step()  # probes the backend (bnb has no 8-bit LARS on CUDA in 0.50)
                return opt.step
            return make
        out += [(f"bitsandbytes {bnb.__version__} LARS", bnb_lars(bnb.optim.LARS), 28),
                (f"bitsandbytes {bnb.__version__} LARS8bit", bnb_lars(bnb.optim.LARS8bit), 23)]
    except ImportError as e:
        out.append(("bitsandbytes LARS", f"not installed ({e})", 0))
    out += [("torch SGD foreach", sgd(foreach=True), 20),
            ("torch SGD fused", sgd(fused=True), 20)]
    try:
        from timm.optim import Lars

        def timm_lars(params):
            opt = Lars(params, lr=0.1, momentum=0.9, weight_decay=1e-4, trust_clip=True)
            return opt.step
        out.append(("timm Lars", timm_lars, 28))
    except ImportError as e:
        out.append(("timm Lars", f"not installed ({e})", 0))
    try:
        import jax
        import optax

        def optax_lars(params):
            dev = jax.devices("gpu")[0] if device.type == "cuda" else jax.devices("cpu")[0]
            ps = [jax.device_put(p.detach().cpu().numpy(), dev) for p in params]
            gs = [jax.device_put(p.grad.cpu().numpy(), dev) for p in params]
            tx = optax.lars(0.1, weight_decay=1e-4, momentum=0.9)
            state = [tx.init(ps)]

            def update(ps, gs, st):
                u, st = tx.update(gs, st, ps)
                return optax.apply_updates(ps, u), st
            update = jax.jit(update, donate_argnums=(0, 2))
            holder = [ps]

            def step():
                holder[0], state[0] = update(holder[0], gs, state[0])
                jax.block_until_ready(holder[0])
            return step
        out.append(("optax lars (jit)", optax_lars, 28))

        def ours_jax(params):  # halide_lars.jax: the same optax.lars, our kernels via XLA's FFI
            import halide_lars.jax as hlj
            ps = [jax.device_put(p.detach().cpu().numpy()) for p in params]
            gs = [jax.device_put(p.grad.cpu().numpy()) for p in params]
            tx = hlj.lars(0.1, weight_decay=1e-4, momentum=0.9)
            holder = [ps, tx.init(ps)]
            update = jax.jit(tx.step, donate_argnums=(0, 1))

            def step():
                holder[0], holder[1] = update(holder[0], holder[1], gs)
                jax.block_until_ready(holder[0])
            return step
        if device.type == "cpu":
            out.append(("halide_lars.jax lars (jit, donated)", ours_jax, 28))
        else:
            out.append(("halide_lars.jax lars (jit, donated)", "CPU FFI handlers only", 0))
    except ImportError as e:
        out.append(("optax lars (jit)", f"not installed ({e})", 0))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu-bench", required=True, help="path of the gpu_bench binary")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default="", help="write the rows as JSON here")
    ap.add_argument("--n", type=int, default=0)
    args = ap.parse_args()
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    why = "" if device.type == "cuda" else "no GPU (torch.cuda.is_available() is False): CPU rows"
    n = args.n or ((1 << 24 if args.quick else 1 << 26) if device.type == "cuda"
                   else (1 << 22 if args.quick else 1 << 25))
    model = shapes(args.gpu_bench)
    sets = [("one tensor", [n]), ("resnet50", model["resnet50"])]
    if device.type == "cuda" or not args.quick:
        sets.append(("bert_base", model["bert_base"]))
    reps, inner = (3, 2) if args.quick else (7, 3)
    rows = []
    print(f"peers: torch {torch.__version__} on {device}, {torch.get_num_threads()} threads"
          + (f" -- {why}" if why else ""), flush=True)
    for set_name, sizes in sets:
        total = sum(sizes)
        print(f"  {set_name}: {len(sizes)} tensors, {total} params", flush=True)
        # The roofline, timed inside every round like a peer.
        a = torch.empty(total, device=device).normal_()
        b = torch.empty_like(a).normal_()
        if device.type == "cuda":
            roof_name, roof_bytes, roof_fn = "roofline: copy", 8.0, lambda: a.copy_(b)
        else:
            roof_name, roof_bytes, roof_fn = "roofline: triad in place", 12.0, lambda: a.add_(b, alpha=1e-7)
        built, notes = [(roof_name, roof_fn, roof_bytes, None)], []
        sequential = set_name == "bert_base"  # state side by side would not fit in memory
        for name, make, bytes_per_param in peers(torch, device):
            if isinstance(make, str):
                notes.append(dict(set=set_name, peer=name, note=make))
                continue
            built.append((name, make, bytes_per_param, sizes))
        times = {name: [] for name, *_ in built}
        if sequential:
            for name, make, bpp, sz in built:
                fn, keep = (make, None) if sz is None else _build(torch, make, sz, device, notes,
                                                                   set_name, name)
                if fn is None:
                    continue
                times[name] = [time_once(torch, device, fn, inner) for _ in range(reps)]
                del fn, keep
        else:
            fns = {}
            for name, make, bpp, sz in built:
                fn, keep = (make, None) if sz is None else _build(torch, make, sz, device, notes,
                                                                   set_name, name)
                if fn is not None:
                    fns[name] = (fn, keep)
            for _ in range(reps):  # interleaved rounds
                for name, (fn, _) in fns.items():
                    times[name].append(time_once(torch, device, fn, inner))
            del fns
        del a, b
        roof_ms = statistics.median(times[roof_name])
        roof = roof_bytes * total / roof_ms / 1e6
        ours = statistics.median(times["halide_lars LARS"]) if times.get("halide_lars LARS") else None
        for name, make, bpp, sz in built:
            if not times[name]:
                continue
            ms = statistics.median(times[name])
            gbps = bpp * total / ms / 1e6
            rows.append(dict(set=set_name, peer=name, params=total, ms=ms, gbps=gbps,
                             ratio=gbps / roof, vs_ours=ms / ours if ours and sz else None))
        rows += notes
    print(f"{'set':<11} {'peer':<34} {'params':>11} {'ms/step':>9} {'GB/s':>8} {'x roof':>7} "
          f"{'time / halide_lars LARS':>24}")
    for r in rows:
        if "ms" not in r:
            print(f"{r['set']:<11} {r['peer']:<34} {r['note']}")
            continue
        vs = f"{r['vs_ours']:.2f}" if r.get("vs_ours") else "-"
        print(f"{r['set']:<11} {r['peer']:<34} {r['params']:>11} {r['ms']:>9.3f} "
              f"{r['gbps']:>8.1f} {r['ratio']:>7.3f} {vs:>24}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": str(device), "torch": torch.__version__, "note": why,
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
