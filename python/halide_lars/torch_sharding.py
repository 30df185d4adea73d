"""The sharded step of halide_lars.LARS (FSDP2/HSDP DTensors, FSDP1, process_group + shards):
partial norms on the parameters' device, one all-reduce per step, then the finish."""

import torch

from . import distributed
from .dlpack import from_torch


class ShardedStepMixin:
    """LARS's partials and its two-phase step."""

    def _alloc_partials(self):
        # The partials live where the collective reduces them: on the parameters' device for
        # NCCL (StepBegin writes them there; no host round trip of ours), else on the CPU.
        import torch.distributed as dist
        device = torch.device("cpu")
        group = next(g for g in self._reduction.slots if g is not None)
        if dist.get_backend(group) == "nccl" and self._names:
            device = next(iter(self._locals.values())).device
        self._partials = torch.zeros(self._opt.partials_size(), dtype=torch.float64,
                                     device=device)
        self._partials_ref = from_torch(self._partials, partials=True)
        self._plan = self._reduction.plan(self._opt.partials_size() // len(self._order), device)

    def _sharded_step(self, stream):
        self._opt.step_begin_tensor(self._partials_ref.dl, stream)
        distributed.all_reduce(self._partials, self._plan)
        self._opt.step_finish_tensor(self._partials_ref.dl, stream)
