"""Real architectures as data: the config.json fields that decide a model's shape, per preset.

Values are copied from each model's published ``config.json`` (the source is named per preset). Only the fields that
change the parameter count or the memory arithmetic are kept; transformers fills in the rest with its defaults.
A model is built from these on the meta device, so no weights are downloaded.
"""
from __future__ import annotations

from coursekit.model_ids import EMBEDDED_MODEL

_LLAMA = {"model_type": "llama", "hidden_act": "silu", "attention_bias": False, "mlp_bias": False}

PRESETS: dict[str, dict] = {
    "llama-2-7b": {
        **_LLAMA, "source": "meta-llama/Llama-2-7b-hf",
        "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
    },
    "llama-2-13b": {
        **_LLAMA, "source": "meta-llama/Llama-2-13b-hf",
        "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40,
        "num_attention_heads": 40, "num_key_value_heads": 40, "vocab_size": 32000,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
    },
    "llama-3.1-8b": {
        **_LLAMA, "source": "meta-llama/Llama-3.1-8B",
        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
    },
    "llama-3.1-70b": {
        **_LLAMA, "source": "meta-llama/Llama-3.1-70B",
        "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
        "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
    },
    "llama-3.2-1b": {
        **_LLAMA, "source": "meta-llama/Llama-3.2-1B",
        "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
    },
    "llama-3.2-3b": {
        **_LLAMA, "source": "meta-llama/Llama-3.2-3B",
        "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28,
        "num_attention_heads": 24, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
    },
    "mistral-7b": {
        "model_type": "mistral", "source": "mistralai/Mistral-7B-v0.1", "hidden_act": "silu",
        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
        "sliding_window": 4096,
    },
    "qwen2.5-7b": {
        "model_type": "qwen2", "source": "Qwen/Qwen2.5-7B", "hidden_act": "silu",
        "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
        "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
    },
    "smollm2-135m": {
        **_LLAMA, "source": "HuggingFaceTB/SmolLM2-135M",
        "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
        "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
    },
}

#: The embedded model of the course: its config lives beside its weights in coursekit/models/tiny.
EMBEDDED = (EMBEDDED_MODEL,)


def preset_names() -> list[str]:
    """Every name ``resolve_arch`` accepts besides a config.json path."""
    return list(PRESETS) + list(EMBEDDED)
