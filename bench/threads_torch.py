"""halide_lars.LARS inside a torch program, as issue 27 measured it: torch runs a matmul first
(under OMP_PROC_BIND=close its OpenMP binds the main thread to one core), then LARS steps a
32M-element tensor. Prints the step median, and the same after binding the calling thread to one
CPU by hand (os.sched_setaffinity), and for 1..N thread budgets.

    for b in "" close; do OMP_PROC_BIND=$b .venv/bin/python bench/threads_torch.py; done
    (HALIDE_LARS_LIB=bazel-bin/c_api/libhalide_lars.so PYTHONPATH=python)
"""
import os
import statistics
import time

import torch

import halide_lars

N = 1 << 25


def median_step(opt, reps=15):
    opt.step()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main():
    a = torch.randn(512, 512)
    (a @ a).sum().item()  # torch's OpenMP runs (and, under OMP_PROC_BIND, binds) first
    p = torch.nn.Parameter(torch.randn(N))
    p.grad = torch.randn(N)
    bind = os.environ.get("OMP_PROC_BIND", "unset")
    mask = len(os.sched_getaffinity(0))
    opt = halide_lars.LARS([p], lr=0.1, momentum=0.9)
    print(f"OMP_PROC_BIND={bind}: torch {torch.__version__}, {torch.get_num_threads()} torch "
          f"threads, caller bound to {mask} CPU(s): step median {median_step(opt):.1f} ms")
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})
    print(f"  caller bound to one CPU by hand: {median_step(opt):.1f} ms")
    os.sched_setaffinity(0, saved)
    for k in range(1, os.cpu_count() + 1):
        o = halide_lars.LARS([p], lr=0.1, momentum=0.9, num_threads=k)
        print(f"  num_threads={k}: {median_step(o):.1f} ms")


if __name__ == "__main__":
    main()
