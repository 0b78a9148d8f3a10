"""A small base for result dataclasses: ``to_dict()`` and a readable ``__repr__``."""
from __future__ import annotations

import dataclasses
import math


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def to_plain(value):
    """Any result (dataclass, dict, list, tensor scalar, path) as JSON-ready plain data."""
    return _plain(value)


class ResultMixin:
    """Mix into a dataclass: ``to_dict()`` for JSON, a compact multi-line ``__repr__`` for notebooks."""

    def to_dict(self) -> dict:
        return _plain(self)

    def __repr__(self) -> str:  # pragma: no cover - presentation
        parts = []
        for f in dataclasses.fields(self):
            if not f.repr:  # live objects (a model, a tokenizer): not data, neither printed nor in to_dict()
                continue
            v = getattr(self, f.name)
            if isinstance(v, float):
                text = f"{v:,.6g}"
            elif isinstance(v, int) and not isinstance(v, bool):
                text = f"{v:,}"
            elif isinstance(v, (list, tuple)) and len(v) > 6:
                text = f"[{len(v)} items]"
            elif isinstance(v, dict) and len(v) > 6:
                text = f"{{{len(v)} settings}}"
            else:
                text = repr(v)
            parts.append(f"  {f.name}={text}")
        return f"{type(self).__name__}(\n" + ",\n".join(parts) + "\n)"
