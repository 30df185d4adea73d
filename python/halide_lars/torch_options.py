"""The options side of halide_lars.LARS: the param-group keys (the library's option table), the
SSL exclusion filter, presets with each published LARS's own argument names, and how group
options, filters and per-parameter overrides reach the C optimizer."""

from . import _lib

# Every option of the library's table (include/halide_lars/options.inc via lars_option_info), in
# its order: the keys of each param group.
GROUP_KEYS = tuple(_lib.OPTIONS)
# bitsandbytes' positional options (after params); the rest are keyword-only extras.
BNB_KEYS = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "optim_bits",
            "min_8bit_size", "percentile_clipping", "max_unorm")


def exclude_bias_and_norm(p):
    """The SSL code bases' filter (VICReg, Barlow Twins): True for 1-D parameters (biases,
    normalization weights), which they exclude from weight decay and from adaptation."""
    return p.ndim == 1


def options_doc():
    rows = [f"    {o.name} = {o.default!r}: {o.doc}" for o in _lib.OPTIONS.values()
            if o.name not in BNB_KEYS]
    return "\n\n    Keyword options (the library's option table):\n" + "\n".join(rows) + "\n"


class OptionsMixin:
    """LARS's presets, group-option sync, filters and override_config."""

    # --- every published form in one call, with its code base's own argument names -------------
    # Thin: each maps its peer's arguments onto our options (docs/spec.md "Trust forms") and is
    # checked against the peer itself by //python:trust_forms_test.

    @classmethod
    def from_timm(cls, params, lr=1.0, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                  trust_coeff=0.001, eps=1e-8, trust_clip=False, always_adapt=False, **ours):
        """timm.optim.Lars (You et al.'s classic trust ratio; LARC's clip with trust_clip=True;
        no adaptation without weight decay unless always_adapt), timm's names and defaults. As
        bitsandbytes', our LARS refuses momentum=0 (timm's default)."""
        return cls(params, lr, momentum, dampening, weight_decay, nesterov,
                   trust_mode="larc_clip" if trust_clip else "classic",
                   trust_coefficient=trust_coeff, eps=eps, always_adapt=always_adapt, **ours)

    @classmethod
    def from_optax(cls, params, learning_rate, weight_decay=0.0, weight_decay_mask=True,
                   trust_coefficient=0.001, eps=0.0, trust_ratio_mask=True, momentum=0.9,
                   nesterov=False, **ours):
        """optax.lars: the exact-norm trust ratio, the lr inside the momentum (trust -> lr ->
        trace). The masks are True (every parameter) or a callable p -> bool (True: decay /
        adapt p), optax's meaning, applied per parameter."""
        def skip(mask):
            return None if mask is True else (lambda p, mask=mask: not mask(p))
        return cls(params, learning_rate, momentum, 0, weight_decay, nesterov, trust_mode="exact",
                   trust_coefficient=trust_coefficient, eps=eps, lr_in_momentum=True,
                   weight_decay_filter=skip(weight_decay_mask),
                   lars_adaptation_filter=skip(trust_ratio_mask), **ours)

    @classmethod
    def from_vicreg(cls, params, lr, weight_decay=0, momentum=0.9, eta=0.001,
                    weight_decay_filter=None, lars_adaptation_filter=None, **ours):
        """The LARS of VICReg and Barlow Twins (and the SSL code bases that copied it): q =
        eta |p| / |g + wd p| (1 where a norm is 0), filters p -> bool (True: no decay / no
        adaptation for p), their names and defaults."""
        return cls(params, lr, momentum, 0, weight_decay, False, trust_mode="exact",
                   trust_coefficient=eta, eps=0.0, weight_decay_filter=weight_decay_filter,
                   lars_adaptation_filter=lars_adaptation_filter, **ours)

    def _apply_filters(self, p, name):
        """weight_decay_filter(p) / lars_adaptation_filter(p) true: p gets no weight decay / no
        trust ratio (per-parameter overrides, resolved once when p is registered)."""
        wd_filter, adapt_filter = self._filters
        if wd_filter is not None and wd_filter(p):
            self._opt.override(name, "weight_decay", 0.0)
        if adapt_filter is not None and adapt_filter(p):
            self._opt.override(name, "trust_mode", "none")

    def _sync_group(self, gi):
        group = self.param_groups[gi]
        for key in GROUP_KEYS:
            if self._synced[gi].get(key) != group[key]:
                self._opt.set_group_option(self._cgroups[gi], key, group[key])
                self._synced[gi][key] = group[key]

    def override_config(self, param, key, value):
        """bitsandbytes GlobalOptimManager.override_config for one parameter of this optimizer."""
        if param not in self._names:
            raise KeyError("parameter is not managed by this optimizer")
        self._opt.override(self._names[param], key, value)
