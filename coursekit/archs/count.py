"""Exact parameter counts of real architectures, from a model built on the meta device (no weights, no download).

``resolve_arch`` turns a preset name, a ``config.json`` path, a dict of config fields or a transformers config into
an :class:`ArchSpec`: the shapes that matter for counting and for the memory estimator. ``count_parameters`` and
``count_lora_parameters`` are the two counts lesson 02 checks against peft.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from coursekit._results import ResultMixin
from coursekit.archs.presets import EMBEDDED, PRESETS, preset_names
from coursekit.model_ids import EMBEDDED_MODEL_DIR
from coursekit.validate import positive_int

ALL_LINEAR = "all-linear"


@dataclass(frozen=True)
class LinearShape:
    """One ``nn.Linear`` of the model: its full name, its kind (last name part), and its shape."""

    name: str
    kind: str
    in_features: int
    out_features: int
    bias: bool
    in_decoder: bool  # inside model.layers (the part QLoRA quantizes)

    @property
    def weight_parameters(self) -> int:
        return self.in_features * self.out_features


@dataclass(repr=False)
class ArchSpec(ResultMixin):
    """What the counting and the estimator need to know about an architecture."""

    name: str
    model_type: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    total_parameters: int
    parameters_by_kind: dict = field(default_factory=dict)  # kind -> parameters (tied weights counted once)
    linears: tuple = ()  # LinearShape, every nn.Linear incl. lm_head
    param_numels: tuple = ()  # numel of every parameter tensor (tied once): 8-bit optimizers treat small ones apart
    config_fields: dict = field(default_factory=dict)

    @property
    def linear_kinds(self) -> list[str]:
        return list(dict.fromkeys(lin.kind for lin in self.linears))

    @property
    def decoder_linear_parameters(self) -> int:
        """Weights (and biases) of the Linear layers inside the decoder blocks: what bitsandbytes stores in 4 bits."""
        return sum(lin.weight_parameters for lin in self.linears if lin.in_decoder)

    def linear_bias_parameters(self, decoder_only: bool = True) -> int:
        return sum(lin.out_features for lin in self.linears if lin.bias and (lin.in_decoder or not decoder_only))

    def config(self):
        """A fresh transformers config for this architecture."""
        return _make_config(dict(self.config_fields))


def _make_config(fields: dict):
    from transformers import AutoConfig

    fields = {k: v for k, v in fields.items() if k not in {"source", "architectures", "transformers_version"}}
    model_type = fields.pop("model_type", None)
    if not model_type:
        raise ValueError("a config needs a 'model_type' field (for example 'llama', 'mistral', 'qwen2')")
    try:
        return AutoConfig.for_model(model_type, **fields)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"transformers does not know model_type {model_type!r}: {exc}") from None


def build_meta_model(arch):
    """The architecture as a transformers model on the meta device: shapes without storage (instant, no download)."""
    import torch
    from transformers import AutoModelForCausalLM

    spec = resolve_arch(arch)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(spec.config())


def _fields_from(arch) -> tuple[str, dict]:
    """(name, config fields) from a preset name, a config.json path/folder, a dict or a transformers config."""
    if isinstance(arch, ArchSpec):
        return arch.name, dict(arch.config_fields)
    if isinstance(arch, dict):
        if not arch:
            raise ValueError("an architecture given as a dict needs config fields (model_type, hidden_size, ...)")
        return str(arch.get("name", "custom")), {k: v for k, v in arch.items() if k != "name"}
    if hasattr(arch, "to_dict") and hasattr(arch, "model_type"):
        return getattr(arch, "name_or_path", "") or "custom", arch.to_dict()
    if isinstance(arch, os.PathLike):
        arch = os.fspath(arch)
    if not isinstance(arch, str) or not arch.strip():
        raise ValueError(f"architecture must be a preset name, a config.json path, a dict or a config; got {arch!r}")
    key = arch.strip().lower()
    if key in PRESETS:
        return key, dict(PRESETS[key])
    if key in EMBEDDED:
        return key, json.loads((EMBEDDED_MODEL_DIR / "config.json").read_text())
    path = Path(arch).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        try:
            return str(arch), json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
    raise ValueError(
        f"unknown architecture {arch!r}; allowed: {', '.join(preset_names())}, or a path to a config.json (or its folder)"
    )


def resolve_arch(arch) -> ArchSpec:
    """An :class:`ArchSpec` for ``arch`` (preset name, config.json path or folder, dict of fields, or a config)."""
    if isinstance(arch, ArchSpec):
        return arch
    name, fields = _fields_from(arch)
    return _spec_cached(name, json.dumps(fields, sort_keys=True, default=str))


@functools.lru_cache(maxsize=64)
def _spec_cached(name: str, fields_json: str) -> ArchSpec:
    import torch
    from transformers import AutoModelForCausalLM

    fields = json.loads(fields_json)
    config = _make_config(dict(fields))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    by_kind: dict[str, int] = {}
    numels = []
    seen = set()
    for pname, p in model.named_parameters():  # named_parameters() yields a tied tensor once
        if id(p) in seen:
            continue
        seen.add(id(p))
        numels.append(p.numel())
        parts = pname.split(".")
        kind = parts[-2] if parts[-1] in {"weight", "bias"} and len(parts) > 1 else parts[-1]
        by_kind[kind] = by_kind.get(kind, 0) + p.numel()
    linears = []
    for mname, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            linears.append(LinearShape(
                name=mname, kind=mname.split(".")[-1], in_features=module.in_features,
                out_features=module.out_features, bias=module.bias is not None,
                in_decoder=".layers." in f".{mname}.",
            ))
    c = config
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    return ArchSpec(
        name=name,
        model_type=c.model_type,
        hidden_size=c.hidden_size,
        intermediate_size=getattr(c, "intermediate_size", 4 * c.hidden_size),
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=heads,
        num_key_value_heads=getattr(c, "num_key_value_heads", None) or heads,
        head_dim=head_dim,
        vocab_size=c.vocab_size,
        tie_word_embeddings=bool(getattr(c, "tie_word_embeddings", False)),
        total_parameters=sum(by_kind.values()),
        parameters_by_kind=by_kind,
        linears=tuple(linears),
        param_numels=tuple(numels),
        config_fields=fields,
    )


@dataclass(repr=False)
class ParameterCount(ResultMixin):
    arch: str
    total_parameters: int
    trainable_parameters: int
    lora_parameters: int = 0
    lora_rank: int = 0
    lora_targets: list = field(default_factory=list)
    parameters_by_kind: dict = field(default_factory=dict)

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_parameters / self.total_parameters


def count_parameters(arch) -> int:
    """Total parameters of ``arch`` exactly as ``sum(p.numel() for p in model.parameters())`` (tied weights once)."""
    return resolve_arch(arch).total_parameters


def parameters_by_kind(arch) -> dict[str, int]:
    """Parameters per module kind (``embed_tokens``, ``q_proj``, ``input_layernorm``, ...), summed over layers."""
    return dict(resolve_arch(arch).parameters_by_kind)


def lora_target_modules(arch, targets="all-linear") -> list[LinearShape]:
    """The Linear layers a LoRA config with ``target_modules=targets`` wraps, as peft chooses them.

    ``"all-linear"`` means every Linear except the output layer (peft leaves ``lm_head`` out); a list (or a
    comma-separated string) names module kinds such as ``q_proj`` or full module names.
    """
    spec = resolve_arch(arch)
    if isinstance(targets, str):
        if targets.strip().lower() == ALL_LINEAR:
            return [lin for lin in spec.linears if lin.kind != "lm_head" and lin.in_decoder]
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    targets = list(targets or [])
    if not targets:
        raise ValueError(f"targets is empty; give '{ALL_LINEAR}' or module names such as "
                         f"{', '.join(spec.linear_kinds)}")
    chosen, unknown = [], []
    for t in targets:
        if not isinstance(t, str):
            raise ValueError(f"a target must be a module name string, got {t!r}")
        hits = [lin for lin in spec.linears if lin.kind == t or lin.name == t or lin.name.endswith("." + t)]
        if not hits:
            unknown.append(t)
        chosen += hits
    if unknown:
        raise ValueError(f"{spec.name} has no Linear module named {', '.join(map(repr, unknown))}; "
                         f"it has: {', '.join(spec.linear_kinds)} (or '{ALL_LINEAR}')")
    return list({lin.name: lin for lin in chosen}.values())


def _check_rank(rank) -> int:
    return positive_int("LoRA rank", rank)


def count_lora_parameters(arch, rank: int = 16, targets="all-linear") -> int:
    """Trainable parameters LoRA adds: ``rank * (in + out)`` per targeted Linear (A is r×in, B is out×r), as peft does."""
    rank = _check_rank(rank)
    mods = lora_target_modules(arch, targets)
    too_small = [m for m in mods if rank > min(m.in_features, m.out_features)]
    if too_small:
        m = too_small[0]
        raise ValueError(f"rank {rank} is larger than {m.name}'s dimensions ({m.out_features}×{m.in_features}); "
                         f"the largest rank for these targets is {min(min(x.in_features, x.out_features) for x in mods)}")
    return sum(rank * (m.in_features + m.out_features) for m in mods)


def parameter_report(arch, lora_rank: int | None = None, targets="all-linear") -> ParameterCount:
    """Total, trainable and per-kind counts; with ``lora_rank`` the trainable ones are LoRA's."""
    spec = resolve_arch(arch)
    if lora_rank is None:
        return ParameterCount(arch=spec.name, total_parameters=spec.total_parameters,
                              trainable_parameters=spec.total_parameters,
                              parameters_by_kind=dict(spec.parameters_by_kind))
    lora = count_lora_parameters(spec, lora_rank, targets)
    names = sorted({m.kind for m in lora_target_modules(spec, targets)}, key=spec.linear_kinds.index)
    return ParameterCount(arch=spec.name, total_parameters=spec.total_parameters + lora, trainable_parameters=lora,
                          lora_parameters=lora, lora_rank=lora_rank, lora_targets=names,
                          parameters_by_kind=dict(spec.parameters_by_kind))
