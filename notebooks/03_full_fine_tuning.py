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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fine-tuning-course/fine-tuning-llms/blob/main/notebooks/03_full_fine_tuning.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fine-tuning-course/fine-tuning-llms/main?urlpath=lab/tree/notebooks/03_full_fine_tuning.ipynb)
#
# # 03 · Full fine-tuning, hyperparameters and catastrophic forgetting
#
# Full fine-tuning updates every weight of the model with backpropagation. The objective is supervised fine-tuning
# (SFT): the next-token loss on example answers, the same objective the LoRA and QLoRA runs of lessons 04 and 05
# train with. What makes it *full* is that every weight is trained. In this lesson you run the whole pipeline for
# real on the course's embedded model: data in instruction / input / output form, tokenization with the loss on the
# response only, training with a cosine schedule and warmup, evaluation, and generation before and after. Then you
# explore the hyperparameters with a small sweep, and you watch *catastrophic forgetting* happen, measure it, and try
# the remedies.
#
# On a laptop CPU the embedded model (a few million parameters) trains in under a minute per run. On a GPU, set `MODEL` to a real
# model and `SIZE = "gpu"`: the same cells run unchanged.

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
from coursekit import evaluate
from coursekit.evaluate import rate_difference
from coursekit.notebook import count
from coursekit.data import (general_probe, general_texts, load_task_dataset, show_learned_tokens, task_prompt,
                            tokenize_with_labels)
from coursekit.plots import plot_runs, plot_sweep
from coursekit.train import COMMON_OPTIONS, FreshRuns, mix_general_text

results = coursekit.Results(RESULTS_PATH, notebook="03_full_fine_tuning", model=MODEL)
results.record(model=MODEL, size=SIZE)
torch.manual_seed(SEED)
RUNS_DIR = Path(tempfile.mkdtemp(prefix="lesson03-"))

# The size knob: how much data and how many passes. The learning rates are scaled to the model: the embedded model
# was pretrained at a peak learning rate of 3e-3, ten times a 7B model's (about 3e-4), and this short CPU budget goes
# further: its gentle rate, 1e-3, is 50 times the popular recipe's 2e-5 for a 7B model.
BUDGET = {
    # the sweep trains on the gentle run's examples and epochs, so the gentle run is its middle point (trained once);
    # the aggressive run is the sweep's highest rate in half the epochs
    "cpu": dict(train_examples=480, eval_examples=48, metric_examples=64, batch_size=8, grad_accum=1,
                gentle=dict(learning_rate=1e-3, epochs=2), aggressive=dict(learning_rate=3e-3, epochs=1),
                aggressive_examples=480, sweep_learning_rates=[1e-5, 1e-3, 3e-3], sweep_examples=480,
                sweep_epochs=2, mix_fraction=0.3, heldout_texts=64),
    # a real pretrained model on a CPU: a handful of steps per run (a 135M model trains at about a hundred
    # tokens a second on two cores), so these runs show the mechanics and the GPU run shows the effects at size
    "real-cpu": dict(train_examples=32, eval_examples=8, metric_examples=16, batch_size=8, grad_accum=1,
                     gentle=dict(learning_rate=5e-5, epochs=1), aggressive=dict(learning_rate=1e-3, epochs=2),
                     aggressive_examples=16, sweep_learning_rates=[5e-5, 1e-3], sweep_examples=32,
                     sweep_epochs=1, mix_fraction=0.3, heldout_texts=16),
    "gpu": dict(train_examples=10_000, eval_examples=300, metric_examples=200, batch_size=4, grad_accum=4,
                gentle=dict(learning_rate=2e-5, epochs=3), aggressive=dict(learning_rate=2e-4, epochs=10),
                aggressive_examples=2_000, sweep_learning_rates=[5e-6, 2e-5, 5e-5, 2e-4], sweep_examples=2_000,
                sweep_epochs=1, mix_fraction=0.3, heldout_texts=64),
}[coursekit.budget_key(MODEL, SIZE)]
RECIPE_STEPS = {"cpu": 10, "real-cpu": 2, "gpu": 20}[coursekit.budget_key(MODEL, SIZE)]  # the recipe written out
BUDGET

# %% [markdown]
# ## 1. The data: instruction, input, output
#
# The task is the course's running example: a customer-support ticket comes in, and the model must answer with a
# one-line JSON triage (intent, order number, priority) followed by a reply in the house style. Each example has the
# three fields that popular fine-tuning tutorials use.

# %%
data = load_task_dataset(size=SIZE, seed=SEED)
train = data["train"].shuffle(seed=SEED).select(range(BUDGET["train_examples"]))
val = data["validation"].select(range(BUDGET["eval_examples"]))
test = data["test"].select(range(BUDGET["metric_examples"]))
example = test[0]
print({k: example[k] for k in ("instruction", "input", "output")})
print(f"\ntrain {len(train)} / validation {len(val)} / test {len(test)} examples "
      f"(of {len(data['train']):,} / {len(data['validation']):,} / {len(data['test']):,} available)")

# %% [markdown]
# A prompt template turns an example into text; the model learns to continue it with the output and an
# end-of-sequence token. For a model without a chat template (the embedded one) that is the widely used
# `### Instruction / ### Input / ### Response` template; for an instruct model (`MODEL = "smollm2-135m-instruct"`) it
# is the model's own **chat template**, with the ticket as the user's turn and the answer as the assistant's, ending
# with the template's end-of-turn token (`<|im_end|>` for SmolLM2), the token that teaches the model to stop. Only
# the **response** should count in the loss: the model is not asked to predict the ticket, which it could never know.
# `tokenize_with_labels` shows the mechanism: labels are the token ids, with the prompt positions set to -100, which
# the cross-entropy ignores. `finetune` does the same through TRL's prompt/completion datasets (conversational ones
# for a chat model), and a test checks that TRL masks exactly these tokens.
#
# Check it yourself before any long run: decode what the loss covers. The part in ⟦ ⟧ below is learned. Two silent
# bugs show up here at once: the prompt inside the brackets (a template or masking mistake: the model trains on the
# ticket), or no end-of-turn / end-of-sequence token inside them (the model never learns to stop, and rambles until
# `max_new_tokens`).

# %%
model, tokenizer = coursekit.load_base_model(MODEL, device=DEVICE)
print(task_prompt(example, tokenizer) + "⟨response follows⟩")
enc = tokenize_with_labels(example, tokenizer, max_length=model.config.max_position_embeddings)
n_masked = sum(label == -100 for label in enc["labels"])
n_tokens = len(enc["input_ids"])
lengths = [len(tokenize_with_labels(e, tokenizer, 4096)["input_ids"]) for e in train]
print(show_learned_tokens(enc, tokenizer))
learned_ids = [t for t, label in zip(enc["input_ids"], enc["labels"]) if label != -100]
learns_to_stop = tokenizer.eos_token_id in learned_ids
results.record(learns_to_stop=learns_to_stop, prompt_tokens_masked=n_masked, chat_template=bool(
    getattr(tokenizer, "chat_template", None)))
ipd.Markdown(f"This example is {n_tokens} tokens: {n_masked} prompt tokens are masked, {n_tokens - n_masked} "
             f"response tokens are learned, "
             + (f"the end token `{tokenizer.eos_token}` among them." if learns_to_stop else
                f"**but not the end token `{tokenizer.eos_token}`: this model would never learn to stop.**")
             + f" Training examples are {min(lengths)} to {max(lengths)} tokens long "
             f"(mean {sum(lengths) / len(lengths):.0f}).")

# %% [markdown]
# > **Fact check: padding.** A popular recipe tokenizes with `padding="max_length"` and `max_length=512`, so every
# > example costs 512 positions of compute. Padding each batch to its longest example instead (what `finetune`
# > does) wastes far less:

# %%
batch = BUDGET["batch_size"]
dynamic = sum(max(lengths[i:i + batch]) * len(lengths[i:i + batch]) for i in range(0, len(lengths), batch))
padding_share_max_length = 1 - sum(lengths) / (512 * len(lengths))
padding_share_dynamic = 1 - sum(lengths) / dynamic
results.record(padding_share_max_length=padding_share_max_length, padding_share_dynamic=padding_share_dynamic,
               prompt_tokens_masked=n_masked, example_tokens=n_tokens)
ipd.Markdown(f"With `padding='max_length'` (512), **{padding_share_max_length:.0%}** of the positions computed are "
             f"padding; padding per batch of {batch}, {padding_share_dynamic:.0%}.")

# %% [markdown]
# > **Fact check: today's argument names.** The popular recipe's training script was written for older libraries.
# > In the versions this course pins, some of its arguments are gone or renamed (checked below on the installed
# > classes), and its `DataCollatorForLanguageModeling(mlm=False)` trains on the prompt tokens too.

# %%
import transformers
from transformers import TrainingArguments

fields = TrainingArguments.__dataclass_fields__
renames = {
    "evaluation_strategy": "eval_strategy",
    "warmup_ratio": "warmup_steps (a float below 1 is a fraction of the steps)",
    "gradient_checkpointing": "activation_checkpointing (the old name is a deprecated alias)",
}
rows = [f"| `{old}` | {'still accepted' if old in fields else 'gone'} | `{new}` |" for old, new in renames.items()]
ipd.Markdown(f"transformers {transformers.__version__}:\n\n| recipe's argument | today | use |\n|---|---|---|\n"
             + "\n".join(rows) + "\n| `AutoModelForCausalLM.from_pretrained(torch_dtype=...)` | deprecated | `dtype=` |")

# %% [markdown]
# ## 2. The base model before fine-tuning
#
# Three measurements, used before and after every run in this lesson:
#
# * the **task metric**: the fraction of test tickets answered exactly right (triage JSON and reply);
# * the **general-skills probe**: short questions outside the task (facts, arithmetic, copying) that the base
#   model learned in pretraining. A drop is forgetting;
# * **held-out perplexity** on general text the model never saw: how well it still models ordinary language.

# %%
heldout = general_texts("heldout", BUDGET["heldout_texts"])
task_base = evaluate.task_metric(model, tokenizer, test)
probe_base = evaluate.general_probe_score(model, tokenizer)
ppl_base = evaluate.perplexity(model, tokenizer, heldout)
results.record(task_metric_base=task_base, general_probe_base=probe_base, perplexity_base=ppl_base)
before = evaluate.generate(model, tokenizer, [task_prompt(example, tokenizer)], max_new_tokens=96)[0]
print("base model's answer:\n" + before)
ipd.Markdown(f"Base model: task metric **{task_base:.2f}**, general probe **{probe_base:.2f}**, held-out perplexity "
             f"**{ppl_base:.2f}**. "
             + ("It does not answer in the task's format yet." if task_base < 0.1 else
                f"It already gets {task_base:.0%} of the tickets right."))

# %% [markdown]
# ## 3. The popular recipe, scaled to this model
#
# `finetune` runs TRL's `SFTTrainer` with the recipe's choices: AdamW, a cosine schedule with 10% warmup, weight decay
# 0.01, evaluation on the validation set during training (and once before the first step), and the loss on the
# response only. The "gentle" recipe is its low learning rate and few epochs, scaled to this model. In a
# notebook you see a progress bar and the loss curves drawn live.
#
# **Precision: why the trained weights stay in fp32.** On a GPU, `bf16=True` in `SFTConfig` runs the matrix
# multiplications in bf16 under autocast (softmax, the norms and the loss stay in fp32); it does not cast the model,
# so the optimizer updates the weights in whatever dtype they were loaded in. Load them in bf16 and training is *pure*
# bf16. A bf16 number has 8 significant bits: an update below half the gap to the next bf16 value (between |w|/512 and
# |w|/256) is rounded away, and the weight stays exactly as it was. Adam divides each update by the gradient's running
# RMS, so a step usually moves a weight by about the scheduled learning rate or less (exactly that, up to its tiny
# epsilon, on the first step; warmup and noisy gradients make most steps smaller, and Kingma & Ba bound the rare
# large one, a gradient after many steps of zero gradient, by about three times the rate). Adding the learning rate once is
# therefore a typical large update, and since most updates are smaller, the fractions below understate what bf16
# loses. Measured on this model's weights:

# %%
LR_CHECKS = sorted({2e-5, BUDGET["gentle"]["learning_rate"]})  # the popular recipe's rate, and the gentle one here
unchanged_bf16 = {}
with torch.no_grad():
    matrices = [p for p in model.parameters() if p.dim() == 2]
    for lr in LR_CHECKS:
        same = sum(int(((w := p.to(torch.bfloat16)) + lr).eq(w).sum()) for p in matrices)
        same_fp32 = sum(int(((w := p.float()) + lr).eq(w).sum()) for p in matrices)
        n_entries = sum(p.numel() for p in matrices)
        unchanged_bf16[lr] = (same / n_entries, same_fp32 / n_entries)
results.record(bf16_update_lost_fraction={f"{lr:g}": v[0] for lr, v in unchanged_bf16.items()},
               fp32_update_lost_fraction={f"{lr:g}": v[1] for lr, v in unchanged_bf16.items()})
ipd.Markdown(
    "\n".join(f"* learning rate {lr:g}: **{v:.1%}** of the weight-matrix entries do not change in bf16, "
               f"{v32:.1%} in fp32" for lr, (v, v32) in unchanged_bf16.items())
    + "\n\nSo the runs below load the weights in fp32, the *master copy* the optimizer updates, and on a GPU "
    "`bf16=True` computes in bf16: mixed precision, the recipe lesson 02 calls `amp-bf16` (16 bytes per parameter "
    "with AdamW, plus the bf16 weight copies autocast makes in each forward). A frozen LoRA or QLoRA base can stay in bf16: nothing updates it, and the updates go to the "
    "adapters, which peft creates in fp32 (on a 4-bit base TRL's `SFTTrainer` casts them to bf16, as the QLoRA "
    "paper does: lesson 05).")

# %%
# Every run below fine-tunes a fresh copy of the base model with this lesson's budget plus its own options:
# `FreshRuns` loads it as the method needs (fp32 master weights for full fine-tuning) and calls `finetune`; a run the
# lesson asks for twice (same examples and options) is trained once.
run = FreshRuns(MODEL, train, val, method="full", test=test, batch_size=BUDGET["batch_size"],
                grad_accum=BUDGET["grad_accum"], seed=SEED, device=DEVICE, runs_dir=RUNS_DIR,
                metric_examples=BUDGET["metric_examples"], measure_before=False, perplexity_texts=heldout,
                save_final=False)


def epochs_text(epochs):
    return f"{epochs:g} epoch" + ("" if epochs == 1 else "s")


gentle = run("gentle", **BUDGET["gentle"])
gentle_kept = gentle.general_probe_after / probe_base
results.record(gentle=gentle, general_probe_kept_gentle=gentle_kept)  # the whole run: every figure it measured
ipd.Markdown(
    f"Gentle run ({gentle.config['learning_rate']:g} learning rate, {epochs_text(gentle.config['epochs'])}, "
    f"{gentle.steps} optimizer steps, {gentle.train_seconds:.0f} s at {gentle.tokens_per_second:,.0f} tokens/s): "
    f"task metric {task_base:.2f} → **{gentle.task_metric_after:.2f}**, general probe {probe_base:.2f} → "
    f"**{gentle.general_probe_after:.2f}** ({gentle_kept:.0%} kept), held-out perplexity {ppl_base:.2f} → "
    f"{gentle.perplexity_after:.2f}. All {gentle.trainable_parameters:,} parameters trained.")

# %%
after = evaluate.generate(gentle.model, tokenizer, [task_prompt(example, tokenizer)], max_new_tokens=96)[0]
print("reference:\n" + example["output"] + "\n\nfine-tuned model:\n" + after)
plot_runs({"gentle": gentle}, title="gentle full fine-tuning")

# %% [markdown]
# Memory: the run's peak is measured (on CPU, the weights plus what the process grew by while training; on CUDA,
# `torch.cuda.max_memory_allocated`) and shown beside lesson 02's estimator for the same settings.

# %%
est = gentle.estimated_memory_bytes
on_cuda = "cuda" in gentle.memory_measured_as
ipd.Markdown(f"Peak memory measured: **{gentle.peak_memory_bytes / 1e6:,.0f} MB** ({gentle.memory_measured_as}); "
             + (f"estimated: **{est / 1e6:,.0f} MB**, so the measurement is "
                f"{abs(gentle.peak_memory_bytes / est - 1):.0%} {'above' if gentle.peak_memory_bytes > est else 'below'}"
                " it." if est else "no estimate for this model.")
             + ("" if on_cuda else " On a CPU the measurement also counts the process's own growth (allocator "
                "caches, libraries loading lazily), which the estimator does not price."))

# %% [markdown]
# ### The same run, written out: the Hugging Face recipe
#
# `finetune` is the Hugging Face recipe plus measurement. Here is the recipe alone, as you would write it in your own
# project: load the model and tokenizer with `from_pretrained`, describe the training with TRL's `SFTConfig`, hand
# model, config and prompt/completion rows to `SFTTrainer`, train, save. Full fine-tuning needs no peft config: every
# weight trains. `completion_only_loss=True` keeps the loss on the answer (section 1's ⟦ ⟧). The weights load in
# fp32, the master copy above: `dtype=torch.float32` is needed, since `from_pretrained` otherwise takes the
# checkpoint's own dtype (`dtype="auto"`, bf16 for most models). On a GPU `bf16=True` computes in bf16 under autocast,
# and bf16 keeps fp32's exponent range, so unlike fp16 it needs no loss scaling. The cell runs `RECIPE_STEPS` steps to show that it works; after it: what the recipe changes
# from `SFTConfig`'s defaults, and a check that `finetune` built the same `SFTConfig` for the gentle run.

# %%
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from coursekit.env import bf16_supported, resolve_device
from coursekit.train import to_prompt_completion
from coursekit.train.recipe import changed_defaults_markdown, recipe_report

bf16 = bf16_supported(resolve_device(DEVICE))  # bf16 compute (autocast) on a GPU that has it; fp32 on a CPU
path = coursekit.resolve_model_path(MODEL)  # a hub id, or the local folder behind a short name such as "tiny"
hf_tokenizer = AutoTokenizer.from_pretrained(path)
hf_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)  # fp32 master weights
rows = to_prompt_completion(train.select(range(min(len(train), RECIPE_STEPS * BUDGET["batch_size"]))), "train",
                            hf_tokenizer)
args = SFTConfig(
    output_dir=str(RUNS_DIR / "recipe"),
    max_steps=RECIPE_STEPS, num_train_epochs=BUDGET["gentle"]["epochs"],
    per_device_train_batch_size=BUDGET["batch_size"], gradient_accumulation_steps=BUDGET["grad_accum"],
    learning_rate=BUDGET["gentle"]["learning_rate"], lr_scheduler_type="cosine", warmup_steps=0.1,
    weight_decay=0.01, optim="adamw_torch", bf16=bf16, activation_checkpointing=False, max_length=None,
    completion_only_loss=True, seed=SEED, report_to="none",
)
trainer = SFTTrainer(model=hf_model, args=args, train_dataset=Dataset.from_list(rows), processing_class=hf_tokenizer)
trainer.train()
trainer.save_model(args.output_dir)  # every weight (model.safetensors) and the config; the tokenizer beside them

recipe_same, recipe_text = recipe_report(
    {"SFTConfig": (args, gentle.training_arguments)},
    expected={"max_steps": f"the recipe stops after {RECIPE_STEPS} steps to show that it works; the gentle run "
                           "trains for its epochs (-1: no step limit)"})
results.record(recipe_same_as_finetune=recipe_same, recipe_steps=trainer.state.global_step)
del hf_model, trainer
ipd.Markdown(changed_defaults_markdown(args) + "\n\n" + recipe_text)

# %% [markdown]
# ## 4. Hyperparameters: a learning-rate sweep
#
# Common guides give ranges for each hyperparameter (for a 7B model):
#
# * **learning rate** 2e-5 to 5e-5; 1e-4 and above risks forgetting and instability, 1e-6 barely learns;
# * **epochs** 3-5 typical, 1-2 for large datasets, 5-10 for small ones (watch for overfitting);
# * **batch**: an effective batch of 16-32, reached with gradient accumulation (micro-batch × accumulation steps);
# * **warmup**: about 10% of the steps, so the first updates of a freshly started optimizer stay small. transformers'
#   warmup rises linearly from zero and rounds the fraction up to whole steps, so the first optimizer step of every
#   run is taken at learning rate 0: little in a run of a hundred steps, one step in four of a 4-step run.
#
# The learning rate matters most. Here is the same budget at several learning rates (`BUDGET["sweep_learning_rates"]`):
# what the model learned, what it kept, and the validation loss at the end.

# %%
sweep = []
for lr in BUDGET["sweep_learning_rates"]:  # a rate and budget already trained above is not trained again
    r = run(f"lr {lr:g}", BUDGET["sweep_examples"], learning_rate=lr, epochs=BUDGET["sweep_epochs"])
    sweep.append({"learning_rate": lr, "task_metric": r.task_metric_after,
                  "general_probe_kept": r.general_probe_after / probe_base, "final_eval_loss": r.final_eval_loss})
results.record(lr_sweep=sweep)
plot_sweep([row["learning_rate"] for row in sweep],
           {"task metric": [row["task_metric"] for row in sweep],
            "general probe kept (after / before)": [row["general_probe_kept"] for row in sweep],
            "final validation loss": [row["final_eval_loss"] for row in sweep]},
           xlabel="learning rate",
           title=f"{BUDGET['sweep_examples']} examples × {BUDGET['sweep_epochs']} epoch(s), full fine-tuning")

# %%
LEARNED, KEPT = 0.5, 0.9  # "learned": half the tickets exactly right; "kept": 90% of the probe, or within chance
N_PROBE = len(general_probe())  # the probe's questions


def forgot(kept_share):
    """Below KEPT of the base model's probe score, and lower than chance explains on N_PROBE questions."""
    return kept_share < KEPT and rate_difference(kept_share * probe_base, N_PROBE, probe_base,
                                                 N_PROBE)["verdict"] == "lower"


def verdict(row):
    if row["task_metric"] < LEARNED:
        return "did not learn the task"
    return "learned and forgot" if forgot(row["general_probe_kept"]) else "learned and kept"


for row in sweep:
    row["verdict"] = verdict(row)
results.record(lr_sweep=sweep)
keepers = [row for row in sweep if row["verdict"] == "learned and kept"]
learners = [row for row in sweep if row["verdict"] != "did not learn the task"]
if len(keepers) == 1:
    conclusion = (f"Of the {len(sweep)} rates tried, only {keepers[0]['learning_rate']:g} learned the task and kept "
                  "the probe: in this budget the rate to use lies near it, and a finer sweep "
                  "around it finds how far either way it stays good.")
elif keepers:
    rates = " and ".join(f"{row['learning_rate']:g}" for row in keepers)
    conclusion = (f"Here {rates} learned the task and kept the probe: in this budget, that is "
                  "the range to use.")
elif learners:
    conclusion = ("Every rate that learned the task also lost more of the probe than the rule above allows: in this "
                  "budget no rate gives both; the remedies below try to get both.")
else:
    conclusion = (f"No rate reached {LEARNED:.0%} of the tickets in this budget ({BUDGET['sweep_examples']} examples): "
                  "the sweep is too short to tell the rates apart by the task; compare them by the validation loss, "
                  "and run it longer to see the trade-off.")
ipd.Markdown(
    "| learning rate | task metric | general probe kept | final validation loss | verdict |\n|---|---|---|---|---|\n"
    + "\n".join(f"| {row['learning_rate']:g} | {row['task_metric']:.2f} | {row['general_probe_kept']:.0%} | "
                f"{row['final_eval_loss']:.3f} | {row['verdict']} |" for row in sweep)
    + f"\n\nA rate *learned* when it answers at least {LEARNED:.0%} of the tickets exactly, and *kept* when the "
      f"probe stays at {KEPT:.0%} or more of the base model's, or its drop is within chance on {N_PROBE} questions. "
      f"{conclusion}")

# %% [markdown]
# ## 5. Catastrophic forgetting
#
# Now the common warning, put to the test: large updates (`BUDGET["aggressive"]`: a higher learning rate than the
# gentle run's; the GPU and real-model budgets also give it more epochs over fewer tickets). The model sees nothing but support tickets, step after step; whatever
# in its weights served other skills can be overwritten, and the probe measures how much was.

# %%
aggressive = run("aggressive", BUDGET["aggressive_examples"], **BUDGET["aggressive"])  # on a CPU: the sweep's top rate
small = train.select(range(BUDGET["aggressive_examples"]))
aggressive_kept = aggressive.general_probe_after / probe_base
results.record(aggressive=aggressive, general_probe_kept_aggressive=aggressive_kept)
ipd.Markdown(
    f"Aggressive run ({aggressive.config['learning_rate']:g}, {epochs_text(aggressive.config['epochs'])} over "
    f"{len(small)} tickets, "
    f"{aggressive.steps} steps): task metric **{aggressive.task_metric_after:.2f}**, general probe {probe_base:.2f} → "
    f"**{aggressive.general_probe_after:.2f}** ({aggressive_kept:.0%} kept, against {gentle_kept:.0%} for the "
    f"gentle run), held-out perplexity "
    f"{ppl_base:.2f} → **{aggressive.perplexity_after:.2f}**.")

# %% [markdown]
# What forgetting looks like: the same probe questions, answered by the base model and by the aggressively
# fine-tuned one.

# %%
base_model, _ = coursekit.load_base_model(MODEL, device=DEVICE)
before_answers = evaluate.probe_answers(base_model, tokenizer)
after_answers = evaluate.probe_answers(aggressive.model, tokenizer)
lost = [(b, a) for b, a in zip(before_answers, after_answers) if b["correct"] and not a["correct"]]
gained = [(b, a) for b, a in zip(before_answers, after_answers) if a["correct"] and not b["correct"]]
n_asked = len(before_answers)
net = rate_difference(sum(a["correct"] for a in after_answers) / n_asked, n_asked,
                      sum(b["correct"] for b in before_answers) / n_asked, n_asked)["verdict"]
results.record(probe_items_lost_aggressive=len(lost), probe_items_gained_aggressive=len(gained))
ipd.Markdown(f"{count(len(lost), 'probe question')} the base model answered right "
             f"{'is' if len(lost) == 1 else 'are'} now wrong, and {len(gained)} it got wrong "
             f"{'is' if len(gained) == 1 else 'are'} now right: net {len(gained) - len(lost):+d} of {n_asked}, "
             + ("within chance on this many questions, so these losses are churn rather than measured forgetting."
                if net == "tie" else "more than chance explains: forgetting." if net == "lower" else
                "a gain larger than chance explains.")
             + (" A few of the lost ones:\n\n"
                "| question | base model | after aggressive fine-tuning |\n|---|---|---|\n"
                + "\n".join(f"| `{b['prompt'].strip()[-60:]!r}` | {b['prediction']!r} | {a['prediction']!r} |"
                            for b, a in lost[:6]) if lost else ""))

# %% [markdown]
# ### How to detect it
#
# The task's own validation loss does not show forgetting: it is measured on support tickets. Forgetting shows only
# on a measurement **outside** the task, taken before and after: a general-skills probe, or perplexity on general
# held-out text. Plot the gentle and the aggressive run side by side:

# %%
plot_runs({"gentle": gentle, "aggressive": aggressive}, which="eval", title="validation loss (task data)")
fell = {name: r.final_eval_loss < r.eval_loss[0][1] for name, r in (("gentle", gentle), ("aggressive", aggressive))}
lower = min(("gentle", gentle), ("aggressive", aggressive), key=lambda nr: nr[1].final_eval_loss)[0]
lowest = min(sweep, key=lambda row: row["final_eval_loss"])  # the sweep's run with the lowest task loss
ipd.Markdown((f"Both validation losses fell, to {gentle.final_eval_loss:.3f} (gentle) and "
              f"{aggressive.final_eval_loss:.3f} (aggressive): the {lower} run ends lower on the task's own loss. "
              if all(fell.values()) else
              f"The {' and '.join(n for n, f in fell.items() if not f)} run's validation loss ends above where it "
              "started: the run diverged on the task itself. ")
             + ("The task's loss cannot show what a run kept outside the task: in the sweep above, the lowest "
                f"validation loss ({lowest['final_eval_loss']:.3f}, at learning rate {lowest['learning_rate']:g}) came "
                f"with only "
                f"{lowest['general_probe_kept']:.0%} of the probe kept."
                if forgot(lowest["general_probe_kept"]) else
                "The task's loss is measured on tickets only, so it cannot show what a run kept outside them; "
                "only a measurement outside the task (the probe, held-out perplexity) can."))

# %% [markdown]
# ### Remedies
#
# Common guides list four: a lower learning rate, fewer epochs, validation monitoring with early stopping, and mixing
# general examples into the training data. The gentle run is the first (a lower learning rate; the GPU budget also
# gives it fewer epochs than the aggressive run). Here are the last two, applied to the aggressive recipe:
#
# * **early stopping**: evaluate often and stop when the validation loss has not improved for two evaluations,
#   keeping the best checkpoint (`early_stopping_patience=2`);
# * **mixing in general data**: a share of the training rows is general text from the pretraining distribution
#   (`mix_general_text`), so the model keeps practising what it knew.

# %%
PATIENCE = 2  # evaluations without a new best validation loss before early stopping ends the run
stopped = run("aggressive + early stopping", rows=small, **BUDGET["aggressive"], early_stopping_patience=PATIENCE,
              eval_every=max(1, aggressive.steps // 20))
mixed_rows = mix_general_text(small, general_texts("train", 4000), fraction=BUDGET["mix_fraction"], seed=SEED,
                              tokenizer=tokenizer)
mixed = run("aggressive + general data", rows=mixed_rows, **BUDGET["aggressive"])
runs = {"base model": None, f"gentle (lr {gentle.config['learning_rate']:g}, "
        f"{epochs_text(gentle.config['epochs'])})": gentle, "aggressive": aggressive,
        "aggressive + early stopping": stopped, f"aggressive + {BUDGET['mix_fraction']:.0%} general data": mixed}
table = []
for name, r in runs.items():
    table.append({"run": name,
                  "task_metric": task_base if r is None else r.task_metric_after,
                  "general_probe": probe_base if r is None else r.general_probe_after,
                  "general_probe_kept": 1.0 if r is None else r.general_probe_after / probe_base,
                  "heldout_perplexity": ppl_base if r is None else r.perplexity_after,
                  "steps": 0 if r is None else r.steps})
results.record(remedies=table, early_stopping=stopped, mixed=mixed,
               general_probe_kept_early_stopping=stopped.general_probe_after / probe_base,
               general_probe_kept_mixed=mixed.general_probe_after / probe_base)
ipd.Markdown("| run | task metric | general probe | kept | held-out perplexity | steps |\n|---|---|---|---|---|---|\n"
             + "\n".join(f"| {row['run']} | {row['task_metric']:.2f} | {row['general_probe']:.2f} | "
                         f"{row['general_probe_kept']:.0%} | {row['heldout_perplexity']:.2f} | {row['steps']} |"
                         for row in table))

# %% [markdown]
# Reading the table, from the figures above (the probe has a fixed number of questions, so two runs count as
# different only when the gap exceeds what chance explains on that many):

# %%
def probe_gap(a, b):
    """"higher", "lower" or "tie": run a's probe score against run b's, on N_PROBE questions."""
    return rate_difference(a.general_probe_after, N_PROBE, b.general_probe_after, N_PROBE)["verdict"]


def outcome(r):
    row = {"task_metric": r.task_metric_after, "general_probe_kept": r.general_probe_after / probe_base}
    return f"{verdict(row)} (task {r.task_metric_after:.2f}, {row['general_probe_kept']:.0%} of the probe kept)"


lines = [f"* The gentle recipe {outcome(gentle)}; the aggressive one {outcome(aggressive)}"
         + {"lower": ": the large updates cost general skills the gentle run kept.",
            "tie": ": on this probe the two cannot be told apart.",
            "higher": ": here the large updates cost *less* outside the task than the gentle ones."}[
             probe_gap(aggressive, gentle)]]
if gentle.perplexity_after > 1.5 * ppl_base:  # "kept" is the probe's verdict; perplexity can tell another story
    lines.append(f"* *Kept* is the probe's verdict: the gentle run's held-out perplexity still rose from "
                 f"{ppl_base:.2f} to {gentle.perplexity_after:.2f}, so general text became harder to predict even "
                 "where the probe's facts survived. The two measure different things; report both.")
stop_every = max(1, aggressive.steps // 20)  # its evaluation interval, set above
best_step = min(stopped.eval_loss, key=lambda point: point[1])[0]  # the checkpoint early stopping restores
if stopped.stopped_early and stopped.task_metric_after < LEARNED <= aggressive.task_metric_after:
    lines.append(f"* Early stopping ended the aggressive run after {stopped.steps} of {aggressive.steps} steps, after "
                 f"{count(PATIENCE, 'evaluation')} ({stop_every} steps apart) without a new best validation loss, "
                 f"and restored its best checkpoint (step {best_step}); it {outcome(stopped)}. The full run went on "
                 "to learn the task, so this was a pause in the loss, not the end of learning: with evaluations this "
                 f"close and a patience of {PATIENCE}, early stopping stopped the run before it learned the task"
                 + (f". Even these {count(best_step, 'step')} at the aggressive rate lost more of the probe than chance "
                    f"explains, where the gentle run kept {gentle_kept:.0%} in {gentle.steps}."
                    if forgot(stopped.general_probe_after / probe_base) else
                    ", and what it kept says only that it barely trained.")
                 + " A longer patience or sparser evaluations are the test.")
elif stopped.stopped_early:
    lines.append(f"* Early stopping ended the aggressive run after {stopped.steps} of {aggressive.steps} steps, when "
                 f"the task's validation loss stopped improving; it {outcome(stopped)}.")
else:
    lines.append(f"* Early stopping never triggered: in {stopped.steps} steps the task's validation loss never went "
                 f"{count(PATIENCE, 'evaluation')} without a new best, so the run trained all its steps: it {outcome(stopped)}. It can "
                 "only notice overtraining on the *task*, not forgetting outside it.")
mixed_kept = mixed.general_probe_after / probe_base
lines.append(f"* With {BUDGET['mix_fraction']:.0%} general text mixed into the data, the run {outcome(mixed)}"
             + {"higher": f", more of the probe than the aggressive run alone "
                          f"({aggressive.general_probe_after / probe_base:.0%}), in {mixed.steps} steps instead of "
                          f"{aggressive.steps}: "
                          + ("it protected the general skills, at the price of more steps."
                             if not forgot(mixed_kept) else
                             "it recovered part of the probe, not all of it, at the price of more steps"
                             + (f" and of task score ({aggressive.task_metric_after:.2f} → "
                                f"{mixed.task_metric_after:.2f})"
                                if rate_difference(mixed.task_metric_after, len(test), aggressive.task_metric_after,
                                                   len(test))["verdict"] == "lower" else "") + "."),
                "tie": f": {mixed.general_probe_after / probe_base:.0%} of the probe against "
                       f"{aggressive.general_probe_after / probe_base:.0%} for the aggressive run alone, a gap within "
                       f"chance on {N_PROBE} questions.",
                "lower": ": less of the probe than the aggressive run alone."}[probe_gap(mixed, aggressive)])
results.record(remedies_reading=lines, n_probe=N_PROBE)
ipd.Markdown("\n".join(lines))

# %%
ipd.Markdown(f"Every run above is a `RunResult` (see `gentle`); `finetune` accepts {len(COMMON_OPTIONS)} common "
             f"options (`coursekit.train.COMMON_OPTIONS`), including `gradient_checkpointing`, `save_every` and "
             f"`resume` for checkpoints that continue an interrupted run.")

# %% [markdown]
# ## Try it
#
# * Which hurts more, the learning rate or the epochs? Train at the aggressive rate with the gentle run's epochs and
#   with fewer (with the embedded model on a CPU, the sweep's top rate and the aggressive run are that pair already),
#   and compare what each kept.
# * Change `BUDGET["mix_fraction"]` to 0.1 and 0.5: how much general data does it take to keep the probe?
# * Run `run("gentle + checkpointing", **BUDGET["gentle"], gradient_checkpointing=True)` and compare its
#   `peak_memory_bytes` and `train_seconds` with the gentle run's.
# * On a GPU, set `MODEL` to a real model and `SIZE = "gpu"`: the same cells run the popular recipe's numbers
#   (2e-5, 3 epochs, batch 4 × accumulation 4).
#
# Exercises with hints:

# %%
import coursekit.exercises

for exercise_id in ("03.effective_batch", "03.warmup_steps", "03.forgetting_signal"):
    coursekit.exercises.get(exercise_id).show()
# e.g. coursekit.exercises.check("03.effective_batch", 32)

# %%
import coursekit.quiz

coursekit.quiz.quiz_widget("03")
