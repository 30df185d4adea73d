"""Flat parameters for halide_lars.LARS (flat=True): a (dtype, device) group's parameters become
views into one flat buffer and their gradients views into another, stepped by two kernel
launches whatever the tensor count (docs/flat_params.md)."""

import torch

from .dlpack import from_torch


class FlatBuffersMixin:
    """LARS's flat buffers."""

    def _make_flat(self, members):
        """One flat parameter buffer and one flat gradient buffer for `members`; the parameters
        become views into the first and their .grad views into the second."""
        # The optimizer's own layout (Lars::PlanFlatParams): 8-bit-state tensors side by side,
        # then the fp32 ones, offsets on the block size, so a flat set's state spans its tensors.
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
        for p, name, _ in members:
            self._apply_filters(p, name)
        self._order += [p for p, _, _ in members]
        return flat_p, flat_g
