"""``finetune``: one entry point for full fine-tuning, LoRA, QLoRA and the other PEFT methods.

Built on TRL's ``SFTTrainer`` (itself a ``transformers.Trainer``): the library's training loop, loss on the
response only (prompt/completion rows), gradient accumulation, a cosine schedule with warmup, bf16 where the device
has it, optional gradient checkpointing, evaluation during training, early stopping on validation loss, and
checkpoints that resume. What is specific to a method lives in ``coursekit.train.methods``.

Order of work: check every input (no training starts on bad input), measure the model before, prepare it for the
method, train (retrying with half the micro-batch on a CUDA out-of-memory error), measure after, save, report.
"""
from __future__ import annotations

import contextlib
import gc
import math
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from coursekit._results import ResultMixin
from coursekit.train.data import check_lengths, row_kind, to_prompt_completion
from coursekit.train.methods import METHODS, get_method, methods_accepting
from coursekit.train.recipe import config_dict

# option -> default. None means "decided at run time" (by the method or the device), as the comments say.
COMMON_OPTIONS: dict = {
    "learning_rate": None,  # the method's default (full 2e-5 as in the common recipe, LoRA 3e-4, QLoRA 2e-4, ...)
    "epochs": 3,  # passes over the training set (the common recipe's 3); ignored when max_steps is set
    "max_steps": None,  # optimizer steps; overrides epochs
    "batch_size": None,  # micro-batch per device: cpu 16, mps 8, cuda 4
    "grad_accum": None,  # gradient accumulation steps: cpu 1, mps 2, cuda 4 (effective 16, as in the common recipe)
    "warmup": 0.1,  # below 1: a fraction of the steps (the common 10% heuristic); 1 or more: a number of steps
    "lr_scheduler": "cosine",
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "max_length": None,  # longest sequence allowed (tokens); None: the model's context
    "packing": False,  # pack several examples per row (TRL best-fit packing; padding-free)
    "gradient_checkpointing": False,
    "optim": None,  # the method's default ("adamw_torch"; "paged_adamw_8bit" for QLoRA)
    "bf16": None,  # None: bf16 on a CUDA GPU that supports it, fp32 elsewhere (CPU, MPS)
    "eval_every": None,  # optimizer steps between evaluations; None: 5 evaluations per run (and one at step 0)
    "eval_size": 64,  # validation examples used for the validation loss
    "log_every": None,  # optimizer steps between training-loss points; None: about 40 points per run
    "early_stopping_patience": None,  # stop after this many evaluations without a better validation loss
    "save_every": None,  # optimizer steps between resumable checkpoints; None: none during training
    "save_final": True,  # save the trained weights (full model, or only the adapter) to OUTPUT_DIR/final
    "output_dir": None,  # None: a new numbered folder RUNS_DIR/METHOD-NNN
    "runs_dir": "runs",
    "resume": False,  # continue the run in output_dir from its last checkpoint
    "seed": 0,
    "device": "auto",
    "progress": "auto",  # progress bar + live loss plot: on in a notebook someone watches, off in tests
    "measure_task": True,  # task metric before and after
    "measure_general": True,  # general-skills probe before and after
    "measure_before": True,  # False: skip the "before" measurements (already known for this base model)
    "metric_examples": 64,  # examples scored for the task metric
    "perplexity_texts": None,  # texts for held-out perplexity before and after (None: not measured)
    "title": "",  # shown on the progress bar and the live plot
    "max_oom_retries": 3,
}

DEVICE_BATCH = {"cpu": (16, 1), "mps": (8, 2), "cuda": (4, 4)}
RUN_NAME = re.compile(r"^(?P<method>[A-Za-z0-9_]+)-(?P<n>\d{3,})$")


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
    tokens_per_second: float = 0.0
    steps: int = 0
    stopped_early: bool = False
    trainable_parameters: int = 0
    total_parameters: int = 0
    output_dir: str = ""
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


def _check_options(method, config: dict) -> dict:
    unknown = [k for k in config if k not in COMMON_OPTIONS and k not in method.options]
    for key in unknown:
        others = methods_accepting(key)
        if others:
            raise ValueError(f"option {key!r} does not apply to method {method.name!r}; it is an option of "
                             f"{', '.join(others)}")
        allowed = sorted(set(COMMON_OPTIONS) | set(method.options))
        raise ValueError(f"unknown option {key!r}; allowed for method {method.name!r}: {', '.join(allowed)}")
    cfg = {**COMMON_OPTIONS, **method.options, **config}
    if cfg["learning_rate"] is None:
        cfg["learning_rate"] = method.learning_rate
    if cfg["optim"] is None:
        cfg["optim"] = method.optim

    def positive(name, integer=False, allow_none=False):
        v = cfg[name]
        if v is None and allow_none:
            return
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and math.isfinite(v)
        if integer:
            ok = ok and float(v).is_integer()
        if not ok:
            kind = "a positive integer" if integer else "a positive number"
            raise ValueError(f"{name} must be {kind}, got {v!r}")

    positive("learning_rate")
    positive("epochs")
    for name in ("max_steps", "batch_size", "grad_accum", "eval_every", "log_every", "early_stopping_patience",
                 "save_every", "max_length"):
        positive(name, integer=True, allow_none=True)
    for name in ("eval_size", "metric_examples"):
        positive(name, integer=True)
    if not (isinstance(cfg["warmup"], (int, float)) and cfg["warmup"] >= 0):
        raise ValueError(f"warmup must be >= 0 (a fraction below 1, or a number of steps), got {cfg['warmup']!r}")
    if not (isinstance(cfg["weight_decay"], (int, float)) and cfg["weight_decay"] >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {cfg['weight_decay']!r}")
    if cfg["bf16"] not in (None, True, False):
        raise ValueError(f"bf16 must be None (auto), True or False, got {cfg['bf16']!r}")
    if cfg["early_stopping_patience"] and cfg["save_every"]:
        raise ValueError("early_stopping_patience keeps the best checkpoint and save_every keeps regular ones; "
                         "set one of them, not both")
    if cfg["resume"] and not cfg["output_dir"]:
        raise ValueError("resume=True needs output_dir: the folder of the run to continue")
    return cfg


def _model_context(model) -> int:
    config = getattr(model, "config", None)
    n = getattr(config, "max_position_embeddings", None) if config is not None else None
    return int(n) if n else 1_000_000


def _is_quantized(model) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


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


def _check_output_dir(cfg) -> None:
    """Refuse to write over an earlier run (checked before anything else happens)."""
    if cfg["output_dir"] is None:
        return
    path = Path(cfg["output_dir"])
    if cfg["resume"]:
        if not any(path.glob("checkpoint-*")):
            raise ValueError(f"resume=True but {path} holds no checkpoint-* folder; run with save_every=N first")
    elif path.exists() and any(path.iterdir()):
        raise ValueError(f"output_dir {path} already holds an earlier run; pick a new folder, leave output_dir=None "
                         "for a new numbered one, or pass resume=True to continue it")


def _make_output_dir(cfg, method_name: str) -> Path:
    if cfg["output_dir"] is None:
        return _new_run_dir(cfg["runs_dir"], method_name)
    _check_output_dir(cfg)
    path = Path(cfg["output_dir"])
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------------------------------------
# measurement


class PeakMemory:
    """Peak memory of a block: CUDA ``max_memory_allocated``, or on CPU/MPS the process RSS sampled every 20 ms.

    On CPU the figure is the model's weights plus what the process grew by during the block (gradients, optimizer
    state, activations), comparable to an estimate of training memory.
    """

    def __init__(self, device: str, model_bytes: int):
        self.device, self.model_bytes = device, model_bytes
        self.peak_bytes, self.how = 0, ""

    def __enter__(self):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        import psutil

        self._proc = psutil.Process()
        self._base = self._peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            self.peak_bytes = int(torch.cuda.max_memory_allocated())
            self.how = "torch.cuda.max_memory_allocated"
        else:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self.peak_bytes = int(self.model_bytes + self._peak - self._base)
            self.how = "model weights + process RSS growth during training"
        return False


def _parameter_counts(model) -> tuple[int, int]:
    if hasattr(model, "get_nb_trainable_parameters"):  # peft: counts 4-bit weights as parameters, not bytes
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return int(trainable), int(total)


def _model_bytes(model) -> int:
    return int(sum(p.numel() * p.element_size() for p in model.parameters())
               + sum(b.numel() * b.element_size() for b in model.buffers()))


def _folder_bytes(path: Path) -> int:
    return int(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()))


_OPTIMIZER_NAMES = {  # Trainer's optim names -> the estimator's
    "adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw_8bit": "adamw-8bit", "adamw_bnb_8bit": "adamw-8bit",
    "paged_adamw_8bit": "paged-adamw-8bit", "paged_adamw_32bit": "paged-adamw", "paged_adamw": "paged-adamw",
    "sgd": "sgd",
}


def _estimate_memory(model, method_name, cfg, batch_size, seq_len, device, bf16):
    """The estimator's figure (coursekit.memory.estimate_memory) for this run, or None where it has no recipe
    (methods other than full / lora / qlora, optimizers it does not model)."""
    if method_name not in ("full", "lora", "qlora"):
        return None
    optimizer = _OPTIMIZER_NAMES.get(cfg["optim"])
    if optimizer is None:
        return None
    try:
        import torch

        from coursekit.memory import estimate_memory

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        float_dtypes = {p.dtype for p in base.parameters() if p.dtype.is_floating_point}
        if float_dtypes == {torch.bfloat16}:
            precision = "bf16"
        else:
            precision = "amp-bf16" if bf16 else "fp32"
        lora = {}
        if method_name != "full":
            lora = {"rank": int(cfg["rank"]), "targets": cfg["target_modules"], "lora_dropout": cfg["dropout"],
                    "lora_dtype": "bf16" if method_name == "qlora" else "fp32"}
        est = estimate_memory(base.config, method_name, precision=precision, optimizer=optimizer,
                              batch_size=int(batch_size), seq_len=int(seq_len),
                              checkpointing=bool(cfg["gradient_checkpointing"]),
                              device="cuda" if device == "cuda" else "cpu", **lora)
    except Exception:  # an architecture the estimator cannot describe: no estimate, the run goes on
        return None
    return int(est.total_bytes)


def _measure(model, tokenizer, cfg, metric_rows, probe_ok=True):
    """(task metric, general probe, perplexity) of ``model``; None for what is switched off or not measurable."""
    from coursekit import evaluate

    task = general = ppl = None
    if cfg["measure_task"] and metric_rows:
        task = float(evaluate.task_metric(model, tokenizer, metric_rows))
    if cfg["measure_general"] and probe_ok:
        general = float(evaluate.general_probe_score(model, tokenizer))
    if cfg["perplexity_texts"]:
        ppl = float(evaluate.perplexity(model, tokenizer, list(cfg["perplexity_texts"])))
    return task, general, ppl


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


def _sft_config(cfg, run_dir: Path, device: str, batch_size: int, grad_accum: int, has_eval: bool, max_length):
    from trl import SFTConfig

    bf16 = cfg["bf16"]
    if bf16 is None:
        from coursekit.env import bf16_supported

        bf16 = bf16_supported(device)
    eval_kwargs = {"eval_strategy": "no"}
    if has_eval:
        eval_kwargs = {"eval_strategy": "steps", "eval_steps": cfg["eval_every"] or 0.2, "eval_on_start": True,
                       "per_device_eval_batch_size": max(batch_size, 16)}
    save_kwargs = {"save_strategy": "no"}
    if cfg["early_stopping_patience"]:
        save_kwargs = {"save_strategy": "best", "metric_for_best_model": "eval_loss", "greater_is_better": False,
                       "load_best_model_at_end": True, "save_total_limit": 1}
    elif cfg["save_every"]:
        save_kwargs = {"save_strategy": "steps", "save_steps": cfg["save_every"], "save_total_limit": 2}
    return SFTConfig(
        output_dir=str(run_dir),
        num_train_epochs=float(cfg["epochs"]),
        max_steps=int(cfg["max_steps"] or -1),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=float(cfg["learning_rate"]),
        lr_scheduler_type=cfg["lr_scheduler"],
        warmup_steps=cfg["warmup"],
        weight_decay=cfg["weight_decay"],
        max_grad_norm=cfg["max_grad_norm"],
        optim=cfg["optim"],
        bf16=bool(bf16),
        fp16=False,
        tf32=None,
        activation_checkpointing=bool(cfg["gradient_checkpointing"]),
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg["gradient_checkpointing"] else None,
        logging_steps=cfg["log_every"] or 0.025,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=True,
        seed=int(cfg["seed"]),
        use_cpu=device == "cpu",
        dataloader_pin_memory=device == "cuda",
        include_num_input_tokens_seen="non_padding",
        max_length=max_length,
        packing=bool(cfg["packing"]),
        completion_only_loss=True,
        **eval_kwargs,
        **save_kwargs,
    )


def _build_trainer(model, tokenizer, train_ds, eval_ds, args, callbacks, early_stopping_patience):
    from transformers import EarlyStoppingCallback, PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    if early_stopping_patience:
        callbacks = [*callbacks, EarlyStoppingCallback(early_stopping_patience=int(early_stopping_patience))]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*EarlyStoppingCallback.*")
        trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def _train_once(trainer, resume: bool):
    """One call of the library's training loop (a seam the out-of-memory test replaces)."""
    return trainer.train(resume_from_checkpoint=True if resume else None)


def _oom_message(model, method_name, cfg, batch_size, grad_accum, seq_len, bf16):
    est = _estimate_memory(model, method_name, cfg, batch_size, seq_len, "cuda", bf16)
    lines = [f"CUDA out of memory at micro-batch {batch_size} x accumulation {grad_accum}."]
    if est:
        lines.append(f"The estimator puts this run at {est / 1e9:.1f} GB ({est / 2**30:.1f} GiB).")
    lines.append(f"Retrying with micro-batch {batch_size // 2} x accumulation {grad_accum * 2} (same effective "
                 "batch). If it still does not fit: gradient_checkpointing=True, a shorter max_length, "
                 "method='lora' or 'qlora'.")
    return " ".join(lines)


def _save_final(model, method, run_dir: Path) -> Path:
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


def finetune(model, tokenizer, train, eval=None, method: str = "full", *, test=None, **config) -> RunResult:
    """Fine-tune ``model`` on ``train`` with ``method`` and report what happened.

    ``train`` / ``eval`` / ``test``: datasets.Dataset or lists of dicts with instruction, input, output (the course's
    task), or prompt + completion, or text (general data). ``eval`` gives the validation loss during training;
    the task metric is computed on ``test`` if given, else on ``eval``. Options: ``COMMON_OPTIONS`` plus the
    method's own (``METHODS[method].options``). Returns a RunResult; ``result.model`` is the trained model (a
    PEFT model for the PEFT methods) and ``result.tokenizer`` its tokenizer.
    """
    import torch
    from datasets import Dataset

    from coursekit.env import bf16_supported, resolve_device
    from coursekit.train.callbacks import LossHistory, NotebookProgress, want_progress

    m = get_method(method)
    cfg = _check_options(m, config)
    if model is None or not hasattr(model, "parameters"):
        raise ValueError(f"model must be a loaded model (see coursekit.load_base_model), got {type(model).__name__}")
    if tokenizer is None or not callable(tokenizer):
        raise ValueError("tokenizer must be the model's tokenizer (load_base_model returns both)")
    device = resolve_device(cfg["device"])
    if cfg["bf16"] and not bf16_supported(device):
        raise ValueError(f"bf16=True but {device} does not train in bf16 here (CPU and MPS train in fp32); "
                         "leave bf16=None (auto)")
    show = want_progress(cfg["progress"])
    _check_output_dir(cfg)
    if m.needs_quantized_model and not _is_quantized(model):
        raise ValueError(f"method {m.name!r} trains on a 4-bit model; load it with "
                         "load_base_model(name, quantization='nf4')")

    # data: fields, empty splits, lengths -- all before any training
    train_rows = to_prompt_completion(train, "train", tokenizer)
    eval_rows = to_prompt_completion(eval, "eval", tokenizer) if eval is not None else []
    if cfg["early_stopping_patience"] and not eval_rows:
        raise ValueError("early_stopping_patience watches the validation loss: pass an eval split")
    context = _model_context(model)
    if m.name == "prompt":
        context -= int(cfg["num_virtual_tokens"])
    limit = min(context, cfg["max_length"] or context)
    longest = check_lengths(train_rows, tokenizer, limit, "train")
    if eval_rows:
        check_lengths(eval_rows, tokenizer, limit, "eval")
    metric_source = test if test is not None else eval
    metric_rows = []
    if metric_source is not None:
        raw = metric_source.to_list() if hasattr(metric_source, "to_list") else list(metric_source)
        metric_rows = [r for r in raw if row_kind(r) == "task"][: int(cfg["metric_examples"])]
        if test is not None and not metric_rows:
            raise ValueError("test has no instruction/input/output examples to score")

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(int(cfg["seed"]))

    result = RunResult(method=m.name, config={k: v for k, v in cfg.items() if k != "perplexity_texts"},
                       device=device)
    before_model_device = next(model.parameters()).device
    if not _is_quantized(model) and str(before_model_device).split(":")[0] != device:
        model.to(device)
    if cfg["measure_before"]:
        result.task_metric_before, result.general_probe_before, result.perplexity_before = _measure(
            model, tokenizer, cfg, metric_rows)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # the libraries' renamed internals
        model = m.prepare(model, cfg, {"gradient_checkpointing": bool(cfg["gradient_checkpointing"]),
                                       "device": device})
    result.trainable_parameters, result.total_parameters = _parameter_counts(model)
    if result.trainable_parameters == 0:
        raise ValueError(f"method {m.name!r} left no trainable parameters")

    batch_size, grad_accum = DEVICE_BATCH.get(device, (8, 2))
    batch_size = int(cfg["batch_size"] or batch_size)
    grad_accum = int(cfg["grad_accum"] or grad_accum)
    bf16 = cfg["bf16"] if cfg["bf16"] is not None else bf16_supported(device)
    result.estimated_memory_bytes = _estimate_memory(model, m.name, cfg, batch_size, longest, device, bf16)

    run_dir = _make_output_dir(cfg, m.name)
    result.output_dir = str(run_dir)
    train_ds = Dataset.from_list(train_rows)
    eval_ds = Dataset.from_list(eval_rows[: int(cfg["eval_size"])]) if eval_rows else None
    max_length = cfg["max_length"] or (context if cfg["packing"] else None)

    history = LossHistory()
    oom_retries = 0
    with _quiet_libraries():
        while True:
            callbacks = [history]
            if show:
                callbacks.append(NotebookProgress(history, title=cfg["title"] or f"{m.name} fine-tuning"))
            args = _sft_config(cfg, run_dir, device, batch_size, grad_accum, eval_ds is not None, max_length)
            trainer = _build_trainer(model, tokenizer, train_ds, eval_ds, args, callbacks,
                                     cfg["early_stopping_patience"])
            tracker = PeakMemory(device, _model_bytes(model))
            try:
                with tracker:
                    t0 = time.perf_counter()
                    output = _train_once(trainer, cfg["resume"])
                    seconds = time.perf_counter() - t0
                break
            except torch.OutOfMemoryError:
                if batch_size == 1 or oom_retries >= int(cfg["max_oom_retries"]):
                    raise
                print(_oom_message(model, m.name, cfg, batch_size, grad_accum, longest, bf16))
                del trainer
                history.train_loss.clear()
                history.eval_loss.clear()
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                batch_size, grad_accum = batch_size // 2, grad_accum * 2
                oom_retries += 1

    model = trainer.model
    state = trainer.state
    result.training_arguments = config_dict(args)
    result.peft_config = config_dict(getattr(model, "peft_config", {}).get("default"))
    result.quantization_config = config_dict(getattr(getattr(model, "config", None), "quantization_config", None))
    result.train_loss, result.eval_loss = list(history.train_loss), list(history.eval_loss)
    result.train_seconds = float(seconds)
    result.train_tokens = int(state.num_input_tokens_seen or 0)
    result.tokens_per_second = result.train_tokens / seconds if seconds > 0 else 0.0
    result.steps = int(state.global_step)
    result.stopped_early = bool(cfg["early_stopping_patience"]) and state.global_step < state.max_steps
    result.peak_memory_bytes, result.memory_measured_as = tracker.peak_bytes, tracker.how
    result.batch_size, result.grad_accum, result.oom_retries = batch_size, grad_accum, oom_retries
    del output

    model.eval()
    result.task_metric_after, result.general_probe_after, result.perplexity_after = _measure(
        model, tokenizer, cfg, metric_rows)
    if cfg["save_final"]:
        result.checkpoint_bytes = _folder_bytes(_save_final(model, m, run_dir))
    result.model, result.tokenizer = model, tokenizer
    del trainer  # frees the optimizer state (on a GPU, gigabytes) before the next run
    return result


__all__ = ["COMMON_OPTIONS", "METHODS", "RunResult", "finetune"]
