"""torch CPU baseline for //bench:lars_bench: the spec's LARS step (clip trust mode, momentum,
weight decay) written with torch ops, on n fp32 parameters, 2 threads. Prints one line:
    torch_lars_gbps <effective GB/s at 28 B/param> <ms per step>
"""
import sys
import time

import torch


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 25
    torch.set_num_threads(2)
    torch.manual_seed(0)
    p = torch.randn(n)
    g = torch.randn(n)
    m = torch.zeros(n)
    lr, momentum, wd, max_unorm = 0.1, 0.9, 1e-4, 0.02

    @torch.no_grad()
    def step(first):
        d = g.add(p, alpha=wd)
        if first:
            m.copy_(d)
        else:
            m.mul_(momentum).add_(d)
        pn, un = torch.linalg.vector_norm(p), torch.linalg.vector_norm(m)
        scale = torch.where(un > max_unorm * pn, max_unorm * pn / un, torch.ones(()))
        p.add_(m * (-lr * scale))

    step(True)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        step(False)
        times.append(time.perf_counter() - t)
    best = sorted(times)[len(times) // 2]
    print(f"torch_lars_gbps {28.0 * n / best / 1e9:.3f} {best * 1e3:.3f}")


if __name__ == "__main__":
    main()
