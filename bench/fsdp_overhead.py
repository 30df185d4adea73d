"""The sharded step's cost under FSDP2 against one process (gloo on 127.0.0.1, CPU).

    .venv/bin/python bench/fsdp_overhead.py [--world 2] [--steps 30]
    (HALIDE_LARS_LIB=bazel-bin/c_api/libhalide_lars.so PYTHONPATH=python)

A model of 8 Linear(1024, 1024) layers (8.4M parameters); gradients from one backward, then
opt.step() alone is timed (median of --steps). Every process runs 1 thread (torch and Halide's
pool: HL_NUM_THREADS=1, since Halide's pool does not follow the caller's thread budget yet --
issue 27 -- and two ranks of 2 Halide threads each on 2 cores would measure that instead), so
the ideal sharded
step is 1/world of the one-process step; the table gives the measured step, its ratio to that
ideal (the sharded step's overhead: the exchange of 40 B per tensor and the split into two
phases), and the all-reduce alone.
"""
import argparse
import os
import socket
import statistics
import sys
import time

os.environ["HL_NUM_THREADS"] = "1"  # before libhalide_lars loads (see above)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402

import halide_lars  # noqa: E402


def model():
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(1024, 1024) for _ in range(8)])


def time_steps(opt, steps, barrier=None):
    times = []
    for _ in range(steps):
        if barrier:
            barrier()
        t = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def make_grads(m):
    x = torch.randn(64, 1024, generator=torch.Generator().manual_seed(1))
    m(x).square().mean().backward()


def one_process(steps, bits):
    m = model()
    make_grads(m)
    opt = halide_lars.LARS(m.parameters(), lr=0.01, momentum=0.9, optim_bits=bits)
    return time_steps(opt, steps)


def rank_main(rank, world, port, steps, bits, out):
    from torch.distributed.fsdp import fully_shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    m = model()
    for layer in m:
        fully_shard(layer)
    fully_shard(m)
    make_grads(m)
    opt = halide_lars.LARS(m.parameters(), lr=0.01, momentum=0.9, optim_bits=bits)
    ms = time_steps(opt, steps, dist.barrier)
    t = torch.zeros(5 * len(list(m.parameters())), dtype=torch.float64)
    ar = []
    for _ in range(steps):
        dist.barrier()
        s = time.perf_counter()
        dist.all_reduce(t)
        ar.append(time.perf_counter() - s)
    res = torch.tensor([ms, statistics.median(ar) * 1e3], dtype=torch.float64)
    dist.all_reduce(res, op=dist.ReduceOp.MAX)
    if rank == 0:
        with open(out, "w") as f:
            f.write(f"{res[0].item()} {res[1].item()}\n")
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rank", type=int, default=-1)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    if a.rank >= 0:
        return rank_main(a.rank, a.world, a.port, a.steps, a.bits, a.out)
    import subprocess
    import tempfile
    torch.set_num_threads(1)
    print(f"| state | one process, 1 thread (ms) | FSDP2 {a.world} ranks x 1 thread (ms) | "
          f"/ ideal (1/{a.world}) | all-reduce alone (ms) |")
    print("|---|---|---|---|---|")
    for bits in (32, 8):
        single = one_process(a.steps, bits)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r")
            procs = [subprocess.Popen([sys.executable, __file__, "--rank", str(r), "--world",
                                       str(a.world), "--port", str(port), "--steps",
                                       str(a.steps), "--bits", str(bits), "--out", out],
                                      env=dict(os.environ, OMP_NUM_THREADS="1"))
                     for r in range(a.world)]
            for p in procs:
                if p.wait() != 0:
                    sys.exit("a rank failed")
            ms, ar = (float(x) for x in open(out).read().split())
        print(f"| {'8-bit' if bits == 8 else 'fp32'} | {single:.2f} | {ms:.2f} | "
              f"{ms / (single / a.world):.2f} | {ar:.3f} |")


if __name__ == "__main__":
    main()
