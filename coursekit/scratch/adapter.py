"""Houlsby bottleneck adapters from scratch.

An adapter is a small residual MLP, ``y + up(gelu(down(y)))`` with ``down: hidden -> bottleneck`` and ``up:
bottleneck -> hidden``. Houlsby et al. (2019) insert one after the attention block and one after the feed-forward
block of every layer, and train only them (plus, in the paper, the layer norms; here only the adapters).

With the up-projection initialised to zero (weight and bias) the adapter is *exactly* the identity at the start, so
the model begins as the pretrained one, like LoRA with B = 0.

Parameters per adapter: ``hidden * bottleneck + bottleneck`` (down, with bias) ``+ bottleneck * hidden + hidden``
(up, with bias) ``= 2 * hidden * bottleneck + bottleneck + hidden``; two adapters per layer.
"""
from __future__ import annotations

import torch
from torch import nn

from coursekit.validate import positive_int


def adapter_parameter_count(hidden_size: int, bottleneck: int, num_layers: int) -> int:
    """Trainable parameters of Houlsby adapters: 2 per layer, each ``2*hidden*bottleneck + bottleneck + hidden``."""
    h = positive_int("hidden_size", hidden_size)
    b = positive_int("bottleneck", bottleneck)
    n = positive_int("num_layers", num_layers)
    return n * 2 * (2 * h * b + b + h)


class HoulsbyAdapter(nn.Module):
    """``x + up(gelu(down(x)))``; the up-projection starts at zero, so the adapter starts as the exact identity."""

    def __init__(self, hidden_size: int, bottleneck: int) -> None:
        super().__init__()
        positive_int("hidden_size", hidden_size)
        positive_int("bottleneck", bottleneck)
        self.down_project = nn.Linear(hidden_size, bottleneck)
        self.activation = nn.GELU()
        self.up_project = nn.Linear(bottleneck, hidden_size)
        nn.init.zeros_(self.up_project.weight)
        nn.init.zeros_(self.up_project.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up_project(self.activation(self.down_project(x)))

    def after(self, module: nn.Module, args, output):
        """Forward hook: apply the adapter to a sub-block's output (the first element when it returns a tuple)."""
        if isinstance(output, tuple):
            return (self(output[0]),) + tuple(output[1:])
        return self(output)


def _decoder_layers(model: nn.Module):
    """The decoder layers of a Llama-style model (``model.model.layers``, each with ``self_attn`` and ``mlp``)."""
    core = model
    for _ in range(4):  # LlamaForCausalLM -> .model (LlamaModel) -> .layers; a PeftModel adds .base_model.model
        if isinstance(getattr(core, "layers", None), nn.ModuleList):
            break
        inner = getattr(core, "model", None)
        if not isinstance(inner, nn.Module):
            inner = getattr(core, "base_model", None)
        if not isinstance(inner, nn.Module) or inner is core:
            break
        core = inner
    layers = getattr(core, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise ValueError("inject_adapters needs a Llama-style model with model.model.layers (decoder layers)")
    for i, layer in enumerate(layers):
        if not (hasattr(layer, "self_attn") and hasattr(layer, "mlp")):
            raise ValueError(f"decoder layer {i} has no self_attn and mlp; only Llama-style layers are supported")
    return layers


def inject_adapters(model: nn.Module, bottleneck: int) -> int:
    """Insert a :class:`HoulsbyAdapter` after attention and after the MLP of every decoder layer; freeze the rest.

    The adapters become submodules of each layer (``attn_adapter``, ``mlp_adapter``), so they are saved, moved and
    counted with the model; forward hooks apply them to the attention and MLP outputs before the residual add.
    Returns the number of trainable parameters (the adapters only). Modifies ``model`` in place.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    positive_int("bottleneck", bottleneck)
    layers = _decoder_layers(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in layers:
        if hasattr(layer, "attn_adapter"):
            raise ValueError("this model already has adapters; inject them once")
        reference = next(p for p in layer.parameters() if p.is_floating_point())
        hidden = layer.mlp.down_proj.out_features if hasattr(layer.mlp, "down_proj") else reference.shape[-1]
        dtype = reference.dtype if reference.dtype in (torch.float16, torch.bfloat16, torch.float32) else torch.float32
        for name, block in (("attn_adapter", layer.self_attn), ("mlp_adapter", layer.mlp)):
            adapter = HoulsbyAdapter(hidden, bottleneck).to(device=reference.device, dtype=dtype)
            layer.add_module(name, adapter)
            block.register_forward_hook(adapter.after)
    total = 0
    for p in model.parameters():
        if p.requires_grad:
            total += p.numel()
    return total
