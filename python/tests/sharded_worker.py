"""One rank of a sharded halide_lars run over torch.distributed (gloo on 127.0.0.1).

Usage: sharded_worker.py RANK WORLD PORT BITS TRUST_MODE OUT.pt
Every tensor of the model is cut into WORLD uneven slices (block-aligned, one rank owning
nothing of "bias"); the gradient is elementwise in the global index, so each rank computes its
own slice's gradient without gathering. Writes this rank's final slices to OUT.pt.
"""
import sys

import torch
import torch.distributed as dist

import halide_lars

SIZES = {"w": 10007, "bias": 7, "v": 5000}


def cuts(world):
    if world == 2:
        return {"w": [0, 3 * 256, 10007], "bias": [0, 7, 7], "v": [0, 4096, 5000]}
    return {"w": [0, 256, 21 * 256, 10007], "bias": [0, 3, 7, 7], "v": [0, 0, 4864, 5000]}


def init(name):
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    return torch.rand(SIZES[name], generator=g, dtype=torch.float32) * 2 - 1


def grad(p, offset, step):
    idx = torch.arange(offset, offset + p.numel(), dtype=torch.float64)
    noise = 0.1 * torch.sin(step * 1.7 + idx * 0.37)
    return (0.8 * (p.double() - 0.25) + noise).float()


OPTIONS = dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True, block_size=256,
               percentile_clipping=10)
STEPS = 20


def main():
    rank, world, port, bits = (int(a) for a in sys.argv[1:5])
    trust, out = sys.argv[5], sys.argv[6]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    c = cuts(world)
    offsets = {name: c[name][rank] for name in SIZES}

    def make(values):
        """This rank's slices as parameters, and a sharded optimizer over them."""
        ps = {n: torch.nn.Parameter(v.clone()) for n, v in values.items()}
        o = halide_lars.LARS(list(ps.values()), optim_bits=bits, trust_mode=trust,
                             process_group=dist.group.WORLD,
                             shards={ps[n]: (offsets[n], SIZES[n]) for n in ps}, **OPTIONS)
        return ps, o

    def run(ps, o, first, last):
        for step in range(first, last + 1):
            for name, p in ps.items():
                p.grad = grad(p.detach(), offsets[name], step)
            o.step()

    params, opt = make({n: init(n)[c[n][rank]:c[n][rank + 1]] for n in SIZES})
    run(params, opt, 1, STEPS // 2)
    # Per-rank checkpoint at step 10: a fresh optimizer loading it continues bit for bit.
    saved = opt.state_dict()
    resumed, opt2 = make({n: p.detach() for n, p in params.items()})
    opt2.load_state_dict(saved)
    run(params, opt, STEPS // 2 + 1, STEPS)
    run(resumed, opt2, STEPS // 2 + 1, STEPS)
    exact = all(torch.equal(params[n].detach(), resumed[n].detach()) for n in params)
    # Another rank's checkpoint (a different sharding) is refused, naming the mismatch.
    torch.save(saved["halide_lars_checkpoint"], f"{out}.ckpt")
    dist.barrier()
    other = torch.load(out.replace(f"rank{rank}.pt", f"rank{(rank + 1) % world}.pt") + ".ckpt")
    try:
        opt2._opt.load_state(other)
        mismatch = ""
    except RuntimeError as e:
        mismatch = str(e)
    result = {k: v.detach().clone() for k, v in params.items()}
    result["resume_exact"] = exact
    result["mismatch_error"] = mismatch
    torch.save(result, out)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
