"""bitsandbytes on a CPU: the packed 4-bit layout it switches to, and how the course undoes it, written once.

:func:`keep_4bit_layout_on_cpu` says why it matters (training after an evaluation pass gets wrong gradients);
:func:`standard_4bit_layout` gives one weight back in the layout ``dequantize_4bit`` reads.
"""
from __future__ import annotations


def standard_4bit_layout(weight, *, copy: bool = False):
    """``(data, quant_state)`` of a bitsandbytes ``Params4bit`` in the standard layout ``dequantize_4bit`` reads.

    When bitsandbytes repacked it for the CPU (with bfloat16 absmax), the layout is converted back:
    on copies with ``copy=True`` (the weight is left as it is), else the converted tensors are returned for the
    caller to store.
    """
    data, quant_state = weight.data, weight.quant_state
    if not getattr(quant_state, "packing_format_for_cpu", False):
        return data, quant_state
    import copy as _copy

    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    if copy:
        data, quant_state = data.clone(), _copy.deepcopy(quant_state)
    return _convert_weight_packed_for_cpu_inverse(data, quant_state)


def keep_4bit_layout_on_cpu(model) -> int:
    """Keep a 4-bit model's weights in bitsandbytes' standard layout on a CPU; return the number of layers touched.

    On a CPU with AVX512-BF16, bitsandbytes (0.50) repacks a 4-bit layer's weight into a faster CPU layout the first
    time the layer runs in eval mode without gradients (an evaluation pass, ``generate``), and keeps it. Training
    afterwards computes the backward pass from the repacked bytes as if they were in the standard layout, so every
    gradient that flows through a 4-bit layer is wrong: a QLoRA run evaluated at step 0 stops learning (measured on
    the embedded model, 30 steps: task metric 0.38 without the evaluation pass, 0.00 with it). This switches the
    repacking off and undoes any that already happened. Inference stays correct, only without that CPU speed-up.
    """
    import bitsandbytes as bnb

    touched = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            if getattr(getattr(module.weight, "quant_state", None), "packing_format_for_cpu", False):
                module.weight.data, module.weight.quant_state = standard_4bit_layout(module.weight)
            touched += 1
    return touched


def dequantization_seconds(model, rounds: int = 5) -> tuple[int, float]:
    """``(layers, seconds)``: how many 4-bit layers ``model`` has, and the seconds to dequantize all their weights
    once (the fastest of ``rounds``, as ``timeit`` keeps it).

    A QLoRA training step pays this twice: bitsandbytes' ``MatMul4Bit`` dequantizes the weight in the forward pass
    (on a CPU, ``gemm_4bit`` falls back to dequantize + matmul) and again in the backward pass, for the gradient
    with respect to the layer's input. The weights are read in the standard layout (copies, outside the timing)."""
    import time

    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf
    import torch

    from coursekit.validate import positive_int

    positive_int("rounds", rounds)
    weights = [standard_4bit_layout(m.weight, copy=True) for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    if not weights:
        raise ValueError("the model has no 4-bit (bitsandbytes Linear4bit) layers to dequantize")
    cuda = weights[0][0].is_cuda

    def one_pass() -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for data, state in weights:
            bnbf.dequantize_4bit(data, state)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    with torch.no_grad():
        one_pass()  # warm-up, not kept
        best = min(one_pass() for _ in range(rounds))
    return len(weights), best


__all__ = ["dequantization_seconds", "keep_4bit_layout_on_cpu", "standard_4bit_layout"]
