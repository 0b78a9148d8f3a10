"""``finetune``: one entry point for full fine-tuning, LoRA, QLoRA and the other PEFT methods.

Built on TRL's ``SFTTrainer`` (itself a ``transformers.Trainer``): the library's training loop, loss on the
response only (prompt/completion rows), gradient accumulation, a cosine schedule with warmup, bf16 where the device
has it, optional gradient checkpointing, evaluation during training, early stopping on validation loss, and
checkpoints that resume. What is specific to a method lives in ``coursekit.train.methods``.

Read it top to bottom:

- ``FinetuneOptions``: the options every method takes, with their defaults and a line of help each.
- ``RunPlan``: what the run does, decided once from the options, the method, the device and the model (device,
  bf16, micro-batch, gradient accumulation, learning rate, optimizer, sequence lengths).
- ``finetune``: check every input (no training starts on bad input), prepare the data, measure the model before,
  prepare it for the method, train (retrying with half the micro-batch on a CUDA out-of-memory error), collect the
  results, measure after, save.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import random
import re
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from coursekit._results import ResultMixin
from coursekit.memory.peak import PeakMemory, estimated_training_bytes, model_bytes
from coursekit.train.data import check_lengths, row_kind, to_prompt_completion
from coursekit.train.methods import METHODS, Method, get_method, methods_accepting
from coursekit.train.recipe import config_dict
from coursekit.units import gb_and_gib_text
from coursekit.validate import is_finite_number

DEVICE_BATCH = {"cpu": (16, 1), "mps": (8, 2), "cuda": (4, 4)}  # device -> (micro-batch, gradient accumulation)
RUN_NAME = re.compile(r"^(?P<method>[A-Za-z0-9_]+)-(?P<n>\d{3,})$")


# --------------------------------------------------------------------------------------------------------------------
# the options


@dataclass(frozen=True)
class _Rule:
    """What an option allows: ``ok(value)``, and the words for it in the error ("must be <allowed>, got ...").

    The predicate underneath is ``coursekit.validate.is_finite_number``; the rules stay a table of their own because
    an integer option here also takes a whole float (``batch_size=4.0``, as arithmetic or a JSON file gives it), which
    ``validate.positive_int`` refuses."""

    allowed: str
    ok: Callable[[Any], bool]
    optional: bool = False  # None is allowed too (decided at run time)


_POSITIVE = _Rule("a positive number", lambda v: is_finite_number(v) and v > 0)
_POSITIVE_OR_NONE = replace(_POSITIVE, optional=True)
_POSITIVE_INT = _Rule("a positive integer", lambda v: is_finite_number(v) and v > 0 and float(v).is_integer())
_POSITIVE_INT_OR_NONE = replace(_POSITIVE_INT, optional=True)
_NON_NEGATIVE = _Rule(">= 0", lambda v: is_finite_number(v) and v >= 0)
_WARMUP = replace(_NON_NEGATIVE, allowed=">= 0 (a fraction below 1, or a number of steps)")
_AUTO_OR_BOOL = _Rule("None (auto), True or False", lambda v: v is None or isinstance(v, bool))
_ADAPTER_DTYPES = ("fp32", "bf16")
_ADAPTER_DTYPE = _Rule("None (auto), \"fp32\" or \"bf16\"", lambda v: v is None or v in _ADAPTER_DTYPES)


def _option(default, help: str, check: _Rule | None = None):
    return field(default=default, metadata={"help": help, "check": check})


@dataclass(frozen=True)
class FinetuneOptions:
    """The options every method of ``finetune`` takes (``dataclasses.fields(FinetuneOptions)``: each field's
    ``metadata["help"]`` says what it does). None means "decided at run time", by the method or the device: see
    ``RunPlan``. A method's own options (``rank``, ``num_virtual_tokens``, ...) are in ``METHODS[name].options``."""

    learning_rate: float | None = _option(
        None, "None: the method's default (full 2e-5 as in the common recipe, LoRA 3e-4, QLoRA 2e-4, ...)",
        _POSITIVE_OR_NONE)
    epochs: float = _option(3, "passes over the training set (the common recipe's 3); ignored when max_steps is set",
                            _POSITIVE)
    max_steps: int | None = _option(
        None, "optimizer steps; overrides epochs (the run reads max_steps x batch x accumulation examples of train, "
        "drawn at random with the seed)", _POSITIVE_INT_OR_NONE)
    batch_size: int | None = _option(None, "micro-batch per device; None: cpu 16, mps 8, cuda 4",
                                     _POSITIVE_INT_OR_NONE)
    grad_accum: int | None = _option(
        None, "gradient accumulation steps; None: cpu 1, mps 2, cuda 4 (effective 16, as in the common recipe)",
        _POSITIVE_INT_OR_NONE)
    warmup: float = _option(0.1, "below 1: a fraction of the steps (the common 10% heuristic); 1 or more: a number "
                            "of steps", _WARMUP)
    lr_scheduler: str = _option("cosine", "the learning-rate schedule (transformers' lr_scheduler_type)")
    weight_decay: float = _option(0.01, "AdamW's decoupled weight decay", _NON_NEGATIVE)
    max_grad_norm: float = _option(1.0, "gradient clipping")
    max_length: int | None = _option(None, "longest sequence allowed (tokens); None: the model's context",
                                     _POSITIVE_INT_OR_NONE)
    packing: bool = _option(False, "pack several examples per row (TRL best-fit packing; padding-free)")
    gradient_checkpointing: bool = _option(False, "recompute activations in the backward pass: less memory, slower")
    optim: str | None = _option(None, "the Trainer's optimizer; None: the method's default (\"adamw_torch\"; "
                                "\"paged_adamw_8bit\" for QLoRA)")
    bf16: bool | None = _option(None, "None: bf16 on a CUDA GPU that supports it, fp32 elsewhere (CPU, MPS)",
                                _AUTO_OR_BOOL)
    adapter_dtype: str | None = _option(
        None, "the dtype of an adapter method's trainable weights; None: as the libraries make them (peft: fp32; "
        "on a 4-bit model TRL's SFTTrainer casts them to bf16, as the QLoRA paper does), except fp32 on a 4-bit model "
        "when the run does not compute in bf16; \"fp32\" or \"bf16\" to choose", _ADAPTER_DTYPE)
    eval_every: int | None = _option(None, "optimizer steps between evaluations; None: 5 evaluations per run (and "
                                     "one at step 0)", _POSITIVE_INT_OR_NONE)
    eval_size: int = _option(64, "validation examples used for the validation loss", _POSITIVE_INT)
    log_every: int | None = _option(None, "optimizer steps between training-loss points; None: about 40 points per "
                                    "run", _POSITIVE_INT_OR_NONE)
    early_stopping_patience: int | None = _option(
        None, "stop after this many evaluations without a better validation loss", _POSITIVE_INT_OR_NONE)
    save_every: int | None = _option(None, "optimizer steps between resumable checkpoints; None: none during training",
                                     _POSITIVE_INT_OR_NONE)
    save_final: bool = _option(True, "save the trained weights (full model, or only the adapter) to OUTPUT_DIR/final")
    output_dir: str | None = _option(None, "None: a new numbered folder RUNS_DIR/METHOD-NNN")
    runs_dir: str = _option("runs", "where the numbered run folders go")
    resume: bool = _option(False, "continue the run in output_dir from its last checkpoint")
    reuse: bool = _option(
        False, "load an identical earlier run (same starting weights, data, training settings and libraries: "
        "coursekit.train.reuse) from the run cache instead of training again, and store this run there if none; "
        "the after-measurements still run")
    seed: int = _option(0, "seeds the model's new weights, dropout and the data order")
    device: str = _option("auto", "\"auto\" (cuda, then mps, then cpu), \"cuda\", \"mps\" or \"cpu\"")
    progress: Any = _option("auto", "progress bar + live loss plot: on in a notebook someone watches, off in tests")
    measure_task: bool = _option(True, "task metric before and after")
    measure_general: bool = _option(True, "general-skills probe before and after")
    measure_before: bool = _option(True, "False: skip the \"before\" measurements (already known for this base model)")
    metric_examples: int = _option(64, "examples scored for the task metric", _POSITIVE_INT)
    perplexity_texts: list | None = _option(None, "texts for held-out perplexity before and after (None: not "
                                            "measured)")
    title: str = _option("", "shown on the progress bar and the live plot")
    max_oom_retries: int = _option(3, "CUDA out-of-memory retries, each with half the micro-batch")

    def check(self) -> None:
        """Each option against its rule, then the two that depend on each other."""
        for f in fields(self):
            rule, value = f.metadata["check"], getattr(self, f.name)
            if rule and not (rule.optional and value is None) and not rule.ok(value):
                raise ValueError(f"{f.name} must be {rule.allowed}, got {value!r}")
        if self.early_stopping_patience and self.save_every:
            raise ValueError("early_stopping_patience keeps the best checkpoint and save_every keeps regular ones; "
                             "set one of them, not both")
        if self.resume and not self.output_dir:
            raise ValueError("resume=True needs output_dir: the folder of the run to continue")


#: option -> default, for every method (derived from FinetuneOptions, the source of truth)
COMMON_OPTIONS: dict = {f.name: f.default for f in fields(FinetuneOptions)}


def check_options(method: Method, options: dict) -> tuple[FinetuneOptions, dict]:
    """``options`` split into the common ones (checked) and the method's own (its defaults filled in); a ValueError
    names an unknown option, an option of another method or a bad value, before anything trains."""
    for key in options:
        if key in COMMON_OPTIONS or key in method.options:
            continue
        others = methods_accepting(key)
        if others:
            raise ValueError(f"option {key!r} does not apply to method {method.name!r}; it is an option of "
                             f"{', '.join(others)}")
        allowed = sorted(set(COMMON_OPTIONS) | set(method.options))
        raise ValueError(f"unknown option {key!r}; allowed for method {method.name!r}: {', '.join(allowed)}")
    common = FinetuneOptions(**{k: v for k, v in options.items() if k in COMMON_OPTIONS})
    common.check()
    if common.adapter_dtype is not None and method.saves != "adapter":
        raise ValueError(f"adapter_dtype sets the dtype of an adapter's weights; method {method.name!r} trains the "
                         "model's own weights (their dtype is the model's: load_base_model(..., dtype=...))")
    own = {**method.options, **{k: v for k, v in options.items() if k in method.options}}
    if method.check is not None:
        method.check(own)
    return common, own


# --------------------------------------------------------------------------------------------------------------------
# the plan: what the run does, decided once


@dataclass(frozen=True)
class RunPlan:
    """What a run does: the method, its options, and what was decided from them, the device and the model."""

    method: Method
    options: FinetuneOptions
    method_options: dict
    device: str  # "cuda", "mps" or "cpu"
    bf16: bool  # bf16 autocast (options.bf16, or None: what the device supports)
    batch_size: int  # micro-batch per device (halved after an out-of-memory error)
    grad_accum: int  # gradient accumulation steps (doubled after an out-of-memory error)
    learning_rate: float  # options.learning_rate, or the method's
    optim: str  # options.optim, or the method's
    length_limit: int  # longest example allowed (tokens): the model's context (less a soft prompt) or max_length
    max_length: int | None  # SFTConfig's max_length: options.max_length, the context when packing, else None
    progress: bool  # progress bar and live loss plot

    @property
    def config(self) -> dict:
        """Every option of the run, the method's defaults filled in (what ``RunResult.config`` records)."""
        common = {f.name: getattr(self.options, f.name) for f in fields(self.options)}
        return {**common, "learning_rate": self.learning_rate, "optim": self.optim, **self.method_options}

    def halved(self) -> RunPlan:
        """The same effective batch with half the micro-batch (after a CUDA out-of-memory error)."""
        return replace(self, batch_size=self.batch_size // 2, grad_accum=self.grad_accum * 2)


def plan_run(method: Method, options: FinetuneOptions, method_options: dict, model) -> RunPlan:
    from coursekit.env import bf16_supported, resolve_device
    from coursekit.train.callbacks import want_progress

    device = resolve_device(options.device)
    if options.bf16 and not bf16_supported(device):
        raise ValueError(f"bf16=True but {device} does not train in bf16 here (CPU and MPS train in fp32); "
                         "leave bf16=None (auto)")
    batch_size, grad_accum = DEVICE_BATCH.get(device, (8, 2))
    context = _model_context(model)
    if method.name == "prompt":  # the soft prompt takes part of the context
        context -= int(method_options["num_virtual_tokens"])
    return RunPlan(
        method=method, options=options, method_options=method_options, device=device,
        bf16=bool(bf16_supported(device) if options.bf16 is None else options.bf16),
        batch_size=int(options.batch_size or batch_size), grad_accum=int(options.grad_accum or grad_accum),
        learning_rate=method.learning_rate if options.learning_rate is None else options.learning_rate,
        optim=method.optim if options.optim is None else options.optim,
        length_limit=min(context, options.max_length or context),
        max_length=options.max_length or (context if options.packing else None),
        progress=want_progress(options.progress),
    )


# --------------------------------------------------------------------------------------------------------------------
# the result


@dataclass(repr=False)
class RunResult(ResultMixin):
    method: str
    config: dict
    train_loss: list = field(default_factory=list)  # [(step, loss)]
    eval_loss: list = field(default_factory=list)  # [(step, validation loss)]; step 0 is before training
    task_metric_before: float | None = None
    task_metric_after: float | None = None
    general_probe_before: float | None = None
    general_probe_after: float | None = None
    perplexity_before: float | None = None
    perplexity_after: float | None = None
    peak_memory_bytes: int = 0
    memory_measured_as: str = ""
    estimated_memory_bytes: int | None = None
    train_seconds: float = 0.0
    train_tokens: int = 0  # tokens the model read during training (padding excluded)
    train_examples: int = 0  # training examples the run read from (a max_steps run: its random draw, see max_steps)
    tokens_per_second: float = 0.0
    steps: int = 0
    stopped_early: bool = False
    trainable_parameters: int = 0
    total_parameters: int = 0
    output_dir: str = ""
    reused_from: str = ""  # the stored run loaded instead of training (reuse=True); empty when this run trained
    reused_title: str = ""  # the title of the run that trained it
    checkpoint_bytes: int = 0  # size on disk of what was saved in output_dir/final
    device: str = "cpu"
    batch_size: int = 0  # the micro-batch that ran (halved after an out-of-memory error)
    grad_accum: int = 0
    oom_retries: int = 0
    # what the Hugging Face recipe was given (coursekit.train.recipe compares them with a recipe written by hand)
    training_arguments: dict = field(default_factory=dict)  # the SFTConfig, as a dict
    peft_config: dict = field(default_factory=dict)  # the peft config (LoraConfig, ...); empty for full fine-tuning
    quantization_config: dict = field(default_factory=dict)  # the model's BitsAndBytesConfig; empty if not quantized
    model: object = field(default=None, repr=False, compare=False)  # the trained model (a PEFT model for PEFT)
    tokenizer: object = field(default=None, repr=False, compare=False)

    @property
    def final_eval_loss(self) -> float | None:
        return self.eval_loss[-1][1] if self.eval_loss else None

    @property
    def general_probe_kept(self) -> float | None:
        """general_probe_after / general_probe_before (1.0 = nothing forgotten)."""
        if self.general_probe_before in (None, 0) or self.general_probe_after is None:
            return None
        return self.general_probe_after / self.general_probe_before


# --------------------------------------------------------------------------------------------------------------------
# checks


def _model_context(model) -> int:
    config = getattr(model, "config", None)
    n = getattr(config, "max_position_embeddings", None) if config is not None else None
    return int(n) if n else 1_000_000


def _is_quantized(model) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def _already_adapted(model) -> bool:
    """True for a model an earlier PEFT run changed: peft's config and layers, or coursekit.scratch's adapters."""
    if hasattr(model, "peft_config"):
        return True
    modules = model.modules() if hasattr(model, "modules") else ()
    return any(type(m).__module__.startswith(("peft.", "coursekit.scratch")) for m in modules)


def _check_model(model, tokenizer, method: Method) -> None:
    if model is None or not hasattr(model, "parameters"):
        raise ValueError(f"model must be a loaded model (see coursekit.load_base_model), got {type(model).__name__}")
    if tokenizer is None or not callable(tokenizer):
        raise ValueError("tokenizer must be the model's tokenizer (load_base_model returns both)")
    if _already_adapted(model):
        raise ValueError("this model already carries adapters from an earlier PEFT run (finetune trains the model "
                         "it is given in place, and peft adds its layers to it); load a fresh base model for each "
                         "run: coursekit.load_base_model(name)")
    if method.needs_quantized_model and not _is_quantized(model):
        raise ValueError(f"method {method.name!r} trains on a 4-bit model; load it with "
                         "load_base_model(name, quantization='nf4')")


def _new_run_dir(runs_dir, method_name: str) -> Path:
    root = Path(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        taken = [int(m.group("n")) for p in root.iterdir()
                 if (m := RUN_NAME.match(p.name)) and m.group("method") == method_name]
        path = root / f"{method_name}-{max(taken, default=0) + 1:03d}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another run took the number meanwhile
            continue
    raise ValueError(f"could not create a new run folder under {root}")


def _check_output_dir(options: FinetuneOptions) -> None:
    """Refuse to write over an earlier run (checked before anything else happens)."""
    if options.output_dir is None:
        return
    path = Path(options.output_dir)
    if options.resume:
        if not any(path.glob("checkpoint-*")):
            raise ValueError(f"resume=True but {path} holds no checkpoint-* folder; run with save_every=N first")
    elif path.exists() and any(path.iterdir()):
        raise ValueError(f"output_dir {path} already holds an earlier run; pick a new folder, leave output_dir=None "
                         "for a new numbered one, or pass resume=True to continue it")


def _make_output_dir(options: FinetuneOptions, method_name: str) -> Path:
    if options.output_dir is None:
        return _new_run_dir(options.runs_dir, method_name)
    _check_output_dir(options)
    path = Path(options.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_inputs(model, tokenizer, method_name: str, options: dict) -> RunPlan:
    """Every check that needs no data, in one place; returns the plan of the run."""
    method = get_method(method_name)
    common, method_options = check_options(method, options)
    _check_model(model, tokenizer, method)
    plan = plan_run(method, common, method_options, model)
    _check_output_dir(common)
    return plan


# --------------------------------------------------------------------------------------------------------------------
# data


@dataclass
class _RunData:
    train_rows: list
    eval_rows: list
    metric_rows: list  # task examples scored before and after
    longest: int  # tokens in the longest training example


def _metric_rows(test, eval, n: int) -> list:
    source = test if test is not None else eval
    if source is None:
        return []
    raw = source.to_list() if hasattr(source, "to_list") else list(source)
    rows = [r for r in raw if row_kind(r) == "task"][: int(n)]
    if test is not None and not rows:
        raise ValueError("test has no instruction/input/output examples to score")
    return rows


def _examples_read(train, plan: RunPlan):
    """``train``, or the examples a ``max_steps`` run can read: max_steps x micro-batch x accumulation of them, drawn
    at random with the run's seed. The trainer would shuffle the whole split and stop after that many; drawing them
    first gives a run of the same kind without formatting and tokenizing the rest (10,000 rows for a 30-step run)."""
    options = plan.options
    if not options.max_steps or options.packing:  # packed rows hold a varying number of examples
        return train
    needed = int(options.max_steps) * plan.batch_size * plan.grad_accum
    n = len(train)
    if n <= needed:
        return train
    picked = sorted(random.Random(int(options.seed)).sample(range(n), needed))
    return train.select(picked) if hasattr(train, "select") else [train[i] for i in picked]


def _prepare_data(train, eval, test, tokenizer, plan: RunPlan) -> _RunData:
    """Fields, empty splits, lengths: every data check before any training."""
    train_rows = to_prompt_completion(_examples_read(train, plan), "train", tokenizer)
    eval_rows = to_prompt_completion(eval, "eval", tokenizer) if eval is not None else []
    if plan.options.early_stopping_patience and not eval_rows:
        raise ValueError("early_stopping_patience watches the validation loss: pass an eval split")
    longest = check_lengths(train_rows, tokenizer, plan.length_limit, "train")
    if eval_rows:
        check_lengths(eval_rows, tokenizer, plan.length_limit, "eval")
    return _RunData(train_rows, eval_rows, _metric_rows(test, eval, plan.options.metric_examples), longest)


def _tokenizer_with_padding(tokenizer):
    """``tokenizer``, or a copy of it with the end-of-sequence token as padding where it has none (the caller's
    tokenizer is never changed)."""
    if tokenizer.pad_token is not None:
        return tokenizer
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# --------------------------------------------------------------------------------------------------------------------
# measurement


def _parameter_counts(model) -> tuple[int, int]:
    if hasattr(model, "get_nb_trainable_parameters"):  # peft: counts 4-bit weights as parameters, not bytes
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return int(trainable), int(total)


def _folder_bytes(path: Path) -> int:
    return int(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()))


def _estimate_memory(model, plan: RunPlan, seq_len: int, device: str | None = None) -> int | None:
    """The estimator's figure for this run (coursekit.memory.peak.estimated_training_bytes), or None."""
    lora = plan.method_options
    return estimated_training_bytes(
        model, plan.method.name, optim=plan.optim, batch_size=plan.batch_size, seq_len=seq_len, bf16=plan.bf16,
        gradient_checkpointing=bool(plan.options.gradient_checkpointing), device=device or plan.device,
        rank=lora.get("rank"), target_modules=lora.get("target_modules"), lora_dropout=lora.get("dropout", 0.0),
        padded=plan.batch_size > 1 and not plan.options.packing)  # SFTTrainer pads each batch to its longest row


def _measure(model, tokenizer, options: FinetuneOptions, metric_rows):
    """(task metric, general probe, perplexity) of ``model``; None for what is switched off or not measurable."""
    from coursekit import evaluate

    task = general = ppl = None
    if options.measure_task and metric_rows:
        task = float(evaluate.task_metric(model, tokenizer, metric_rows))
    if options.measure_general:
        general = float(evaluate.general_probe_score(model, tokenizer))
    if options.perplexity_texts:
        ppl = float(evaluate.perplexity(model, tokenizer, list(options.perplexity_texts)))
    return task, general, ppl


# --------------------------------------------------------------------------------------------------------------------
# the model


def _move_to_device(model, device: str) -> None:
    if not _is_quantized(model) and next(model.parameters()).device.type != device:
        model.to(device)


def _prepare_model(model, plan: RunPlan, result: RunResult):
    """The method's model to train (the same model, or a PEFT-wrapped one); its parameter counts go to ``result``."""
    run = {"gradient_checkpointing": bool(plan.options.gradient_checkpointing), "device": plan.device}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # the libraries' renamed internals
        model = plan.method.prepare(model, plan.config, run)
    result.trainable_parameters, result.total_parameters = _parameter_counts(model)
    if result.trainable_parameters == 0:
        raise ValueError(f"method {plan.method.name!r} left no trainable parameters")
    return model


# --------------------------------------------------------------------------------------------------------------------
# the trainer


@contextlib.contextmanager
def _quiet_libraries():
    """Library logging and dataset progress bars down to errors, restored afterwards."""
    import datasets
    import transformers

    t_level = transformers.logging.get_verbosity()
    bars = datasets.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            # the libraries' notices about their own renamed internals say nothing about this run
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*an autograd kernel was not registered.*")
            yield
    finally:
        transformers.logging.set_verbosity(t_level)
        if bars:
            datasets.enable_progress_bars()


def _eval_and_save_kwargs(plan: RunPlan, has_eval: bool) -> dict:
    """SFTConfig's evaluation and checkpoint settings."""
    options = plan.options
    kwargs = {"eval_strategy": "no", "save_strategy": "no"}
    if has_eval:
        kwargs.update(eval_strategy="steps", eval_steps=options.eval_every or 0.2, eval_on_start=True,
                      per_device_eval_batch_size=max(plan.batch_size, 16))
    if options.early_stopping_patience:
        kwargs.update(save_strategy="best", metric_for_best_model="eval_loss", greater_is_better=False,
                      load_best_model_at_end=True, save_total_limit=1)
    elif options.save_every:
        kwargs.update(save_strategy="steps", save_steps=options.save_every, save_total_limit=2)
    return kwargs


def _sft_config(plan: RunPlan, run_dir: Path, has_eval: bool):
    from trl import SFTConfig

    options = plan.options
    return SFTConfig(
        output_dir=str(run_dir),
        num_train_epochs=float(options.epochs),
        max_steps=int(options.max_steps or -1),
        per_device_train_batch_size=plan.batch_size,
        gradient_accumulation_steps=plan.grad_accum,
        learning_rate=float(plan.learning_rate),
        lr_scheduler_type=options.lr_scheduler,
        warmup_steps=options.warmup,
        weight_decay=options.weight_decay,
        max_grad_norm=options.max_grad_norm,
        optim=plan.optim,
        bf16=plan.bf16,
        fp16=False,
        tf32=None,
        activation_checkpointing=bool(options.gradient_checkpointing),
        activation_checkpointing_kwargs={"use_reentrant": False} if options.gradient_checkpointing else None,
        logging_steps=options.log_every or 0.025,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=True,
        seed=int(options.seed),
        use_cpu=plan.device == "cpu",
        dataloader_pin_memory=plan.device == "cuda",
        include_num_input_tokens_seen="non_padding",
        max_length=plan.max_length,
        packing=bool(options.packing),
        completion_only_loss=True,
        **_eval_and_save_kwargs(plan, has_eval),
    )


def _build_trainer(model, tokenizer, train_ds, eval_ds, plan: RunPlan, run_dir: Path, history):
    from transformers import EarlyStoppingCallback, PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    from coursekit.train.callbacks import NotebookProgress

    callbacks = [history]
    if plan.progress:
        callbacks.append(NotebookProgress(history, title=plan.options.title or f"{plan.method.name} fine-tuning"))
    if plan.options.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=int(plan.options.early_stopping_patience)))
    args = _sft_config(plan, run_dir, eval_ds is not None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*EarlyStoppingCallback.*")
        trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    _set_adapter_dtype(trainer.model, plan)
    return trainer


def _set_adapter_dtype(model, plan: RunPlan) -> None:
    """The trainable weights of an adapter method in ``options.adapter_dtype``; by default as the libraries made them,
    except on a 4-bit model in a run that does not compute in bf16, where SFTTrainer's bf16 adapters (the QLoRA
    paper's choice, made for GPUs that compute in bf16) go back to fp32. Where the run does not compute in bf16 (a
    CPU, a GPU without bf16), bf16 adapters are emulated, several times slower (``benchmarks/qlora_cpu_dtypes.py`` on
    a 2-core AVX2 CPU: 8.0 s per QLoRA step of 8 examples with bf16 compute and adapters, 1.2 s with both in fp32),
    and they round updates for nothing."""
    import torch

    if plan.method.saves != "adapter":
        return
    wanted = plan.options.adapter_dtype
    if wanted is None:  # as the libraries made them, but never bf16 in a run that does not compute in bf16
        if plan.bf16 or not getattr(model, "is_loaded_in_4bit", False):
            return
        wanted = "fp32"
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[wanted]
    for param in model.parameters():
        if param.requires_grad and param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)


def _train_once(trainer, resume: bool):
    """One call of the library's training loop (a seam the out-of-memory test replaces)."""
    return trainer.train(resume_from_checkpoint=True if resume else None)


def _oom_message(model, plan: RunPlan, seq_len: int) -> str:
    est = _estimate_memory(model, plan, seq_len, "cuda")
    lines = [f"CUDA out of memory at micro-batch {plan.batch_size} x accumulation {plan.grad_accum}."]
    if est:
        lines.append(f"The estimator puts this run at {gb_and_gib_text(est)}.")
    lines.append(f"Retrying with micro-batch {plan.batch_size // 2} x accumulation {plan.grad_accum * 2} (same "
                 "effective batch). If it still does not fit: gradient_checkpointing=True, a shorter max_length, "
                 "method='lora' or 'qlora'.")
    return " ".join(lines)


@dataclass
class _Trained:
    """What a finished training call leaves: the model, the library's record of the run, and what was measured."""

    model: Any
    args: Any  # the SFTConfig
    state: Any  # the Trainer's TrainerState
    history: Any  # LossHistory
    seconds: float
    peak: PeakMemory
    plan: RunPlan  # the plan that ran (micro-batch halved once per out-of-memory retry)
    oom_retries: int


def _train_measured(trainer, model, plan: RunPlan, history, oom_retries: int) -> _Trained:
    peak = PeakMemory(plan.device, model_bytes(model))
    with peak:
        t0 = time.perf_counter()
        _train_once(trainer, plan.options.resume)
        seconds = time.perf_counter() - t0
    return _Trained(trainer.model, trainer.args, trainer.state, history, seconds, peak, plan, oom_retries)


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _train_with_oom_retry(model, tokenizer, data: _RunData, plan: RunPlan, run_dir: Path) -> _Trained:
    """Train; on a CUDA out-of-memory error, retry with half the micro-batch and twice the accumulation."""
    import torch
    from datasets import Dataset

    from coursekit.train.callbacks import LossHistory

    train_ds = Dataset.from_list(data.train_rows)
    eval_ds = Dataset.from_list(data.eval_rows[: int(plan.options.eval_size)]) if data.eval_rows else None
    history, oom_retries = LossHistory(), 0
    with _quiet_libraries():
        while True:
            trainer = _build_trainer(model, tokenizer, train_ds, eval_ds, plan, run_dir, history)
            try:
                return _train_measured(trainer, model, plan, history, oom_retries)
            except torch.OutOfMemoryError:
                if plan.batch_size == 1 or oom_retries >= int(plan.options.max_oom_retries):
                    raise
                print(_oom_message(model, plan, data.longest))
                del trainer
                history.train_loss.clear()
                history.eval_loss.clear()
                _free_memory()
                plan, oom_retries = plan.halved(), oom_retries + 1


def _record_training(result: RunResult, trained: _Trained) -> None:
    state, seconds = trained.state, trained.seconds
    result.training_arguments = config_dict(trained.args)
    result.peft_config = config_dict(getattr(trained.model, "peft_config", {}).get("default"))
    result.quantization_config = config_dict(getattr(getattr(trained.model, "config", None), "quantization_config",
                                                     None))
    result.train_loss, result.eval_loss = list(trained.history.train_loss), list(trained.history.eval_loss)
    result.train_seconds = float(seconds)
    result.train_tokens = int(state.num_input_tokens_seen or 0)
    result.tokens_per_second = result.train_tokens / seconds if seconds > 0 else 0.0
    result.steps = int(state.global_step)
    result.stopped_early = bool(trained.plan.options.early_stopping_patience) and state.global_step < state.max_steps
    result.peak_memory_bytes, result.memory_measured_as = trained.peak.peak_bytes, trained.peak.how
    result.batch_size, result.grad_accum = trained.plan.batch_size, trained.plan.grad_accum
    result.oom_retries = trained.oom_retries


def _train_or_reuse(model, tokenizer, data: _RunData, plan: RunPlan, run_dir: Path, result: RunResult):
    """Train (and store the run when ``reuse``), or load the identical stored run; the trained model."""
    from coursekit.train import reuse

    parts = reuse.key_parts(model, tokenizer, data.train_rows, data.eval_rows, plan) if plan.options.reuse else None
    key = reuse.key_of(parts) if parts else None
    if key and not plan.options.resume and reuse.load(key, model, result):
        print(f"{plan.options.title or plan.method.name}: reused the identical run \"{result.reused_title}\" stored in "
              f"{result.reused_from} "
              f"({result.steps} steps, {result.train_seconds:.0f} s when it trained); reuse=False trains it again")
        if plan.progress:
            from coursekit.train.callbacks import show_loss_curves

            show_loss_curves(result.train_loss, result.eval_loss, title=plan.options.title, max_step=result.steps)
        return model
    trained = _train_with_oom_retry(model, tokenizer, data, plan, run_dir)
    _record_training(result, trained)
    if key:
        reuse.store(key, trained.model, result, parts=parts)
    return trained.model


def _save_final(model, method: Method, run_dir: Path) -> Path:
    final = run_dir / "final"
    final.mkdir(parents=True, exist_ok=True)
    if method.saves == "adapter" and not hasattr(model, "peft_config"):
        from safetensors.torch import save_file

        tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(tensors, str(final / "adapter_model.safetensors"))
    else:
        model.save_pretrained(str(final))
    return final


# --------------------------------------------------------------------------------------------------------------------


def finetune(model, tokenizer, train, eval=None, method: str = "full", *, test=None, **options) -> RunResult:
    """Fine-tune ``model`` on ``train`` with ``method`` and report what happened.

    ``train`` / ``eval`` / ``test``: datasets.Dataset or lists of dicts with instruction, input, output (the course's
    task), or prompt + completion, or text (general data). ``eval`` gives the validation loss during training;
    the task metric is computed on ``test`` if given, else on ``eval``. Options: ``FinetuneOptions`` (defaults in
    ``COMMON_OPTIONS``) plus the method's own (``METHODS[method].options``). Returns a RunResult; ``result.model`` is
    the trained model (a PEFT model for the PEFT methods) and ``result.tokenizer`` its tokenizer.

    The model is trained in place, as ``transformers.Trainer`` and ``peft.get_peft_model`` do (a copy of a 7B model
    would double its memory): after the run, ``model`` holds the trained weights, and for a PEFT method the
    adapter layers too, so each PEFT run needs a freshly loaded base model (a second run on an adapted model is
    refused). The tokenizer is not changed: where it has no padding token, the run uses a copy with the
    end-of-sequence token as padding, and returns that copy as ``result.tokenizer``.
    """
    import torch

    plan = _check_inputs(model, tokenizer, method, options)
    data = _prepare_data(train, eval, test, tokenizer, plan)
    tokenizer = _tokenizer_with_padding(tokenizer)
    torch.manual_seed(int(plan.options.seed))
    result = RunResult(method=plan.method.name, device=plan.device, train_examples=len(data.train_rows),
                       config={k: v for k, v in plan.config.items() if k != "perplexity_texts"})

    _move_to_device(model, plan.device)
    if plan.options.measure_before:
        result.task_metric_before, result.general_probe_before, result.perplexity_before = _measure(
            model, tokenizer, plan.options, data.metric_rows)
    model = _prepare_model(model, plan, result)
    result.estimated_memory_bytes = _estimate_memory(model, plan, data.longest)

    run_dir = _make_output_dir(plan.options, plan.method.name)
    result.output_dir = str(run_dir)
    model = _train_or_reuse(model, tokenizer, data, plan, run_dir, result)
    model.eval()
    result.task_metric_after, result.general_probe_after, result.perplexity_after = _measure(
        model, tokenizer, plan.options, data.metric_rows)
    if plan.options.save_final:
        result.checkpoint_bytes = _folder_bytes(_save_final(model, plan.method, run_dir))
    result.model, result.tokenizer = model, tokenizer
    return result


__all__ = ["COMMON_OPTIONS", "METHODS", "FinetuneOptions", "RunPlan", "RunResult", "check_options", "finetune",
           "plan_run"]
