"""Parameters of torch's sharding engines, resolved into what the two-phase step needs (no math
here): each parameter's local shard (a zero-copy view), where it lies in the whole tensor
(offset, full_numel), and the process group whose all-reduce completes its norms.

- FSDP2 / DTensor (torch.distributed.fsdp.fully_shard, HSDP): placements made of Shard(0) on at
  most one mesh dimension and Replicate() elsewhere. The shard at coordinate k of that dimension
  holds torch.chunk's rows [k * ceil(R / W), (k + 1) * ceil(R / W)) of the R rows (FSDP2's and
  DTensor's split); its norms are reduced over that mesh dimension's group only (HSDP's replicas
  hold the same rows: reducing over them too would count them twice). A DTensor replicated on
  every dimension is a whole tensor on each rank (local norms, no exchange).
- FSDP1 with use_orig_params=True: fsdp1_sharding(model) reads the offsets from FSDP's metadata.
  FSDP1 with use_orig_params=False hands the optimizer one flat parameter per FSDP unit, whose
  norm is not any layer's: refused (LARS needs per-layer norms).
"""
import torch


class Layout:
    """Where one parameter's local shard lies. group is None for a whole tensor."""

    __slots__ = ("offset", "full_numel", "group", "boundaries", "dtensor", "block_size")

    def __init__(self, offset, full_numel, group, boundaries, dtensor=False):
        self.offset = offset            # first element of the shard in the whole tensor
        self.full_numel = full_numel    # elements of the whole tensor
        self.group = group              # torch.distributed group of the reduction, or None
        self.boundaries = boundaries    # every rank's shard start, then full_numel (or None)
        self.dtensor = dtensor
        self.block_size = None          # the 8-bit block size of its group (set when registered)

    def blocks_align(self, block_size, with_absmax=False):
        """Whether no 8-bit block of `block_size` straddles two ranks' shards (known from every
        rank's boundaries, so every rank decides the same). with_absmax: also whether the ranks'
        absmax vectors are torch.chunk's split of the whole tensor's (so that they form a
        DTensor with p's placements, which torch.distributed.checkpoint can save)."""
        if self.boundaries is None:
            return True
        if any(b % block_size for b in self.boundaries[:-1]):
            return False
        if not with_absmax:
            return True
        world = len(self.boundaries) - 1
        blocks = -(-self.full_numel // block_size)
        chunk = -(-blocks // world)
        return all(min(k * chunk, blocks) == -(-b // block_size)
                   for k, b in enumerate(self.boundaries))


def is_dtensor(t):
    try:
        from torch.distributed.tensor import DTensor  # public since torch 2.5
    except ImportError:  # an older torch (the GPU kit may run one): nothing is a DTensor there
        return False
    return isinstance(t, DTensor)


def local(t):
    """The local tensor of a DTensor (a zero-copy view), or t itself."""
    return t.to_local() if is_dtensor(t) else t


def is_flat_parameter(p):
    return bool(getattr(p, "_is_flat_param", False)) or type(p).__name__ == "FlatParameter"


def refuse_flat_parameter(p, what):
    if is_flat_parameter(p):
        raise ValueError(
            f"{what}: an FSDP1 FlatParameter (use_orig_params=False) holds a whole FSDP unit "
            "flattened into one tensor, so its norm is not any layer's and LARS would use one "
            "trust ratio for all of them. Wrap the model with FSDP(..., use_orig_params=True) "
            "and pass **halide_lars.fsdp1_sharding(model) to the optimizer, or use FSDP2 "
            "(torch.distributed.fsdp.fully_shard), whose DTensor parameters work as they are")


def dtensor_layout(p, what):
    """(Layout, local shard) of a DTensor parameter; ValueError for placements the step cannot
    handle."""
    from torch.distributed.tensor import Replicate, Shard

    shard_dims = []
    for dim, placement in enumerate(p.placements):
        if type(placement) is Replicate:
            continue
        if type(placement) is Shard and placement.dim == 0:  # not _StridedShard (FSDP2 + TP)
            shard_dims.append(dim)
            continue
        raise ValueError(
            f"{what}: DTensor placement {placement} on mesh dimension {dim} (placements "
            f"{tuple(p.placements)}) is not supported: halide_lars steps DTensors sharded by rows "
            "(Shard(0) on one mesh dimension, as FSDP2 and HSDP shard them) or replicated; "
            "tensor-parallel and Shard(d > 0) layouts would need norms across other groups")
    if len(shard_dims) > 1:
        raise ValueError(f"{what}: DTensor sharded on dim 0 by {len(shard_dims)} mesh dimensions "
                         f"(placements {tuple(p.placements)}); one Shard(0) dimension is supported")
    loc = p.to_local()
    if not shard_dims:
        return Layout(0, loc.numel(), None, None, dtensor=True), loc
    mesh = p.device_mesh
    md = shard_dims[0]
    coord = mesh.get_coordinate()
    if coord is None:
        raise ValueError(f"{what}: this rank is not part of the parameter's device mesh")
    world, k = mesh.size(md), coord[md]
    shape = tuple(p.shape)
    rows = shape[0]
    row = 1
    for s in shape[1:]:
        row *= s
    chunk = -(-rows // world)
    starts = [min(i * chunk, rows) for i in range(world + 1)]
    want = (starts[k + 1] - starts[k],) + shape[1:]
    if tuple(loc.shape) != want:
        raise ValueError(f"{what}: local shard of shape {tuple(loc.shape)} at mesh coordinate {k} "
                         f"of {world}, expected {want} (torch.chunk rows of {shape})")
    return Layout(starts[k] * row, rows * row, mesh.get_group(md),
                  [s * row for s in starts], dtensor=True), loc


def fsdp1_sharding(model):
    """The optimizer arguments for a model wrapped with FSDP1 (FullyShardedDataParallel) and
    use_orig_params=True: {"process_group": ..., "shards": {param: Layout}} from FSDP's own
    metadata (where each original parameter lies in the flat parameter, which FSDP splits into
    torch.chunk's pieces per rank). Use as halide_lars.LARS(model.parameters(), lr=...,
    **halide_lars.fsdp1_sharding(model)). A parameter this rank owns nothing of is an empty
    tensor (its .grad None): it still takes part in the exchange."""
    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    shards, group = {}, None
    for unit in FSDP.fsdp_modules(model):
        handle = getattr(unit, "_handle", None)
        if handle is None:
            continue
        flat = handle.flat_param
        if not getattr(flat, "_params", None):
            raise ValueError("fsdp1_sharding: the model was wrapped with use_orig_params=False "
                             "(one flat parameter per FSDP unit); LARS needs use_orig_params=True")
        if group is None:
            group = unit.process_group
        elif unit.process_group is not group:
            raise ValueError("fsdp1_sharding: FSDP units with different process groups")
        world, rank = dist.get_world_size(group), dist.get_rank(group)
        sizes = list(flat._numels_with_padding)
        total = sum(sizes)
        chunk = -(-total // world)
        starts, at = [], 0
        for size, padding in zip(sizes, flat._is_padding_mask):
            if not padding:
                starts.append(at)
            at += size
        for p, start, numel, info in zip(flat._params, starts, flat._numels,
                                         flat._shard_param_infos):
            bounds = [min(max(r * chunk - start, 0), numel) for r in range(world)] + [numel]
            if info.in_shard and info.intra_param_start_idx != bounds[rank]:
                raise ValueError(f"fsdp1_sharding: FSDP's metadata puts a shard at "
                                 f"{info.intra_param_start_idx}, expected {bounds[rank]}")
            shards[p] = Layout(bounds[rank], int(numel), group, bounds)
    if group is None:
        raise ValueError("fsdp1_sharding: the model has no FSDP (FullyShardedDataParallel) unit")
    return {"process_group": group, "shards": shards}


class Reduction:
    """Which partials each process group sums: one all-reduce per distinct group (one in all for
    FSDP2, HSDP and explicit shards), nothing for whole tensors on each rank, whose partials stay
    their own (summing replicas would count them W times)."""

    def __init__(self):
        self.slots = []     # per registered parameter, in registration order: group or None

    def add(self, group):
        self.slots.append(group)

    def sharded(self):
        return any(g is not None for g in self.slots)

    def plan(self, per_tensor, device):
        """[(group, index tensor on `device`, or None for the whole buffer)] for `per_tensor`
        partials per parameter."""
        import torch.distributed as dist

        keys, groups = {}, []
        for i, group in enumerate(self.slots):
            if group is None:
                continue
            ranks = tuple(dist.get_process_group_ranks(group))
            if ranks not in keys:
                keys[ranks] = len(groups)
                groups.append((group, []))
            groups[keys[ranks]][1].extend(range(i * per_tensor, (i + 1) * per_tensor))
        if len(groups) == 1 and all(g is not None for g in self.slots):
            return [(groups[0][0], None)]
        return [(g, torch.tensor(idx, dtype=torch.long, device=device)) for g, idx in groups]


def all_reduce(partials, plan):
    import torch.distributed as dist

    for group, index in plan:
        if index is None:
            dist.all_reduce(partials, group=group)
            continue
        part = partials.index_select(0, index)
        dist.all_reduce(part, group=group)
        partials.index_copy_(0, index, part)


def as_dtensor(t, p, layout, key):
    """A state tensor of DTensor parameter p as a DTensor with p's mesh and placements: state1
    (p's shape) or an 8-bit absmax1 (one per block of the whole tensor), zero-copy over the
    optimizer's memory."""
    from torch.distributed.tensor import DTensor

    if key == "state1":
        shape, stride = p.shape, p.stride()
    else:
        blocks = t.numel() if layout.group is None else -(-layout.full_numel // layout.block_size)
        shape, stride = torch.Size([blocks]), (1,)
    return DTensor.from_local(t, p.device_mesh, p.placements, run_check=False, shape=shape,
                              stride=stride)


def local_entry(entry):
    """A state entry with its DTensors replaced by their local tensors."""
    if not isinstance(entry, dict):
        return entry
    return {k: local_entry(v) if isinstance(v, dict) else local(v) for k, v in entry.items()}
