"""A CPU memory tracker per category: torch's ``MemTracker`` that also keeps each category's own maximum.

The stock tracker calls every tensor made during backward a temporary. That includes the pieces of a weight's
gradient before they reach ``.grad``: a tied embedding (used as the input embedding and as the LM head) gets two,
each the size of the vocabulary x hidden matrix, summed at the end of backward. Counted with the activations, they
are what a small batch's "activations" line measured (for SmolLM2-135M: 3 x 113.2 MB). So a backward temporary
shaped like a trainable weight (same shape and dtype) is counted apart, as ``gradient temporaries``, and the
``activations`` line is the forward's activations plus the other backward temporaries (the activations' gradients).

This module imports torch (and a private torch API, ``torch.distributed._tools.mem_tracker``); ``coursekit.memory.
measure`` imports it only when a measurement runs, so that ``import coursekit.memory`` stays instant.
tests/test_memory.py pins the behaviour the course relies on.
"""
from __future__ import annotations

from copy import deepcopy

from torch.distributed._tools.common_utils import get_untyped_storages
from torch.distributed._tools.mem_tracker import _TOTAL_KEY, MemTracker, _MemRefType
from torch.utils.weak import WeakIdKeyDictionary

#: the category of backward temporaries shaped like a trainable weight (pieces of a gradient not yet in ``.grad``)
GRADIENT_TEMPORARIES = "gradient temporaries"


class CategoryPeakTracker(MemTracker):
    """MemTracker that also keeps each category's own maximum (the stock one keeps the snapshot at the total peak)."""

    def __init__(self) -> None:
        super().__init__()
        self.category_max: dict[str, int] = {}
        self._weight_layouts: set[tuple] = set()  # (shape, dtype) of every trainable parameter tracked
        self._gradient_temporaries = WeakIdKeyDictionary()  # their storages, while each lives (value unused)

    def _track(self, reftype, t) -> None:
        super()._track(reftype, t)
        if reftype == _MemRefType.TEMP and (tuple(t.shape), t.dtype) in self._weight_layouts:
            for st in get_untyped_storages(t):
                self._gradient_temporaries[st] = True

    def _update_peak_stats(self, peak_state) -> None:
        # The whole-process peak and each category's maximum are all this course reads. The stock method also
        # walks every module it has seen on every operator (per-module peaks): minutes per step for a 30-layer
        # model on a CPU. So only the process-wide part of the stock method is kept here.
        for dev, dev_snap in self._curr_mem_snap.items():
            if self._peak_mem.get(dev, 0) < dev_snap[_TOTAL_KEY]:
                self._peak_mem[dev] = dev_snap[_TOTAL_KEY]
                self._peak_mem_snap[dev] = deepcopy(dev_snap)
        for dev_snap in self._curr_mem_snap.values():
            self._update_category_max(dev_snap)

    def _update_category_max(self, dev_snap) -> None:
        for key, val in dev_snap.items():
            self._raise_max(getattr(key, "value", key), val)
        if not self._in_opt:  # activations and temporaries of forward and backward, not of the step
            gradient_temporaries = self._gradient_temporary_bytes()
            self._raise_max(GRADIENT_TEMPORARIES, gradient_temporaries)
            self._raise_max("activations", dev_snap.get(_MemRefType.ACT, 0) + dev_snap.get(_MemRefType.TEMP, 0)
                            - gradient_temporaries)

    def _gradient_temporary_bytes(self) -> int:
        """Bytes of the live weight-shaped backward temporaries still counted as temporaries (one that became a
        ``.grad`` is counted as a gradient by the stock tracker)."""
        winfos = (self._WINFO.get(st, (None, None))[0] for st in list(self._gradient_temporaries.keys()))
        return sum(w.mem_consumed for w in winfos if w is not None and w.reftype == _MemRefType.TEMP)

    def _raise_max(self, name: str, value) -> None:
        if value > self.category_max.get(name, 0):
            self.category_max[name] = value

    def _track_module_params_and_buffers(self, module, install_grad_hooks: bool = True):
        # The stock tracker hooks every parameter and fails on frozen ones (LoRA, QLoRA): hook trainable ones only.
        out = super()._track_module_params_and_buffers(module, install_grad_hooks=False)

        def on_grad(g) -> None:
            self._update_and_maybe_create_winfos(g, _MemRefType.GRAD)

        self._weight_layouts.update((tuple(p.shape), p.dtype) for p in module.parameters() if p.requires_grad)
        if install_grad_hooks:
            for param in module.parameters():
                if param.requires_grad and self._param_to_grad_hook_handles.get(param, None) is None:
                    h1 = param.register_hook(on_grad)
                    h2 = param.register_post_accumulate_grad_hook(lambda q: on_grad(q.grad))
                    self._param_to_grad_hook_handles[param] = (h1, h2)
        return out

    def peak_bytes(self) -> int:
        return sum(int(v) for v in self._peak_mem.values())

    def peak_snapshot(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for dev_snap in self.get_tracker_snapshot("peak").values():
            for key, val in dev_snap.items():
                name = "Total" if key == _TOTAL_KEY else getattr(key, "value", key)
                out[name] = out.get(name, 0) + int(val)
        return out
