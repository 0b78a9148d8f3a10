"""Prefix tuning, counted: how many trainable numbers a prefix of virtual tokens costs.

Prefix tuning learns, for every layer, ``num_virtual_tokens`` extra key vectors and as many value vectors that every
real token can attend to. Keys and values have ``num_kv_heads * head_dim`` numbers each; with grouped-query attention
(Llama 3, Mistral) that is smaller than the hidden size, and peft sizes the prefix by it. So, without the
reparametrisation MLP::

    num_virtual_tokens * num_layers * 2 * num_kv_heads * head_dim

With ``prefix_projection=True`` peft trains an embedding of ``num_virtual_tokens x token_dim`` and a two-layer MLP
``token_dim -> encoder_hidden_size -> num_layers * 2 * token_dim`` (with biases) that produces the prefix.
"""
from __future__ import annotations

from coursekit.validate import positive_int


def prefix_tuning_parameter_count(
    num_layers: int,
    num_kv_heads: int,
    head_dim: int,
    num_virtual_tokens: int = 20,
    prefix_projection: bool = False,
    encoder_hidden_size: int | None = None,
) -> int:
    """Trainable parameters of prefix tuning, as peft's ``PrefixTuningConfig`` allocates them."""
    layers = positive_int("num_layers", num_layers)
    token_dim = positive_int("num_kv_heads", num_kv_heads) * positive_int("head_dim", head_dim)
    tokens = positive_int("num_virtual_tokens", num_virtual_tokens)
    out_dim = layers * 2 * token_dim
    if not prefix_projection:
        return tokens * out_dim
    hidden = token_dim if encoder_hidden_size is None else positive_int("encoder_hidden_size", encoder_hidden_size)
    return tokens * token_dim + (token_dim * hidden + hidden) + (hidden * out_dim + out_dim)


def prefix_tuning_parameter_count_for_config(config, num_virtual_tokens: int = 20, prefix_projection: bool = False,
                                             encoder_hidden_size: int | None = None) -> int:
    """The same count read from a transformers config (``num_hidden_layers``, heads, ``head_dim`` if it has one)."""
    try:
        layers = config.num_hidden_layers
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    except AttributeError as exc:
        raise ValueError(f"config lacks a field prefix tuning needs: {exc}") from None
    return prefix_tuning_parameter_count(layers, kv_heads, head_dim, num_virtual_tokens, prefix_projection,
                                         encoder_hidden_size)
