"""NF4 (4-bit NormalFloat) from scratch, as the QLoRA paper builds it, bit for bit with bitsandbytes.

Three ideas, in the order the lesson tells them:

1. **The 16 levels.** Pretrained weights are roughly normal, so put the levels at quantiles of N(0, 1): each level
   then gets about the same share of the weights. The paper wants an exact zero (padding, ReLU outputs and many
   weights sit at zero), so it builds the two halves separately: 8 quantiles for the positive side and 7 for the
   negative side, plus 0. That makes the type *asymmetric*: 16 values = 7 negative + 0 + 8 positive.
   The outermost probability is not 1 (that would be +infinity) but the offset
   ``((1 - 1/(2*15)) + (1 - 1/(2*16))) / 2 = 0.9677083``. The levels are divided by the largest so they span [-1, 1].
2. **Blockwise absmax.** Split the flattened tensor into blocks of ``blocksize`` values (64 by default); each block
   stores its largest absolute value (a float32, the *absmax*) and its values divided by it, which lie in [-1, 1].
   One outlier then only spoils its own block.
3. **Nearest level, two per byte.** Each scaled value becomes the index (0..15) of the nearest level; two indices
   share one byte, the first in the high 4 bits.

Dequantizing looks up the level and multiplies by its block's absmax.
"""
from __future__ import annotations

# The paper's offset: halfway between the 1 - 1/(2*15) and 1 - 1/(2*16) probabilities (0.96770833...).
PAPER_OFFSET = 0.5 * ((1 - 1 / (2 * 15)) + (1 - 1 / (2 * 16)))
# The reference implementation (and so the table bitsandbytes ships) uses it rounded to 7 decimals; the two tables
# differ by at most 3e-7. We default to the rounded value so that ours matches the library to the last bit.
NF4_OFFSET = 0.9677083

_FLOAT_DTYPES_TEXT = "float16, bfloat16, float32 or float64"


def check_blocksize(blocksize, name: str = "blocksize") -> int:
    """Return ``blocksize`` if it is a power of two >= 2, else raise a ValueError saying what is allowed."""
    if isinstance(blocksize, bool) or not isinstance(blocksize, int):
        raise ValueError(f"{name} must be an int power of two such as 64, got {blocksize!r}")
    if blocksize < 2 or blocksize & (blocksize - 1):
        raise ValueError(f"{name} must be a power of two >= 2 (e.g. 32, 64, 128, 256), got {blocksize}")
    return blocksize


def check_float_tensor(w, name: str = "w"):
    """Return ``w`` if it is a non-empty floating-point torch tensor, else raise a ValueError."""
    import torch

    if not isinstance(w, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of {_FLOAT_DTYPES_TEXT}, got {type(w).__name__}")
    if w.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise ValueError(f"{name} must be a floating-point tensor ({_FLOAT_DTYPES_TEXT}), got dtype {w.dtype}")
    if w.numel() == 0:
        raise ValueError(f"{name} is empty; quantization needs at least one value")
    return w


def nf4_levels(offset: float = NF4_OFFSET):
    """The 16 NF4 levels, sorted, in [-1, 1], with an exact 0 (a float32 tensor).

    Built exactly as the paper describes: ``norm.ppf`` of evenly spaced probabilities from ``offset`` down to 0.5,
    8 of them for the positive half and 7 for the negative half, plus zero, normalised by the largest.
    (The probabilities are spaced in float32, like the reference construction, so the result is bit-identical
    to the table bitsandbytes ships.)
    """
    import torch

    if not isinstance(offset, (int, float)) or not 0.5 < offset < 1.0:
        raise ValueError(f"offset must be a probability in (0.5, 1), got {offset!r}")
    probs_pos = torch.linspace(offset, 0.5, 9)[:-1]  # 8 probabilities > 0.5, float32
    probs_neg = torch.linspace(offset, 0.5, 8)[:-1]  # 7 probabilities > 0.5, float32
    positive = torch.special.ndtri(probs_pos.double()).float()  # the normal quantiles (inverse CDF)
    negative = -torch.special.ndtri(probs_neg.double()).float()
    levels = torch.cat([negative, torch.zeros(1), positive]).sort().values
    return levels / levels.max()


def int4_levels():
    """Symmetric integer 4-bit levels -7/7 ... 7/7 (15 distinct values; the 16th code is a second zero)."""
    import torch

    return torch.arange(-7, 8, dtype=torch.float32) / 7


def fp4_levels():
    """The 16 values of bitsandbytes' FP4 (1 sign, 2 exponent, 1 mantissa bit, bias 2) scaled to [-1, 1], sorted.

    Magnitudes are 0, 0.0625 (subnormal), 2, 3, 4, 6, 8, 12, each with both signs (so zero appears twice).
    """
    import torch

    magnitudes = torch.tensor([0.0, 0.0625, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0])
    values = torch.cat([magnitudes, -magnitudes]) / 12.0
    return values.sort().values


def _blockwise_scale(flat, blocksize: int):
    """Split ``flat`` (float32) into blocks; return (absmax per block, values divided by their block's absmax).

    The last block may be shorter. Division is done as multiplication by the reciprocal, clamped to [-1, 1]:
    that is the order of operations bitsandbytes uses, and the one that makes the two agree to the last bit.
    """
    import torch

    n = flat.numel()
    full = n - n % blocksize
    blocks = flat[:full].reshape(-1, blocksize)
    absmax = blocks.abs().max(dim=-1).values
    scaled = torch.clamp(blocks * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if full < n:
        tail = flat[full:]
        tail_absmax = tail.abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, tail_absmax.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(tail / tail_absmax, -1, 1)])
    return absmax, scaled


def _nearest_level_index(scaled, levels):
    """Index of the nearest level for every value (``levels`` sorted ascending; a tie goes to the lower level)."""
    import torch

    midpoints = (levels[:-1] + levels[1:]) / 2
    return torch.bucketize(scaled, midpoints, out_int32=True).to(torch.uint8)


def _pack_pairs(codes, pad_code: int):
    """Two 4-bit codes per byte, the first in the high nibble; shape (bytes, 1) like bitsandbytes.

    An odd count is padded with ``pad_code`` (the code of the level nearest 0, as if one more 0.0 was quantized).
    """
    import torch

    if codes.numel() % 2:
        codes = torch.cat([codes, codes.new_full((1,), pad_code)])
    return ((codes[0::2] << 4) | codes[1::2]).unsqueeze(1)


def _unpack_pairs(packed, n: int):
    import torch

    flat = packed.reshape(-1)
    codes = torch.empty(flat.numel() * 2, dtype=torch.int64, device=flat.device)
    codes[0::2] = (flat >> 4).to(torch.int64)
    codes[1::2] = (flat & 0xF).to(torch.int64)
    return codes[:n]


def quantize_4bit_with_levels(w, levels, blocksize: int = 64):
    """Blockwise absmax 4-bit quantization onto any sorted table of 16 ``levels`` -> (packed uint8, absmax)."""
    import torch

    check_float_tensor(w)
    check_blocksize(blocksize)
    if not isinstance(levels, torch.Tensor) or levels.numel() != 16:
        raise ValueError("levels must be a tensor of 16 values in [-1, 1] (e.g. nf4_levels())")
    levels = levels.to(torch.float32)
    if not bool((levels[1:] >= levels[:-1]).all()):
        raise ValueError("levels must be sorted ascending")
    absmax, scaled = _blockwise_scale(w.detach().reshape(-1).float(), blocksize)
    levels = levels.to(scaled.device)
    codes = _nearest_level_index(scaled, levels)
    pad_code = int(_nearest_level_index(torch.zeros(1, device=scaled.device), levels)[0])
    return _pack_pairs(codes, pad_code), absmax


def dequantize_4bit_with_levels(packed, absmax, shape, levels, blocksize: int = 64, dtype=None):
    """Undo :func:`quantize_4bit_with_levels`: look the codes up in ``levels`` and multiply by each block's absmax."""
    import math

    import torch

    check_blocksize(blocksize)
    if not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8:
        raise ValueError("packed must be the uint8 tensor returned by quantize_nf4 / quantize_4bit_with_levels")
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    if n == 0 or packed.numel() != (n + 1) // 2:
        raise ValueError(f"shape {shape} needs {(n + 1) // 2} packed bytes, got {packed.numel()}")
    blocks = -(-n // blocksize)
    if not isinstance(absmax, torch.Tensor) or absmax.numel() != blocks:
        raise ValueError(f"absmax must hold one value per block: {blocks} for shape {shape} and blocksize {blocksize}")
    values = levels.to(device=packed.device, dtype=torch.float32)[_unpack_pairs(packed, n)]
    absmax = absmax.float()
    full = n - n % blocksize
    out = torch.empty(n, dtype=torch.float32, device=packed.device)
    out[:full] = (values[:full].view(-1, blocksize) * absmax[: full // blocksize].view(-1, 1)).reshape(-1)
    if full < n:
        out[full:] = values[full:] * absmax[-1]
    return out.reshape(shape).to(dtype or torch.float32)


def quantize_nf4(w, blocksize: int = 64):
    """Quantize ``w`` to NF4 in blocks of ``blocksize`` -> ``(packed, absmax)``.

    ``packed`` is uint8 of shape ``(ceil(numel / 2), 1)`` (two codes per byte, high nibble first) and ``absmax``
    float32 with one value per block: the same tensors as ``bitsandbytes.functional.quantize_4bit(w,
    blocksize=blocksize, quant_type="nf4")`` returns (its ``quant_state.absmax``).
    """
    return quantize_4bit_with_levels(w, nf4_levels(), blocksize)


def dequantize_nf4(packed, absmax, shape, blocksize: int = 64, dtype=None):
    """Rebuild the tensor of ``shape`` from :func:`quantize_nf4`'s output (float32 unless ``dtype`` is given)."""
    return dequantize_4bit_with_levels(packed, absmax, shape, nf4_levels(), blocksize, dtype)


def quantization_error(w, levels, blocksize: int = 64):
    """``dequantize(quantize(w)) - w`` as a float32 tensor of w's shape (for error histograms)."""
    packed, absmax = quantize_4bit_with_levels(w, levels, blocksize)
    restored = dequantize_4bit_with_levels(packed, absmax, w.shape, levels, blocksize)
    return restored - w.detach().float()
