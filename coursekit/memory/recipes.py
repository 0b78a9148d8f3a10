"""Named precision recipes and optimizers: how many bytes each parameter costs, and why.

A recipe fixes four dtypes: the weights as the model holds them, their gradients, the optimizer's extra copy of the
weights (if any), and the activations. The optimizer fixes how many state tensors it keeps and in what format.
"""
from __future__ import annotations

from dataclasses import dataclass

from coursekit.validate import one_of

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}


@dataclass(frozen=True)
class Precision:
    name: str
    weight_bytes: int  # the model's trainable weights as loaded
    grad_bytes: int  # gradients have the dtype of their parameter
    master_bytes: int  # an extra fp32 copy of trainable weights kept by the optimizer (0: none)
    state_bytes: int  # bytes per Adam moment (torch keeps moments in the parameter's dtype)
    activation_bytes: int  # dtype of most saved activations
    frozen_bytes: int  # a frozen (LoRA) base model's weights
    autocast: bool  # bf16 autocast over fp32 weights
    explanation: str


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision("fp32", 4, 4, 0, 4, 4, 4, False,
                      "everything in fp32: 4 (weights) + 4 (gradients) + 8 (two Adam moments) bytes per parameter"),
    "bf16": Precision("bf16", 2, 2, 0, 2, 2, 2, False,
                      "the model loaded in bf16 and torch's AdamW: moments take the parameter's dtype, so "
                      "2 + 2 + 4 bytes per parameter (cheapest, but bf16 updates lose small steps)"),
    "amp-bf16": Precision("amp-bf16", 4, 4, 0, 4, 2, 2, True,
                          "fp32 weights (they are the master copy) with bf16 autocast for the matmuls: "
                          "4 + 4 + 8 bytes per parameter, activations mostly in bf16, plus bf16 copies of the "
                          "weights cached during each forward; a frozen LoRA base is loaded in bf16"),
    "mixed-bf16": Precision("mixed-bf16", 2, 2, 4, 4, 2, 2, False,
                            "the textbook mixed precision common estimates assume (DeepSpeed/Megatron style): bf16 "
                            "weights and gradients plus an fp32 master copy and fp32 Adam moments: "
                            "2 + 2 + (4 + 8) = 16 bytes per parameter"),
}


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    states: int  # moments per parameter
    eight_bit: bool
    paged: bool
    explanation: str


#: bitsandbytes keeps tensors with fewer elements than this in 32-bit state (``min_8bit_size``).
BNB_MIN_8BIT_SIZE = 4096
#: bitsandbytes 8-bit optimizer states are quantized blockwise with this many elements per fp32 absmax.
BNB_OPTIMIZER_BLOCKSIZE = 256

_PAGED = ("paged: the states live in CUDA unified memory, so under memory pressure the driver moves pages to CPU "
          "RAM instead of failing; the steady-state footprint is the same, what paging saves is the spike "
          "(an out-of-memory at a long batch becomes a slow step), not bytes")

OPTIMIZERS: dict[str, OptimizerSpec] = {
    "adamw": OptimizerSpec("adamw", 2, False, False, "two moments (m, v) per trainable parameter"),
    "adamw-8bit": OptimizerSpec("adamw-8bit", 2, True, False,
                                "bitsandbytes AdamW8bit: both moments as uint8 with one fp32 absmax per 256 "
                                "values; tensors under 4096 elements keep 32-bit moments"),
    "paged-adamw": OptimizerSpec("paged-adamw", 2, False, True, "AdamW with 32-bit paged states; " + _PAGED),
    "paged-adamw-8bit": OptimizerSpec("paged-adamw-8bit", 2, True, True, "AdamW8bit with paged states; " + _PAGED),
    "sgd": OptimizerSpec("sgd", 0, False, False, "plain SGD (no momentum): no state at all"),
}

#: The methods the estimator prices (the training engine knows more: ``coursekit.train.METHODS``).
ESTIMATED_METHODS = ("full", "lora", "qlora")
ATTENTIONS = ("eager", "sdpa")
#: How the loss is computed: from the full logits (``model(..., labels=...)``, a plain ``Trainer``), or by TRL's
#: ``SFTTrainer``, which patches the model with a fused LM head (``trl.trainer.utils.add_fused_lm_head``).
LOSSES = ("logits", "fused")


def check_choice(value, allowed, what: str) -> str:
    return one_of(what, value, allowed)
