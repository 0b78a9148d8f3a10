"""Every fine-tuning method on the same task, data and budget, measured side by side (lesson 06).

``compare_methods`` loads a fresh base model per method, trains it with ``coursekit.train.finetune`` for the same
number of optimizer steps on the same examples, and records what the engine measured (trainable parameters, peak
memory, train time, tokens/s, task metric, the general-skills probe before and after, checkpoint size) plus the
inference latency: merged into the base weights where the method allows it (LoRA, DoRA, IA3), unmerged otherwise
(QLoRA on a 4-bit base, prefix and prompt tuning, bottleneck adapters), at batch 1 with the same number of new
tokens for every method.

``claimed_table_fact_check`` puts a widely circulated comparison table next to exact counts at a real size (from
``coursekit.archs`` and ``coursekit.scratch``) and next to what the run measured.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from coursekit._results import ResultMixin
from coursekit.model_ids import EMBEDDED_MODEL
from coursekit.train.methods import METHODS as TRAINING_METHODS
from coursekit.units import MB
from coursekit.validate import positive_int

#: Every method the training engine knows (its registry, ``coursekit.train.METHODS``), in its order.
ALL_METHODS = tuple(TRAINING_METHODS)
#: How each method is served: folded into the base weights, or kept beside them.
MERGEABLE = ("lora", "dora", "ia3")


def inference_mode(method: str) -> str:
    """'merged' (LoRA, DoRA, IA3: ``merge_and_unload``), 'plain' (full fine-tuning) or 'unmerged' (the rest)."""
    if method == "full":
        return "plain"
    return "merged" if method in MERGEABLE else "unmerged"


@dataclass(repr=False)
class MethodRow(ResultMixin):
    method: str
    trainable_parameters: int
    total_parameters: int
    trainable_percent: float
    peak_memory_bytes: int
    memory_measured_as: str
    train_seconds: float
    tokens_per_second: float
    task_metric: float  # after training, exact answers, scored on the served model
    general_probe_before: float
    general_probe_after: float
    general_retention: float  # general_probe_after / general_probe_before (1.0: nothing forgotten)
    checkpoint_bytes: int  # what finetune saved (full model, or the adapter only)
    inference: str  # merged / unmerged / plain
    latency_seconds_per_answer: float  # batch 1, latency_new_tokens greedy tokens each
    latency_ms_per_token: float
    final_eval_loss: float | None
    steps: int
    learning_rate: float
    first_eval_loss: float | None = None  # validation loss before the first step (None: no eval split)
    train_loss: list = field(default_factory=list)  # (step, training loss) as logged: is it still falling at the end?


def measure_latency(model, tokenizer, prompts: list[str], new_tokens: int = 32, rounds: int = 3) -> float:
    """Seconds per answer at batch 1, each answer exactly ``new_tokens`` long (end-of-sequence ignored), after
    one warm-up answer. The same length for every model, so the figure compares compute, not verbosity.

    The prompts are timed ``rounds`` times and the fastest round is kept (``coursekit.evaluate.timed_generate``): a
    slower round measures what else the machine was doing, which on a small model is as large as the differences
    between methods."""
    from coursekit.evaluate import timed_generate

    prompts = list(prompts)
    if not prompts:
        raise ValueError("measure_latency needs at least one prompt")
    positive_int("new_tokens", new_tokens)
    return timed_generate(model, tokenizer, prompts, new_tokens, stop_at_eos=False, rounds=rounds)[0]


def prefix_generation_gap(model_name: str, num_virtual_tokens: int = 16, seed: int = 0) -> dict:
    """Whether ``generate()`` applies a prefix-tuning prefix the way the forward pass does, on the installed peft and
    transformers.

    A prefix of ``num_virtual_tokens`` random vectors (far from zero, so it must change the model's answers) goes on
    ``model_name``; the next-token scores of one prompt are computed three ways: the forward pass with the prefix,
    the forward pass with the adapter disabled, and ``generate``'s first step. Returns the largest differences
    (``forward_vs_base``, ``generate_vs_forward``, ``generate_vs_base``) and ``applied``: whether generate's scores
    match the forward pass's (within 1e-3). With peft 0.21.2 and transformers 5.24.0 they do not: peft hands the
    prefix over as ``past_key_values`` and the model keeps generate's own ``cache`` instead.
    """
    import torch
    from peft import PrefixTuningConfig, get_peft_model

    from coursekit.models import load_base_model

    model, tokenizer = load_base_model(model_name)
    torch.manual_seed(seed)
    model = get_peft_model(model, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=num_virtual_tokens))
    with torch.no_grad():
        for p in model.prompt_encoder.parameters():
            p.copy_(torch.randn_like(p) * 3.0)
    model.eval()
    enc = tokenizer(["From: Vera\nI cannot sign in."], return_tensors="pt").to(next(model.parameters()).device)
    with torch.no_grad():
        forward_next = model(**enc).logits[0, -1].float()
        with model.disable_adapter():
            base_next = model(**enc).logits[0, -1].float()
        first_step = model.generate(**enc, max_new_tokens=1, do_sample=False, output_scores=True,
                                    return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id
                                    ).scores[0][0].float()
    gap = {"forward_vs_base": (forward_next - base_next).abs().max().item(),
           "generate_vs_forward": (first_step - forward_next).abs().max().item(),
           "generate_vs_base": (first_step - base_next).abs().max().item()}
    return {**gap, "applied": gap["generate_vs_forward"] <= 1e-3}


def serving_model(model, method: str):
    """The model as it would be served: merged for LoRA / DoRA / IA3, unchanged otherwise."""
    if inference_mode(method) == "merged":
        return model.merge_and_unload()
    return model


def _loss_change(row: MethodRow) -> str:
    """'2.31 -> 0.84': validation loss before and after training ('-' where it was not measured)."""
    if row.final_eval_loss is None:
        return "-"
    first = "?" if row.first_eval_loss is None else f"{row.first_eval_loss:.2f}"
    return f"{first} -> {row.final_eval_loss:.2f}"


@dataclass(repr=False)
class MethodComparison(ResultMixin):
    rows: list = field(default_factory=list)  # MethodRow
    settings: dict = field(default_factory=dict)
    base_latency_seconds_per_answer: float = 0.0  # the untouched base model, timed after the methods
    base_task_metric: float = 0.0  # the untouched base model on the same test examples
    errors: dict = field(default_factory=dict)  # method -> message, for a method that could not run here

    def row(self, method: str) -> MethodRow:
        for r in self.rows:
            if r.method == method:
                return r
        raise ValueError(f"no row for method {method!r}; measured: {', '.join(r.method for r in self.rows)}")

    def records(self) -> list[dict]:
        """The rows as plain dicts (what lesson 06 records under ``methods``)."""
        return [r.to_dict() for r in self.rows]

    def table(self) -> str:
        head = (f"{'method':<9}{'trainable':>12}{'%':>9}{'peak MB':>9}{'train s':>9}{'tok/s':>8}{'task':>7}"
                f"{'retain':>8}{'ckpt MB':>9}{'ms/tok':>8}{'val loss':>15}  serving")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.method:<9}{r.trainable_parameters:>12,}{r.trainable_percent:>9.3f}"
                         f"{r.peak_memory_bytes / MB:>9.0f}{r.train_seconds:>9.1f}{r.tokens_per_second:>8.0f}"
                         f"{r.task_metric:>7.2f}{r.general_retention:>8.2f}{r.checkpoint_bytes / MB:>9.2f}"
                         f"{r.latency_ms_per_token:>8.2f}{_loss_change(r):>15}  {r.inference}")
        for m, err in self.errors.items():
            lines.append(f"{m:<9}  not measured: {err}")
        return "\n".join(lines)

    def plot(self):
        """Quality against peak memory (left) and against trainable share (right), one point per method."""
        from coursekit._figure import new_figure

        if not self.rows:
            raise ValueError("nothing to plot: the comparison has no rows")
        fig = new_figure(figsize=(11, 4))
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        for r in self.rows:
            ax1.scatter(r.peak_memory_bytes / MB, r.task_metric, s=60)
            ax1.annotate(r.method, (r.peak_memory_bytes / MB, r.task_metric), textcoords="offset points",
                         xytext=(5, 4), fontsize=9)
            ax2.scatter(max(r.trainable_percent, 1e-4), r.task_metric, s=60)
            ax2.annotate(r.method, (max(r.trainable_percent, 1e-4), r.task_metric), textcoords="offset points",
                         xytext=(5, 4), fontsize=9)
        how = self.rows[0].memory_measured_as or "measured"
        ax1.set_xlabel(f"peak training memory, MB ({how})", fontsize=8)
        ax1.set_ylabel("task metric (exact answers)")
        ax1.set_title("quality vs memory")
        ax2.set_xscale("log")
        ax2.set_xlabel("trainable parameters, % of the model (log)")
        ax2.set_title("quality vs trainable share")
        for ax in (ax1, ax2):
            ax.set_ylim(-0.05, 1.05)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig


def _check_methods(methods, method_options, common) -> list[str]:
    from coursekit.train.engine import check_options
    from coursekit.train.methods import METHODS, get_method

    if isinstance(methods, str):
        methods = [methods]
    methods = list(methods)
    if not methods:
        raise ValueError(f"methods is empty; pick from {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods has repeats: {methods}")
    for m in methods:
        get_method(m)  # unknown name: lists the known ones
    if not isinstance(method_options, dict):
        raise ValueError(f"method_options must be a dict {{method: {{option: value}}}}, got {method_options!r}")
    for m, opts in method_options.items():
        if m not in methods:
            raise ValueError(f"method_options names {m!r}, which is not among the methods compared "
                             f"({', '.join(methods)})")
        if not isinstance(opts, dict):
            raise ValueError(f"method_options[{m!r}] must be a dict of options, got {opts!r}")
    for m in methods:  # an option that does not apply to a method fails here, before anything trains
        check_options(get_method(m), {**common, **method_options.get(m, {})})
    return methods


def _check_arguments(methods, method_options, common, fixed, *, train, on_error, latency_new_tokens) -> list[str]:
    """:func:`compare_methods`' input checks, before anything loads; returns the methods as a list."""
    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    for name, v in (("max_steps", fixed["max_steps"]), ("batch_size", fixed["batch_size"]),
                    ("metric_examples", fixed["metric_examples"]), ("latency_new_tokens", latency_new_tokens)):
        positive_int(name, v)
    clash = sorted(set(common) & (set(fixed) | {"device", "runs_dir", "progress", "test", "output_dir",
                                                 "measure_task"}))
    if clash:
        raise ValueError(f"{', '.join(clash)} set twice: pass them as compare_methods arguments, not in **common")
    methods = _check_methods(methods, method_options, {**common, **fixed})
    if train is None:
        raise ValueError("train is required: the examples every method trains on")
    return methods


def _train_method(method: str, model_name: str, train, eval, test, *, device, runs_dir, progress, title: str,
                  options: dict):
    """A fresh base model, loaded as ``method`` needs it, trained through ``finetune`` (``finetune_fresh``)."""
    from coursekit.train import finetune_fresh

    return finetune_fresh(model_name, train, eval, method=method, test=test, device=device, runs_dir=runs_dir,
                          progress=progress, title=title, measure_task=False, **options)


def _method_row(method: str, run, tokenizer, latency_prompts, latency_new_tokens: int, task_metric) -> MethodRow:
    """What the engine measured for ``run``, plus latency and task metric of the model as it would be served."""
    served = serving_model(run.model, method)
    latency = measure_latency(served, tokenizer, latency_prompts, latency_new_tokens)
    metric = task_metric(served, tokenizer)
    before, after = run.general_probe_before, run.general_probe_after
    return MethodRow(
        method=method, trainable_parameters=run.trainable_parameters, total_parameters=run.total_parameters,
        trainable_percent=100.0 * run.trainable_parameters / run.total_parameters,
        peak_memory_bytes=run.peak_memory_bytes, memory_measured_as=run.memory_measured_as,
        train_seconds=run.train_seconds, tokens_per_second=run.tokens_per_second,
        task_metric=metric,
        general_probe_before=float(before or 0.0), general_probe_after=float(after or 0.0),
        general_retention=float(after / before) if before else float("nan"),
        checkpoint_bytes=run.checkpoint_bytes, inference=inference_mode(method),
        latency_seconds_per_answer=latency, latency_ms_per_token=1000 * latency / latency_new_tokens,
        final_eval_loss=run.final_eval_loss, steps=run.steps, learning_rate=float(run.config["learning_rate"]),
        first_eval_loss=run.eval_loss[0][1] if run.eval_loss and run.eval_loss[0][0] == 0 else None,
        train_loss=[(int(step), float(loss)) for step, loss in run.train_loss])


def compare_methods(model_name: str = EMBEDDED_MODEL, methods=ALL_METHODS, *, train, eval=None, test=None,
                    max_steps: int = 30, batch_size: int = 16, device: str = "auto", method_options=None,
                    metric_examples: int = 32, latency_prompts: list[str] | None = None, latency_new_tokens: int = 32,
                    runs_dir: str = "runs/06", seed: int = 0, progress="auto", on_error: str = "raise",
                    **common) -> MethodComparison:
    """Train ``model_name`` with each method for ``max_steps`` steps of ``batch_size`` on ``train``; measure each.

    ``method_options`` sets a method's own options (``{"lora": {"rank": 4}}``); ``common`` passes options of
    ``coursekit.train.COMMON_OPTIONS`` to every run. ``on_error="record"`` keeps going when a method cannot run on
    this machine and records why (``comparison.errors``); ``"raise"`` stops.
    """
    from coursekit.data import task_prompt
    from coursekit.evaluate import evaluate_task
    from coursekit.models import load_base_model

    method_options = {} if method_options is None else method_options
    fixed = {"max_steps": max_steps, "batch_size": batch_size, "metric_examples": metric_examples, "seed": seed}
    methods = _check_arguments(methods, method_options, common, fixed, train=train, on_error=on_error,
                               latency_new_tokens=latency_new_tokens)
    source = test if test is not None else eval if eval is not None else train
    rows = source.to_list() if hasattr(source, "to_list") else list(source)
    metric_rows = [r for r in rows if "instruction" in r and "output" in r][:metric_examples]
    if not metric_rows:
        raise ValueError("test (or eval) holds no instruction/input/output examples to score the task on")

    out = MethodComparison(settings={"model": model_name, "methods": methods, "max_steps": max_steps,
                                     "batch_size": batch_size, "metric_examples": metric_examples,
                                     "latency_new_tokens": latency_new_tokens, "seed": seed,
                                     "method_options": method_options, **common})
    def task_metric(model, tokenizer) -> float:
        return float(evaluate_task(model, tokenizer, metric_rows).metric)

    def default_latency_prompts(tokenizer) -> list[str]:
        return [task_prompt(r, tokenizer) for r in metric_rows[:4]]

    for m in methods:
        try:
            run = _train_method(m, model_name, train, eval, test, device=device, runs_dir=runs_dir,
                                progress=progress, title=f"{m} ({max_steps} steps)",
                                options={**common, **fixed, **method_options.get(m, {})})
        except Exception as exc:  # noqa: BLE001 - reported per method when on_error="record"
            if on_error == "raise" or isinstance(exc, ValueError):
                raise
            out.errors[m] = f"{type(exc).__name__}: {exc}"
            continue
        latency_prompts = latency_prompts or default_latency_prompts(run.tokenizer)  # every run has the same one
        out.rows.append(_method_row(m, run, run.tokenizer, latency_prompts, latency_new_tokens, task_metric))
        del run
    # The untouched base model, measured last: timed in the same warmed-up process as the methods it is compared with
    base, tokenizer = load_base_model(model_name, device=device)
    out.base_task_metric = task_metric(base, tokenizer)
    latency_prompts = latency_prompts or default_latency_prompts(tokenizer)
    out.base_latency_seconds_per_answer = measure_latency(base, tokenizer, latency_prompts, latency_new_tokens)
    del base
    return out


# ------------------------------------------------------------------------------------------------ the quoted table

#: A widely circulated comparison table of fine-tuning methods, quoted as printed.
CLAIMED_TABLE = [
    {"method": "full", "trainable": "100%", "memory": "Very high (14 bytes/param)", "latency": "None",
     "forgetting": "High", "checkpoint": "Full model copy"},
    {"method": "lora", "trainable": "~0.2%", "memory": "Low (adapter only)", "latency": "None (merged at inference)",
     "forgetting": "Very low", "checkpoint": "Under 50 MB"},
    {"method": "qlora", "trainable": "~0.2%", "memory": "Very low (4-bit base)", "latency": "Dequantization overhead",
     "forgetting": "Very low", "checkpoint": "Under 50 MB"},
    {"method": "adapter", "trainable": "~1-3%", "memory": "Low-moderate", "latency": "Small (extra layers)",
     "forgetting": "Low", "checkpoint": "50-200 MB"},
    {"method": "prefix", "trainable": "~0.1%", "memory": "Very low", "latency": "Small (longer KV)",
     "forgetting": "Very low", "checkpoint": "Under 10 MB"},
]


def real_size_counts(arch: str = "llama-3.1-8b", rank: int = 16, bottleneck: int = 64,
                     num_virtual_tokens: int = 20) -> dict:
    """Exact trainable parameters, share and checkpoint size at a real size, per row of the quoted table.

    LoRA is counted for the table's own targets (q_proj, v_proj) and for all linear layers; adapters and prefixes
    with the table's sizes. Shares are of all parameters, the added ones included, as peft prints them (and
    lesson 05 quotes them). Checkpoints: trainable parameters x 2 bytes (bf16) and x 4 bytes (fp32, what peft keeps
    adapters in by default), full fine-tuning the whole model in bf16. Bytes per parameter of full fine-tuning:
    weights + gradients + optimizer state for the textbook mixed-precision recipe, from the estimator.
    """
    from coursekit.archs import count_lora_parameters, resolve_arch
    from coursekit.memory import estimate_memory
    from coursekit.scratch import adapter_parameter_count, prefix_tuning_parameter_count

    spec = resolve_arch(arch)
    total = spec.total_parameters
    lora_qv = count_lora_parameters(spec, rank, ["q_proj", "v_proj"])
    lora_all = count_lora_parameters(spec, rank, "all-linear")
    adapter = adapter_parameter_count(spec.hidden_size, bottleneck, spec.num_hidden_layers)
    prefix = prefix_tuning_parameter_count(spec.num_hidden_layers, spec.num_key_value_heads, spec.head_dim,
                                           num_virtual_tokens)
    est = estimate_memory(spec, "full", precision="mixed-bf16", optimizer="adamw")
    per_param = (est.weights + est.gradients + est.optimizer) / total

    def row(n, added=True):  # the share as peft's print_trainable_parameters gives it: of base + added parameters
        return {"trainable_parameters": n, "trainable_percent": 100 * n / (total + n if added else total),
                "checkpoint_bytes_bf16": 2 * n, "checkpoint_bytes_fp32": 4 * n}

    return {
        "arch": spec.name, "total_parameters": total, "rank": rank, "bottleneck": bottleneck,
        "num_virtual_tokens": num_virtual_tokens, "full_bytes_per_parameter": per_param,
        "full": row(total, added=False),
        "lora_qv": row(lora_qv), "lora_all_linear": row(lora_all), "adapter": row(adapter), "prefix": row(prefix),
    }


def claimed_table_fact_check(comparison: MethodComparison | None = None, arch: str = "llama-3.1-8b") -> list[dict]:
    """One entry per row of ``CLAIMED_TABLE``: the claims, the exact count at ``arch``'s size, and what ran here."""
    real = real_size_counts(arch)
    key = {"full": "full", "lora": "lora_all_linear", "qlora": "lora_all_linear", "adapter": "adapter",
           "prefix": "prefix"}
    base_latency = comparison.base_latency_seconds_per_answer if comparison else 0.0
    out = []
    for claim in CLAIMED_TABLE:
        m = claim["method"]
        r = real[key[m]]
        entry = {"method": m, "claims": claim, "real_arch": real["arch"],
                 "real_trainable_percent": r["trainable_percent"],
                 "real_checkpoint_mb_bf16": r["checkpoint_bytes_bf16"] / MB,
                 "real_checkpoint_mb_fp32": r["checkpoint_bytes_fp32"] / MB}
        if m in ("lora", "qlora"):
            entry["real_trainable_percent_qv"] = real["lora_qv"]["trainable_percent"]
            entry["real_checkpoint_mb_fp32_qv"] = real["lora_qv"]["checkpoint_bytes_fp32"] / MB
        if m == "full":
            entry["real_bytes_per_parameter"] = real["full_bytes_per_parameter"]
        if comparison is not None:
            try:
                measured = comparison.row(m)
            except ValueError:
                measured = None
            if measured is not None:
                entry.update({
                    "measured_trainable_percent": measured.trainable_percent,
                    "measured_retention": measured.general_retention,
                    "measured_latency_vs_base": (measured.latency_seconds_per_answer / base_latency
                                                 if base_latency else None),
                    "measured_checkpoint_bytes": measured.checkpoint_bytes,
                    "measured_peak_memory_bytes": measured.peak_memory_bytes,
                    "measured_inference": measured.inference,
                })
        out.append(entry)
    return out



def write_report(comparison: MethodComparison, path, device: str = "") -> str:
    """The comparison as a Markdown report (table, settings, the JSON rows), written to ``path``."""
    import json
    from pathlib import Path

    lines = [f"# Every method side by side: {comparison.settings.get('model')} on {device or 'this machine'}", "",
             "Generated by `python -m coursekit compare` (lesson 06). Same task, data and budget for every method.", "",
             "```", comparison.table(), "```", "", "Settings:", "", "```json",
             json.dumps(comparison.settings, indent=2, default=str), "```", "", "Rows:", "", "```json",
             json.dumps(comparison.records(), indent=2), "```", ""]
    text = "\n".join(lines)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return text


def main(argv: list[str]) -> int:
    """``python -m coursekit compare``: lesson 06's table at any size, written as a report (e.g. under reports/)."""
    import argparse

    from coursekit.data import load_task_dataset
    from coursekit.env import resolve_device

    ap = argparse.ArgumentParser(prog="python -m coursekit compare", description=main.__doc__.splitlines()[0])
    ap.add_argument("--model", default=EMBEDDED_MODEL, help="embedded 'tiny', a short name, hub id or folder")
    ap.add_argument("--size", default="cpu", choices=("cpu", "gpu"), help="task data size")
    ap.add_argument("--methods", default=",".join(ALL_METHODS), help="comma-separated methods")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--metric-examples", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="report path (default: reports/peft_comparison_<model>_<device>.md)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    data = load_task_dataset(size=args.size)
    # the whole training split: every method reads the same examples in the same order (one seed for the shuffle)
    comp = compare_methods(args.model, [m.strip() for m in args.methods.split(",") if m.strip()],
                           train=data["train"], eval=data["validation"],
                           test=data["test"].select(range(min(args.metric_examples, len(data["test"])))),
                           max_steps=args.steps, batch_size=args.batch_size, device=args.device,
                           metric_examples=args.metric_examples, on_error="record", progress=False)
    name = str(args.model).replace("/", "_")
    out = args.out or f"reports/peft_comparison_{name}_{device}.md"
    write_report(comp, out, device=device)
    print(comp.table())
    print(f"\nwritten: {out}")
    return 0


__all__ = ["ALL_METHODS", "MERGEABLE", "MethodComparison", "MethodRow", "CLAIMED_TABLE", "compare_methods", "main",
           "inference_mode", "measure_latency", "prefix_generation_gap", "real_size_counts", "claimed_table_fact_check",
           "serving_model", "write_report"]
