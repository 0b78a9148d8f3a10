"""Double quantization from scratch: quantize the quantization constants too.

Plain blockwise 4-bit quantization stores one float32 absmax per block of 64 weights: 32 / 64 = 0.5 extra bits per
weight. QLoRA's double quantization treats those absmax values as just another tensor:

1. subtract their mean (they are all positive; centring them uses the signed 8-bit type fully),
2. quantize them to 8 bits, blockwise, in blocks of 256, each block keeping one float32 absmax of its own.

Cost per weight: 8 / 64 for the 8-bit constants + 32 / (64 * 256) for the second-level float32 constants
= 0.127 bits instead of 0.5. The 8-bit type is bitsandbytes' signed *dynamic* (tree) type: a sign, a run of
zeros that acts as a decimal exponent (1 down to 1e-6), and linearly spaced fractions after it — dense near zero,
sparse near one. ``dynamic_8bit_levels`` builds its 256 values.
"""
from __future__ import annotations

from coursekit.scratch.nf4 import _blockwise_scale, _nearest_level_index, check_blocksize, check_float_tensor
from coursekit.validate import positive_number


def dynamic_8bit_levels():
    """The 256 sorted values of the signed 8-bit dynamic type (float32), the type double quantization uses.

    For each decade 10**-6 ... 10**0 (exponent ``e`` = 0 ... 6 extra bits), ``2**e`` fractions sit at the midpoints
    of ``2**e`` equal steps between 0.1 and 1, scaled by the decade, with both signs; plus 0 and 1:
    2 * (1 + 2 + ... + 64) + 2 = 256 values.
    """
    import torch

    values = [0.0, 1.0]
    for e in range(7):
        edges = torch.linspace(0.1, 1, 2**e + 1, dtype=torch.float32)
        midpoints = (edges[:-1] + edges[1:]) / 2.0
        decade = 10.0 ** (e - 6)
        values += (decade * midpoints).tolist()
        values += (-decade * midpoints).tolist()
    return torch.tensor(sorted(values), dtype=torch.float32)


def double_quantize_absmax(absmax, blocksize2: int = 256):
    """Quantize first-level ``absmax`` constants -> ``(codes uint8, absmax2 float32, offset float32 scalar)``.

    ``offset`` is the mean of ``absmax``; ``codes`` index :func:`dynamic_8bit_levels` for ``(absmax - offset) /
    absmax2`` of each block of ``blocksize2`` constants. The same as bitsandbytes' ``quantize_4bit(...,
    compress_statistics=True)``: its ``quant_state.absmax`` (codes), ``.state2.absmax`` and ``.offset``.
    """
    check_float_tensor(absmax, "absmax")
    check_blocksize(blocksize2, "blocksize2")
    flat = absmax.detach().reshape(-1).float()
    offset = flat.mean()
    absmax2, scaled = _blockwise_scale(flat - offset, blocksize2)
    codes = _nearest_level_index(scaled, dynamic_8bit_levels().to(flat.device))
    return codes, absmax2, offset


def double_dequantize_absmax(codes, absmax2, offset, blocksize2: int = 256):
    """Rebuild the first-level absmax constants (float32) from :func:`double_quantize_absmax`'s output."""
    import torch

    check_blocksize(blocksize2, "blocksize2")
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint8:
        raise ValueError("codes must be the uint8 tensor returned by double_quantize_absmax")
    n = codes.numel()
    blocks = -(-n // blocksize2)
    if not isinstance(absmax2, torch.Tensor) or absmax2.numel() != blocks:
        raise ValueError(f"absmax2 must hold one value per block of {blocksize2} codes: {blocks} for {n} codes")
    values = dynamic_8bit_levels().to(codes.device)[codes.reshape(-1).long()]
    full = n - n % blocksize2
    out = torch.empty(n, dtype=torch.float32, device=codes.device)
    out[:full] = (values[:full].view(-1, blocksize2) * absmax2[: full // blocksize2].view(-1, 1)).reshape(-1)
    if full < n:
        out[full:] = values[full:] * absmax2[-1]
    return out + offset


def _check_bits_args(blocksize: int, blocksize2: int | None = None) -> None:
    check_blocksize(blocksize)
    if blocksize2 is not None:
        check_blocksize(blocksize2, "blocksize2")


def single_quant_overhead_bits(blocksize: int = 64, absmax_bits: int = 32) -> float:
    """Extra bits per weight for one ``absmax_bits`` constant per block of ``blocksize`` weights (0.5 at 64)."""
    _check_bits_args(blocksize)
    if absmax_bits not in (8, 16, 32):
        raise ValueError(f"absmax_bits must be 8, 16 or 32, got {absmax_bits!r}")
    return absmax_bits / blocksize


def double_quant_overhead_bits(blocksize: int = 64, blocksize2: int = 256) -> float:
    """Extra bits per weight with double quantization: ``8 / blocksize + 32 / (blocksize * blocksize2)``.

    At the defaults: 0.125 + 0.001953125 = 0.126953125 bits per weight (ignoring one float32 mean per tensor).
    """
    _check_bits_args(blocksize, blocksize2)
    return 8 / blocksize + 32 / (blocksize * blocksize2)


def double_quant_saving_bytes(num_params: float, blocksize: int = 64, blocksize2: int = 256) -> float:
    """Bytes saved by double quantization for ``num_params`` quantized weights (divide by 1e9 for GB)."""
    positive_number("num_params", num_params, of="weights")
    saved_bits = single_quant_overhead_bits(blocksize) - double_quant_overhead_bits(blocksize, blocksize2)
    return num_params * saved_bits / 8
