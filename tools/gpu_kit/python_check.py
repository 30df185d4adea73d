#!/usr/bin/env python3
"""The Python binding on torch tensors of the GPU, on a side stream (the caller's stream), against
the same steps on the CPU: LARS / LARS8bit, per tensor and flat, fp32 and bf16 parameters; the
live state[p] tensors on the GPU. Without a GPU it says so and checks the CPU path alone.
Exit status 1 on any mismatch."""
import sys

import torch

import halide_lars

SHAPES = [(513, 257), (4097,), (7,), (64, 64)]


def run(device, cls, kw, dtype, stream=None):
    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=g).to(dtype).to(device)) for s in SHAPES]
    opt = cls(params, lr=0.1, momentum=0.9, weight_decay=1e-4, **kw)
    ctx = torch.cuda.stream(stream) if stream is not None else None
    if ctx:
        ctx.__enter__()
    for step in range(6):
        gg = torch.Generator().manual_seed(100 + step)
        for p in params:
            p.grad = (torch.randn(p.shape, generator=gg) * 0.1).to(dtype).to(device)
        opt.step()
    if ctx:
        ctx.__exit__(None, None, None)
        stream.synchronize()
    return params, opt


def main():
    cuda = torch.cuda.is_available()
    print(f"python_check: torch {torch.__version__}, halide_lars {halide_lars.__version__}, "
          + ("GPU " + torch.cuda.get_device_name(0) if cuda else "no GPU: CPU path only"))
    failures = 0
    cases = [(halide_lars.LARS, {}), (halide_lars.LARS8bit, {}),
             (halide_lars.LARS, {"flat": True}), (halide_lars.LARS8bit, {"flat": True})]
    for cls, kw in cases:
        for dtype in (torch.float32, torch.bfloat16):
            name = f"{cls.__name__}{' flat' if kw else ''} {str(dtype).split('.')[-1]}"
            ref, _ = run("cpu", cls, kw, dtype)
            if not cuda:
                print(f"  {name:<24} cpu ok")
                continue
            got, opt = run("cuda", cls, kw, dtype, torch.cuda.Stream())
            tol = 1e-5 if dtype == torch.float32 else 2e-2
            err = max(((a.detach().float().cpu() - b.detach().float()).abs().max() /
                       b.detach().float().abs().max()).item() for a, b in zip(got, ref))
            on_gpu = all(t.is_cuda for p in got for t in opt.state[p].values()
                         if isinstance(t, torch.Tensor))
            ok = err <= tol and on_gpu
            failures += not ok
            print(f"  {name:<24} max rel. diff GPU vs CPU {err:.2e} (tol {tol:g}), "
                  f"state on GPU: {on_gpu}  {'ok' if ok else 'FAILED'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
