"""Reusing a finished run: the same starting weights, data, settings and libraries train the same model.

Lessons 01 and 04 train the same LoRA run on the embedded model (100 steps of 16 on the same data, the same seed).
With ``finetune(..., reuse=True)`` the first of them stores what it trained (the trainable tensors and the
record of the run) under a key made of everything that decides the training, and a later identical run loads it
instead of training again: its "after" measurements still run, on its own tickets.

The key (a digest) covers:

- the model as it is about to train: every parameter's bytes after the method prepared it (the base weights, a
  4-bit base as stored, the new adapter's initial values) and the model's config;
- the tokenizer (its vocabulary and merges, chat template, special tokens);
- the rows the trainer reads and the validation rows it scores, after formatting;
- every training setting (method and its options, learning rate, schedule, batch, accumulation, precision, device,
  seed, evaluation and logging steps, ...), not the measurement settings (tickets scored, probe, titles);
- the versions of the training stack (``coursekit.env.STACK_PACKAGES``) and the source of ``coursekit.train``.

A changed library, a changed engine or one different row gives another key, so nothing stale is loaded. A folder
that cannot be read back is reported and trained again, never half-used.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from coursekit.env import stack_versions

#: FinetuneOptions that decide what the run trains (everything else is measuring, saving or showing).
TRAINING_OPTIONS = ("epochs", "max_steps", "warmup", "lr_scheduler", "weight_decay", "max_grad_norm", "max_length",
                    "packing", "gradient_checkpointing", "eval_every", "eval_size", "log_every",
                    "early_stopping_patience", "seed", "adapter_dtype")
#: RunResult fields that describe the training itself (the rest is measured again by the reusing run)
RECORDED_FIELDS = ("train_loss", "eval_loss", "train_seconds", "train_tokens", "tokens_per_second", "steps",
                   "stopped_early", "peak_memory_bytes", "memory_measured_as", "batch_size", "grad_accum",
                   "oom_retries", "training_arguments", "peft_config", "quantization_config")
_TENSORS, _RECORD = "trained.safetensors", "run.json"


def runs_cache() -> Path:
    """Where reusable runs are kept: ``$COURSEKIT_RUNS_CACHE``, else ``$COURSEKIT_CACHE/runs`` (default
    ``~/.cache/coursekit/runs``). ``coursekit course`` gives each course run its own (``OUT/run-cache``)."""
    if os.environ.get("COURSEKIT_RUNS_CACHE"):
        return Path(os.environ["COURSEKIT_RUNS_CACHE"]).expanduser()
    from coursekit.models.packaged import cache_root

    return cache_root() / "runs"


def _update_with_tensor(digest, tensor) -> None:
    import torch

    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
    digest.update(t.contiguous().reshape(-1).view(torch.uint8).numpy())  # the tensor's bytes, not copied


def _tokenizer_text(tokenizer) -> str:
    """The tokenizer as text: vocabulary, merges, normalizer, pre-tokenizer, template and special tokens. Not the
    fast tokenizer's padding and truncation settings: each call of the tokenizer sets those for itself."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        state.pop("padding", None)
        state.pop("truncation", None)
        vocab = json.dumps(state, sort_keys=True)
    else:
        vocab = json.dumps(sorted(tokenizer.get_vocab().items()))
    return json.dumps([vocab, getattr(tokenizer, "chat_template", None), tokenizer.special_tokens_map,
                       tokenizer.padding_side, tokenizer.truncation_side], sort_keys=True, default=str)


def _engine_source() -> str:
    folder = Path(__file__).resolve().parent
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def key_parts(model, tokenizer, train_rows: list, eval_rows: list, plan) -> dict:
    """A digest for each part of the key (model, tokenizer, settings, train rows, eval rows): stored beside each run,
    so that two runs that were expected to match can be compared part by part."""
    model_digest = hashlib.blake2b(digest_size=16)
    config = getattr(model, "config", None)
    model_digest.update((config.to_json_string(use_diff=False) if hasattr(config, "to_json_string") else "").encode())
    for name, param in model.named_parameters():
        model_digest.update(name.encode())
        _update_with_tensor(model_digest, param)
    settings = {
        "method": plan.method.name, "method_options": plan.method_options, "learning_rate": plan.learning_rate,
        "optim": plan.optim, "batch_size": plan.batch_size, "grad_accum": plan.grad_accum, "bf16": plan.bf16,
        "device": plan.device, "max_length": plan.max_length,
        **{name: getattr(plan.options, name) for name in TRAINING_OPTIONS},
        "versions": stack_versions(), "engine": _engine_source(),
    }
    parts = {"model": model_digest.hexdigest()}
    texts = {"tokenizer": _tokenizer_text(tokenizer), "settings": settings, "train_rows": train_rows,
             "eval_rows": eval_rows[: int(plan.options.eval_size)]}
    for name, part in texts.items():
        parts[name] = hashlib.blake2b(json.dumps(part, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()
    return parts


def key_of(parts: dict) -> str:
    """The run's key: one digest of its ``key_parts``."""
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=20).hexdigest()


def run_key(model, tokenizer, train_rows: list, eval_rows: list, plan) -> str:
    """The digest of everything that decides what ``plan`` trains from ``model`` (see the module's docstring)."""
    return key_of(key_parts(model, tokenizer, train_rows, eval_rows, plan))


def _trainable(model) -> dict:
    return {name: param for name, param in model.named_parameters() if param.requires_grad}


def load(key: str, model, result, folder: Path | None = None):
    """The run stored under ``key`` put into ``model`` (its trainable tensors, with their stored dtype) and
    ``result`` (what the training recorded); True if found and complete, False if there is none. A stored run that
    cannot be read back is reported, removed and not used."""
    from safetensors.torch import load_file

    run = (folder or runs_cache()) / key
    if not (run / _RECORD).is_file() or not (run / _TENSORS).is_file():
        return False
    try:
        record = json.loads((run / _RECORD).read_text())
        tensors = load_file(str(run / _TENSORS))
        params = _trainable(model)
        if set(tensors) != set(params) or any(tensors[n].shape != params[n].shape for n in params):
            raise ValueError("its tensors do not match this model's trainable parameters")
    except Exception as err:  # noqa: BLE001 - any unreadable store is trained again, with the reason shown
        warnings.warn(f"the stored run {run} could not be read back ({err}); training again and storing it anew",
                      stacklevel=3)
        shutil.rmtree(run, ignore_errors=True)
        return False
    for name, param in params.items():
        param.data = tensors[name].to(param.device)
    for name in RECORDED_FIELDS:
        value = record["result"][name]
        if name in ("train_loss", "eval_loss"):
            value = [tuple(point) for point in value]
        setattr(result, name, value)
    result.reused_from = str(run)
    result.reused_title = str(record.get("config", {}).get("title") or record.get("method", ""))
    return True


def store(key: str, model, result, folder: Path | None = None, parts: dict | None = None) -> Path | None:
    """Keep what ``model`` trained and ``result``'s record of it under ``key`` (written whole, then renamed); the
    folder, or None when it could not be written (reported: the run itself is not lost, only not kept for reuse)."""
    root = folder or runs_cache()
    try:
        return _write(key, model, result, root, parts or {})
    except OSError as err:
        warnings.warn(f"the run could not be stored for reuse in {root} ({err}); it trained as usual", stacklevel=3)
        return None


def _write(key: str, model, result, root: Path, parts: dict) -> Path:
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key[:8]}-"))
    try:
        tensors = {n: p.detach().cpu().contiguous() for n, p in _trainable(model).items()}
        save_file(tensors, str(tmp / _TENSORS))
        record = {"key": key, "parts": parts, "method": result.method, "config": result.config,
                  "result": {name: getattr(result, name) for name in RECORDED_FIELDS}}
        (tmp / _RECORD).write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
        final = root / key
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


__all__ = ["RECORDED_FIELDS", "TRAINING_OPTIONS", "key_of", "key_parts", "load", "run_key", "runs_cache", "store"]
