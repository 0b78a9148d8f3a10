"""The Hugging Face recipe behind ``finetune``, and a check that a recipe written by hand builds the same run.

``finetune`` is TRL's recipe plus measurement: it builds an ``SFTConfig``, for the PEFT methods a peft config (a
``LoraConfig`` for LoRA and QLoRA), takes the model as ``from_pretrained`` loaded it (with a ``BitsAndBytesConfig``
for QLoRA), and calls ``SFTTrainer(...).train()``. ``RunResult.training_arguments``, ``.peft_config`` and
``.quantization_config`` keep what it built, as plain dicts. ``recipe_differences`` puts them next to the configs a
lesson writes out by hand, key by key, and ``recipe_report`` says in a sentence whether the two agree.

Keys that name where a run writes, logs, evaluates or saves (``BOOKKEEPING``) are not compared: they change what is
recorded, not what is trained.
"""
from __future__ import annotations

import enum

from coursekit.notebook import count

#: SFTConfig keys about output, logging, evaluation, saving and device placement, not about training.
BOOKKEEPING = frozenset({
    "output_dir", "run_name", "report_to", "disable_tqdm", "logging_dir", "logging_strategy", "logging_steps",
    "logging_first_step", "logging_nan_inf_filter", "do_eval", "eval_strategy", "eval_steps", "eval_on_start",
    "per_device_eval_batch_size", "eval_accumulation_steps", "save_strategy", "save_steps", "save_total_limit",
    "metric_for_best_model", "greater_is_better", "load_best_model_at_end", "include_num_input_tokens_seen",
    "dataloader_pin_memory", "use_cpu", "hub_token", "push_to_hub_token",
})

#: peft config keys filled in by peft itself when the config is applied to a model.
PEFT_FILLED_IN = frozenset({"base_model_name_or_path", "revision", "inference_mode", "peft_version",
                            "runtime_config"})


def _plain_value(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(_plain_value(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if type(value).__module__ == "torch" and type(value).__name__ == "dtype":
        return str(value).removeprefix("torch.")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def config_dict(config) -> dict:
    """An ``SFTConfig``, peft config or ``BitsAndBytesConfig`` (or a dict of one) as a dict of plain values."""
    if config is None:
        return {}
    if isinstance(config, dict):
        raw = config
    elif hasattr(config, "to_dict"):
        raw = config.to_dict()
    else:
        raise TypeError(f"expected a config object with to_dict() or a dict, got {type(config).__name__}")
    return {str(k): _plain_value(v) for k, v in raw.items()}


def recipe_differences(shown, built, *, ignore=BOOKKEEPING) -> list[tuple[str, object, object]]:
    """``(key, shown value, built value)`` for every key where the two configs differ, ``ignore`` left out.

    ``shown``: the config a lesson builds by hand; ``built``: what ``finetune`` built (``RunResult``'s
    ``training_arguments``, ``peft_config`` or ``quantization_config``). A key missing on one side counts as a
    difference.
    """
    a, b = config_dict(shown), config_dict(built)
    if not a or not b:
        raise ValueError("both configs are needed: " + ("the shown one is empty" if not a else "the built one is empty"))
    missing = object()
    rows = []
    for key in sorted(set(a) | set(b)):
        if key in ignore:
            continue
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            rows.append((key, None if va is missing else va, None if vb is missing else vb))
    return rows


def ignored_keys(config) -> frozenset:
    """The keys left out when ``config`` is compared: ``BOOKKEEPING`` for training arguments (a transformers
    ``TrainingArguments`` such as ``SFTConfig``, or its dict), ``PEFT_FILLED_IN`` for a peft config (or its dict),
    nothing for others (``BitsAndBytesConfig``)."""
    keys = set(config_dict(config))
    if "output_dir" in keys and "learning_rate" in keys:
        return BOOKKEEPING
    if "peft_type" in keys:
        return PEFT_FILLED_IN
    return frozenset()


def recipe_report(pairs: dict, *, expected: dict | None = None) -> tuple[bool, str]:
    """Compare several configs at once and say what differs, in Markdown.

    ``pairs``: ``{"SFTConfig": (shown, built), "LoraConfig": (shown, built), ...}``; the labels only name the configs
    in the text, the keys left out are chosen by what each config is (:func:`ignored_keys`). ``expected``: keys
    allowed to differ, with the reason (``{"max_steps": "the recipe runs a few steps, the measured run more"}``).
    Returns ``(same, markdown)``: ``same`` is True when nothing differs beyond ``expected``.
    """
    expected = dict(expected or {})
    lines, same, compared = [], True, 0
    for name, (shown, built) in pairs.items():
        shown, built = config_dict(shown), config_dict(built)  # once: both are plain dicts from here on
        ignore = ignored_keys(shown) | ignored_keys(built)
        diffs = recipe_differences(shown, built, ignore=ignore)
        compared += len((set(shown) | set(built)) - ignore)
        for key, va, vb in diffs:
            if key in expected:
                lines.append(f"`{name}.{key}`: {va!r} on the page, {vb!r} in `finetune` ({expected[key]})")
            else:
                same = False
                lines.append(f"`{name}.{key}`: **{va!r} on the page, {vb!r} in `finetune`**")
    quoted = [f"`{n}`" for n in pairs]
    names = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    settings = count(compared, "setting")
    head = (f"The recipe above and `finetune` built the same {names}" + (" except where expected" if lines else "")
            + f" ({settings} compared, leaving aside where each run writes and logs)" if same else
            f"The recipe above and `finetune` do **not** build the same {names} ({settings} compared)")
    return same, head + (": " + "; ".join(lines) + "." if lines else ".")


#: SFTConfig keys that the config fills in itself after construction (not a choice of the recipe), among them the
#: newer names of renamed settings, whose declared defaults sit on the older names (``NEWER_NAME``).
FILLED_IN_AFTER_INIT = frozenset({"accelerator_config", "debug", "eos_token", "pad_token", "pad_to_multiple_of",
                                  "activation_checkpointing", "activation_checkpointing_kwargs"})
#: a setting whose declared default sits on its older name, shown under the name a recipe writes today
NEWER_NAME = {"gradient_checkpointing": "activation_checkpointing",
              "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs"}
#: what a TRL config builds from a declared default of None (trl/trainer/base_config.py: bf16 = not fp16)
TRL_BUILT_FROM_NONE = {"bf16": "built as `True` unless `fp16`"}


def changed_defaults(config) -> list[tuple[str, object, object]]:
    """``(key, the library's default, this config's value)`` for each setting a config changes from its defaults.

    The defaults are the dataclass's declared ones (``None`` means the config decides when it is built: TRL's
    configs turn ``bf16=None`` into ``True`` unless ``fp16`` is set, and transformers then refuses it on a device
    without bf16, so a CPU recipe sets ``bf16=False``). Keys in ``BOOKKEEPING`` and
    ``FILLED_IN_AFTER_INIT`` are left out; ``gradient_checkpointing``, which carries the declared default, is
    reported under its current name ``activation_checkpointing`` (``NEWER_NAME``).
    """
    import dataclasses

    if not dataclasses.is_dataclass(config):
        raise TypeError(f"expected a config dataclass such as SFTConfig, got {type(config).__name__}")
    values = config_dict(config)
    rows = []
    for f in dataclasses.fields(config):
        if f.name in BOOKKEEPING or f.name in FILLED_IN_AFTER_INIT or f.name not in values:
            continue
        if f.default is not dataclasses.MISSING:
            default = _plain_value(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = _plain_value(f.default_factory())
        else:
            continue
        if default != values[f.name]:
            rows.append((NEWER_NAME.get(f.name, f.name), default, values[f.name]))
    return rows


def changed_defaults_markdown(config) -> str:
    """``changed_defaults`` as a Markdown table."""
    built = TRL_BUILT_FROM_NONE if type(config).__module__.startswith("trl") else {}
    rows = [(k, f"`{d!r}`" + (f" ({built[k]})" if d is None and k in built else ""), v)
            for k, d, v in changed_defaults(config)]
    return (f"| `{type(config).__name__}` setting | library default | this recipe |\n|---|---|---|\n"
            + "\n".join(f"| `{k}` | {d} | `{v!r}` |" for k, d, v in rows))


__all__ = ["BOOKKEEPING", "FILLED_IN_AFTER_INIT", "NEWER_NAME", "TRL_BUILT_FROM_NONE", "changed_defaults",
           "changed_defaults_markdown", "config_dict", "recipe_differences", "recipe_report"]
