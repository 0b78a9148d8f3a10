"""Training: ``finetune(model, tokenizer, train, eval, method=...)`` for full fine-tuning, LoRA, QLoRA and more.

- ``engine``: the entry point, its options (``FinetuneOptions``), its plan (``RunPlan``) and its ``RunResult``.
- ``methods``: the registry of methods (``register_method`` adds one in a few lines).
- ``data``: rows to prompt/completion, input checks, mixing general text in.
- ``callbacks``: loss history, the notebook's progress bar and live loss plot.
- ``fresh``: a fresh base model for every run (``finetune_fresh``, a lesson's ``FreshRuns``).

Importing this package does not import torch; ``finetune`` does when called.
"""
from coursekit.train.data import mix_general_text, to_prompt_completion
from coursekit.train.engine import COMMON_OPTIONS, FinetuneOptions, RunPlan, RunResult, finetune
from coursekit.train.fresh import FreshRuns, finetune_fresh
from coursekit.train.methods import METHODS, Method, get_method, register_method

__all__ = ["COMMON_OPTIONS", "METHODS", "FinetuneOptions", "FreshRuns", "Method", "RunPlan", "RunResult", "finetune",
           "finetune_fresh", "get_method", "mix_general_text", "register_method", "to_prompt_completion"]
