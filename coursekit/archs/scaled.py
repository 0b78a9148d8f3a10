"""A Llama-3-shaped architecture of any size, built by arithmetic (no transformers, no meta model: microseconds).

The memory calculator's parameter slider needs an architecture for every value it passes through, fast. The shape
follows Llama 3's proportions: head dimension 128, 8 key/value heads, an MLP 3.5 times the hidden size, a 128,256-token
vocabulary with untied embeddings, and about one layer per 128 hidden units. For 8e9 this gives Llama 3.1 8B's exact
shape. tests/test_archs.py checks the arithmetic against a model built by transformers.
"""
from __future__ import annotations

import functools

from coursekit.archs.count import ArchSpec, LinearShape
from coursekit.validate import positive_int

LLAMA3_VOCAB = 128_256
HEAD_DIM = 128
KV_HEADS = 8
MIN_PARAMETERS = 1e8
MAX_PARAMETERS = 1e12


def llama_spec(hidden_size: int, num_hidden_layers: int, intermediate_size: int | None = None,
               num_key_value_heads: int = KV_HEADS, vocab_size: int = LLAMA3_VOCAB, head_dim: int = HEAD_DIM,
               name: str | None = None) -> ArchSpec:
    """The :class:`ArchSpec` of a Llama model (no biases, untied embeddings), computed by arithmetic."""
    for value, what in ((hidden_size, "hidden_size"), (num_hidden_layers, "num_hidden_layers"),
                        (num_key_value_heads, "num_key_value_heads"), (vocab_size, "vocab_size"),
                        (head_dim, "head_dim")):
        positive_int(what, value)
    if hidden_size % head_dim:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of head_dim ({head_dim})")
    heads = hidden_size // head_dim
    if heads % num_key_value_heads:
        raise ValueError(f"{heads} attention heads cannot be shared evenly by {num_key_value_heads} key/value heads")
    kv = num_key_value_heads
    inter = intermediate_size if intermediate_size is not None else _round_up(int(3.5 * hidden_size), 256)
    return _llama_spec(hidden_size, num_hidden_layers, inter, kv, vocab_size, head_dim, name)


@functools.lru_cache(maxsize=256)
def _llama_spec(h: int, layers: int, inter: int, kv: int, vocab: int, head_dim: int, name: str | None) -> ArchSpec:
    heads = h // head_dim
    shapes = (("q_proj", h, heads * head_dim), ("k_proj", h, kv * head_dim), ("v_proj", h, kv * head_dim),
              ("o_proj", heads * head_dim, h), ("gate_proj", h, inter), ("up_proj", h, inter),
              ("down_proj", inter, h))
    linears, numels = [], [vocab * h]
    by_kind = {"embed_tokens": vocab * h}
    for i in range(layers):
        for kind, fan_in, fan_out in shapes:
            group = "self_attn" if kind in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            linears.append(LinearShape(f"model.layers.{i}.{group}.{kind}", kind, fan_in, fan_out, False, True))
            numels.append(fan_in * fan_out)
            by_kind[kind] = by_kind.get(kind, 0) + fan_in * fan_out
        numels += [h, h]
    for kind, _, _ in shapes:  # zero layers still list every kind
        by_kind.setdefault(kind, 0)
    by_kind["input_layernorm"] = layers * h
    by_kind["post_attention_layernorm"] = layers * h
    by_kind["norm"] = h
    by_kind["lm_head"] = vocab * h
    numels += [h, vocab * h]
    linears.append(LinearShape("lm_head", "lm_head", h, vocab, False, False))
    fields = {"model_type": "llama", "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
              "hidden_size": h, "intermediate_size": inter, "num_hidden_layers": layers,
              "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim, "vocab_size": vocab,
              "tie_word_embeddings": False}
    total = sum(numels)
    return ArchSpec(
        name=name or f"llama-shaped-{total / 1e9:.1f}b", model_type="llama", hidden_size=h,
        intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
        head_dim=head_dim, vocab_size=vocab, tie_word_embeddings=False, total_parameters=total,
        parameters_by_kind=by_kind, linears=tuple(linears), param_numels=tuple(numels), config_fields=fields,
    )


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


@functools.lru_cache(maxsize=512)
def llama_shaped(parameters: float) -> ArchSpec:
    """The Llama-3-shaped architecture whose parameter count is closest to ``parameters`` (e.g. ``8e9``, ``70e9``).

    Among hidden sizes that are multiples of 1024 (256, 512, 768 below that), it takes the one whose best layer count is closest to
    ``hidden_size / 128`` layers (Llama 3's depth-to-width ratio), then the layer count closest to the target.
    """
    if isinstance(parameters, bool) or not isinstance(parameters, (int, float)) \
            or not MIN_PARAMETERS <= parameters <= MAX_PARAMETERS:
        raise ValueError(f"parameters must be a number between {MIN_PARAMETERS:.0e} and {MAX_PARAMETERS:.0e}, "
                         f"got {parameters!r}")
    best = None
    for h in (256, 512, 768, *range(1024, 32768 + 1, 1024)):
        inter = _round_up(int(3.5 * h), 256)
        kv = _kv_heads(h // HEAD_DIM)
        per_layer = 2 * h * h + 2 * h * kv * HEAD_DIM + 3 * h * inter + 2 * h
        fixed = 2 * LLAMA3_VOCAB * h + h
        layers = max(1, round((parameters - fixed) / per_layer))
        score = (abs(layers - h / 128) / (h / 128), abs(fixed + layers * per_layer - parameters))
        if best is None or score < best[0]:
            best = (score, h, layers)
    _, h, layers = best
    return llama_spec(h, layers, num_key_value_heads=_kv_heads(h // HEAD_DIM))


def _kv_heads(heads: int) -> int:
    """Up to 8 key/value heads, as many as divide the attention heads evenly."""
    return max(d for d in range(1, KV_HEADS + 1) if heads % d == 0)
