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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fine-tuning-course/fine-tuning-llms/blob/main/notebooks/04_lora.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fine-tuning-course/fine-tuning-llms/main?urlpath=lab/tree/notebooks/04_lora.ipynb)
#
# # 04 · LoRA: low-rank adaptation
#
# Full fine-tuning (lesson 03) changes every weight and pays for it: gradients and optimizer state for every
# parameter, a full copy of the model per task, and, at high learning rates, forgetting (lesson 03). LoRA freezes
# the model and learns a small update beside each chosen weight matrix. In this lesson you build the LoRA layer
# yourself, check that it matches peft (the trainable count here; outputs and a loss curve in the course's tests),
# then train with peft: how rank, alpha, dropout and target modules matter, what the saved adapter costs on disk, and
# how merging makes it free at inference.

# %% tags=["parameters"]
MODEL = "tiny"  # the embedded model; "smollm2-135m-instruct": a real instruct model, offline; on a GPU any hub id
DEVICE = "auto"
SIZE = "cpu"  # "cpu": laptop defaults; "gpu": real-size runs
SEED = 0
REUSE_RUNS = True  # a training run identical to one an earlier lesson trained is loaded from the run cache
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
import matplotlib.pyplot as plt
import torch

import coursekit
from coursekit.data import load_task_dataset
from coursekit.notebook import count, fact_check
from coursekit.scratch import LoRALinear, count_trainable_parameters, inject_lora, lora_parameter_count
from coursekit.train import finetune, finetune_fresh

results = coursekit.Results(RESULTS_PATH, notebook="04_lora", model=MODEL)
results.record(model=MODEL, size=SIZE)
torch.manual_seed(SEED)
# The training budget: optimizer steps and micro-batch per run, examples scored, and the ranks swept. Budgets belong
# to the model as well as to the machine ("real-cpu": a real pretrained model on a CPU, a handful of steps).
BUDGET_KEY = coursekit.budget_key(MODEL, SIZE)
STEPS = {"cpu": 100, "real-cpu": 8, "gpu": 400}[BUDGET_KEY]
SWEEP_STEPS = {"cpu": 60, "real-cpu": 4, "gpu": 400}[BUDGET_KEY]
BATCH = {"cpu": 8, "real-cpu": 8, "gpu": 4}[BUDGET_KEY]  # micro-batch
GRAD_ACCUM = {"cpu": 1, "real-cpu": 1, "gpu": 4}[BUDGET_KEY]  # micro-batches per optimizer step
RECIPE_STEPS = {"cpu": 10, "real-cpu": 2, "gpu": 20}[BUDGET_KEY]  # the recipe written out runs a few steps
# Learning rates scaled to the model: the embedded model was pretrained at a peak of 3e-3, ten times a 7B model's
# (about 3e-4), and these short CPU budgets go further: LoRA at 25x the usual 2e-4, full fine-tuning at 50x 2e-5.
LR = {"cpu": {"lora": 5e-3, "full": 1e-3}, "real-cpu": {"lora": 1e-3, "full": 5e-5},
      "gpu": {"lora": 2e-4, "full": 2e-5}}[BUDGET_KEY]
N_METRIC = {"cpu": 64, "real-cpu": 16, "gpu": 200}[BUDGET_KEY]
RANKS = {"cpu": [1, 4, 16, 64], "real-cpu": [4, 16], "gpu": [1, 2, 4, 8, 16, 32, 64]}[BUDGET_KEY]
SWEEP_ALPHA = 16  # the rank sweep holds lora_alpha fixed and scales by alpha/sqrt(r) (rsLoRA)
EVAL_SIZE = {"cpu": 64, "real-cpu": 8, "gpu": 64}[BUDGET_KEY]  # validation examples for the loss during training
BUDGET = dict(batch_size=BATCH, grad_accum=GRAD_ACCUM, metric_examples=N_METRIC, eval_size=EVAL_SIZE, seed=SEED,
              device=DEVICE)
RUNS_DIR = Path(tempfile.mkdtemp(prefix="lesson04-"))

# %% [markdown]
# ## 1. The idea: the update has low rank
#
# Fine-tuning changes a weight matrix $W$ (out × in) into $W + \Delta W$. Aghajanyan et al. measured that fine-tuning
# a pretrained model has a low *intrinsic dimension* (a small random subspace of the weights reaches most of the
# result), and Hu et al. hypothesised from it that $\Delta W$ has a low *intrinsic rank*: a few directions carry most
# of the change. LoRA therefore writes the update as a product
#
# $$\Delta W = \frac{\alpha}{r}\, B A,\qquad A \in \mathbb{R}^{r\times \text{in}},\; B \in \mathbb{R}^{\text{out}\times r},\; r \ll \min(\text{in}, \text{out})$$
#
# and trains only $A$ and $B$: $r\,(\text{in} + \text{out})$ numbers instead of $\text{in}\times\text{out}$.
#
# * **Why B starts at zero.** With $B = 0$ the update is zero, so training starts from exactly the pretrained model;
#   $A$ is random so that the first gradient for $B$ is not zero too.
# * **Why $\alpha / r$.** The update's size grows with $r$; the LoRA paper divides by $r$ so that, at a fixed
#   $\alpha$, changing the rank needs less retuning of the learning rate. The rsLoRA paper (Kalajdzievski, 2023)
#   shows that this over-corrects, so that larger ranks learn more slowly, and divides by $\sqrt{r}$ instead. In practice people either fix $\alpha / r$ (a common choice is
#   $\alpha = 2r$) and retune, or fix $\alpha$ and use rsLoRA, as this lesson's rank sweep does.

# %%
in_f = out_f = 4096  # one attention projection of a 7B model
rank = 16
full_update = in_f * out_f
lora_update = lora_parameter_count(in_f, out_f, rank)
CLAIMED_LORA_WEIGHTS, CLAIMED_RATIO = 131_072, 128  # widely quoted for a rank-16 update of a 4096 x 4096 projection
holds = lora_update == CLAIMED_LORA_WEIGHTS and round(full_update / lora_update) == CLAIMED_RATIO
ipd.Markdown(f"A {in_f}×{out_f} projection has {full_update:,} weights; a rank-{rank} LoRA update has "
             f"{lora_update:,}, **{full_update / lora_update:.0f}× fewer** (the widely quoted "
             f"{CLAIMED_LORA_WEIGHTS:,} and {CLAIMED_RATIO}× " + ("check out)." if holds else "do not match)."))

# %%
from coursekit.memory import estimate_memory
from coursekit.units import MIB, gib_text

RUN = dict(precision="mixed-bf16", batch_size=1, seq_len=2048, checkpointing=True)  # as in lesson 02
R8, ARCH_7B = 8, "llama-2-7b"  # the quoted example: r=8 on one 4096x4096 matrix of a 7B model
full_7b, lora_7b = estimate_memory(ARCH_7B, "full", **RUN), estimate_memory(ARCH_7B, "lora", rank=rank, **RUN)
n_7b = full_7b.total_parameters
full_bpp = (full_7b.weights + full_7b.gradients + full_7b.optimizer) / n_7b  # bytes per trained weight
frozen_bpp = lora_7b.weights / n_7b  # bytes per frozen weight
adapter_bpp = (lora_7b.adapter_weights + lora_7b.gradients + lora_7b.optimizer) / lora_7b.trainable_parameters
lora_r8 = lora_parameter_count(in_f, out_f, R8)
state_full = full_update * (full_7b.gradients + full_7b.optimizer) / n_7b  # gradients + optimizer, one matrix
state_lora = lora_r8 * (lora_7b.gradients + lora_7b.optimizer) / lora_7b.trainable_parameters
matrix_full, matrix_lora = full_update * full_bpp, full_update * frozen_bpp + lora_r8 * adapter_bpp
results.record(lora_r8_matrix_parameters=lora_r8, matrix_training_bytes_full=matrix_full,
               matrix_training_bytes_lora_r8=matrix_lora, full_7b_total_bytes=full_7b.total_bytes,
               lora_7b_total_bytes=lora_7b.total_bytes)
fact_check(
    f"A widely repeated explanation trains a rank-{R8} update of one {in_f}×{out_f} matrix "
    f"({lora_r8:,} parameters instead of {full_update:,}) and concludes: *\"Result: 100x less memory!\"*",
    f"with lesson 02's estimator and the recipe `{RUN['precision']}` (bf16 weights and gradients, fp32 master "
    f"copy and Adam moments; LoRA adapters in fp32), what shrinks is the state of the part that trains. For this "
    f"matrix, gradients and optimizer state go from {state_full / MIB:,.1f} MiB to {state_lora / MIB:,.2f} MiB, "
    f"**{state_full / state_lora:.0f}× less**. But the frozen matrix stays in memory "
    f"({frozen_bpp:g} bytes per weight), so this matrix's memory, frozen weight included, goes from "
    f"{matrix_full / MIB:,.1f} MiB ({full_bpp:g} bytes per weight) to {matrix_lora / MIB:,.1f} MiB: "
    f"**{matrix_full / matrix_lora:.1f}× less**. For a whole training run of {ARCH_7B} ({RUN['batch_size']} × "
    f"{RUN['seq_len']:,} tokens, checkpointing, LoRA r={rank} on every linear layer): "
    f"full fine-tuning {gib_text(full_7b.total_bytes)}, LoRA {gib_text(lora_7b.total_bytes)} of GPU memory, "
    f"**{full_7b.total_bytes / lora_7b.total_bytes:.1f}× less**. Not 100×: the frozen weights and the activations "
    "set the floor.")

# %% [markdown]
# ## 2. The layer from scratch
#
# `coursekit.scratch.LoRALinear` is a short class: read it with `??LoRALinear`. It wraps a frozen `nn.Linear`,
# holds `lora_A` and `lora_B`, and computes `base(x) + scaling * (x @ A.T) @ B.T`. Below: it starts as the base
# layer, and `merge()` folds the update into the weight.

# %%
base = torch.nn.Linear(256, 256)
layer = LoRALinear(base, r=8, alpha=16)
x = torch.randn(4, 256)
starts_exact = torch.equal(layer(x), base(x))
with torch.no_grad():
    layer.lora_B.normal_(std=0.02)  # pretend it trained
y_unmerged = layer(x)
layer.merge()
scratch_merge_diff = (layer(x) - y_unmerged).abs().max().item()
layer.unmerge()
print(f"starts as the base layer: {starts_exact}; merged vs unmerged max |diff| = {scratch_merge_diff:.2e}")
results.record(scratch_starts_exact=starts_exact, scratch_merge_diff=scratch_merge_diff)

# %% [markdown]
# `inject_lora(model, r, alpha, target_modules)` freezes a model and swaps the named linear layers for `LoRALinear`.
# The tests of `coursekit.scratch` check it against peft: same outputs for the same A and B, same trainable count,
# and the same loss curve over a short training run.

# %%
model, tokenizer = coursekit.load_base_model(MODEL, device=DEVICE)
scratch_model = inject_lora(model, r=8, alpha=16, target_modules=["q_proj", "v_proj"])
scratch_trainable = count_trainable_parameters(scratch_model)
print(f"from scratch, r=8 on q_proj and v_proj: {scratch_trainable:,} trainable parameters")

# %% [markdown]
# ## 3. The same with peft
#
# peft's `LoraConfig` holds the choices; `get_peft_model` wraps the model; `print_trainable_parameters` reports.
# `target_modules` picks the layers: the original paper adapted only the query and value projections
# (`["q_proj", "v_proj"]`); QLoRA showed that adapting **every linear layer** (`"all-linear"`) matters more than the
# rank. `lora_dropout` drops inputs of the LoRA path only, a light regulariser for long runs on small datasets; peft's
# default is 0, which this course keeps (its runs are short), and the QLoRA paper's settings are below.

# %%
from peft import LoraConfig, get_peft_model

counts = {}
for targets in (["q_proj", "v_proj"], "all-linear"):
    fresh, _ = coursekit.load_base_model(MODEL, device=DEVICE)
    peft_model = get_peft_model(fresh, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets,
                                                  task_type="CAUSAL_LM"))
    peft_model.print_trainable_parameters()
    counts[str(targets)] = peft_model.get_nb_trainable_parameters()[0]
peft_qv = counts[str(["q_proj", "v_proj"])]
ipd.Markdown(f"peft counts {peft_qv:,} trainable parameters for q,v at r=8, the from-scratch model "
             f"{scratch_trainable:,}: {'the same' if peft_qv == scratch_trainable else 'DIFFERENT'}. "
             f"All linear layers: {counts['all-linear']:,}.")

# %%
results.record(scratch_trainable=scratch_trainable, peft_trainable_qv=peft_qv,
               peft_trainable_all_linear=counts["all-linear"])

# %% [markdown]
# `print_trainable_parameters` prints the trainable count, the count of all parameters (base plus adapters) and the
# share. A popular tutorial's LoRA script prints such a line for Llama-2-7b; `coursekit.archs` counts the same thing
# exactly for the real architecture (meta device, no download):

# %%
from coursekit.archs import count_lora_parameters, count_parameters

SCRIPT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # the script's
CLAIMED_TRAINABLE_7B, CLAIMED_ALL_7B, CLAIMED_PCT_7B = 4_194_304, 6_742_609_920, "0.062"  # what it prints
CLAIMED_ADAPTER_MB = 20  # "only ~20MB"
n7b_base = count_parameters(ARCH_7B)
script_7b = count_lora_parameters(ARCH_7B, rank, SCRIPT_TARGETS)  # r=16 on all seven projections, as configured
qv8_7b = count_lora_parameters(ARCH_7B, R8, ["q_proj", "v_proj"])
results.record(llama_2_7b_parameters=n7b_base, lora_script_7b_trainable=script_7b, lora_r8_qv_7b=qv8_7b,
               claimed_lora_script_7b=[CLAIMED_TRAINABLE_7B, CLAIMED_ALL_7B])
fact_check(
    f"The script configures `r={rank}` on {', '.join(SCRIPT_TARGETS)} and shows the output "
    f"*trainable params: {CLAIMED_TRAINABLE_7B:,} || all params: {CLAIMED_ALL_7B:,} || trainable%: "
    f"{CLAIMED_PCT_7B}%*, then saves an adapter of *~{CLAIMED_ADAPTER_MB}MB*.",
    f"that configuration trains **{script_7b:,}** parameters of {n7b_base:,} + {script_7b:,} = "
    f"{n7b_base + script_7b:,} (**{100 * script_7b / (n7b_base + script_7b):.3f}%**). The printed line belongs to "
    f"another configuration: r={R8} on q_proj and v_proj alone trains {qv8_7b:,}, and {n7b_base:,} + {qv8_7b:,} = "
    f"{n7b_base + qv8_7b:,}. The configured adapter, in fp32 as peft keeps it, is {script_7b * 4 / 1e6:,.0f} MB "
    f"on disk ({script_7b * 2 / 1e6:,.0f} MB in bf16), not ~{CLAIMED_ADAPTER_MB} MB.")

# %% [markdown]
# ## 4. Train it
#
# `coursekit.train.finetune(..., method="lora")` is lesson 03's training loop with peft's LoRA on all linear layers
# (rank 8, alpha 16, no dropout by default). It measures the task metric and the general-skills probe before and
# after, and the validation loss during training, so we can see what LoRA learned and whether it forgot anything. With the defaults (the embedded model, `SIZE =
# "cpu"`) lesson 01 trained this very run (same model, data, settings and seed); with `REUSE_RUNS = True` it is loaded
# from the run cache when that lesson stored it, and the cell below says so.

# %%
data = load_task_dataset(size=SIZE, seed=SEED)
model, tokenizer = coursekit.load_base_model(MODEL, device=DEVICE)
lora = finetune(model, tokenizer, data["train"], data["validation"], method="lora", test=data["test"],
                learning_rate=LR["lora"], max_steps=STEPS, runs_dir=RUNS_DIR, title="LoRA r=8", reuse=REUSE_RUNS,
                **BUDGET)
lora

# %%
results.record(lora=lora)  # the whole run (reused_title: the stored run loaded instead of training, if one was)
ipd.Markdown(f"Task metric {lora.task_metric_before:.2f} → **{lora.task_metric_after:.2f}** after {lora.steps} "
             f"steps ({lora.train_seconds:.0f} s of training), training {lora.trainable_parameters:,} of "
             f"{lora.total_parameters:,} parameters ({100 * lora.trainable_parameters / lora.total_parameters:.2f}%); "
             f"validation loss {lora.eval_loss[0][1]:.3f} → {lora.final_eval_loss:.3f}."
             + (" No ticket is answered exactly yet: in this budget the loss, not the task metric, shows what it "
                "learned." if lora.task_metric_after == 0 else "")
             + (f" This run was not trained again here: the identical run \"{lora.reused_title}\" (same base "
                "weights, data, settings, seed and libraries) was loaded from the run cache, so its training time and "
                "loss curves are from when it trained; the task metric and the probe were measured here. "
                "`REUSE_RUNS = False` trains it in this notebook." if lora.reused_from else ""))

# %% [markdown]
# ### The same run, written out: the Hugging Face recipe
#
# `finetune` is the Hugging Face recipe plus measurement. Here is the recipe alone, as you would write it in your own
# project: load the model and tokenizer, describe the adapter with peft's `LoraConfig` and the training with TRL's
# `SFTConfig`, hand both to `SFTTrainer`, train, save. The rows are prompt/completion pairs (conversational ones for a
# model with a chat template: lesson 03, section 1), so `completion_only_loss=True` puts the loss on the answer only. The cell runs `RECIPE_STEPS` steps
# to show that it works. After it: what the recipe changes from `SFTConfig`'s defaults (two matter at any scale:
# gradient checkpointing is on unless you turn it off, which saves activation memory and costs one more forward pass
# per micro-batch, and rows longer than `max_length` are cut), and a check that `finetune` built the same configs for the
# run above.

# %%
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from coursekit.env import bf16_supported, resolve_device
from coursekit.train import to_prompt_completion

bf16 = bf16_supported(resolve_device(DEVICE))  # bf16 autocast on a GPU that has it, fp32 on a CPU
path = coursekit.resolve_model_path(MODEL)  # a hub id, or the local folder behind a short name such as "tiny"
hf_tokenizer = AutoTokenizer.from_pretrained(path)
hf_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if bf16 else torch.float32)
rows = to_prompt_completion(data["train"].select(range(RECIPE_STEPS * BATCH * GRAD_ACCUM)), "train", hf_tokenizer)
peft_config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", bias="none",
                         task_type="CAUSAL_LM")
args = SFTConfig(
    output_dir=str(RUNS_DIR / "recipe"),
    max_steps=RECIPE_STEPS, per_device_train_batch_size=BATCH, gradient_accumulation_steps=GRAD_ACCUM,
    learning_rate=LR["lora"], lr_scheduler_type="cosine", warmup_steps=0.1, weight_decay=0.01,
    optim="adamw_torch", bf16=bf16, activation_checkpointing=False, max_length=None,
    completion_only_loss=True, seed=SEED, report_to="none",
)
trainer = SFTTrainer(model=hf_model, args=args, train_dataset=Dataset.from_list(rows), processing_class=hf_tokenizer,
                     peft_config=peft_config)
trainer.train()
trainer.save_model(args.output_dir)  # a PEFT model saves its adapter (config and weights), not the base weights
sorted(p.name for p in (RUNS_DIR / "recipe").iterdir() if p.is_file())

# %%
from coursekit.train.recipe import changed_defaults_markdown, recipe_report

recipe_same, recipe_text = recipe_report(
    {"SFTConfig": (args, lora.training_arguments), "LoraConfig": (trainer.model.peft_config["default"],
                                                                   lora.peft_config)},
    expected={"max_steps": f"the recipe runs {count(RECIPE_STEPS, 'step')} to show that it works, the measured run {STEPS}"})
results.record(recipe_same_as_finetune=recipe_same, recipe_steps=trainer.state.global_step)
del hf_model, trainer
ipd.Markdown(changed_defaults_markdown(args) + "\n\n" + recipe_text)

# %% [markdown]
# **A script that cannot run.** A popular tutorial loads Llama-2-7b with `torch_dtype=torch.float16` and trains it
# with `fp16=True`, in its full fine-tuning script and in its LoRA script alike. `fp16=True` is mixed precision: on a
# GPU, accelerate gives the Trainer a `GradScaler`, which multiplies the loss before the backward pass (so that small
# fp16 gradients do not underflow to zero) and divides the gradients back before the optimizer step (when the
# Trainer clips them, `max_grad_norm`, on by default, or else inside `scaler.step`). That division, `unscale_`, refuses
# gradients that are themselves fp16: the scaler expects fp16 computation on fp32 weights. Below, one scaled backward
# pass and `unscale_` on the embedded model loaded in fp16 (the check does not depend on the model's size, and
# `GradScaler("cpu")` makes the same check as the CUDA one), once with every weight trainable and once with peft's
# LoRA on every linear layer.

# %%
import peft
import transformers
from transformers import TrainingArguments

tiny_path = coursekit.resolve_model_path("tiny")
tiny_tokenizer = AutoTokenizer.from_pretrained(tiny_path)


def scaled_step(model):
    """One backward pass through a GradScaler, then unscale_, as Trainer(fp16=True) does on a GPU."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    scaler, opt = torch.amp.GradScaler("cpu"), torch.optim.AdamW(trainable)
    batch = tiny_tokenizer(["Where is my order?"], return_tensors="pt")
    scaler.scale(model(**batch, labels=batch["input_ids"]).loss).backward()
    try:
        scaler.unscale_(opt)
        outcome = "no error"
    except ValueError as exc:
        outcome = f"ValueError: {exc}"
    return outcome, sorted({str(p.dtype).removeprefix("torch.") for p in trainable})


fp16_full = scaled_step(AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float16))
fp16_lora = scaled_step(get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float16),
                                       LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                                  task_type="CAUSAL_LM")))
try:  # both scripts also pass evaluation_strategy=
    TrainingArguments(output_dir=str(RUNS_DIR / "fp16-check"), evaluation_strategy="steps")
    evaluation_strategy = "accepted"
except TypeError as exc:
    evaluation_strategy = f"TypeError: {exc}"
results.record(fp16_full_unscale=fp16_full[0], fp16_full_trainable_dtypes=fp16_full[1],
               fp16_lora_unscale=fp16_lora[0], fp16_lora_trainable_dtypes=fp16_lora[1],
               evaluation_strategy_argument=evaluation_strategy)
full_stops, lora_passes = fp16_full[0] != "no error", fp16_lora[0] == "no error"
old_name_refused = evaluation_strategy != "accepted"
fact_check(
    "The tutorial's scripts load the model with `torch_dtype=torch.float16` and set "
    "`fp16=True`, *\"Mixed precision training (faster, less memory)\"*.",
    f"with every weight trainable, the gradients are {', '.join(fp16_full[1])} and `unscale_` ends "
    f"in **{fp16_full[0]}**"
    + (": on a GPU the full fine-tuning script stops at its first optimizer step. Mixed precision needs fp32 weights: "
       "load in fp32 and keep `fp16=True`, or better, load in fp32 and set `bf16=True`, which needs no scaler "
       "(lesson 03); loading in 16 bits is right only for a frozen base, as in LoRA. " if full_stops else ". ")
    + ("The LoRA script gets past this" if lora_passes else "The LoRA script does not get past it either")
    + f": peft {peft.__version__} makes the adapter weights fp32 even on an fp16 model "
    f"(`get_peft_model(..., autocast_adapter_dtype=True)`, the default), here {', '.join(fp16_lora[1])}, and "
    f"`unscale_` ends in **{fp16_lora[0]}**. "
    + (f"{'Neither script runs' if full_stops else 'The scripts do not run'} as printed on transformers "
       f"{transformers.__version__}, though: `evaluation_strategy` is now `eval_strategy`, and the old name gives "
       f"**{evaluation_strategy}**." if old_name_refused else
       f"transformers {transformers.__version__} still accepts their `evaluation_strategy`."))

# %% [markdown]
# ## 5. Forgetting: LoRA against full fine-tuning
#
# Lesson 03 measured what full fine-tuning keeps of the general probe. Here is the same comparison on the same probe, in
# the LoRA run's budget (`STEPS` steps of `BATCH`): a full fine-tuning run next to the LoRA run above.

# %%
# finetune_fresh: a fresh base model loaded as the method needs (fp32 master weights for full fine-tuning: lesson 03)
full = finetune_fresh(MODEL, data["train"], data["validation"], method="full", test=data["test"],
                      learning_rate=LR["full"], max_steps=STEPS, runs_dir=RUNS_DIR, title="full fine-tuning",
                      save_final=False, **BUDGET)
forgetting = {"full": full.general_probe_before - full.general_probe_after,
              "lora": lora.general_probe_before - lora.general_probe_after}
results.record(full=full, forgetting_full=forgetting["full"], forgetting_lora=forgetting["lora"])
from coursekit.data import general_probe
from coursekit.evaluate import rate_difference

N_PROBE = len(general_probe())
kept_gap = rate_difference(lora.general_probe_after, N_PROBE, full.general_probe_after, N_PROBE)["verdict"]
ipd.Markdown(f"General probe: full fine-tuning {full.general_probe_before:.2f} → {full.general_probe_after:.2f}, "
             f"LoRA {lora.general_probe_before:.2f} → {lora.general_probe_after:.2f}. Task metric: full "
             f"{full.task_metric_after:.2f}, LoRA {lora.task_metric_after:.2f}. On {N_PROBE} probe questions, LoRA "
             + {"higher": "kept more of the general skills than full fine-tuning, by more than chance explains.",
                "lower": "kept less of the general skills than full fine-tuning, by more than chance explains.",
                "tie": "and full fine-tuning cannot be told apart after this budget."}[kept_gap]
             + (" Neither lost more of the probe than chance explains, so this budget shows no forgetting to compare."
                if all(rate_difference(r.general_probe_after, N_PROBE, r.general_probe_before, N_PROBE)["verdict"]
                       != "lower" for r in (full, lora)) else ""))

# %% [markdown]
# ## 6. A rank sweep
#
# How much rank does the task need? Each run below trains LoRA on all linear layers with a different rank and
# everything else the same: the budget (shorter than above on a CPU), the learning rate, and `lora_alpha` fixed at
# `SWEEP_ALPHA`. With plain LoRA a fixed alpha would shrink the scale alpha/r as r grows, so a larger rank would also
# mean smaller updates; the sweep uses rsLoRA (`use_rslora=True`), whose scale alpha/sqrt(r) its paper derives so
# that, in the limit of large ranks, learning neither slows down nor blows up as r grows (the reading below says
# whether this short run bears that out). The task metric is exact match on the test tickets;
# the validation loss at the end is shown too, since it separates runs that answer no ticket yet.

# %%
sweep = []
for r in RANKS:
    run = finetune_fresh(MODEL, data["train"], data["validation"], method="lora", test=data["test"],
                         rank=r, alpha=SWEEP_ALPHA, use_rslora=True, learning_rate=LR["lora"], max_steps=SWEEP_STEPS,
                         eval_every=SWEEP_STEPS, runs_dir=RUNS_DIR, measure_general=False, measure_before=False,
                         save_final=False, title=f"LoRA r={r}", **BUDGET)
    sweep.append({"rank": r, "trainable_parameters": run.trainable_parameters, "task_metric": run.task_metric_after,
                  "final_eval_loss": run.final_eval_loss, "train_seconds": run.train_seconds})
results.record(rank_sweep=[{k: row[k] for k in ("rank", "trainable_parameters", "task_metric", "final_eval_loss")}
                           for row in sweep], rank_sweep_alpha=SWEEP_ALPHA, rank_sweep_rslora=True)

fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
ranks = [row["rank"] for row in sweep]
for ax, key, label in zip(axes, ("trainable_parameters", "task_metric", "final_eval_loss", "train_seconds"),
                          ("trainable parameters", "task metric", "final validation loss", "training time (s)")):
    ax.plot(ranks, [row[key] for row in sweep], "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rank r")
    ax.set_title(label)
fig.tight_layout()
plt.show()

# %%
from coursekit.evaluate import best_and_ties

# the best rank, and the ranks that cannot be told apart from it on N_METRIC tickets (lesson 06 reads its table so)
ranking = best_and_ties({row["rank"]: row["task_metric"] for row in sweep}, N_METRIC)
top = next(row for row in sweep if row["rank"] == ranking["best"])
tied = sorted([top["rank"], *ranking["tied"]])
below = [row["rank"] for row in sweep if row["rank"] not in tied]
margin = ranking["margin"]
lowest_loss = min(sweep, key=lambda row: row["final_eval_loss"])
answered = top["task_metric"] > 0  # with no ticket answered, "best" would only be the tie-break's choice
results.record(rank_sweep_smallest_tied_with_best=min(tied) if answered else None,
               rank_sweep_best_rank=top["rank"] if answered else None,
               rank_sweep_lowest_loss_rank=lowest_loss["rank"])
if top["task_metric"] == 0:
    reading = (f"No rank answers a ticket exactly in {SWEEP_STEPS} steps, so the task metric cannot rank them; the "
               f"validation loss is lowest at r = {lowest_loss['rank']} ({lowest_loss['final_eval_loss']:.3f}).")
else:
    others = [r for r in tied if r != top["rank"]]
    parts = [f"The best task metric is r = {top['rank']}'s ({top['task_metric']:.0%})"
             + (f"; r = {', '.join(map(str, others))} cannot be told apart from it (a difference has to exceed about "
                f"±{margin:.0%} on {N_METRIC} tickets to be more than chance)" if others else "")]
    if min(tied) == RANKS[0] and top["task_metric"] >= 0.5:  # a tie near zero would say nothing about rank
        parts.append((f"even the smallest rank, r = {RANKS[0]}, is among them" if top["rank"] != RANKS[0] else
                      "that is the smallest rank")
                     + f", with {sweep[0]['trainable_parameters']:,} trainable parameters: a rank-{RANKS[0]} update "
                     "learned most of the task in this budget, as the low-rank hypothesis expects")
    between = [row for row in sweep if row["rank"] in below and min(tied) < row["rank"] < max(tied)]
    rest = [x["final_eval_loss"] for x in sweep if x["rank"] in tied]
    for row in between:
        parts.append(f"r = {row['rank']} scored lower although ranks on both sides of it did not, so rank does not "
                     f"explain the gap: its validation loss ended at {row['final_eval_loss']:.3f} against "
                     f"{min(rest):.3f}-{max(rest):.3f} for those ranks, so in {SWEEP_STEPS} steps that run had not "
                     "learned what they had (a longer run, or another seed, tells whether it catches up)")
    smaller = [row for row in sweep if row["rank"] in below and row["rank"] < min(tied)]
    if smaller:
        # "too little rank" only when the smaller ranks score in rank order (each no higher than the next rank up)
        out_of_order = next(((a, b) for a, b in zip(smaller, smaller[1:]) if a["task_metric"] > b["task_metric"]),
                            None)
        parts.append("r = " + ", ".join(str(row["rank"]) for row in smaller) + " scored lower"
                     + (" too; with a larger rank also low, this sweep cannot tell too little rank from a run that "
                        "had not learned yet" if between else
                        ": too little rank for this budget, in this one run (one seed)" if out_of_order is None else
                        f", but not in order of rank (r = {out_of_order[0]['rank']} "
                        f"{out_of_order[0]['task_metric']:.0%}, r = {out_of_order[1]['rank']} "
                        f"{out_of_order[1]['task_metric']:.0%}): this sweep cannot tell too little rank from a run "
                        "that had not learned yet"))
    if [r for r in below if r > max(tied)]:
        parts.append("r = " + ", ".join(str(r) for r in below if r > max(tied)) + " scored lower in the same "
                     f"{SWEEP_STEPS} steps at the same learning rate: more rank did not help in this budget (one seed "
                     "of a short run: a longer one tells whether the larger ranks catch up)")
    reading = "; ".join(parts) + "."
losses = [row["final_eval_loss"] for row in sweep]
if max(sweep, key=lambda row: row["final_eval_loss"])["rank"] == RANKS[-1] and max(losses) > 1.5 * min(losses):
    reading += (f" The largest rank, r = {RANKS[-1]}, ended with the highest validation loss, over half as high again as "
                f"the lowest ({max(losses):.3f} against {min(losses):.3f}): at this learning rate "
                "and budget, rsLoRA's scale did not make learning independent of the rank.")
ipd.Markdown(
    "| rank | trainable parameters | task metric | final validation loss |\n|---|---|---|---|\n"
    + "\n".join(f"| {row['rank']} | {row['trainable_parameters']:,} | {row['task_metric']:.2f} | "
                f"{row['final_eval_loss']:.3f} |" for row in sweep)
    + f"\n\nTrainable parameters grow linearly with r. {reading} Every run used alpha = {SWEEP_ALPHA} with "
      "rsLoRA's scale alpha/sqrt(r) (`use_rslora=True` in peft's `LoraConfig`). With plain LoRA the same fixed alpha "
      "would scale by alpha/r, which falls as 1/r: the rsLoRA paper (Kalajdzievski, 2023) shows that dividing by r "
      "slows learning for higher-rank adapters and proves that they should be divided by sqrt(r) instead. The common "
      "alternative, alpha = 2r with plain LoRA, keeps alpha/r fixed.")

# %% [markdown]
# **Settings at real scale, as the papers used them** (quoted from their sources, not measured in this lesson):
#
# * **LoRA** (Hu et al., [2021](https://arxiv.org/abs/2106.09685)) considered only the weight matrices of the
#   self-attention module. Comparing them on GPT-3 175B with the same number of trainable parameters (in its
#   section 7), it found that "adapting both $W_q$ and $W_v$ gives the best performance overall": that is
#   where `target_modules=["q_proj", "v_proj"]` comes from.
# * **QLoRA** (Dettmers et al., [2023](https://arxiv.org/abs/2305.14314)): the authors' scripts for their Guanaco
#   models ([artidoro/qlora](https://github.com/artidoro/qlora), `scripts/finetune_guanaco_*.sh`, with
#   `qlora.py`'s defaults) put LoRA on every linear layer of the decoder except `lm_head`, with `--lora_r 64` and
#   `--lora_alpha 16` (a scale alpha/r of one quarter); `--lora_dropout 0.1` for 7B and
#   `--lora_dropout 0.05` for 13B, 33B and 65B; `--learning_rate 0.0002` for 7B and 13B and `--learning_rate 0.0001`
#   for 33B and 65B; a constant schedule after a short warmup (`--warmup_ratio 0.03`), gradient clipping at
#   `--max_grad_norm 0.3`, no weight decay, 16 sequences per optimizer step (batch 4 × 4 accumulation steps; 1 × 16
#   in earlier versions of the scripts) and the `paged_adamw_32bit` optimizer.

# %% [markdown]
# ## 7. Save, reload, merge
#
# A LoRA checkpoint holds only A and B. Load it onto a fresh copy of the base model with `PeftModel.from_pretrained`,
# then `merge_and_unload()` folds every update into its weight and removes the LoRA layers: the merged model is a
# plain model, as fast as the base, and gives the same outputs.

# %%
from peft import PeftModel

from coursekit.evaluate import merge_logit_gap

adapter_dir = RUNS_DIR / "lora-adapter"
lora.model.save_pretrained(adapter_dir)
adapter_bytes = sum(f.stat().st_size for f in adapter_dir.rglob("*") if f.is_file())
model_bytes = sum(p.numel() * p.element_size() for name, p in lora.model.get_base_model().named_parameters()
                  if "lora_" not in name)  # the base model's own weights, without the adapters peft injected

fresh, _ = coursekit.load_base_model(MODEL, device=DEVICE)
reloaded = PeftModel.from_pretrained(fresh, adapter_dir)
# logits of the unmerged model, then of merge_and_unload()'s, on four test prompts (coursekit.evaluate.merge_logit_gap)
four_prompts = [data["test"][i]["instruction"] for i in range(4)]
gap = merge_logit_gap(reloaded, lambda m: m.merge_and_unload(), tokenizer, four_prompts)
merged, merged_max_abs_diff = gap.merged, gap.max_abs_diff
results.record(adapter_bytes=adapter_bytes, model_bytes=model_bytes, merged_max_abs_diff=merged_max_abs_diff,
               merged_has_lora=any("lora" in n for n, _ in merged.named_parameters()))
ipd.Markdown(f"The adapter takes **{adapter_bytes / 1e6:.2f} MB** on disk (MB = 1e6 bytes) against "
             f"{model_bytes / 1e6:.1f} MB for the model's weights. Merged and unmerged logits differ by at most "
             f"{merged_max_abs_diff:.1e}: float rounding, nothing more.")

# %% [markdown]
# ### Several adapters on one base
#
# One base model can carry several adapters side by side, each under a name. `PeftModel.from_pretrained(base, path,
# adapter_name=...)` loads the first; `load_adapter(path, adapter_name=...)` adds another (loaded, not yet active);
# `set_adapter(name)` picks the one that runs (`PeftModel` activates one adapter at a time); inside
# `with model.disable_adapter():` the adapters stay loaded but are skipped, and the model is the bare base. This
# lesson has two adapters for the same base: section 4's LoRA run, saved above (trained here, or loaded from the run
# cache), and the written-out recipe's, saved by `trainer.save_model`. Below, both go onto one fresh copy of the base and see the same four prompts.

# %%
fresh2, _ = coursekit.load_base_model(MODEL, device=DEVICE)
batch = {k: v.to(fresh2.device) for k, v in tokenizer(four_prompts, return_tensors="pt", padding=True).items()}
with torch.no_grad():
    base_logits = fresh2(**batch).logits  # first: from_pretrained below adds the LoRA layers to fresh2 in place
multi = PeftModel.from_pretrained(fresh2, adapter_dir, adapter_name="support")  # section 4's run
multi.load_adapter(RUNS_DIR / "recipe", adapter_name="recipe")  # the recipe's run: loaded, not active
adapter_logits = {}
with torch.no_grad():
    for name in multi.peft_config:  # "support", then "recipe"
        multi.set_adapter(name)
        adapter_logits[name] = multi(**batch).logits
    with multi.disable_adapter():
        disabled_logits = multi(**batch).logits
adapters_max_diff = (adapter_logits["support"] - adapter_logits["recipe"]).abs().max().item()
disabled_max_diff = (disabled_logits - base_logits).abs().max().item()
results.record(multi_adapter_names=list(multi.peft_config), multi_adapter_outputs_differ=adapters_max_diff > 1e-3,
               disable_adapter_matches_base=disabled_max_diff < 1e-3)
ipd.Markdown(f"Adapters on one base: {', '.join(multi.peft_config)} (active now: {multi.active_adapter}). The two "
             f"adapters' logits differ by up to {adapters_max_diff:.2f}; inside `disable_adapter()` the logits differ "
             f"from the fresh base model's by at most {disabled_max_diff:.1e}.")

# %% [markdown]
# **Serving an adapter without merging.** Merging makes one adapter free at inference, but every merged model is a
# full copy of the weights. Left unmerged, one base model in memory serves many adapters, each a small file like the
# one measured above, and each request picks its adapter. The price is the LoRA path in every adapted layer: besides
# $xW^\top$ it computes $(xA^\top)B^\top$, about $r(\text{in} + \text{out})$ extra multiply-adds per token against
# $\text{in} \times \text{out}$ for the layer itself: small when $r$ is small, never zero. One batch can even mix
# adapters: peft's forward pass takes `adapter_names=[...]`, one name per row (`"__base__"` for the bare base; eval
# mode only). Serving engines do the same across requests. vLLM starts with `enable_lora=True`
# (`LLM(model=..., enable_lora=True)`, or `vllm serve ... --enable-lora --lora-modules name=path`) and takes
# `lora_request=LoRARequest(name, id, path)` in `generate`, or the adapter's name as the `model` of a request to its
# OpenAI-compatible server.
# text-generation-inference loads the adapters named in the `LORA_ADAPTERS` environment variable at startup, and a
# request picks one with `adapter_id` in its parameters.
#
# **Merging a QLoRA adapter.** It goes into 16-bit (or 32-bit) weights, not into the 4-bit ones: re-quantizing after
# the merge rounds the updated weights to the NF4 levels again and loses part of the update (lesson 05, section 6,
# measures how much), and peft's `merge_and_unload()` on a 4-bit model does exactly that re-quantization (with a
# warning about rounding errors). Either dequantize the 4-bit weights
# and merge into them (lesson 05's `dequantize_and_merge`: the weights the adapter was trained against), or load the
# base in 16 bits and merge there (the original weights, which differ from the 4-bit ones the adapter saw by the
# quantization error).

# %% [markdown]
# ## Try it
#
# * Train with `target_modules=["q_proj", "v_proj"]` (`finetune(..., target_modules=[...])`) and compare with
#   all-linear in the same budget.
# * Change `alpha` at a fixed rank: what does doubling it do to the loss curve?
# * Set `MODEL` to a real model on a GPU and `SIZE = "gpu"`: the same cells run unchanged.
#
# Exercises with hints: write the LoRA forward pass yourself, then count and scale.

# %%
import coursekit.exercises

ex = coursekit.exercises.get("04.lora_forward")
ex.show()
# def lora_forward(x, W, A, B, scaling):
#     ...
# ex.check(lora_forward)

# %%
for exercise_id in ("04.lora_params_matrix", "04.lora_scaling", "04.why_zero_b"):
    coursekit.exercises.get(exercise_id).show()
# e.g. coursekit.exercises.check("04.lora_scaling", 2.0)

# %%
import coursekit.quiz

coursekit.quiz.quiz_widget("04")
