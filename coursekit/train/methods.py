"""The fine-tuning methods ``finetune`` knows, as a small registry.

A method is a name, the options it accepts (with defaults), a default learning rate and optimizer, and a
``prepare(model, options, run)`` function that returns the model to train (the same model for full fine-tuning,
a PEFT-wrapped one for LoRA and friends). Adding a method to the course is one ``register_method(Method(...))``
call; the engine stays the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from coursekit.validate import boolean, fraction, positive_int, positive_number


@dataclass
class Method:
    name: str
    description: str
    prepare: Callable[[Any, dict, dict], Any]
    options: dict[str, Any] = field(default_factory=dict)  # option name -> default
    learning_rate: float = 2e-5
    optim: str = "adamw_torch"
    needs_quantized_model: bool = False
    saves: str = "model"  # what lands on disk: "model" (every weight) or "adapter" (the trainable weights only)
    check: Callable[[dict], None] | None = None  # raises ValueError on a bad option value, before anything runs


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add (or replace) a method; returns it so the call can be used as a one-liner."""
    if not isinstance(method, Method):
        raise ValueError(f"register_method expects a coursekit.train.Method, got {type(method).__name__}")
    if not method.name or not method.name.replace("_", "").isalnum():
        raise ValueError(f"a method name is a short word (letters, digits, _), got {method.name!r}")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


def methods_accepting(option: str) -> list[str]:
    return [m.name for m in METHODS.values() if option in m.options]


# --------------------------------------------------------------------------------------------------------------------
# prepare functions. ``run`` carries what the engine decided: {"gradient_checkpointing": bool, "device": str}.


def _prepare_full(model, options, run):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def _lora_config(options, use_dora=False):
    from peft import LoraConfig

    return LoraConfig(
        r=int(options["rank"]),
        lora_alpha=options["alpha"],
        lora_dropout=options["dropout"],
        target_modules=options["target_modules"],
        use_rslora=options["use_rslora"],
        use_dora=use_dora,
        bias="none",
        task_type="CAUSAL_LM",
    )


def _check_lora_options(options):
    positive_int("rank", options["rank"])
    positive_number("alpha", options["alpha"], hint="often 2 * rank, or fixed with use_rslora=True")
    fraction("dropout", options["dropout"])
    boolean("use_rslora", options["use_rslora"])  # True: scale alpha/sqrt(rank); False: alpha/rank


def _prepare_lora(model, options, run):
    from peft import get_peft_model

    return get_peft_model(model, _lora_config(options))


def _prepare_dora(model, options, run):
    from peft import get_peft_model

    return get_peft_model(model, _lora_config(options, use_dora=True))


def _prepare_qlora(model, options, run):
    from peft import get_peft_model, prepare_model_for_kbit_training

    if run["device"] == "cpu":
        from coursekit.bnb_cpu import keep_4bit_layout_on_cpu

        keep_4bit_layout_on_cpu(model)  # bitsandbytes' CPU repacking breaks the backward pass (see there)
    model = prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=run["gradient_checkpointing"],
        gradient_checkpointing_kwargs={"use_reentrant": False} if run["gradient_checkpointing"] else None,
    )
    return get_peft_model(model, _lora_config(options))


def _prepare_ia3(model, options, run):
    from peft import IA3Config, get_peft_model

    cfg = IA3Config(
        target_modules=options["target_modules"],
        feedforward_modules=options["feedforward_modules"],
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def _check_virtual_tokens(options):
    positive_int("num_virtual_tokens", options["num_virtual_tokens"])


def _module_names(name: str, value) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{name} must be a module name or a non-empty list of them (e.g. ['k_proj', 'v_proj']), "
                         f"got {value!r}")
    return list(value)


def _check_ia3_options(options):
    targets = _module_names("target_modules", options["target_modules"])
    feedforward = _module_names("feedforward_modules", options["feedforward_modules"])
    missing = [m for m in feedforward if m not in targets]
    if missing:  # peft requires feedforward_modules to be a subset of target_modules
        raise ValueError(f"feedforward_modules {missing} are not in target_modules {targets}; every feed-forward "
                         "module IA3 scales must also be a target")


def _check_adapter_options(options):
    positive_int("bottleneck", options["bottleneck"])


def _prepare_prefix(model, options, run):
    from peft import PrefixTuningConfig, get_peft_model

    return get_peft_model(model, PrefixTuningConfig(num_virtual_tokens=options["num_virtual_tokens"],
                                                    task_type="CAUSAL_LM"))


def _prepare_prompt(model, options, run):
    from peft import PromptTuningConfig, get_peft_model

    return get_peft_model(model, PromptTuningConfig(num_virtual_tokens=options["num_virtual_tokens"],
                                                    task_type="CAUSAL_LM"))


def _prepare_adapter(model, options, run):
    """Houlsby bottleneck adapters from the course's own implementation (coursekit.scratch)."""
    b = int(options["bottleneck"])
    from coursekit import scratch  # imported here: it is another lesson's module

    before = {id(p) for p in model.parameters()}
    out = scratch.inject_adapters(model, b)  # modifies the model in place
    if hasattr(out, "parameters"):
        model = out
    # Whatever inject_adapters left trainable, only the new adapter weights train.
    for p in model.parameters():
        p.requires_grad_(id(p) not in before)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("inject_adapters added no trainable parameters; nothing to train")
    return model


# dropout 0 is peft's LoraConfig default: a regulariser for long runs on small data, and these runs are short
_LORA_OPTIONS = {"rank": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear", "use_rslora": False}

register_method(Method("full", "every weight trains", _prepare_full,
                       learning_rate=2e-5))
register_method(Method("lora", "low-rank adapters beside frozen weights", _prepare_lora, dict(_LORA_OPTIONS),
                       learning_rate=3e-4, saves="adapter", check=_check_lora_options))
register_method(Method("qlora", "LoRA on a 4-bit (NF4) frozen model, paged 8-bit optimizer", _prepare_qlora,
                       dict(_LORA_OPTIONS), learning_rate=2e-4, optim="paged_adamw_8bit",
                       needs_quantized_model=True, saves="adapter", check=_check_lora_options))
register_method(Method("dora", "weight-decomposed LoRA (magnitude + direction)", _prepare_dora,
                       dict(_LORA_OPTIONS), learning_rate=3e-4, saves="adapter", check=_check_lora_options))
register_method(Method("ia3", "learned rescaling vectors on keys, values and feed-forward", _prepare_ia3,
                       {"target_modules": ["k_proj", "v_proj", "down_proj"], "feedforward_modules": ["down_proj"]},
                       learning_rate=3e-3, saves="adapter", check=_check_ia3_options))
register_method(Method("prefix", "trainable key/value prefixes in every layer", _prepare_prefix,
                       {"num_virtual_tokens": 16}, learning_rate=1e-2, saves="adapter", check=_check_virtual_tokens))
register_method(Method("prompt", "trainable soft-prompt embeddings before the input", _prepare_prompt,
                       {"num_virtual_tokens": 16}, learning_rate=1e-2, saves="adapter", check=_check_virtual_tokens))
register_method(Method("adapter", "Houlsby bottleneck adapters (coursekit.scratch)", _prepare_adapter,
                       {"bottleneck": 64}, learning_rate=1e-3, saves="adapter", check=_check_adapter_options))
