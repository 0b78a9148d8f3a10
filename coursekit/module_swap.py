"""Swapping one submodule of a model for another, written once (LoRA layers in, merged Linear layers back).

    replace_module(model, "model.layers.0.self_attn.q_proj", LoRALinear(...))
"""
from __future__ import annotations


def replace_module(model, name: str, new):
    """Put ``new`` where the submodule ``name`` (dotted, as ``named_modules`` gives it) is; return the old one."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child)
    setattr(parent, child, new)
    return old


def linear_with_weight(weight, bias=None, dtype=None):
    """A plain ``nn.Linear`` holding ``weight`` (out x in) and ``bias``, in ``dtype`` (default: the weight's), on
    the weight's device."""
    import torch
    from torch import nn

    dtype = dtype or weight.dtype
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=dtype)
    with torch.no_grad():
        linear.weight.copy_(weight.to(dtype))
        if bias is not None:
            linear.bias.copy_(bias.to(dtype))
    return linear


__all__ = ["linear_with_weight", "replace_module"]
