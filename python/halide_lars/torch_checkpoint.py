"""state_dict / load_state_dict of halide_lars.LARS in bitsandbytes' layout (ours and
bitsandbytes' 0.49 / 0.50 load both ways), with the exact checkpoint beside it."""

from . import bnb_state
from . import distributed
from .core import validate_options
from .torch_options import GROUP_KEYS as _GROUP_KEYS


class CheckpointMixin:
    """LARS's state_dict and load_state_dict."""

    # --- checkpoints in bitsandbytes' layout ------------------------------------------------

    def state_dict(self):
        """torch's layout with bitsandbytes' per-parameter keys, dtypes and shapes (step, state1
        as fp32 momentum or uint8 codes, qmap1, absmax1 or max1/new_max1, gnorm_vec, unorm_vec:
        the live tensors, as torch's optimizers give theirs), bitsandbytes' group key 'betas' =
        (momentum, dampening) beside ours, and the exact checkpoint (options, overrides, every
        byte of state) as bytes under 'halide_lars_checkpoint'. bitsandbytes' LARS/LARS8bit
        load it (they read only 'state' and 'param_groups')."""
        self._absorb_edits()
        self._refresh_state()
        sd = super().state_dict()
        sd["state"] = {k: dict(v) for k, v in sd["state"].items()}
        for g in sd["param_groups"]:
            g["betas"] = (g["momentum"], g["dampening"])
        sd["halide_lars_checkpoint"] = self._opt.save_state()
        return sd

    def load_state_dict(self, state_dict):
        """Loads a state_dict of ours (exact: from its 'halide_lars_checkpoint') or one written
        by bitsandbytes' LARS / LARS8bit / LARS32bit (0.49 per-tensor or 0.50 blockwise 8-bit,
        fp32; nested '__bnb_optimizer_quant_state__' entries too): the state is converted to
        the kind this optimizer's options give each parameter (8-bit codes kept exactly when
        the layouts agree), the groups' lr, weight_decay and betas -> momentum, dampening (and
        any of our option keys) are taken over; a parameter without saved state restarts.
        Everything is validated first: a foreign or mismatched state_dict raises and changes
        nothing. State tensors keep their own dtypes (never cast to the parameters')."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise ValueError("not an optimizer state_dict (needs 'state' and 'param_groups')")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for group, saved in zip(self.param_groups, groups):
            if len(group["params"]) != len(saved.get("params", ())):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 "match the size of optimizer's group")
        new_options = []
        for gi, (group, saved) in enumerate(zip(self.param_groups, groups)):
            o = {k: group[k] for k in _GROUP_KEYS}
            if "momentum" in saved:  # ours (or torch SGD's keys)
                o.update({k: saved[k] for k in _GROUP_KEYS if k in saved})
            else:  # bitsandbytes': lr, betas = (momentum, dampening), eps (not ours), weight_decay
                o.update({k: saved[k] for k in ("lr", "weight_decay") if k in saved})
                if "betas" in saved:
                    o["momentum"], o["dampening"] = (float(x) for x in saved["betas"])
            try:
                validate_options(**o)
            except Exception as e:
                raise ValueError(f"param group {gi} of the state_dict: {e}") from e
            new_options.append(o)
        blob = state_dict.get("halide_lars_checkpoint")
        params = {i: p for i, p in
                  enumerate(p for g, s in zip(self.param_groups, groups) for p in g["params"])}
        saved_ids = [i for s in groups for i in s["params"]]
        id_map = dict(zip(saved_ids, params.values()))
        records = []
        if blob is None:
            saved_state = state_dict["state"]
            for sid, p in id_map.items():
                name = self._names[p]
                records.append(bnb_state.record(name, self._locals.get(p, p),
                                                distributed.local_entry(saved_state.get(sid, {})),
                                                f"state_dict['state'][{sid!r}] ({name})"))
        old_options = [{k: g[k] for k in _GROUP_KEYS} for g in self.param_groups]
        if blob is not None:
            self._opt.load_state(bytes(blob))  # validates everything first; all or nothing
        # The state is converted to the kinds the new options give, so they go in first; if
        # the import then fails, the saved state and options come back (the import itself
        # validates everything before it changes anything).
        undo = self._opt.save_state() if records and new_options != old_options else None
        try:
            for gi, o in enumerate(new_options):
                self.param_groups[gi].update(o)
                self._synced[gi] = {}
                self._sync_group(gi)
            if records:
                self._opt.import_state(records)
        except Exception:
            if undo is not None:
                self._opt.load_state(undo)
            for gi, o in enumerate(old_options):
                self.param_groups[gi].update(o)
                self._synced[gi] = {}
            self._refresh_state()
            raise
        self.state.clear()
        self._live.clear()
        self._refresh_state()
