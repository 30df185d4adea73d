#!/usr/bin/env python3
"""halide_lars' Python binding next to the optimizers users would take instead, on the same
tensors, in one process, on the GPU when there is one (else the CPU):

  copy            dst.copy_(src) over the set's total size (read + write): the roofline
  halide_lars     LARS (fp32 state) per tensor and flat=True, LARS8bit flat=True: torch tensors,
                  work queued on torch's current CUDA stream
  torch SGD       momentum 0.9 with foreach=True and fused=True (the lower bound for any LARS:
                  no trust ratio)
  timm Lars       timm.optim.Lars (trust clipping on), when timm is installed
  optax lars      optax.lars under jax.jit (donated buffers), when jax and optax are installed

Tensor sets: one tensor (--n), ResNet-50 (161 tensors) and BERT-base (199 tensors) shapes from
`gpu_bench --shapes` (one definition: bench/model_shapes.cc). Prints a table, writes JSON.
    python3 bench/gpu_peers.py --gpu-bench bazel-bin/bench/gpu_bench [--quick] [--json F]
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


def timer(torch, device):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def run(fn, reps, inner, warm=2):
        for _ in range(warm):
            fn()
        sync()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            times.append((time.perf_counter() - t0) * 1e3 / inner)
        return statistics.median(times)
    return run


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
           ("halide_lars LARS8bit flat", ours(halide_lars.LARS8bit, flat=True), 23),
           ("torch SGD foreach", sgd(foreach=True), 16),
           ("torch SGD fused", sgd(fused=True), 16)]
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
    except ImportError as e:
        out.append(("optax lars (jit)", f"not installed ({e})", 0))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu-bench", required=True, help="path of the gpu_bench binary")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default="")
    ap.add_argument("--n", type=int, default=0)
    args = ap.parse_args()
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    why = "" if device.type == "cuda" else "no GPU (torch.cuda.is_available() is False): CPU rows"
    n = args.n or ((1 << 24 if args.quick else 1 << 26) if device.type == "cuda"
                   else (1 << 22 if args.quick else 1 << 24))
    model = shapes(args.gpu_bench)
    sets = [("one tensor", [n]), ("resnet50", model["resnet50"])]
    if device.type == "cuda" or not args.quick:
        sets.append(("bert_base", model["bert_base"]))
    run = timer(torch, device)
    reps, inner = (3, 3) if args.quick else (7, 5)
    rows = []
    print(f"gpu_peers: torch {torch.__version__} on {device}" + (f" -- {why}" if why else ""),
          flush=True)
    for set_name, sizes in sets:
        total = sum(sizes)
        src = torch.empty(total, device=device).normal_()
        dst = torch.empty_like(src)
        ms = run(lambda: dst.copy_(src), reps, inner)
        roof = 8.0 * total / ms / 1e6
        rows.append(dict(set=set_name, peer="roofline: copy", params=total, ms=ms, gbps=roof,
                         ratio=1.0, vs_ours=None))
        del src, dst
        ours_ms = None
        for name, make, bytes_per_param in peers(torch, device):
            if isinstance(make, str):
                rows.append(dict(set=set_name, peer=name, note=make))
                continue
            params = make_params(torch, sizes, device)
            try:
                step = make(params)
                ms = run(step, reps, inner)
            except Exception as e:  # noqa: BLE001 -- a peer that cannot run is reported
                rows.append(dict(set=set_name, peer=name, note=f"failed: {type(e).__name__}: {e}"[:160]))
                continue
            finally:
                del params
            gbps = bytes_per_param * total / ms / 1e6
            if name == "halide_lars LARS flat":
                ours_ms = ms
            rows.append(dict(set=set_name, peer=name, params=total, ms=ms, gbps=gbps,
                             ratio=gbps / roof, vs_ours=None))
        for r in rows:
            if r["set"] == set_name and "ms" in r and ours_ms and not r["peer"].startswith("roof"):
                r["vs_ours"] = r["ms"] / ours_ms
    print(f"{'set':<11} {'peer':<28} {'params':>11} {'ms/step':>9} {'GB/s':>8} {'x roof':>7} "
          f"{'time / ours flat':>16}")
    for r in rows:
        if "ms" not in r:
            print(f"{r['set']:<11} {r['peer']:<28} {r['note']}")
            continue
        vs = f"{r['vs_ours']:.2f}" if r.get("vs_ours") else "-"
        print(f"{r['set']:<11} {r['peer']:<28} {r['params']:>11} {r['ms']:>9.3f} "
              f"{r['gbps']:>8.1f} {r['ratio']:>7.3f} {vs:>16}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": str(device), "torch": torch.__version__, "note": why,
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
