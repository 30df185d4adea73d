"""One rank of a halide_lars run under torch's sharding engines (gloo on 127.0.0.1).

Usage: fsdp_worker.py RANK WORLD PORT ENGINE BITS TRUST_MODE OUTDIR
ENGINE: fsdp2 (fully_shard on a 1-D mesh), hsdp (fully_shard on a (replicate, shard) 2x2 mesh),
fsdp1 (FullyShardedDataParallel, use_orig_params=True, halide_lars.fsdp1_sharding).
Every rank trains the same model on the same batch (so FSDP's averaged gradient is the
single-process gradient) for STEPS steps. At step STEPS // 2 the model and optimizer are saved
with torch.distributed.checkpoint (fsdp2/hsdp); a fresh model and optimizer load that and run
the second half again, which must match bit for bit. Rank 0 writes OUTDIR/result.pt: the full
parameters, per-parameter state dtypes and what the checks found.
"""
import os
import sys

import torch
import torch.distributed as dist
from torch import nn

import halide_lars

STEPS = 20
EARLY = 3  # parameters are compared after this step too (see test_fsdp.py)
OPTIONS = dict(lr=0.1, momentum=0.9, weight_decay=1e-4, block_size=256)


class Net(nn.Module):
    """Row splits that are uneven (129 rows), empty on 4 ranks (3 rows), 8-bit-aligned (a, b:
    rows x 40 and x 256 elements) and not (c: 65 rows x 64 = 4160 elements per shard)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(40, 256)
        self.b = nn.Linear(256, 64)
        self.c = nn.Linear(64, 129)
        self.norm = nn.LayerNorm(129)
        self.d = nn.Linear(129, 3)

    def forward(self, x):
        x = torch.relu(self.a(x))
        x = torch.relu(self.b(x))
        return self.d(self.norm(self.c(x)))


def make_model():
    torch.manual_seed(0)
    return Net()


def batch(step):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(32, 40, generator=g)
    y = torch.randint(0, 3, (32,), generator=g)
    return x, y


def optimizer(params, bits, trust, **kw):
    return halide_lars.LARS(params, optim_bits=bits, trust_mode=trust, **OPTIONS, **kw)


def train(model, opt, first, last, snapshot=None):
    """Steps first..last; snapshot(): called after step EARLY (on every rank), its result kept."""
    early = None
    for step in range(first, last + 1):
        x, y = batch(step)
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if step == EARLY and snapshot is not None:
            early = snapshot()
    return early


def single_process(bits, trust):
    """The reference: the same model, data and options in one process."""
    model = make_model()
    opt = optimizer(model.parameters(), bits, trust)

    def params():
        return {n: p.detach().clone() for n, p in model.named_parameters()}
    early = train(model, opt, 1, STEPS, params)
    return params(), early, unorms(model, opt)


def unorms(model, opt):
    """Each parameter's last update norm (bitsandbytes' unorm_vec): a whole-tensor norm, which
    the trust ratio's scale invariance would hide if the norms were reduced over too many ranks."""
    return {n.replace("_fsdp_wrapped_module.", ""): float(opt.state[p]["unorm_vec"])
            for n, p in model.named_parameters() if "unorm_vec" in opt.state[p]}


def full_params(model):
    out = {}
    for n, p in model.named_parameters():
        out[n] = (p.full_tensor() if halide_lars.distributed.is_dtensor(p) else p).detach().clone()
    return out


def refused_placements(mesh):
    """Placements the step cannot handle are refused, naming the parameter and placement."""
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    placements = [Replicate()] * (mesh.ndim - 1) + [Shard(1)]
    p = nn.Parameter(distribute_tensor(torch.randn(8, 6), mesh, placements))
    try:
        halide_lars.LARS([p], lr=0.1, momentum=0.9)
    except ValueError as e:
        return str(e)
    return ""


def fsdp2_model(mesh, bits, trust):
    """The model with fully_shard on every Linear and the root, and its optimizer."""
    from torch.distributed.fsdp import fully_shard

    model = make_model()
    for layer in (model.a, model.b, model.c, model.d):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model, optimizer(model.parameters(), bits, trust)


def resume(ckpt, mesh, bits, trust):
    """A fresh model and optimizer (another initialization) loaded from the DCP checkpoint."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (get_model_state_dict,
                                                         get_optimizer_state_dict,
                                                         set_model_state_dict,
                                                         set_optimizer_state_dict)

    torch.manual_seed(123)
    model, opt = fsdp2_model(mesh, bits, trust)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    sd = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}
    dcp.load(sd, checkpoint_id=ckpt)
    set_model_state_dict(model, sd["model"])
    set_optimizer_state_dict(model, opt, sd["optim"])
    return model, opt


def run_fsdp2_resume(rank, world, bits, trust, outdir):
    """Loads the step-10 checkpoint that a run at another world size wrote into OUTDIR/dcp and
    trains steps 11..20 on this world size."""
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("shard",))
    model, opt = resume(os.path.join(outdir, "dcp"), mesh, bits, trust)
    train(model, opt, STEPS // 2 + 1, STEPS)
    return full_params(model), {}, {}


def run_fsdp2(rank, world, engine, bits, trust, outdir):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (get_model_state_dict,
                                                         get_optimizer_state_dict)
    from torch.distributed.device_mesh import init_device_mesh

    if engine == "hsdp":
        mesh = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("replicate", "shard"))
    else:
        mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("shard",))
    model, opt = fsdp2_model(mesh, bits, trust)
    early = train(model, opt, 1, STEPS // 2, lambda: full_params(model))
    ckpt = os.path.join(outdir, "dcp")
    dcp.save({"model": get_model_state_dict(model),
              "optim": get_optimizer_state_dict(model, opt)}, checkpoint_id=ckpt)
    train(model, opt, STEPS // 2 + 1, STEPS)
    dtypes = {n: str(halide_lars.distributed.local(opt.state[p]["state1"]).dtype)
              for n, p in model.named_parameters()}
    state_is_dtensor = all(halide_lars.distributed.is_dtensor(opt.state[p]["state1"])
                           for p in model.parameters())

    model2, opt2 = resume(ckpt, mesh, bits, trust)
    train(model2, opt2, STEPS // 2 + 1, STEPS)
    resumed = full_params(model2)
    final = full_params(model)
    exact = all(torch.equal(final[n], resumed[n]) for n in final)
    return final, dtypes, {"early": early, "resume_exact": exact, "unorms": unorms(model, opt),
                           "state_is_dtensor": state_is_dtensor,
                           "refused": refused_placements(mesh)}


def run_fsdp1(rank, world, bits, trust):
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    flat = FSDP(make_model(), use_orig_params=False, device_id=torch.device("cpu"))
    try:
        halide_lars.LARS(flat.parameters(), lr=0.1, momentum=0.9)
        refused = ""
    except ValueError as e:
        refused = str(e)
    model = FSDP(make_model(), use_orig_params=True, device_id=torch.device("cpu"))
    opt = optimizer(model.parameters(), bits, trust, **halide_lars.fsdp1_sharding(model))

    def gathered():
        with FSDP.summon_full_params(model):
            return {n.replace("_fsdp_wrapped_module.", ""): p.detach().clone()
                    for n, p in model.named_parameters()}
    early = train(model, opt, 1, STEPS, gathered)
    # A rank owning nothing of a tensor runs no update for it and keeps unorm_vec 0: the norm is
    # the one of the ranks that do (all equal: the reduced norm).
    u = unorms(model, opt)
    t = torch.tensor(list(u.values()), dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return gathered(), {}, {"early": early, "refused": refused,
                            "unorms": dict(zip(u, t.tolist()))}


def main():
    rank, world, port = (int(a) for a in sys.argv[1:4])
    engine, bits, trust, outdir = sys.argv[4], int(sys.argv[5]), sys.argv[6], sys.argv[7]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    if engine == "fsdp1":
        final, dtypes, checks = run_fsdp1(rank, world, bits, trust)
    elif engine == "fsdp2_resume":
        final, dtypes, checks = run_fsdp2_resume(rank, world, bits, trust, outdir)
    else:
        final, dtypes, checks = run_fsdp2(rank, world, engine, bits, trust, outdir)
    if rank == 0:
        torch.save({"params": final, "dtypes": dtypes, **checks},
                   os.path.join(outdir, "result.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
