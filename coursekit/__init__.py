"""coursekit: the helper package of the course "Fine-tuning LLMs, runnable end to end".

Importing coursekit is instant: torch, transformers and friends are imported inside the functions that need them.
Public names are resolved lazily from their submodules (see ``_LAZY``).
"""
from __future__ import annotations

import importlib

from coursekit import notices as _notices

__version__ = "0.1.0"

_notices.install()  # library messages the course explains instead of printing (coursekit.notices)

# public name -> submodule that defines it
_LAZY = {
    "load_base_model": "coursekit.models",
    "budget_key": "coursekit.models",
    "resolve_model_path": "coursekit.models",
    "estimate_memory": "coursekit.memory",
    "count_parameters": "coursekit.archs",
    "finetune": "coursekit.train",
    "recommend_method": "coursekit.recommend",
    "Results": "coursekit.notebook",
    "check": "coursekit.exercises",
    "doctor": "coursekit.env",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")


def __dir__():
    return __all__
