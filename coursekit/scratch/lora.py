"""LoRA from scratch: one layer, and the function that puts it into a model.

A frozen linear layer computes ``W x``. LoRA adds a trainable low-rank path next to it::

    h = W x + (alpha / r) * B (A x)          A: r x in,  B: out x r,  r << min(in, out)

``A`` starts random (the same Kaiming-uniform init as ``nn.Linear``), ``B`` starts at zero, so the layer is
*exactly* the base layer before training and the first gradient step moves ``B`` first. ``alpha / r`` keeps the
size of the update roughly independent of the rank you pick. After training, ``W + (alpha / r) B A`` has the same
shape as ``W``: merging folds the adapter into the weight and inference costs nothing extra.

The names (``lora_A``, ``lora_B``, ``scaling``) and the initialisation follow peft's LoRA layer, and the tests
check that this layer gives peft's outputs for the same A and B.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from coursekit.module_swap import replace_module
from coursekit.validate import fraction, positive_int, positive_number


def _check_rank_alpha(r, alpha) -> None:
    positive_int("r (the LoRA rank)", r, hint="such as 8 or 16")
    positive_number("alpha", alpha, hint="often 2 * r")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``scaling * B @ A``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise ValueError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        _check_rank_alpha(r, alpha)
        fraction("dropout", dropout)
        if r > min(base.in_features, base.out_features):
            raise ValueError(
                f"r={r} is larger than the layer allows (min(in, out) = {min(base.in_features, base.out_features)})"
            )
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r = r
        self.alpha = alpha
        self.scaling = alpha / r
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # what nn.Linear does to its weight
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        """The update ``scaling * B @ A`` (out x in), the same shape as the base weight."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        lora = (self.dropout(x).to(self.lora_A.dtype) @ self.lora_A.T) @ self.lora_B.T
        return out + (lora * self.scaling).to(out.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight: afterwards forward is one matmul."""
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out of the base weight (exact up to float rounding)."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, r={self.r}, alpha={self.alpha}, merged={self.merged}"


def _matches(name: str, targets) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def inject_lora(model: nn.Module, r: int, alpha: float, target_modules, dropout: float = 0.0) -> nn.Module:
    """Freeze ``model`` and replace every ``nn.Linear`` named in ``target_modules`` with a :class:`LoRALinear`.

    ``target_modules`` is a list of module-name suffixes (``["q_proj", "v_proj"]``) or ``"all-linear"`` (every
    linear layer except the output head), as in peft. Modifies ``model`` in place and returns it.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_rank_alpha(r, alpha)
    if isinstance(target_modules, str):
        if target_modules != "all-linear":
            target_modules = [target_modules]
    elif not target_modules or not all(isinstance(t, str) for t in target_modules):
        raise ValueError(f"target_modules must be a non-empty list of module names or 'all-linear', got {target_modules!r}")
    linear_names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if target_modules == "all-linear":
        output_head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        chosen = [n for n in linear_names if model.get_submodule(n) is not output_head and not n.endswith("lm_head")]
    else:
        missing = [t for t in target_modules if not any(_matches(n, [t]) for n in linear_names)]
        if missing:
            suffixes = sorted({n.rsplit(".", 1)[-1] for n in linear_names})
            raise ValueError(f"target module(s) {missing} not found among the model's linear layers {suffixes}")
        chosen = [n for n in linear_names if _matches(n, target_modules)]
    if not chosen:
        raise ValueError("no linear layer matched target_modules")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in chosen:
        replace_module(model, name, LoRALinear(model.get_submodule(name), r, alpha, dropout))
    return model


def count_trainable_parameters(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad`` (shared tensors counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def lora_parameter_count(in_features: int, out_features: int, r: int) -> int:
    """Trainable parameters LoRA adds to one ``in -> out`` linear layer: ``r * (in + out)``."""
    positive_int("in_features", in_features)
    positive_int("out_features", out_features)
    _check_rank_alpha(r, 1)
    return r * (in_features + out_features)
