# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fine-tuning-course/fine-tuning-llms/blob/main/notebooks/06_peft_comparison.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fine-tuning-course/fine-tuning-llms/main?urlpath=lab/tree/notebooks/06_peft_comparison.ipynb)
#
# # 06 · Every method, side by side
#
# Lessons 03–05 trained with full fine-tuning, LoRA and QLoRA. The PEFT family is larger: DoRA splits each weight
# into a magnitude and a direction and applies LoRA to the direction; IA3 learns one scaling vector per targeted
# activation; prefix tuning learns extra keys and values in every layer; prompt tuning learns extra input embeddings;
# Houlsby adapters insert small bottleneck MLPs after attention and after the feed-forward block. This lesson trains
# **each of them on the same task, the same data and the same budget** and puts what they cost and what they achieve in
# one measured table, then checks a widely circulated comparison table against it, row by row.

# %% tags=["parameters"]
MODEL = "tiny"  # the embedded model; "smollm2-135m-instruct": a real instruct model, offline; on a GPU any hub id
DEVICE = "auto"
SIZE = "cpu"  # "cpu": laptop defaults; "gpu": real-size runs
SEED = 0
RESULTS_PATH = None

# %%
# Colab only: install coursekit and the packages Colab lacks (never torch or Jupyter). Elsewhere: nothing happens.
COLAB_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    source = os.environ.get("COURSEKIT_WHEEL") or (  # COURSEKIT_WHEEL: a local wheel, for tests
        "coursekit @ git+https://github.com/fine-tuning-course/fine-tuning-llms@main")
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", source]).returncode:
        raise RuntimeError(f"pip could not install coursekit from {source!r} (its message is above): check that "
                           "the runtime is online, then Runtime > Restart session and run this cell again")
    import coursekit.colab
    MODEL, DEVICE, SIZE = coursekit.colab.setup(MODEL, DEVICE, SIZE, colab_model=COLAB_MODEL)

# %%
import tempfile
from pathlib import Path

import IPython.display as ipd
import torch

import coursekit
import coursekit.exercises
import coursekit.quiz
from coursekit.comparison import (ALL_METHODS, claimed_table_fact_check, compare_methods, prefix_generation_gap,
                                  real_size_counts)
from coursekit.data import load_task_dataset
from coursekit.env import resolve_device
from coursekit.notebook import fact_check
from coursekit.units import GB, GIB

results = coursekit.Results(RESULTS_PATH, notebook="06_peft_comparison", model=MODEL)
torch.manual_seed(SEED)
BUDGET_KEY = coursekit.budget_key(MODEL, SIZE)  # "cpu": embedded model; "real-cpu": a real model on a CPU; "gpu"
STEPS = {"cpu": 60, "real-cpu": 4, "gpu": 300}[BUDGET_KEY]  # the same optimizer steps for every method
BATCH = {"cpu": 8, "real-cpu": 8, "gpu": 16}[BUDGET_KEY]
N_METRIC = {"cpu": 64, "real-cpu": 16, "gpu": 200}[BUDGET_KEY]  # test examples scored per method
EVAL_SIZE = {"cpu": 32, "real-cpu": 8, "gpu": 64}[BUDGET_KEY]  # validation examples for the loss before and after
# Learning rates for a short run (None: the method's default, made for runs of hundreds of steps). On a budget
# this small every method gets a large rate that still trains stably on the model: on the embedded model at 60 steps,
# 1e-2 takes LoRA, QLoRA and DoRA to most of the tickets, where at 5e-3 QLoRA can fail to learn the task in this
# budget (`benchmarks/budget_seeds.py` measures both over several random seeds).
LEARNING_RATES = {"cpu": {"full": 2e-3, "lora": 1e-2, "qlora": 1e-2, "dora": 1e-2, "ia3": 1e-2, "prefix": 1e-2,
                          "prompt": 1e-2, "adapter": 1e-2},
                  "real-cpu": {"full": 5e-5, "lora": 1e-3, "qlora": 1e-3, "dora": 1e-3, "ia3": 1e-2,
                               "prefix": 1e-2, "prompt": 1e-2, "adapter": 1e-3},
                  "gpu": {}}[BUDGET_KEY]
METHODS = list(ALL_METHODS)  # every method, QLoRA included (on a CPU its 4-bit layers compute in fp32)
RUNS_DIR = Path(tempfile.mkdtemp(prefix="lesson06-"))
device = resolve_device(DEVICE)
print(f"device: {device}; {STEPS} steps x batch {BATCH} per method")

# %% [markdown]
# ## 1. The contenders
#
# Every method goes through the same entry point, `coursekit.train.finetune(..., method=...)`, with its own
# options and its own learning rate (a PEFT method with few parameters needs a larger one). The defaults suit runs
# of hundreds of steps; the last column is what this run uses (`LEARNING_RATES`):

# %%
from coursekit.train import METHODS as REGISTRY

ipd.display(ipd.Markdown(
    "| method | what trains | options | default learning rate | this run |\n|---|---|---|---|---|\n" + "\n".join(
        f"| `{m}` | {REGISTRY[m].description} | "
        f"{', '.join(f'{k}={v}' for k, v in REGISTRY[m].options.items()) or '—'} | {REGISTRY[m].learning_rate:g} | "
        f"{LEARNING_RATES.get(m, REGISTRY[m].learning_rate):g} |" for m in METHODS)))

# %% [markdown]
# A wrong name or an option that belongs to another method is refused before anything trains:

# %%
for bad in (dict(methods=["lora", "houlsby"]), dict(methods=["full"], method_options={"full": {"rank": 4}})):
    try:
        compare_methods(MODEL, train=[{"instruction": "x", "output": "y"}], **bad)
    except ValueError as exc:
        print("ValueError:", exc)

# %% [markdown]
# ## 2. Train each one on the same budget
#
# For each method: a fresh copy of the base model (4-bit NF4 for QLoRA), the same training examples, the same
# number of optimizer steps and batch size, then the task metric on held-out tickets, the general-skills probe
# before and after (what the model forgot), the checkpoint written to disk, and the inference latency: **merged**
# into the weights where the method allows it (LoRA, DoRA, IA3), **unmerged** otherwise (QLoRA stays on its 4-bit
# base, by choice: merging into it re-quantizes the update, lesson 05 section 6), at batch 1 and the same number of
# new tokens for everyone.

# %%
data = load_task_dataset(size=SIZE, seed=SEED)
train = data["train"]  # every method reads the same examples in the same order (one seed for the shuffle)
test = data["test"].select(range(N_METRIC))
comparison = compare_methods(MODEL, METHODS, train=train, eval=data["validation"], test=test, max_steps=STEPS,
                             batch_size=BATCH, device=DEVICE, metric_examples=N_METRIC, runs_dir=str(RUNS_DIR),
                             seed=SEED, on_error="record", eval_size=EVAL_SIZE, eval_every=STEPS,
                             method_options={m: {"learning_rate": lr} for m, lr in LEARNING_RATES.items()
                                             if m in METHODS})
print(comparison.table())

# %%
_ = results.record(methods=comparison.records(), methods_failed=comparison.errors,
                   base_latency_seconds_per_answer=comparison.base_latency_seconds_per_answer,
                   base_task_metric=comparison.base_task_metric,
                   steps_per_method=STEPS, batch_size=BATCH, tickets_scored=N_METRIC, device=device)
if comparison.errors:
    ipd.display(ipd.Markdown("**Not measured on this machine:** " + "; ".join(
        f"`{m}`: {e}" for m, e in comparison.errors.items())))
if any(r.method == "prefix" for r in comparison.rows):
    # the task metric, the probe and the latency come from generate(); does it apply a prefix as the forward pass does?
    import peft
    import transformers

    prefix_gap = prefix_generation_gap(MODEL)
    _ = results.record(prefix_generation_gap=prefix_gap)
    ipd.display(ipd.Markdown(
        f"**Prefix tuning and `generate()`.** With a random prefix on this model, `generate()`'s first step scores "
        f"the next token at most {prefix_gap['generate_vs_forward']:.2g} away from the forward pass with the prefix "
        f"(and {prefix_gap['generate_vs_base']:.2g} from the model without it; the prefix itself moves the forward "
        f"pass's scores by up to {prefix_gap['forward_vs_base']:.2g}). "
        + ("So `generate()` applies the prefix, and every figure of the prefix row measures prefix tuning."
           if prefix_gap["applied"] else
           f"So with peft {peft.__version__} and transformers {transformers.__version__}, `generate()` does not "
           "apply the trained prefix as training did (peft hands it over as `past_key_values`, which the model now "
           "ignores in favour of generate's own `cache`: the *FutureWarning* printed above). The prefix row's task "
           "metric, retention and latency come from `generate()` and do not measure prefix tuning; its validation "
           "loss, a forward pass as in training, does.")))

# %% [markdown]
# ## 3. Quality against memory

# %%
fig = comparison.plot()
fig

# %%
from coursekit.data import general_probe
from coursekit.evaluate import best_and_ties


def _names(ms):
    return ", ".join(f"**{m}**" for m in ms) or "none"


rows = {r.method: r for r in comparison.rows}
# the best method, and those that cannot be told apart from it on this many test tickets (two-proportion test, 95%)
ranking = best_and_ties({r.method: r.task_metric for r in comparison.rows}, N_METRIC)
best, tied, margin = rows[ranking["best"]], ranking["tied"], ranking["margin"]
base_parameters = sum(r.total_parameters - r.trainable_parameters for r in comparison.rows if r.method == "lora")
_ = results.record(best_method=best.method, best_tied_with=tied)
smallest_ckpt = min(comparison.rows, key=lambda r: r.checkpoint_bytes)
# every method starts from the same base weights (QLoRA from their NF4 copy), so the most kept is the highest probe
# score after training; ties by the same test as the task, on the probe's questions. Ranked among the methods that
# answered tickets: a method that learned nothing keeps everything by changing nothing.
N_PROBE = len(general_probe())
kept_pool = [r for r in comparison.rows if r.task_metric > 0]
kept_ranking = best_and_ties({r.method: r.general_probe_after for r in kept_pool}, N_PROBE) if kept_pool else None
most_kept = rows[kept_ranking["best"]] if kept_pool else None
ipd.display(ipd.Markdown(
    f"**Reading the table.** On this budget ({STEPS} steps of {BATCH} examples) "
    + ((f"the highest task metric is {best.task_metric:.0%} of the {N_METRIC} test tickets exactly right, by "
        f"**{best.method}**"
        + (f"; {_names(tied)} cannot be told apart from it on {N_METRIC} tickets (a difference has to exceed about "
           f"±{margin:.0%} before chance stops explaining it)" if tied else ""))
       if best.task_metric > 0 else
       f"no method answers any of the {N_METRIC} test tickets exactly right yet, so the task metric cannot rank "
       "them; the validation-loss column (and the next paragraph) shows how far each got")
    + ". The smallest "
    f"checkpoint is **{smallest_ckpt.method}** ({smallest_ckpt.checkpoint_bytes / 1e3:,.1f} kB"
    + (f", against {rows['full'].checkpoint_bytes / 1e6:,.1f} MB for full fine-tuning" if "full" in rows else "")
    + ((("). Among the methods that answered tickets, the one that kept the most general skill is "
         if len(kept_pool) < len(comparison.rows) else "). The method that kept the most general skill is ")
        + f"**{most_kept.method}** (retention {most_kept.general_retention:.2f}: probe after / probe before)"
        + (f"; {_names(kept_ranking['tied'])} cannot be told apart from it on {N_PROBE} probe questions"
           if kept_ranking["tied"] else "") + ".")
       if kept_pool else
       "). Since no method answered a ticket, retention cannot show a trade-off yet: a method that learned nothing "
       "keeps everything by changing nothing.")
    + (f" Peak memory here is *{comparison.rows[0].memory_measured_as}*: on a CPU, and for a model of "
       f"{base_parameters / 1e6:,.1f}M parameters, the process's own bookkeeping is a large share of it, so the "
       f"memory column (here {min(r.peak_memory_bytes for r in comparison.rows) / 1e6:,.0f} to "
       f"{max(r.peak_memory_bytes for r in comparison.rows) / 1e6:,.0f} MB) is noisy and does not rank the methods "
       "by what they train; the GPU report under `reports/` and lesson 02's estimator show the real-size picture."
       if device != "cuda" else "")))

# %%
scored = [r.method for r in comparison.rows if r.task_metric > 0]
LEARNED_LOSS_DROP = 0.10  # "learned": the validation loss fell by at least 10%, and below the base model's
base_loss = comparison.rows[0].first_eval_loss or float("nan")  # full fine-tuning starts from the base model
loss_fell = [r.method for r in comparison.rows if r.task_metric == 0 and r.first_eval_loss is not None
             and r.final_eval_loss is not None and r.final_eval_loss < (1 - LEARNED_LOSS_DROP) * r.first_eval_loss
             and r.final_eval_loss < base_loss]
stuck = [r.method for r in comparison.rows if r.method not in scored and r.method not in loss_fell]
above_base = [m for m in stuck if (rows[m].final_eval_loss or 0) >= base_loss  # started above the base, ended above
              and (rows[m].first_eval_loss or 0) > base_loss]
_ = results.record(methods_scoring=scored, methods_loss_fell_only=loss_fell, methods_not_learning=stuck)


ipd.display(ipd.Markdown(
    f"**Who learned what in {STEPS} steps.** Answered some test tickets exactly right: {_names(scored)}. "
    f"Lowered the validation loss by {LEARNED_LOSS_DROP:.0%} or more but got no ticket entirely right yet: "
    f"{_names(loss_fell)}. "
    f"Lowered the validation loss by less than {LEARNED_LOSS_DROP:.0%}, or not below the base model's: "
    f"{_names(stuck)}"
    + (f" ({_names(above_base)} started above the base model's loss, with "
       + ("its" if len(above_base) == 1 else "their") + " new parameters untrained, and ended above it still)"
       if above_base else "")
    + ". A task metric of 0 here says only that no ticket was exactly right within this budget: the "
    f"validation-loss column shows how far each method got (base model: {base_loss:.2f})."))

# %% [markdown]
# Why did a method not answer? Three causes are common in a run like this one: too few **steps** (its loss is still
# falling when the budget ends), the **scale** of the model (some methods need a large one to work well), and, for prefix
# tuning, the **reparameterisation** its paper trains through. The first is measured here from each run's training
# loss: its mean over the last fifth of the steps against the fifth before it. A run whose loss fell and then
# levelled off is reported as that.

# %%
STILL_FALLING = 0.05  # "still falling": the last fifth's mean training loss at least 5% under the fifth before it


MIN_TREND_STEPS = 10  # fewer logged steps than this: a fifth is one or two batches, noise rather than a trend


def late_trend(row):
    """Mean training loss over the last fifth of the logged steps ÷ the fifth before it (below 1: still falling);
    None when too few steps were logged to read a trend."""
    losses = [loss for _, loss in row.train_loss]
    if len(losses) < MIN_TREND_STEPS:
        return None
    k = len(losses) // 5
    before, last = losses[-2 * k:-k], losses[-k:]
    return (sum(last) / len(last)) / (sum(before) / len(before)) if before else float("nan")


def why_not(row):
    trend = late_trend(row)
    drop = 1 - row.final_eval_loss / row.first_eval_loss if row.first_eval_loss and row.final_eval_loss else 0.0
    text = (f"**{row.method}** ({row.trainable_parameters:,} trainable numbers, {row.trainable_percent:.2f}% of the "
            f"model): validation loss down {drop:.0%}; ")
    if trend is None:
        return text + (f"its training loss was logged at {len(row.train_loss)} steps, too few to read a trend. "
                       f"**Steps**: {STEPS} steps are too few to tell whether it would answer tickets exactly; a larger `STEPS` is "
                       "the test.")
    text += f"over the last fifth of its steps the training loss moved {trend - 1:+.0%}. "
    if trend <= 1 - STILL_FALLING:
        text += ("**Steps**: its loss was still falling in the last fifth, while the cosine schedule took the "
                 "learning rate towards zero; a larger `STEPS` is the test.")
    elif drop < LEARNED_LOSS_DROP:
        fewer = [r.method for r in comparison.rows if r.trainable_parameters <= row.trainable_parameters
                 and r.method not in stuck]
        text += f"Its validation loss fell by less than {LEARNED_LOSS_DROP:.0%} over the whole run" + (
            f"; not for want of trainable numbers: {_names(fewer)} trained no more of them and learned more"
            if fewer else "") + "."
    else:
        text += ("Its loss fell, then levelled off as the schedule's learning rate decayed, short of exact answers "
                 "(every token of a ticket must be right): more steps or a larger learning rate is the test.")
    if row.method == "prompt":
        text += (" The prompt-tuning paper's answer is **scale**: Lester et al. (2021) report that tuning soft prompts "
                 "catches up with "
                 f"full fine-tuning only for models of billions of parameters; this one has "
                 f"{row.total_parameters / 1e6:.1f}M.")
    if row.method == "prefix":
        text += (" Prefix tuning's paper (Li & Liang, 2021) builds the prefix from a smaller matrix passed through a "
                 "large feedforward network, because optimising it directly was unstable; peft does that with `PrefixTuningConfig(prefix_projection=True)`"
                 " and trains it directly by default, as here.")
    return text


not_answering = [rows[m] for m in loss_fell + stuck]
_ = results.record(late_loss_trend={r.method: late_trend(r) for r in comparison.rows})
ipd.display(ipd.Markdown("\n".join(f"* {why_not(r)}" for r in not_answering)
                         or "Every method answered some tickets exactly right on this budget."))

# %% [markdown]
# Caveats that come with any table like this one:
#
# * **One budget does not fit all.** Prompt and prefix tuning train very few numbers and usually need many more
#   steps (and larger learning rates) than LoRA to get going; a fixed number of steps favours the methods that learn
#   fast. Re-run with `STEPS` larger to see who catches up.
# * **Merged vs unmerged.** A merged LoRA, DoRA or IA3 model is the base architecture again: its latency is the
#   base model's. Prefix and prompt tuning add virtual tokens to every request; adapters add layers; QLoRA
#   dequantizes 4-bit weights on every matmul.
# * **Small model, CPU.** Latency and memory of a small model on a CPU are dominated by fixed overheads.
#   Parameter counts and checkpoint sizes carry over to a real model (section 4 computes them at 8B); memory and
#   latency, absolute or as ratios, do not: re-measure them at your size (set `SIZE = "gpu"` and `MODEL` to a real
#   model on a GPU).

# %% [markdown]
# ## 4. Fact check: the widely circulated comparison table
#
# The table as quoted, row by row, next to exact counts for Llama-3.1-8B (LoRA rank 16, adapter bottleneck 64,
# 20 prefix tokens; computed on the meta device, no download) and next to what ran above.

# %%
from coursekit.archs import resolve_arch

real = real_size_counts("llama-3.1-8b")
spec_8b = resolve_arch("llama-3.1-8b")
QUOTED_PREFIX = 32 * 2 * 20 * 4096  # the quoted count: layers x (key, value) x tokens x hidden size
check = claimed_table_fact_check(comparison, "llama-3.1-8b")
lines = ["| method | claimed: trainable | exact, 8B | claimed: checkpoint | exact, 8B (bf16 / fp32) | "
         "claimed: forgetting | retention here | claimed: latency | latency here vs base |",
         "|---|---|---|---|---|---|---|---|---|"]
for c in check:
    cl = c["claims"]
    pct = f"{c['real_trainable_percent']:.3g}%"
    if "real_trainable_percent_qv" in c:
        pct += f" all-linear, {c['real_trainable_percent_qv']:.3g}% q,v"
    retention = f"{c['measured_retention']:.2f}" if c.get("measured_retention") is not None else "—"
    latency = f"{c['measured_latency_vs_base']:.2f}× ({c['measured_inference']})" if c.get(
        "measured_latency_vs_base") else "—"
    lines.append(f"| {c['method']} | {cl['trainable']} | {pct} | {cl['checkpoint']} | "
                 f"{c['real_checkpoint_mb_bf16']:,.0f} / {c['real_checkpoint_mb_fp32']:,.0f} MB | {cl['forgetting']} | "
                 f"{retention} | {cl['latency']} | {latency} |")
ipd.display(ipd.Markdown("\n".join(lines)))
_ = results.record(claimed_table_fact_check=[{k: v for k, v in c.items() if k != "claims"} for c in check],
                   real_size=real)

# %%
lora_all, lora_qv, adapter, prefix = (real["lora_all_linear"], real["lora_qv"], real["adapter"], real["prefix"])
# full fine-tuning keeps the base model's exact architecture: its latency ratio is this machine's timing noise
full_latency_ratio = (rows["full"].latency_seconds_per_answer / comparison.base_latency_seconds_per_answer
                      if "full" in rows and comparison.base_latency_seconds_per_answer else None)
_ = results.record(full_latency_vs_base=full_latency_ratio)
fact_check(
    "the quoted table, line by line:\n"
    f"* *Full fine-tuning, \"14 bytes/param\"*: the textbook mixed-precision recipe (bf16 weights and gradients, "
    f"fp32 master copy and two fp32 Adam moments) is **{real['full_bytes_per_parameter']:.0f} bytes per parameter**"
    f" before activations: 14 is 2 bytes short of it, as if one of the 2-byte terms or part of the master copy "
    f"were left out of the count.\n"
    f"* *LoRA r={real['rank']}, \"~0.2%\" and \"under 50 MB\"*: on Llama-3.1-8B it is "
    f"{lora_qv['trainable_percent']:.3f}% for q_proj and v_proj, an adapter of "
    f"{lora_qv['checkpoint_bytes_bf16'] / 1e6:,.0f} MB in bf16 and {lora_qv['checkpoint_bytes_fp32'] / 1e6:,.0f} MB in "
    f"fp32 (peft keeps adapter weights in fp32 by default), "
    + ("under 50 MB as claimed" if lora_qv["checkpoint_bytes_fp32"] < 50e6 else "not under 50 MB")
    + f"; for all linear layers it is {lora_all['trainable_percent']:.2f}%, "
    f"**{lora_all['checkpoint_bytes_bf16'] / 1e6:,.0f} MB in bf16 and {lora_all['checkpoint_bytes_fp32'] / 1e6:,.0f} MB "
    "in fp32**, " + ("under 50 MB." if lora_all["checkpoint_bytes_fp32"] < 50e6 else "not under 50 MB.") + "\n"
    f"* *Adapters, \"~1-3%\" and \"50-200 MB\"*: bottleneck 64 on Llama-3.1-8B is "
    f"**{adapter['trainable_percent']:.2f}%** ({adapter['trainable_parameters']:,} parameters), "
    f"{adapter['checkpoint_bytes_bf16'] / 1e6:,.0f} MB in bf16.\n"
    f"* *Prefix tuning, \"~0.1%\"*: {real['num_virtual_tokens']} virtual tokens are "
    f"**{prefix['trainable_percent']:.3f}%** ({prefix['trainable_parameters']:,}); Llama-3.1-8B's grouped-query "
    f"attention keeps only {spec_8b.num_key_value_heads} key/value heads for its {spec_8b.num_attention_heads} query "
    f"heads, so the prefix is {prefix['trainable_parameters'] / QUOTED_PREFIX:.2f} of what the quoted "
    f"32 × 2 × 20 × 4096 = {QUOTED_PREFIX:,} assumes.\n"
    f"* *Latency and forgetting* are measured above, on this budget: the table's \"None\" for merged LoRA holds "
    f"(merged, it is the base architecture)"
    + (f"; how finely this machine times it shows in full fine-tuning, the base model's exact architecture, measured "
       f"at {full_latency_ratio:.2f}× the base: differences of that size (±{abs(full_latency_ratio - 1):.0%}) are "
       "timing noise here, not the method, and since that is one pair of timings, read it as the least noise to "
       "expect" if full_latency_ratio else "")
    + "; its forgetting labels are qualitative — the retention column is the "
    "measured version for this model and budget. Only full fine-tuning changes the base weights: for every other "
    "method the retention measures the adapted model as served, and removing the adapter (`disable_adapter()`, or "
    "loading the base without it) gives the base model's answers back. Where the change enters differs: LoRA, DoRA "
    "and IA3 change what the weights compute, adapters add layers, and prefix and prompt tuning put trained virtual "
    "tokens in front of every question, probe questions included.")

# %% [markdown]
# ### The same tutorial's method recommender
#
# The tutorial that circulates the table ends with a function, `recommend_peft_method(model_size_billions,
# available_gpu_gb, task_complexity, multiple_tasks)`. It prices LoRA on a bf16 base and QLoRA with two rules of
# thumb (so many GB per billion parameters, plus a fixed allowance), collects every method whose rule fits the GPU, adds
# adapter layers when there are several tasks, and returns the first of the list. `claimed_recommend_peft_method` is
# that function as quoted. Below, its three printed examples and one case of our own: what its code returns, and what
# lesson 01's `recommend_method` answers for the real architectures, from the memory estimator (one sequence of 2,048
# tokens, gradient checkpointing on).

# %%
from coursekit.recommend import CLAIMED_GB_RULES, claimed_recommend_peft_method, recommend_method

REC_RUN = dict(batch_size=1, seq_len=2048)  # the run the estimator prices (the quoted rules name none)
READY = dict(num_examples=10_000, goal="specialization", prompting_exhausted=True)  # answers that reach the method
REC_CASES = [  # its arguments, what it prints, the real model and the GPU (a name, or GiB)
    ((8, 24, "moderate", False), "LoRA, rank 16", "llama-3.1-8b", "RTX 4090"),
    ((70, 80, "complex", False), "QLoRA, rank 16", "llama-3.1-70b", "A100 80GB"),
    ((7, 24, "simple", True), "Adapter Layers", "llama-2-7b", "RTX 4090"),
    ((7, 12, "moderate", False), "(not one of its examples)", "llama-2-7b", 12),
]
rec_rows, recs = [], []
for args, printed, arch, gpu in REC_CASES:
    theirs = claimed_recommend_peft_method(*args)
    ours = recommend_method(**READY, multiple_tasks=args[3], model=arch, gpu=gpu, **REC_RUN)
    recs.append(ours)
    rec_rows.append({
        "call": f"recommend_peft_method{args}", "prints": printed,
        "its code returns": theirs["method"] + (f", rank {theirs['rank']}" if "rank" in theirs else ""),
        **{f"its {m} rule (GB)": args[0] * per_b + plus for m, (per_b, plus) in CLAIMED_GB_RULES.items()},
        "model": arch, "GPU (GiB)": round(ours.gpu_capacity_bytes / 2**30, 1),
        **{f"estimate {m} (GiB)": round(ours.memory_bytes[m] / 2**30, 1) for m in ("lora", "qlora")},
        "recommend_method": ours.method or "nothing fits", "several tasks": args[3]})
ipd.display(ipd.Markdown(
    "| " + " | ".join(rec_rows[0]) + " |\n|" + "---|" * len(rec_rows[0]) + "\n"
    + "\n".join("| " + " | ".join(str(v) for v in row.values()) + " |" for row in rec_rows)))
_ = results.record(claimed_recommender=[{k: row[k] for k in ("call", "prints", "its code returns", "model",
                                                              "recommend_method")} for row in rec_rows])

# %%
r8b, r70b, r7b, r7b12 = rec_rows
o8b, o70b, o7b, o7b12 = recs


def same_method(row):  # its code's answer and recommend_method's, by method name
    return row["its code returns"].split(",")[0].lower() == str(row["recommend_method"]).lower()


agrees = same_method(r8b) and same_method(r70b)
third_differs = r7b["its code returns"] != r7b["prints"]
rule_8b_bytes = r8b["its qlora rule (GB)"] * GB
rule_low = rule_8b_bytes < o8b.memory_bytes["qlora"]
qlora_fits_12 = o7b12.memory_bytes["qlora"] <= o7b12.gpu_capacity_bytes
results.record(claimed_recommender_reading=dict(agrees_first_two=agrees, third_differs=third_differs,
                                                qlora_rule_low_8b=rule_low, qlora_fits_7b_12gib=qlora_fits_12))
fact_check(
    f"The claim: its printed examples, `{r8b['call']}` → *{r8b['prints']}*, `{r70b['call']}` → "
    f"*{r70b['prints']}*, `{r7b['call']}` → *{r7b['prints']}*.",
    f"its code returns **{r8b['its code returns']}** and **{r70b['its code returns']}** for the first two, and "
    + ("the estimator agrees" if agrees else "`recommend_method` answers otherwise")
    + f" ({r8b['model']}: LoRA {r8b['estimate lora (GiB)']} GiB on a {r8b['GPU (GiB)']} GiB card, "
    f"`recommend_method` says **{r8b['recommend_method']}**; {r70b['model']}: LoRA {r70b['estimate lora (GiB)']} GiB, "
    f"QLoRA {r70b['estimate qlora (GiB)']} GiB on {r70b['GPU (GiB)']} GiB, it says **{r70b['recommend_method']}**). "
    + ("The third is not what its code returns: the function returns the first method that passed, LoRA passed "
       f"before the adapters were added, and it returns **{r7b['its code returns']}**; with LoRA fitting, several "
       "tasks never change its answer. " if third_differs else
       f"The third is what its code returns (**{r7b['its code returns']}**). ")
    + f"`recommend_method` picks **{r7b['recommend_method']}** there, and for several tasks trains one adapter per "
    "task on one base (lesson 04 loads several adapters on one base). "
    + f"Its QLoRA rule gives {rule_8b_bytes / GB:g} GB ({rule_8b_bytes / GIB:.1f} GiB) for {r8b['model']}, the "
    f"estimator {o8b.memory_bytes['qlora'] / GB:.1f} GB ({o8b.memory_bytes['qlora'] / GIB:.1f} GiB): "
    + ("its rule runs low. " if rule_low else "its rule is not below the estimate. ")
    + f"Its QLoRA branch also demands more than 7 billion parameters: `{r7b12['call']}` returns "
    f"**{r7b12['its code returns']}** (*too large even for QLoRA*), while the estimator puts QLoRA of "
    f"{r7b12['model']} at {r7b12['estimate qlora (GiB)']} GiB, which "
    + ("fits" if qlora_fits_12 else "does not fit")
    + f" {r7b12['GPU (GiB)']} GiB: `recommend_method` says **{r7b12['recommend_method']}**.")

# %% [markdown]
# ## 5. What comes next
#
# **More than one GPU.** Data parallelism (PyTorch's `DistributedDataParallel`, DDP) keeps a full replica of the
# model, its gradients and its optimizer state on every GPU, gives each GPU its own share of every batch and averages
# the gradients between them: more examples per second, but nothing larger fits than on one GPU. Sharding splits that
# state across the GPUs instead. DeepSpeed's ZeRO does it in stages: stage 1 partitions the optimizer state, stage 2
# the gradients as well, stage 3 the parameters too (gathered when a layer needs them in the forward and backward
# passes). PyTorch's FSDP shards parameters, gradients and optimizer state, as ZeRO stage 3 does. The Hugging Face
# `Trainer`, and TRL's trainers built on it, run all three without changes to the training loop: launch the script
# with `torchrun` or `accelerate launch` for DDP, and turn sharding on either in the Accelerate config that
# `accelerate config` writes or in the training arguments: `fsdp=True` with an `fsdp_config` (a dict or a JSON file;
# FSDP2 by default), or `deepspeed=` a DeepSpeed config (a JSON file or a dict, whose `zero_optimization` section sets
# the stage).
#
# **Preference tuning.** Supervised fine-tuning shows the model one good answer per prompt. Preference tuning shows it
# two answers to the same prompt, one preferred, and moves the model towards the preferred one. DPO (Rafailov et al.,
# [2023](https://arxiv.org/abs/2305.18290)) does it without a separate reward model: its loss widens the gap between the
# log-probabilities of the chosen and the rejected answer, each taken relative to a frozen reference model. In TRL it is
# `DPOTrainer` with a `DPOConfig`; each row has a `prompt`, a `chosen` and a `rejected` answer, and `beta` (`beta=0.1`
# by default) sets how far the model may move from the reference: the higher, the less. DPO starts from a model that
# already answers in the right form, usually an SFT model like the ones this course trains (TRL's own example starts
# from `Qwen/Qwen2.5-0.5B-Instruct`), and by default that starting model is also the reference. With a LoRA
# `peft_config`, TRL keeps no second copy of the model for the reference: it runs the same model with the adapter
# disabled (lesson 04's `disable_adapter`).
#
# The TRL this course pins (`trl==1.16.0`) has more trainers built the same way: `KTOTrainer` (single answers labelled
# good or bad instead of pairs), `GRPOTrainer` and `RLOOTrainer` (the model generates answers during training and reward
# functions score them), `RewardTrainer` (a reward model trained on preference pairs), and `ORPOTrainer` in
# `trl.experimental.orpo`.

# %% [markdown]
# ## 6. Try it

# %%
ex = coursekit.exercises.get("06.adapter_params")
ex.show()
# ex.check(0)

# %%
ex = coursekit.exercises.get("06.prefix_params")
ex.show()
# ex.check(0)

# %%
ex = coursekit.exercises.get("06.method_fits_gpu")
ex.show()
# ex.check("?")

# %%
coursekit.quiz.quiz_widget("06")
