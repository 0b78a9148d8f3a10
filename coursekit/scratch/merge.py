"""Merging LoRA into a 4-bit base: why it cannot be done as it is, and the dequantize-then-merge path.

A 4-bit base weight is not a matrix you can add to: it is a packed uint8 tensor (two NF4 codes per byte) plus
absmax constants. Merging ``W + scaling * B A`` therefore means: dequantize ``W``, add the update, and then either

* **re-quantize** (what merging "in place" into a 4-bit model does): the result is rounded back onto the NF4 grid,
  and because the LoRA update is usually much smaller than the distance between neighbouring NF4 levels, most of
  it is rounded away (:func:`four_bit_merge_report` measures how much), or
* **keep the merged weight in 16/32-bit** (:func:`dequantize_and_merge`): exact, at the cost of a full-precision
  model. That is the usual path: merge for deployment in bf16, quantize again later if you must.
"""
from __future__ import annotations

from dataclasses import dataclass

from coursekit._results import ResultMixin
from coursekit.module_swap import linear_with_weight, replace_module


def _lora_layers(peft_model):
    from peft.tuners.lora import LoraLayer

    layers = [(n, m) for n, m in peft_model.named_modules() if isinstance(m, LoraLayer)]
    if not layers:
        raise ValueError("the model has no LoRA layers; pass the result of peft.get_peft_model(..., LoraConfig(...))")
    return layers


def _base_weight_float(layer):
    """The base layer's weight as a float32 matrix (dequantized if it is 4-bit)."""
    import torch

    weight = layer.get_base_layer().weight
    if getattr(weight, "quant_state", None) is not None:
        return dequantize_bnb_4bit_weight(weight), weight.quant_state
    return weight.data.to(torch.float32), None


def dequantize_bnb_4bit_weight(weight):
    """A bitsandbytes ``Params4bit`` weight as a float32 (out x in) matrix (from the standard layout, on a copy
    when bitsandbytes repacked it for the CPU: see ``coursekit.bnb_cpu``)."""
    import bitsandbytes.functional as bnbf
    import torch

    from coursekit.bnb_cpu import standard_4bit_layout

    return bnbf.dequantize_4bit(*standard_4bit_layout(weight, copy=True)).to(torch.float32)


def _delta(layer):
    import torch

    delta = None
    for name in layer.active_adapters:
        if name in layer.lora_A:
            d = layer.get_delta_weight(name).to(torch.float32)
            delta = d if delta is None else delta + d
    return delta


@dataclass(repr=False)
class FourBitMergeReport(ResultMixin):
    """How much of the LoRA update survives being merged into a 4-bit weight and re-quantized."""

    layers: int
    delta_rms: float  # root-mean-square size of scaling * B A over all merged weights
    requantized_error_rms: float  # rms of (requantize(W4 + delta) - (W4 + delta))
    relative_error: float  # requantized_error_rms / delta_rms: 0 = update kept, ~1 = update lost in rounding
    delta_cosine: float  # cosine between the update that survived re-quantizing and the intended one (1 = same direction)


def four_bit_merge_report(peft_model) -> FourBitMergeReport:
    """Merge each LoRA update into its 4-bit weight and re-quantize (on copies); report what was lost."""
    import bitsandbytes.functional as bnbf
    import torch

    total_sq_delta = total_sq_err = dot = kept_sq = 0.0
    count = n_layers = 0
    with torch.no_grad():
        for _, layer in _lora_layers(peft_model):
            w4, quant_state = _base_weight_float(layer)
            if quant_state is None:
                continue
            delta = _delta(layer)
            if delta is None:
                continue
            target = w4 + delta
            packed, state = bnbf.quantize_4bit(target, blocksize=quant_state.blocksize,
                                               quant_type=quant_state.quant_type,
                                               compress_statistics=quant_state.nested)
            requantized = bnbf.dequantize_4bit(packed, state).to(torch.float32)
            kept = requantized - w4
            total_sq_delta += float((delta**2).sum())
            total_sq_err += float(((requantized - target) ** 2).sum())
            dot += float((kept * delta).sum())
            kept_sq += float((kept**2).sum())
            count += delta.numel()
            n_layers += 1
    if n_layers == 0:
        raise ValueError("no LoRA layer sits on a 4-bit base weight; load the base with load_in_4bit (QLoRA)")
    delta_rms = (total_sq_delta / count) ** 0.5
    err_rms = (total_sq_err / count) ** 0.5
    cosine = dot / max((total_sq_delta * kept_sq) ** 0.5, 1e-30)
    return FourBitMergeReport(n_layers, delta_rms, err_rms, err_rms / max(delta_rms, 1e-30), cosine)


def _peft_module_name(name: str) -> str:
    """A module's name inside the base model: without peft's ``base_model.model.`` prefix."""
    return name.split("base_model.model.", 1)[-1] if name.startswith("base_model.model.") else name


def _merged_linear(layer, dtype):
    """A plain ``nn.Linear`` holding ``dequant(W) + scaling * B A`` of one LoRA layer."""
    weight, _ = _base_weight_float(layer)
    delta = _delta(layer)
    if delta is not None:
        weight = weight + delta
    return linear_with_weight(weight, layer.get_base_layer().bias, dtype)


def _drop_quantization_markers(model) -> None:
    """The model is no longer quantized: drop the markers that make transformers treat it as 4-bit."""
    if getattr(model, "quantization_method", None) is not None:
        model.quantization_method = None
    for attr in ("is_loaded_in_4bit", "is_quantized"):
        if getattr(model, attr, False):
            try:
                setattr(model, attr, False)
            except AttributeError:
                pass
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config


def dequantize_and_merge(peft_model, dtype=None):
    """Replace every LoRA layer (4-bit or not) by a plain ``nn.Linear`` holding ``dequant(W) + scaling * B A``,
    and every other 4-bit layer by a plain ``nn.Linear`` holding ``dequant(W)``.

    Returns the underlying transformers model, now without LoRA and without 4-bit layers, in ``dtype``
    (float32 by default). The peft model passed in is consumed (its modules are replaced).
    """
    import torch

    dtype = dtype or torch.float32
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be torch.float32, torch.float16 or torch.bfloat16, got {dtype}")
    layers = _lora_layers(peft_model)
    model = peft_model.get_base_model() if hasattr(peft_model, "get_base_model") else peft_model
    with torch.no_grad():
        for name, layer in layers:
            replace_module(model, _peft_module_name(name), _merged_linear(layer, dtype))
        # every other 4-bit layer (those without LoRA) is dequantized too, so no 4-bit module is left
        for name, module in list(model.named_modules()):
            if getattr(getattr(module, "weight", None), "quant_state", None) is not None:
                full = dequantize_bnb_4bit_weight(module.weight)
                replace_module(model, name, linear_with_weight(full, module.bias, dtype))
    _drop_quantization_markers(model)
    model.to(dtype)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
