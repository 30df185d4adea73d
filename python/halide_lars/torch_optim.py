"""torch.optim.Optimizer subclasses with bitsandbytes' LARS, LARS8bit and LARS32bit signatures:
construction, param groups and the step here; options (torch_options), flat buffers
(torch_flat), the sharded step (torch_sharding), the live state (torch_state) and state_dict
conversion (torch_checkpoint) are mixins, one file each."""

import torch

from . import _lib
from .core import Optimizer, validate_options
from . import distributed
from .dlpack import from_torch
from .torch_checkpoint import CheckpointMixin
from .torch_flat import FlatBuffersMixin
from .torch_options import BNB_KEYS as _BNB_KEYS
from .torch_options import GROUP_KEYS as _GROUP_KEYS
from .torch_options import OptionsMixin, exclude_bias_and_norm, options_doc  # noqa: F401
from .torch_sharding import ShardedStepMixin
from .torch_state import LiveStateMixin

class LARS(OptionsMixin, FlatBuffersMixin, ShardedStepMixin, LiveStateMixin, CheckpointMixin,
           torch.optim.Optimizer):
    """bitsandbytes.optim.LARS: every step runs in halide_lars (CPU or CUDA tensors, in place).

    bitsandbytes at the state level: after a parameter's first step, self.state[p] holds
    bitsandbytes' keys (step; state1; qmap1 + absmax1 or max1/new_max1 for 8-bit state;
    gnorm_vec; unorm_vec) as live tensors over the optimizer's own memory -- writing into them
    changes the optimizer, assigning a new tensor or step is taken over at the next step (a bad
    one raises there, changing nothing), clearing state[p] restarts p. state_dict() and
    load_state_dict() use bitsandbytes' layout (ours and bitsandbytes' 0.49/0.50 load both
    ways); add_param_group() works at any time.

    Extra keyword options (ours; listed with their defaults at the end of this docstring, from
    the library's option table): trust_mode, trust_coefficient, eps, block_wise, block_size,
    step_order, nonfinite ('skip' leaves a parameter with a NaN/Inf gradient and its state
    untouched). Per-parameter overrides: override_config(param, key, value).

    FSDP2 (torch.distributed.fsdp.fully_shard) and HSDP: DTensor parameters work as they are --
    each rank steps its local shard in place (zero-copy), derives the shard's offset in the whole
    tensor from the placements, and all-reduces the 40-byte-per-tensor norm partials over the
    shard dimension's process group (one collective per step). state[p]['state1'] (and an 8-bit
    'absmax1') are DTensors like p, so torch.distributed.checkpoint saves and loads them through
    get_optimizer_state_dict / set_optimizer_state_dict. With 8-bit state, a parameter whose
    shard boundaries do not fall on multiples of block_size keeps fp32 state (state1 is then
    float32; see docs/sharding.md). Placements other than Shard(0) and Replicate() are refused.
    FSDP1: use_orig_params=True with **halide_lars.fsdp1_sharding(model); the flat parameters
    of use_orig_params=False are refused (one norm for a whole FSDP unit is not LARS).

    Other sharded parameters (ZeRO, your own shards): pass process_group (a
    torch.distributed group, or torch.distributed.group.WORLD) and shards, a dict mapping every
    parameter this rank holds to (offset, full_numel): the parameter is elements
    [offset, offset + numel) of a tensor of full_numel elements.
    Each step then computes per-tensor partial norms locally, all-reduces them (5 fp64 per
    parameter: 40 bytes per tensor, whatever its size) with torch.distributed.all_reduce on
    process_group, and finishes the step from the global norms. With 8-bit state, offsets and
    (except the tensor's last shard) lengths must be multiples of block_size. A rank owning no
    element of a tensor registers an empty tensor for it. Percentile clipping works (one
    exchange); per-tensor 8-bit state (block_wise=False) does not.

    Every published LARS form in one call (docs/spec.md "Trust forms"): trust_mode "clip"
    (bitsandbytes, the default), "classic" (You et al., timm Lars; always_adapt=False for timm's
    default of no adaptation without weight decay), "larc_clip" (LARC clip, timm trust_clip),
    "exact" (VICReg, Barlow Twins, DINO, BYOL, SimCLR, optax.lars: trust_coefficient |p| /
    (|g + wd p| + eps); they use eps=0), "none". weight_decay_filter(p) / lars_adaptation_filter(p)
    (the SSL code bases' callables: true = exclude p from weight decay / from adaptation) and
    exclude_bias_and_norm=True (both filters: 1-D parameters) become per-parameter overrides
    when each parameter is registered.

    AMP: torch.amp.GradScaler drives it with the unscale fused into the step
    (_step_supports_amp_scaling): scaler.step(opt) passes the loss scale, the kernels multiply
    each gradient by 1/scale as they read it (no pass writing unscaled gradients; .grad keeps
    the scaled values), and an inf skips the step leaving params and state untouched. For
    GradScaler's power-of-two scales the result is bit-identical to unscaling by hand. fp16 and
    bf16 parameters work too (GradScaler refuses to unscale fp16 gradients itself).
    scaler.unscale_(opt) before scaler.step (for gradient clipping) works as with any optimizer.

    num_threads: the CPU kernels' thread budget. None (the default) follows
    torch.get_num_threads() at every step -- the budget torch.set_num_threads / OMP_NUM_THREADS
    gave the trainer; an int fixes it (0: HL_NUM_THREADS, else OMP_NUM_THREADS, else every CPU
    the process may use). The threads run on the CPUs the process may use, whatever the calling
    thread's binding (OMP_PROC_BIND); results are bit-identical for every count.

    flat=True (the fast path for models with many tensors, on a GPU above all): the parameters
    of each (dtype, device) are moved into one flat buffer (param.data becomes a view into it)
    and their gradients into another (param.grad is set to a view), so a step runs two
    pipelines per buffer instead of two per tensor, with results bit-identical to flat=False
    with step_order="norms_first". Backward accumulates into the views in place; a gradient
    that is not the view (zero_grad(set_to_none=True) then backward) is copied into it at the
    next step. fp32 and blockwise 8-bit state (one flat set per state kind); no percentile
    clipping, not with process_group.
    """

    _step_supports_amp_scaling = True  # torch.amp.GradScaler: grad_scale / found_inf in step()

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 optim_bits=32, args=None, min_8bit_size=4096, percentile_clipping=100,
                 max_unorm=0.02, process_group=None, shards=None, flat=False, num_threads=None,
                 weight_decay_filter=None, lars_adaptation_filter=None,
                 exclude_bias_and_norm=False, **options):
        if momentum == 0:
            raise NotImplementedError("LARS without momentum is not supported")
        for k in options:
            if k not in _GROUP_KEYS or k in _BNB_KEYS:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {k!r}")
        defaults = {k: o.default for k, o in _lib.OPTIONS.items()}
        defaults.update(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, optim_bits=optim_bits, min_8bit_size=min_8bit_size,
                        percentile_clipping=percentile_clipping, max_unorm=max_unorm, **options)
        if args is not None:  # bitsandbytes' config object overrides the keyword options
            for k in _GROUP_KEYS:
                if hasattr(args, k):
                    defaults[k] = getattr(args, k)
        if flat and process_group is not None:
            raise ValueError("flat=True and process_group cannot be combined")
        if exclude_bias_and_norm:
            weight_decay_filter = weight_decay_filter or globals()["exclude_bias_and_norm"]
            lars_adaptation_filter = lars_adaptation_filter or globals()["exclude_bias_and_norm"]
        self._filters = (weight_decay_filter, lars_adaptation_filter)
        if shards is not None and process_group is None:
            raise ValueError("shards given without process_group")
        self._opt = Optimizer(**{k: defaults[k] for k in _GROUP_KEYS})
        if num_threads is not None:
            self._opt.set_num_threads(num_threads)  # checked here (>= 0)
        self._num_threads = num_threads  # None: follow torch.get_num_threads() at every step
        self._threads_set = num_threads
        self._grad_scale_set = 1.0  # the C optimizer's grad scale (AMP, fused)
        self._names = {}      # param -> its C name
        self._order = []      # params in the C optimizer's registration order
        self._cgroups = []    # Python group index -> C group index
        self._synced = []     # per group: the option values last given to the C optimizer
        self._flat = {}       # param -> its gradient view in a flat buffer (flat=True)
        self._flat_buffers = []
        self._flat_mode = flat
        self._pending_flat = []  # (param, name, C group) until the constructor lays them out
        self._process_group = process_group
        self._shards = dict(shards or {})
        self._partials = None
        self._layouts = {}    # param -> distributed.Layout (DTensors and explicit shards)
        self._locals = {}     # param -> the tensor the optimizer steps (a DTensor's local shard)
        self._exports = {}    # param -> {state version: {key: live tensor}}
        self._live = {}       # param -> (step, {key: tensor}) as last put into self.state[p]
        self._constructing = True
        self._reduction = distributed.Reduction()
        super().__init__(params, defaults)  # registers every group through add_param_group
        self._constructing = False
        flat_sets = {}  # (dtype, device) -> [(param, name, C group)]
        for item in self._pending_flat:
            flat_sets.setdefault((item[0].dtype, item[0].device), []).append(item)
        self._pending_flat = []
        self._flat_buffers = [self._make_flat(members) for members in flat_sets.values()]
        if self._reduction.sharded():
            self._alloc_partials()

    def add_param_group(self, param_group):
        """torch.optim.Optimizer.add_param_group, at any time: the group's parameters are
        registered with the optimizer (their options honoured, checkpoints include them). A
        parameter already in a group is refused (ValueError, as torch). With process_group, the
        group carries 'shards': {param: (offset, full_numel)} for its parameters; with
        flat=True, a group added after construction gets flat buffers of its own."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param group must be a dict, got {type(param_group).__name__}")
        param_group = dict(param_group)
        shards = param_group.pop("shards", None)
        before = len(self.param_groups)
        super().add_param_group(param_group)  # torch's checks: duplicates, required options
        group = self.param_groups[-1]
        gi = len(self.param_groups) - 1
        layouts = {}
        datas = {}  # param -> the tensor to register (a DTensor's local shard, else p.data)
        try:
            for pi, p in enumerate(group["params"]):
                what = f"parameter {pi} of group {gi}"
                distributed.refuse_flat_parameter(p, what)
                if distributed.is_dtensor(p):
                    if self._flat_mode:
                        raise ValueError(f"{what}: flat=True cannot take DTensor (FSDP2) "
                                         "parameters")
                    layouts[p], datas[p] = distributed.dtensor_layout(p, what)
                    p = datas[p]
                if not p.is_contiguous():
                    raise ValueError(f"parameter {pi} of group {gi} is not contiguous")
                if p.dtype not in (torch.float32, torch.float16, torch.bfloat16):
                    raise TypeError(f"parameter {pi} of group {gi}: dtype {p.dtype}, expected "
                                    "torch.float32, float16 or bfloat16")
                if p.device.type not in ("cpu", "cuda"):
                    raise ValueError(f"parameter {pi} of group {gi}: device {p.device}, "
                                     "expected cpu or cuda")
                if self._process_group is not None and group["params"][pi] not in layouts:
                    p = group["params"][pi]
                    if shards is not None:
                        self._shards.update(shards)
                    if p not in self._shards:
                        raise ValueError(f"process_group given but parameter {pi} of group {gi} "
                                         "has no entry in shards (offset, full_numel)")
                    shard = self._shards[p]
                    layouts[p] = shard if isinstance(shard, distributed.Layout) else \
                        distributed.Layout(shard[0], shard[1], self._process_group, None)
            # The options are checked (by the library, once) before anything is registered.
            validate_options(**{k: group[k] for k in _GROUP_KEYS})
        except Exception:
            del self.param_groups[before:]
            raise
        cg = 0 if gi == 0 else self._opt.add_group()
        self._cgroups.append(cg)
        self._synced.append({})
        self._sync_group(gi)
        new_flat = []
        for pi, p in enumerate(group["params"]):
            name = f"g{gi}.p{pi}"
            self._names[p] = name
            if self._flat_mode:
                (self._pending_flat if self._constructing else new_flat).append((p, name, cg))
                continue
            layout = layouts.get(p)
            data = datas.get(p, p.data)
            self._locals[p] = data
            self._opt.add_param(name, from_torch(data).dl, None, cg)
            self._apply_filters(p, name)
            self._order.append(p)
            self._reduction.add(layout.group if layout is not None else None)
            if layout is not None:
                layout.block_size = group["block_size"]
                self._layouts[p] = layout
            if layout is not None and layout.group is not None:
                if group["optim_bits"] == 8 and group["block_wise"] and not \
                        layout.blocks_align(group["block_size"], with_absmax=layout.dtensor):
                    # A block would straddle two ranks: this tensor keeps fp32 state (every rank
                    # sees every rank's boundaries, so all of them decide the same).
                    self._opt.override(name, "optim_bits", 32)
                self._opt.set_shard(name, layout.offset, layout.full_numel)
        sets = {}
        for item in new_flat:
            sets.setdefault((item[0].dtype, item[0].device), []).append(item)
        self._flat_buffers += [self._make_flat(members) for members in sets.values()]
        if self._reduction.sharded() and not self._constructing:
            self._alloc_partials()

    def last_step_pipelines(self):
        """Kernel pipelines the last step ran (2 per flat buffer on GPUs; 2 per tensor with
        flat=False)."""
        return self._opt.last_step_pipelines()

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._absorb_edits()
        # torch.amp.GradScaler (we declare _step_supports_amp_scaling): it sets grad_scale (None
        # when the caller already unscaled) and found_inf for this call. An inf skips the step
        # -- params and state untouched; otherwise the kernels unscale as they read (fused).
        found_inf = getattr(self, "found_inf", None)
        if found_inf is not None and float(found_inf) != 0.0:
            return loss
        grad_scale = getattr(self, "grad_scale", None)
        scale = 1.0 if grad_scale is None else float(grad_scale)
        if scale != self._grad_scale_set:
            self._opt.set_grad_scale(scale)
            self._grad_scale_set = scale
        if self._num_threads is None:  # torch's thread budget (torch.set_num_threads, OMP_...)
            n = torch.get_num_threads()
            if n != self._threads_set:
                self._opt.set_num_threads(n)
                self._threads_set = n
        stream = None
        refs = []  # DLTensor views alive until the step returns
        for gi, group in enumerate(self.param_groups):
            self._sync_group(gi)
            for p in group["params"]:
                name = self._names[p]
                if p.grad is None:
                    layout = self._layouts.get(p)
                    if layout is not None and layout.group is not None \
                            and self._locals[p].numel() == 0:
                        # A rank owning nothing of a tensor (FSDP1 leaves its .grad None) still
                        # steps it with the other ranks: an empty gradient, zero partials.
                        ref = from_torch(self._locals[p].new_empty(self._locals[p].shape))
                        refs.append(ref)
                        self._opt.set_grad(name, ref.dl)
                        continue
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
                g = p.grad
                if p in self._layouts and self._layouts[p].dtensor:
                    if not distributed.is_dtensor(g) or g.placements != p.placements:
                        raise ValueError(f"{name}: the gradient of a DTensor parameter must be a "
                                         f"DTensor with its placements {tuple(p.placements)}")
                    g = g.to_local()
                g = g if g.is_contiguous() else g.contiguous()
                refs.append(g)
                ref = from_torch(g)
                refs.append(ref)
                self._opt.set_grad(name, ref.dl)
                if p.is_cuda and stream is None:
                    stream = torch.cuda.current_stream(p.device).cuda_stream
        if self._partials is None:
            self._opt.step(stream)
        else:
            self._sharded_step(stream)
        self._refresh_state()
        return loss


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


LARS.__doc__ += options_doc()
