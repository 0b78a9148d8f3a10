"""Teaching implementations, each small enough to read in one sitting and pinned by tests to the library it explains.

| module | what it builds | checked against |
| --- | --- | --- |
| ``lora`` | ``LoRALinear``, ``inject_lora`` | peft's LoRA layer (outputs, trainable count, training curve) |
| ``nf4`` | ``nf4_levels``, ``quantize_nf4``, ``dequantize_nf4`` | ``bitsandbytes.functional`` 4-bit (bit for bit) |
| ``double_quant`` | 8-bit quantization of the absmax constants, ``double_quant_overhead_bits`` | bitsandbytes' nested quant state |
| ``adapter`` | ``HoulsbyAdapter``, ``inject_adapters``, ``adapter_parameter_count`` | the formula and an exact count |
| ``prefix`` | ``prefix_tuning_parameter_count`` | peft's ``PrefixTuningConfig`` |
| ``merge`` | ``four_bit_merge_report``, ``dequantize_and_merge``: why a 4-bit model cannot be merged as it is | the unmerged peft model |

torch is imported by the submodules, not here, so ``import coursekit.scratch`` stays cheap.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "LoRALinear": "coursekit.scratch.lora",
    "inject_lora": "coursekit.scratch.lora",
    "count_trainable_parameters": "coursekit.scratch.lora",
    "lora_parameter_count": "coursekit.scratch.lora",
    "nf4_levels": "coursekit.scratch.nf4",
    "int4_levels": "coursekit.scratch.nf4",
    "fp4_levels": "coursekit.scratch.nf4",
    "quantize_nf4": "coursekit.scratch.nf4",
    "dequantize_nf4": "coursekit.scratch.nf4",
    "quantize_4bit_with_levels": "coursekit.scratch.nf4",
    "dequantize_4bit_with_levels": "coursekit.scratch.nf4",
    "dynamic_8bit_levels": "coursekit.scratch.double_quant",
    "double_quantize_absmax": "coursekit.scratch.double_quant",
    "double_dequantize_absmax": "coursekit.scratch.double_quant",
    "double_quant_overhead_bits": "coursekit.scratch.double_quant",
    "single_quant_overhead_bits": "coursekit.scratch.double_quant",
    "HoulsbyAdapter": "coursekit.scratch.adapter",
    "inject_adapters": "coursekit.scratch.adapter",
    "adapter_parameter_count": "coursekit.scratch.adapter",
    "prefix_tuning_parameter_count": "coursekit.scratch.prefix",
    "prefix_tuning_parameter_count_for_config": "coursekit.scratch.prefix",
    "four_bit_merge_report": "coursekit.scratch.merge",
    "dequantize_and_merge": "coursekit.scratch.merge",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'coursekit.scratch' has no attribute {name!r}")


def __dir__():
    return __all__
