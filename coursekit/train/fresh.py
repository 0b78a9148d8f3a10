"""A fresh copy of the base model for every run: what lessons 03, 04 and 06 do before each fine-tune.

``finetune_fresh(MODEL, train, val, method="full", ...)`` loads the base model as the method needs it and trains it:
fp32 master weights for full fine-tuning (a bf16 weight ignores most updates of a small learning rate: lesson 03
measures it), the decoder's Linear layers in NF4 for a method on a 4-bit base (QLoRA), the default dtype otherwise.
``FreshRuns`` holds a lesson's shared settings, so each run names only what differs, and trains a run the lesson
asks for twice (same rows and options, whatever its title) only once.
"""
from __future__ import annotations

from typing import Any


def base_model_options(method: str) -> dict[str, Any]:
    """``load_base_model``'s ``quantization`` and ``dtype`` for training with ``method``."""
    import torch

    from coursekit.train.methods import get_method

    spec = get_method(method)
    return {"quantization": "nf4" if spec.needs_quantized_model else None,
            "dtype": torch.float32 if spec.name == "full" else None}


def finetune_fresh(model_name: str, train, eval=None, *, method: str = "full", device: str = "auto", **options):
    """Load a fresh ``model_name`` for ``method`` (see :func:`base_model_options`) and ``finetune`` it with
    ``options``; returns the :class:`~coursekit.train.RunResult` (its ``.model`` and ``.tokenizer`` are the trained
    pair)."""
    from coursekit.models import load_base_model
    from coursekit.train.engine import finetune

    model, tokenizer = load_base_model(model_name, device=device, **base_model_options(method))
    return finetune(model, tokenizer, train, eval, method=method, device=device, **options)


class FreshRuns:
    """A lesson's runs: each fine-tunes a fresh base model with the shared ``settings`` plus its own options.

    ``runs = FreshRuns(MODEL, train, val, method="full", test=test, device=DEVICE, batch_size=8)``, then
    ``runs("gentle", learning_rate=1e-3, epochs=1)``; ``n_examples`` trains on the first examples of ``train``,
    ``rows`` on other rows. A call with the same examples and options as an earlier one returns that run.
    """

    def __init__(self, model_name: str, train, eval=None, **settings):
        self.model_name, self.train, self.eval, self.settings = model_name, train, eval, settings
        self.trained: dict[tuple, Any] = {}

    def __call__(self, title: str, n_examples: int | None = None, *, rows=None, **options):
        if rows is not None and n_examples is not None:
            raise ValueError("pass n_examples (the first examples of the lesson's training split) or rows, not both")
        if n_examples is not None and not 0 < n_examples <= len(self.train):
            raise ValueError(f"n_examples must be between 1 and {len(self.train)} (the training split), "
                             f"got {n_examples}")
        merged = {**self.settings, **options}
        key = None
        if rows is None:
            n_examples = n_examples or len(self.train)
            key = (n_examples, tuple(sorted((k, repr(v)) for k, v in merged.items())))
            if key in self.trained:
                return self.trained[key]
            rows = self.train.select(range(n_examples))
        result = finetune_fresh(self.model_name, rows, self.eval, title=title, **merged)
        if key is not None:
            self.trained[key] = result
        return result


__all__ = ["FreshRuns", "base_model_options", "finetune_fresh"]
