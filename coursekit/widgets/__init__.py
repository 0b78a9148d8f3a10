"""ipywidgets front ends over coursekit's functions (imported lazily: ``import coursekit.widgets`` is instant)."""

_LAZY = {
    "memory_calculator": "coursekit.widgets.memory",
    "MemoryCalculator": "coursekit.widgets.memory",
    "decision_widget": "coursekit.widgets.decision",
    "DecisionWidget": "coursekit.widgets.decision",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = list(_LAZY)
