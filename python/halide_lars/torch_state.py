"""The live state of halide_lars.LARS: self.state[p] holds bitsandbytes' keys as tensors over the
optimizer's own memory (exported zero-copy, one export per state version), and edits made to
it -- a new tensor, a new step, a cleared entry -- are imported before the next step."""

from . import bnb_state
from . import distributed
from .dlpack import managed_to_torch


class LiveStateMixin:
    """LARS's state[p] views and the import of the caller's edits."""

    # --- live state: self.state[p] holds bitsandbytes' keys over the optimizer's memory ---------

    def _views(self, p, version):
        """{key: tensor} viewing p's state at `version` (exported once per version)."""
        cache = self._exports.setdefault(p, {})
        views = cache.get(version)
        if views is None:
            views = {}
            loc = self._locals.get(p, p)
            layout = self._layouts.get(p)
            for key, managed in self._opt.export_state(self._names[p]).items():
                t = managed_to_torch(managed)
                if key == "state1":
                    t = t.view(loc.shape)
                if layout is not None and layout.dtensor and key in ("state1", "absmax1"):
                    t = distributed.as_dtensor(t, p, layout, key)
                views[key] = t
            if len(cache) >= 2:  # the two alternating versions of a steady state
                cache.pop(next(iter(cache)))
            cache[version] = views
        return views

    def _refresh_state(self):
        """Puts every stepped parameter's live state tensors and step into self.state[p]."""
        steps, versions = self._opt.state_versions()
        for p, step, version in zip(self._order, steps, versions):
            st = self.state[p]
            live = self._live.get(p)
            if step == 0 and live is None:
                continue  # no state before the first step (as bitsandbytes)
            views = self._views(p, version)
            if live is not None:
                for key in live[1]:
                    if key not in views:
                        st.pop(key, None)
            st["step"] = step
            st.update(views)
            self._live[p] = (step, views)

    def _absorb_edits(self):
        """State entries the caller replaced (a new tensor, step, or a cleared state[p]) are
        imported into the optimizer -- all validated first; on a bad entry a ValueError and
        nothing changes. In-place writes need nothing: the tensors are the state."""
        records = []
        for p, (step, views) in self._live.items():
            st = self.state.get(p, {})
            ours = {k: v for k, v in st.items() if k == "step" or k in bnb_state.TENSOR_KEYS}
            if ours.get("step") == step and len(ours) == len(views) + 1 \
                    and all(ours.get(k) is t for k, t in views.items()):
                continue  # keys of the caller's own (not bitsandbytes') are left alone
            records.append(bnb_state.record(self._names[p], self._locals.get(p, p),
                                            distributed.local_entry(ours),
                                            f"state of {self._names[p]}"))
        if records:
            self._opt.import_state(records)
            self._refresh_state()
