"""torch.optim.Optimizer subclasses with bitsandbytes' LARS, LARS8bit and LARS32bit signatures."""

import torch

from .core import Optimizer
from .dlpack import from_torch

_GROUP_KEYS = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "optim_bits",
               "min_8bit_size", "percentile_clipping", "max_unorm", "trust_mode",
               "trust_coefficient", "eps", "block_wise", "block_size", "nonfinite")


class LARS(torch.optim.Optimizer):
    """bitsandbytes.optim.LARS: every step runs in halide_lars (CPU or CUDA tensors, in place).

    Extra keyword options (ours): trust_mode ('clip' | 'classic' | 'none'), trust_coefficient,
    eps, block_wise, block_size, nonfinite ('skip' | 'error' | 'propagate': what a NaN/Inf
    gradient does; 'skip' leaves that parameter and its state untouched). Per-parameter overrides: override_config(param, key, value).

    Sharded parameters (ZeRO, FSDP flat-parameter shards): pass process_group (a
    torch.distributed group, or torch.distributed.group.WORLD) and shards, a dict mapping every
    parameter this rank holds to (offset, full_numel): the parameter is elements
    [offset, offset + numel) of a tensor of full_numel elements (with FSDP: the rank's slice of
    the flat parameter, offset = rank * padded_shard_size, full_numel = the unpadded flat size).
    Each step then computes per-tensor partial norms locally, all-reduces them (5 fp64 per
    parameter: 40 bytes per tensor, whatever its size) with torch.distributed.all_reduce on
    process_group, and finishes the step from the global norms. With 8-bit state, offsets and
    (except the tensor's last shard) lengths must be multiples of block_size. A rank owning no
    element of a tensor registers an empty tensor for it. Percentile clipping works (one
    exchange); per-tensor 8-bit state (block_wise=False) does not.

    flat=True (the fast path for models with many tensors, on a GPU above all): the parameters
    of each (dtype, device) are moved into one flat buffer (param.data becomes a view into it)
    and their gradients into another (param.grad is set to a view), so a step runs two
    pipelines per buffer instead of two per tensor, with results bit-identical to flat=False
    with step_order="norms_first". Backward accumulates into the views in place; a gradient
    that is not the view (zero_grad(set_to_none=True) then backward) is copied into it at the
    next step. fp32 and blockwise 8-bit state (one arena per state kind); no percentile
    clipping, not with process_group.
    """

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 optim_bits=32, args=None, min_8bit_size=4096, percentile_clipping=100,
                 max_unorm=0.02, trust_mode="clip", trust_coefficient=1e-3, eps=1e-8,
                 block_wise=True, block_size=256, nonfinite="skip", process_group=None,
                 shards=None, flat=False):
        if momentum == 0:
            raise NotImplementedError("LARS without momentum is not supported")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, optim_bits=optim_bits,
                        min_8bit_size=min_8bit_size, percentile_clipping=percentile_clipping,
                        max_unorm=max_unorm, trust_mode=trust_mode,
                        trust_coefficient=trust_coefficient, eps=eps, block_wise=block_wise,
                        block_size=block_size, nonfinite=nonfinite)
        if args is not None:  # bitsandbytes' config object overrides the keyword options
            for k in _GROUP_KEYS:
                if hasattr(args, k):
                    defaults[k] = getattr(args, k)
        super().__init__(params, defaults)
        self._opt = Optimizer(**{k: defaults[k] for k in _GROUP_KEYS})
        self._names = {}
        self._synced = []
        self._flat = {}  # param -> its gradient view in a flat buffer (flat=True)
        if flat and process_group is not None:
            raise ValueError("flat=True and process_group cannot be combined")
        flat_sets = {}  # (dtype, device) -> [(param, name, group)]
        for gi, group in enumerate(self.param_groups):
            cg = 0 if gi == 0 else self._opt.add_group()
            self._synced.append({})
            self._sync_group(gi, cg)
            for pi, p in enumerate(group["params"]):
                if not p.is_contiguous():
                    raise ValueError(f"parameter {pi} of group {gi} is not contiguous")
                name = f"g{gi}.p{pi}"
                self._names[p] = (name, cg)
                if flat:
                    flat_sets.setdefault((p.dtype, p.device), []).append((p, name, cg))
                else:
                    self._opt.add_param(name, from_torch(p.data).dl, None, cg)
        self._flat_buffers = [self._make_flat(members) for members in flat_sets.values()]
        self._process_group = process_group
        if shards is not None and process_group is None:
            raise ValueError("shards given without process_group")
        if process_group is not None:
            shards = shards or {}
            for p, (name, _) in self._names.items():
                if p not in shards:
                    raise ValueError(f"process_group given but parameter {name} has no entry in "
                                     "shards (offset, full_numel)")
                offset, full = shards[p]
                self._opt.set_shard(name, offset, full)
            # The partials live where the collective reduces them: on the parameters' device
            # for NCCL (StepBegin writes them there; no host round trip of ours), else on the
            # CPU (gloo, MPI).
            import torch.distributed as dist
            device = torch.device("cpu")
            if dist.get_backend(process_group) == "nccl" and self._names:
                device = next(iter(self._names)).device
            self._partials = torch.zeros(self._opt.partials_size(), dtype=torch.float64,
                                         device=device)
            self._partials_ref = from_torch(self._partials, partials=True)

    def _make_flat(self, members):
        """One flat parameter buffer and one flat gradient buffer for `members`; the parameters
        become views into the first and their .grad views into the second."""
        # The optimizer's own layout (Lars::PlanFlatParams): 8-bit-state tensors side by side,
        # then the fp32 ones, offsets on the block size, so an arena's state spans its tensors.
        offsets, total = self._opt.plan_flat([p.numel() for p, _, _ in members],
                                             [cg for _, _, cg in members])
        first = members[0][0]
        flat_p = torch.zeros(max(total, 1), dtype=first.dtype, device=first.device)
        flat_g = torch.zeros_like(flat_p)
        for (p, _, _), off in zip(members, offsets):
            n = p.numel()
            flat_p[off:off + n].copy_(p.data.reshape(-1))
            if p.grad is not None:
                flat_g[off:off + n].copy_(p.grad.reshape(-1))
            p.data = flat_p[off:off + n].view_as(p)
            view = flat_g[off:off + n].view_as(p)
            p.grad = view
            self._flat[p] = view
        self._opt.add_flat_params(from_torch(flat_p).dl, from_torch(flat_g).dl,
                                  [name for _, name, _ in members], offsets,
                                  [p.numel() for p, _, _ in members],
                                  [cg for _, _, cg in members])
        return flat_p, flat_g

    def last_step_pipelines(self):
        """Kernel pipelines the last step ran (2 per flat buffer on GPUs; 2 per tensor with
        flat=False)."""
        return self._opt.last_step_pipelines()

    def _sync_group(self, gi, cg):
        group = self.param_groups[gi]
        for key in _GROUP_KEYS:
            if self._synced[gi].get(key) != group[key]:
                self._opt.set_group_option(cg, key, group[key])
                self._synced[gi][key] = group[key]

    def override_config(self, param, key, value):
        """bitsandbytes GlobalOptimManager.override_config for one parameter of this optimizer."""
        if param not in self._names:
            raise KeyError("parameter is not managed by this optimizer")
        self._opt.override(self._names[param][0], key, value)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stream = None
        refs = []  # DLTensor views alive until the step returns
        for gi, group in enumerate(self.param_groups):
            self._sync_group(gi, 0 if gi == 0 else gi)
            for p in group["params"]:
                name = self._names[p][0]
                if p.grad is None:
                    self._opt.set_grad(name, None)
                    continue
                if p.grad.is_sparse:
                    raise TypeError("sparse gradients are not supported")
                if p in self._flat:
                    view = self._flat[p]
                    if p.grad.data_ptr() != view.data_ptr():  # a new gradient tensor
                        view.copy_(p.grad)
                        p.grad = view
                    ref = from_torch(view)
                    refs.append(ref)
                    self._opt.set_grad(name, ref.dl)
                    if p.is_cuda and stream is None:
                        stream = torch.cuda.current_stream(p.device).cuda_stream
                    continue
                g = p.grad if p.grad.is_contiguous() else p.grad.contiguous()
                refs.append(g)
                ref = from_torch(g)
                refs.append(ref)
                self._opt.set_grad(name, ref.dl)
                if p.is_cuda and stream is None:
                    stream = torch.cuda.current_stream(p.device).cuda_stream
        if self._process_group is None:
            self._opt.step(stream)
        else:
            self._sharded_step(stream)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.state[p]["step"] = self._opt.param_step(self._names[p][0])
        return loss

    def _sharded_step(self, stream):
        import torch.distributed as dist
        self._opt.step_begin_tensor(self._partials_ref.dl, stream)
        dist.all_reduce(self._partials, group=self._process_group)
        self._opt.step_finish_tensor(self._partials_ref.dl, stream)

    def state_dict(self):
        """torch's layout plus, per parameter, bitsandbytes' names: step and state1 (the momentum
        as fp32; dequantized for 8-bit state). The exact state (8-bit codes, absmax, percentile
        ring) travels in 'halide_lars_checkpoint' (bytes)."""
        for group in self.param_groups:
            for p in group["params"]:
                name = self._names[p][0]
                st = self.state[p]
                st["step"] = self._opt.param_step(name)
                st["state1"] = torch.tensor(list(self._opt.momentum(name, p.numel())),
                                            dtype=torch.float32).reshape(p.shape)
        sd = super().state_dict()
        sd["halide_lars_checkpoint"] = self._opt.save_state()
        return sd

    def load_state_dict(self, state_dict):
        blob = state_dict.get("halide_lars_checkpoint")
        if blob is None:
            raise ValueError("state_dict has no 'halide_lars_checkpoint' (not saved by halide_lars)")
        self._opt.load_state(bytes(blob))
        # torch's own bookkeeping (param_groups); keep our fp32/uint8 state as is -- the plain
        # torch.optim.Optimizer.load_state_dict would cast state tensors to the param dtype.
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("state_dict has a different number of parameter groups")
        for group, saved in zip(self.param_groups, groups):
            for k in _GROUP_KEYS:
                group[k] = saved[k]
        for gi in range(len(self.param_groups)):
            self._synced[gi] = {}
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["step"] = self._opt.param_step(self._names[p][0])


class LARS8bit(LARS):
    """bitsandbytes.optim.LARS8bit: 8-bit blockwise momentum (block_wise=False for the
    bitsandbytes per-tensor layout)."""

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 args=None, min_8bit_size=4096, percentile_clipping=100, max_unorm=0.02, **kw):
        super().__init__(params, lr, momentum, dampening, weight_decay, nesterov, 8, args,
                         min_8bit_size, percentile_clipping, max_unorm, **kw)


class LARS32bit(LARS):
    """bitsandbytes.optim.LARS32bit: fp32 momentum."""

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 args=None, min_8bit_size=4096, percentile_clipping=100, max_unorm=0.02, **kw):
        super().__init__(params, lr, momentum, dampening, weight_decay, nesterov, 32, args,
                         min_8bit_size, percentile_clipping, max_unorm, **kw)
