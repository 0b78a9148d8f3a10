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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fine-tuning-course/fine-tuning-llms/blob/main/notebooks/02_memory_math.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fine-tuning-course/fine-tuning-llms/main?urlpath=lab/tree/notebooks/02_memory_math.ipynb)
#
# # 02 · Memory math: will it fit?
#
# The difference between full fine-tuning, LoRA and QLoRA is measured in gigabytes. Before you rent a GPU you can
# work out, component by component, what a training run needs: the **weights**, the **gradients**, the **optimizer
# state**, the **activations** autograd keeps for the backward pass, and the framework's own **overhead**.
#
# This lesson first reproduces the back-of-the-envelope arithmetic of some widely repeated estimates, then redoes
# it exactly with `coursekit.memory` (exact parameter counts from the real architectures, real precision recipes,
# activations from the model's shapes), checks the estimator against memory measured during real training steps,
# and ends with a calculator you can drag around. Every number below is computed when you run the notebook; the units
# it uses (and which one GPU memory comes in) are stated right after the setup.

# %% tags=["parameters"]
MODEL = "tiny"  # the embedded model, measured below; the memory math itself covers real 1B-70B architectures
DEVICE = "auto"
SIZE = "cpu"  # "cpu": laptop defaults; "gpu": also measure Llama-3.2-1B-shaped models on CUDA
SEED = 0
RESULTS_PATH = None

# %%
# Colab only: install coursekit and the packages Colab lacks (never torch or Jupyter). Elsewhere: nothing happens.
COLAB_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"  # used on a Colab GPU; "tiny" keeps the embedded model
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
import warnings
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

import coursekit
import coursekit.exercises
import coursekit.quiz
from coursekit.archs import count_lora_parameters, count_parameters, parameters_by_kind, resolve_arch
from coursekit.env import resolve_device
from coursekit.evaluate import TIMING_NOISE
from coursekit.memory import GB, GIB, QuantOptions, estimate_memory, measure_peak_memory, weight_bytes
from coursekit.memory.estimator import MIB
from coursekit.memory.hardware import (
    GPU_TABLE,
    claimed_suggest_batch_size,
    claimed_suggest_hardware,
    fit_table,
    gpu_spec,
    gpus_needed,
    hardware_fit,
    suggest_batch_size,
)
from coursekit.memory.recipes import PRECISIONS
from coursekit.widgets.memory import memory_calculator
from coursekit.notebook import fact_check

results = coursekit.Results(RESULTS_PATH, notebook="02_memory_math", model=MODEL)
results.record(model=MODEL, size=SIZE)
# One training setup for every real-size estimate in this lesson (the quoted claims give none): one sequence of 2,048
# tokens, gradient checkpointing on, on a CUDA GPU.
SETUP = dict(batch_size=1, seq_len=2048, checkpointing=True)
N8B, N70B = "llama-3.1-8b", "llama-3.1-70b"


def gb(n_bytes):
    return f"{n_bytes / GB:,.1f} GB"


def gib(n_bytes):
    return f"{n_bytes / GIB:,.1f} GiB"


# %%
A100, H100, T4, RTX4090 = (gpu_spec(n) for n in ("A100 80GB", "H100 80GB", "T4", "RTX 4090"))
display(Markdown(
    f"**Units.** This lesson writes **GB** for {GB:,.0f} bytes and **GiB** for {GIB:,} bytes: a GiB is "
    f"{100 * (GIB / GB - 1):.1f} % more than a GB. GPU memory is binary. The {A100.name} holds "
    f"**{A100.gib:.0f} GiB**: nvidia-smi reports it as {A100.mib:,} MiB (MiB = {MIB:,} bytes), which is "
    f"{A100.capacity_bytes / GB:.1f} GB. The {H100.name} is not the same size: {H100.mib:,} MiB = "
    f"{H100.gib:.1f} GiB. So every GPU capacity in this lesson is the total the driver reports, printed in GiB, and "
    f"every fit compares the estimate's bytes with the GPU's bytes. Estimates are printed in GB and in GiB, each "
    f"labelled. The capacities (`coursekit.memory.hardware.GPU_TABLE`):"))
display(pd.DataFrame([{"GPU": g.name, "nvidia-smi MiB": f"{g.mib:,}", "GiB": round(g.gib, 2),
                       "GB (1e9 B)": round(g.capacity_bytes / GB, 2), "figure": g.convention}
                      for g in sorted(GPU_TABLE, key=lambda g: g.mib)]).set_index("GPU"))
results.record(gpu_capacity_bytes={g.name: g.capacity_bytes for g in GPU_TABLE})

# %% [markdown]
# ## 1. A popular estimate for an 8B model
#
# A popular tutorial prices three approaches for an 8B model with a few constants per parameter: weights and gradients
# in bf16, two fp32 Adam moments, a fixed allowance for activations; LoRA trains a fixed share of the parameters;
# QLoRA stores the weights in 4 bits and keeps the LoRA gradients in fp32. Here is that arithmetic, written out
# (the constants are the tutorial's):

# %%
def claimed_estimate_bytes(params, approach):
    """The tutorial's constants (reproduced to check them, not to use)."""
    lora = params * 0.01
    if approach == "full_ft":
        return params * 2 + params * 2 + params * 8 + 4e9
    if approach == "lora_bf16":
        return params * 2 + lora * 2 + lora * 8 + 4e9
    return params * 0.5 + lora * 4 + lora * 8 + 2e9  # qlora_4bit


claimed_8b = {a: claimed_estimate_bytes(8e9, a) for a in ("full_ft", "lora_bf16", "qlora_4bit")}
claimed_70b = {a: claimed_estimate_bytes(70e9, a) for a in ("full_ft", "lora_bf16", "qlora_4bit")}
display(pd.DataFrame({"8e9 params, GB": {a: b / GB for a, b in claimed_8b.items()},
                      "70e9 params, GB": {a: b / GB for a, b in claimed_70b.items()}}).round(1))
results.record(claimed_8b_bytes=claimed_8b, claimed_70b_bytes=claimed_70b)

# %%
CLAIMED_PARAMS, CLAIMED_BYTES_PER_PARAM, CLAIMED_GB = 8e9, (2, 2, 8), 56  # its 8B, bf16 + bf16 + Adam, the claim
claimed_before_activations = CLAIMED_PARAMS * sum(CLAIMED_BYTES_PER_PARAM)
fact_check(f"The claim: *full fine-tuning an 8B model with Adam occupies roughly {CLAIMED_GB} GB (weights, gradients and "
           "both optimizer moments) before a single activation is stored.*",
           f"its own constants give {CLAIMED_PARAMS / 1e9:g}e9 × ({' + '.join(map(str, CLAIMED_BYTES_PER_PARAM))}) "
           f"bytes = **{gb(claimed_before_activations)}** before activations ({gb(claimed_8b['full_ft'])} with its "
           f"{gb(claimed_8b['full_ft'] - claimed_before_activations)} of activations), not {CLAIMED_GB} GB. No common "
           f"recipe gives {CLAIMED_GB} GB: the exact counts are in section 3.")
results.record(claimed_full_8b_before_activations_bytes=claimed_before_activations)

# %% [markdown]
# ## 2. Exact parameter counts
#
# "8B" is a rounded name. `coursekit.count_parameters` builds the real architecture on PyTorch's *meta* device
# (shapes, no storage, no download) and sums `p.numel()` exactly as `model.parameters()` would. LoRA adds
# $r \cdot (\text{in} + \text{out})$ parameters per wrapped Linear layer; `count_lora_parameters` counts them the way
# peft does (tests/test_archs.py checks this against peft itself).

# %%
n8b, n70b = count_parameters(N8B), count_parameters(N70B)
lora_8b = count_lora_parameters(N8B, 16, "all-linear")
lora_70b = count_lora_parameters(N70B, 16, "all-linear")
n3b = count_parameters("llama-3.2-3b")
lora_3b_qv = count_lora_parameters("llama-3.2-3b", 16, ["q_proj", "v_proj"])  # the quoted r=16 on q and v
display(pd.DataFrame([
    {"model": N8B, "parameters": f"{n8b:,}", "LoRA r=16, all linear": f"{lora_8b:,}",
     "trainable % (as peft prints it)": f"{100 * lora_8b / (n8b + lora_8b):.4f}"},
    {"model": N70B, "parameters": f"{n70b:,}", "LoRA r=16, all linear": f"{lora_70b:,}",
     "trainable % (as peft prints it)": f"{100 * lora_70b / (n70b + lora_70b):.4f}"},
]).set_index("model"))
display(pd.Series(parameters_by_kind(N8B), name=f"{N8B} parameters by module kind").map("{:,}".format))
results.record(llama_3_1_8b_parameters=n8b, llama_3_1_70b_parameters=n70b, lora_r16_all_linear_8b=lora_8b,
               lora_r16_all_linear_70b=lora_70b, llama_3_2_3b_parameters=n3b, lora_r16_qv_3b=lora_3b_qv)

# %%
CLAIMED_QV_3B, CLAIMED_ALL_3B, R = 6_815_744, 3_219_565_568, 16
a3b = resolve_arch("llama-3.2-3b")
lora_8b_qv = count_lora_parameters(N8B, R, ["q_proj", "v_proj"])  # the same LoRA on the 8B model
h3b, kv3b = a3b.hidden_size, a3b.num_key_value_heads * a3b.head_dim
per_layer_qv = R * (h3b + a3b.num_attention_heads * a3b.head_dim) + R * (h3b + kv3b)
fact_check(f"The claim: *LoRA with r={R} on q_proj and v_proj of Llama-3.2-3B prints trainable params: {CLAIMED_QV_3B:,} || "
           f"all params: {CLAIMED_ALL_3B:,}.*",
           f"q_proj is {h3b} → {a3b.num_attention_heads * a3b.head_dim} and v_proj {h3b} → {kv3b} "
           f"({a3b.num_key_value_heads} key/value heads of {a3b.head_dim}), so each layer adds "
           f"{R} × ({h3b} + {a3b.num_attention_heads * a3b.head_dim}) + {R} × ({h3b} + {kv3b}) = {per_layer_qv:,} "
           f"and {a3b.num_hidden_layers} layers add **{lora_3b_qv:,}** trainable parameters; all parameters are "
           f"{n3b:,} + {lora_3b_qv:,} = **{n3b + lora_3b_qv:,}** ({100 * lora_3b_qv / (n3b + lora_3b_qv):.4f} % "
           f"trainable). The printed {CLAIMED_QV_3B:,} is the count of another model: the same LoRA on {N8B} "
           f"trains exactly **{lora_8b_qv:,}**, and the printed total is the 3B model plus that number "
           f"({n3b:,} + {CLAIMED_QV_3B:,} = {n3b + CLAIMED_QV_3B:,}).")
assert per_layer_qv * a3b.num_hidden_layers == lora_3b_qv
results.record(claimed_lora_qv_3b=CLAIMED_QV_3B, claimed_all_3b=CLAIMED_ALL_3B, lora_r16_qv_8b=lora_8b_qv)

# %% [markdown]
# ## 3. Full fine-tuning of Llama 3.1 8B, component by component
#
# How many bytes a parameter costs depends on the **precision recipe**, not on "bf16" alone. The recipes the
# estimator knows, and the bytes per parameter it counts for weights, gradients and Adam's state. `amp-bf16` is
# `Trainer(bf16=True)` on a model loaded with `dtype=torch.float32`; transformers 5 loads a checkpoint in its own
# dtype by default (`dtype="auto"`: bf16 for Llama-3.1-8B), and `Trainer(bf16=True)` on that model is the `bf16` recipe.
# The optimizer priced is torch's AdamW (`optim="adamw_torch"`, what this course's runs use): on a GPU its step
# allocates a temporary as large as one of Adam's states. The Trainer's default with torch 2.8 or later,
# `adamw_torch_fused`, computes the update in one kernel without it, so its peak can be lower than the tables below:

# %%
per_param = {}
for precision in PRECISIONS:
    e = estimate_memory(N8B, "full", precision=precision, **SETUP)
    per_param[precision] = (e.weights / n8b, e.gradients / n8b, e.optimizer / n8b)
display(Markdown("\n".join(
    f"* `{p}`: {PRECISIONS[p].explanation}. Counted: {w:g} + {g:g} + {o:g} = **{w + g + o:g} bytes** per parameter."
    for p, (w, g, o) in per_param.items())))
results.record(bytes_per_parameter_full={p: sum(v) for p, v in per_param.items()})

# %% [markdown]
# Activations depend on the batch, the sequence length and the shapes, not on the parameter count; the
# estimator counts what autograd keeps per layer (see `coursekit.memory.estimator.activation_breakdown`).
# The total is the peak of one training step, not the sum of the columns: the estimator takes whichever of two moments
# holds more (the `peak at` column), the end of backward (the activations still alive beside the gradients written so
# far) or the optimizer step (every gradient, plus the temporaries the step allocates).

# %%
rows = []
for precision in ("fp32", "bf16", "amp-bf16", "mixed-bf16"):
    e = estimate_memory(N8B, "full", precision=precision, **SETUP)
    rows.append({"recipe": precision, **{k: v / GB for k, v in e.components.items()}, "total (peak) GB": e.total_gb,
                 "total GiB": e.total_gib, "peak at": e.peak_phase})
full_8b = pd.DataFrame(rows).set_index("recipe").round(2)
display(full_8b)
full_8b_mixed = estimate_memory(N8B, "full", precision="mixed-bf16", **SETUP)
print(full_8b_mixed.table())
results.record(full_8b_components_bytes={r["recipe"]: {k: int(round(r[k] * GB)) for k in
                                                        ("weights", "gradients", "optimizer", "activations")}
                                         for r in rows},
               full_8b_total_bytes={r["recipe"]: int(round(r["total (peak) GB"] * GB)) for r in rows})

# %% [markdown]
# ### Activations, term by term, and what gradient checkpointing trades
#
# Per layer and per token, autograd keeps what the backward pass will need: the inputs of the two norms and of every
# Linear that trains, q, k and v after the rotary embedding, the attention kernel's output and its softmax statistics
# (the whole sequence × sequence softmax with eager attention), and the MLP's gate, SiLU(gate) and up projections
# (`coursekit.memory.estimator.activation_breakdown`, after Korthikanti et al. 2022). Multiply by layers × batch ×
# sequence length. Padding changes the attention term: when a batch carries a padding mask, transformers repeats K and
# V to every query head before calling sdpa (its `use_gqa_in_sdpa` lets the kernel do grouped-query attention itself
# only without a mask), and each layer's kernel keeps the mask too; `estimate_memory(..., padded=True)` prices that.
# Every estimate and measurement in this lesson uses unpadded batches. On top of the layers comes the **loss**: when
# the model computes it from its full logits (`model(..., labels=...)`, as a plain `Trainer` does and as the
# measurements in section 7 do), cross-entropy keeps a
# float32 log-softmax over the whole vocabulary for every token, and its backward adds two float32 tensors of the same
# size: 12 bytes per vocabulary entry per token. (TRL's `SFTTrainer` patches the model with a fused LM head that
# computes the loss in tiles of 4,096 tokens × 32,768 vocabulary entries (on GPUs that run Triton, only for positions with a
# label), without building the batch × sequence × vocabulary logits: per token it keeps a copy of the hidden state and a
# few statistics instead. `estimate_memory(..., loss="fused")` prices that path; this lesson prices the plain one.)
#
# **Gradient checkpointing** (`activation_checkpointing=True` in `TrainingArguments`, formerly
# `gradient_checkpointing`; TRL's `SFTConfig` turns it on by default) keeps only each layer's input, the residual
# stream, and throws the rest away; during the backward pass it recomputes one layer's forward at a time from its saved
# input. Memory: the stored layers shrink to their inputs, plus the working set of the one layer being recomputed (its
# activations and the gradients alive while autograd walks back through it). Time: at most one more forward pass of
# the layers per step. For the 8B model, full fine-tuning, mixed precision:

# %%
spec_8b = resolve_arch(N8B)
L_8B, TOKENS = spec_8b.num_hidden_layers, SETUP["batch_size"] * SETUP["seq_len"]
acts = {on: estimate_memory(N8B, "full", precision="mixed-bf16", **{**SETUP, "checkpointing": on})
        for on in (False, True)}
per_layer_token = acts[False].activation_parts["layers"] / (L_8B * TOKENS)  # bytes kept per layer and token
input_per_token = acts[True].activation_parts["layer_inputs"] / (L_8B * TOKENS)  # with checkpointing: the input
loss_per_token = acts[True].activation_parts["loss"] / TOKENS
working = acts[True].activation_parts["backward_working_set"]
fused = estimate_memory(N8B, "full", precision="mixed-bf16", loss="fused", **SETUP)  # SFTTrainer's fused LM head
by_length = {n: {on: estimate_memory(N8B, "full", precision="mixed-bf16", batch_size=1, seq_len=n,
                                     checkpointing=on).activations for on in (False, True)}
             for n in (512, 2048, 8192)}
results.record(activation_bytes_per_layer_token_8b=per_layer_token, layer_input_bytes_per_token_8b=input_per_token,
               loss_bytes_per_token_8b=loss_per_token, fused_loss_bytes_8b=fused.activation_parts["loss"],
               fused_activations_8b=fused.activations,
               activations_8b_by_length={n: {"without": v[False], "with": v[True]} for n, v in by_length.items()})
display(Markdown(
    f"* Without checkpointing each of the {L_8B} layers keeps **{per_layer_token:,.0f} bytes per token**: "
    f"{gb(acts[False].activation_parts['layers'])} for {TOKENS:,} tokens.\n"
    f"* With checkpointing a layer keeps its input, {spec_8b.hidden_size:,} values × "
    f"{input_per_token / spec_8b.hidden_size:g} bytes = **{input_per_token:,.0f} bytes per token**: "
    f"{gb(acts[True].activation_parts['layer_inputs'])}, plus {gb(working)} for the layer being recomputed.\n"
    f"* The loss: 12 bytes × {spec_8b.vocab_size:,} vocabulary entries = **{loss_per_token:,.0f} bytes per "
    f"token**, {gb(acts[True].activation_parts['loss'])} for {TOKENS:,} tokens: "
    + ("more than all the checkpointed layer inputs together.\n\n"
       if acts[True].activation_parts["loss"] > acts[True].activation_parts["layer_inputs"] else
       f"{acts[True].activation_parts['loss'] / acts[True].activation_parts['layer_inputs']:.0%} of the checkpointed "
       "layer inputs.\n")
    + f"* With TRL's fused LM head (`loss=\"fused\"`) the loss's part is {gb(fused.activation_parts['loss'])} "
    f"instead (one logits tile, the fp32 gradient of the hidden states and, since full fine-tuning trains the output "
    f"layer, an fp32 gradient of its weight), plus {fused.activation_parts['loss_saved'] / 1e6:,.1f} MB kept per step: "
    f"activations {gb(fused.activations)} against {gb(acts[True].activations)}.\n\n"
    + "The loss's tensors and the recomputed layer's working set are alive at different moments (the loss's backward "
    "is over before the top layer is recomputed), so the activation peak is what stays stored (the layers or their "
    f"inputs, and the final norm's {gb(acts[True].activation_parts['final_norm'])}) plus the larger of the two: "
    + ("the loss" if acts[True].activation_parts["loss"] >= working else "the working set")
    + f" here, {gb(acts[True].activations)} with checkpointing, {gb(acts[False].activations)} without.\n\n"
    + "Activations at other lengths (one sequence, sdpa attention, so every term grows in proportion to the length, "
    "and the loss also with the vocabulary; weights, gradients and optimizer state grow with neither):\n\n"
    "| tokens | without checkpointing | with checkpointing |\n|---|---|---|\n"
    + "\n".join(f"| {n:,} | {gb(v[False])} | {gb(v[True])} |" for n, v in by_length.items())))

# %%
CLAIMED_ADAM_GB, MOMENTS, FP32 = 60, 2, 4
adam_fp32_8b = MOMENTS * FP32 * n8b
fact_check(f"The claim: *you need ~{CLAIMED_ADAM_GB} GB just for the optimizer state* (8B, Adam).",
           f"{MOMENTS} fp32 moments are {MOMENTS * FP32} bytes × {n8b:,} = **{gb(adam_fp32_8b)} = "
           f"{gib(adam_fp32_8b)}**: '~{CLAIMED_ADAM_GB}' is right only in GiB. With the fp32 master copy that mixed "
           f"precision also keeps, the optimizer holds {gb(full_8b_mixed.optimizer)}.")
results.record(adam_fp32_state_8b_bytes=adam_fp32_8b)

# %% [markdown]
# ## 4. The "14 bytes per parameter" helper
#
# Another common tutorial prices full fine-tuning at a fixed number of bytes per parameter (weights, gradients,
# Adam, and a share "for activations"), divides by `1024**3` and calls the result GB. Its helper, reproduced:

# %%
CLAIMED_BYTES_PER_PARAM_14 = (2, 2, 8, 2)  # weights, gradients, Adam, "activations"


def claimed_14_bytes(billions):
    """The helper's arithmetic: 14 bytes per parameter, divided by 1024**3 but labelled GB."""
    return billions * 1e9 * sum(CLAIMED_BYTES_PER_PARAM_14)


CLAIMED_PRINTED_GB = {1.0: 13.1, 3.0: 39.2, 7.0: 91.5, 13.0: 170.1, 70.0: 915.5}  # what the helper prints
REAL = {1.0: "llama-3.2-1b", 3.0: "llama-3.2-3b", 7.0: "llama-2-7b", 13.0: "llama-2-13b", 70.0: N70B}
rows = []
for b, printed in CLAIMED_PRINTED_GB.items():
    est = estimate_memory(REAL[b], "full", precision="mixed-bf16", **SETUP)
    rows.append({"size": f"{b:g}B", "helper prints 'GB'": printed,
                 "its formula in GiB": claimed_14_bytes(b) / GIB, "its formula in GB": claimed_14_bytes(b) / GB,
                 "real model": REAL[b], "coursekit estimate GB": est.total_gb})
claimed14 = pd.DataFrame(rows).set_index("size").round(1)
display(claimed14)
results.record(claimed_14_bytes_table=rows)

# %%
b7, act_share = 7.0, CLAIMED_BYTES_PER_PARAM_14[-1]
fact_check(f"The claim: *Total: ~{sum(CLAIMED_BYTES_PER_PARAM_14)} bytes per parameter for AdamW + bf16*, printed as "
           f"`{b7:.1f}B parameters: {CLAIMED_PRINTED_GB[b7]} GB`.",
           f"the helper divides by `1024**3`, so its numbers are **GiB** under a GB label: for {b7:g}e9 parameters "
           f"its formula gives **{gib(claimed_14_bytes(b7))} = {gb(claimed_14_bytes(b7))}**. GiB is the right unit "
           f"to hold against a GPU, whose memory is binary: the {A100.name} holds {A100.gib:.0f} GiB "
           f"({A100.mib:,} MiB in nvidia-smi), so the helper compares like with like and only its label is wrong; "
           f"read as GB, its figures would be {100 * (1 - GB / GIB):.1f} % too small. Its printed figures do not "
           f"match its own formula either ({CLAIMED_PRINTED_GB[b7]} vs {claimed_14_bytes(b7) / GIB:.1f}). And "
           f"activations do not scale with parameters: for {REAL[b7]} at {SETUP['batch_size']} × "
           f"{SETUP['seq_len']:,} tokens with checkpointing "
           f"they are {gb(estimate_memory(REAL[b7], 'full', precision='mixed-bf16', **SETUP).activations)}, while "
           f"{act_share} bytes per parameter would say {gb(act_share * count_parameters(REAL[b7]))}.")

# %% [markdown]
# The helper then names the hardware for each figure: an RTX 4090 up to 24, two of them or an A6000 up to 48, one
# A100 80GB up to 80, two up to 160, and past that a number of A100s it computes as `int(gb / 80)`. What it prints,
# what that code returns for its own figures, and how many A100 80GB each figure really needs (`gpus_needed`: the
# figure divided by the card's capacity, rounded up):

# %%
CLAIMED_PRINTED_HW = {1.0: "RTX 4090 (24 GB)", 3.0: "2x RTX 4090 or A6000 (48 GB)", 7.0: "2x A100 80GB",
                      13.0: "3 x A100 80GB (multi-node)", 70.0: "12 x A100 80GB (multi-node)"}  # what it prints
GPUS_PER_NODE = 8  # A100 servers (DGX / HGX A100) hold eight
hw_rows = []
for b, printed in CLAIMED_PRINTED_HW.items():
    est = estimate_memory(REAL[b], "full", precision="mixed-bf16", **SETUP)
    hw_rows.append({"size": f"{b:g}B", "helper prints": printed,
                    "its code returns": claimed_suggest_hardware(claimed_14_bytes(b) / GIB),
                    "A100s its figure needs": gpus_needed(claimed_14_bytes(b), A100.name),
                    "real model": REAL[b], "A100s the estimate needs": gpus_needed(est.total_bytes, A100.name)})
display(pd.DataFrame(hw_rows).set_index("size"))
results.record(claimed_suggest_hardware_table=hw_rows)

# %%
hw = {row["size"]: row for row in hw_rows}
b13, b70 = hw["13B"], hw["70B"]
assert all(claimed_suggest_hardware(CLAIMED_PRINTED_GB[b]) == hw[f"{b:g}B"]["its code returns"] for b in (13.0, 70.0))
fact_check(f"The claim: *`13.0B parameters: {CLAIMED_PRINTED_GB[13.0]} GB → {CLAIMED_PRINTED_HW[13.0]}`* and "
           f"*`70.0B parameters: {CLAIMED_PRINTED_GB[70.0]} GB → {CLAIMED_PRINTED_HW[70.0]}`*.",
           f"its code cannot print those. Past 160 it suggests `int(gb / 80)` A100s, and `int` rounds down: for "
           f"13e9 parameters its formula gives {claimed_14_bytes(13.0) / GIB:.1f} GiB and the code returns "
           f"**{b13['its code returns']}**, {int(claimed_14_bytes(13.0) / GIB / 80) * A100.gib:.0f} GiB of GPU "
           f"memory for it; for 70e9, **{b70['its code returns']}** (its printed figures give the same counts). "
           f"Rounding up, its own figures need {b13['A100s its figure needs']} and "
           f"{b70['A100s its figure needs']} A100s, which is what it printed. With the estimator's figures "
           f"(mixed precision, {SETUP['batch_size']} × {SETUP['seq_len']:,} tokens, checkpointing) full fine-tuning "
           f"of {b13['real model']} needs at least **{b13['A100s the estimate needs']}** A100 80GB and "
           f"{b70['real model']} at least **{b70['A100s the estimate needs']}**, and only when weights, gradients and "
           f"optimizer state are sharded evenly across them (FSDP or ZeRO stage 3, lesson 06): plain data "
           f"parallelism keeps the whole estimate on every GPU. And {b13['A100s the estimate needs']} GPUs are not "
           f"multi-node: one {GPUS_PER_NODE}-GPU server holds them; the {b70['real model']} run, at "
           f"{b70['A100s the estimate needs']} GPUs, is the one that needs "
           f"{-(-b70['A100s the estimate needs'] // GPUS_PER_NODE)} servers.")

# %% [markdown]
# ## 5. LoRA and QLoRA, 8B and 70B
#
# LoRA freezes the base: its weights need no gradient and no optimizer state, so only the adapters (the estimator's
# default rank on every projection, kept in fp32) pay for weights, gradients and Adam's moments. QLoRA also stores the
# frozen decoder Linear layers in NF4 (4-bit) with blockwise absmax constants (double-quantized); embeddings, the
# output layer and norms load in bf16, and the QLoRA recipe's `prepare_model_for_kbit_training` (lesson 05) casts
# them to fp32 for training, which the estimator prices. A third widely shared estimate lists:

# %%
CLAIMED_LISTS_GB = {N8B: {"full": 60, "lora": 18, "qlora": 6}, N70B: {"full": 500, "lora": 150, "qlora": 48}}
by_method = {}
rows = []
for arch, claimed_list in CLAIMED_LISTS_GB.items():
    for method, claimed_gb in claimed_list.items():
        e = estimate_memory(arch, method, precision="mixed-bf16", **SETUP)
        by_method[(arch, method)] = e
        rows.append({"model": arch, "method": method, "claimed GB": claimed_gb,
                     **{k: round(v / GB, 2) for k, v in e.components.items()},
                     "coursekit total GB": round(e.total_gb, 1), "total GiB": round(e.total_gib, 1)})
methods_table = pd.DataFrame(rows).set_index(["model", "method"])
display(methods_table)
results.record(method_totals_bytes={f"{a}/{m}": e.total_bytes for (a, m), e in by_method.items()},
               method_components_bytes={f"{a}/{m}": e.components for (a, m), e in by_method.items()})

# %%
CLOSE = 0.2  # a claimed figure within 20% of the estimate counts as "about right"


def judge(estimate_bytes, claimed_gb):
    ratio = estimate_bytes / (claimed_gb * GB)
    if abs(ratio - 1) <= CLOSE:
        return "about right"
    return f"{ratio:.1f}× too low" if ratio > 1 else f"{1 / ratio:.1f}× too high"


verdicts = {f"{a}/{m}": judge(e.total_bytes, CLAIMED_LISTS_GB[a][m]) for (a, m), e in by_method.items()}
results.record(method_claim_verdicts=verdicts)
for arch in (N8B, N70B):
    s = CLAIMED_LISTS_GB[arch]
    fact_check(f"The claim: *{arch}: full fine-tuning ~{s['full']} GB, LoRA ~{s['lora']} GB, QLoRA ~{s['qlora']} GB.*",
               f"at {SETUP['batch_size']} × {SETUP['seq_len']:,} tokens with checkpointing, mixed precision ("
               f"{sum(per_param['mixed-bf16']):g} bytes per trained parameter before any activation): "
               + ", ".join(f"{label} **{gb(by_method[(arch, m)].total_bytes)}** (the claim is "
                           f"{verdicts[f'{arch}/{m}']})"
                           for m, label in (("full", "full fine-tuning"), ("lora", "LoRA"), ("qlora", "QLoRA")))
               + f". \"About right\" means within {CLOSE:.0%} of the estimate.")

# %%
nf4_70b = weight_bytes(N70B, "nf4")
nf4_70b_plain = weight_bytes(N70B, {"double_quant": False})
nf4_70b_prepared = weight_bytes(N70B, {"other_dtype": "fp32"})  # after prepare_model_for_kbit_training
BLOCK, GROUP = QuantOptions().blocksize, 256  # weights per absmax; absmax values per fp32 constant when nested
saved_bits = (32 - 8 - 32 / GROUP) / BLOCK  # an fp32 absmax becomes 8 bits plus 1/GROUP of an fp32 constant
fact_check("The claim: *with 4-bit quantization the 70 billion parameter model needs only 35 GB*; double quantization saves "
           "*~0.34 bit per parameter, 0.34 × 70e9 / 8 / 1e9 ≈ 3 GB*.",
           f"NF4 keeps one absmax per {BLOCK} weights and leaves embeddings, output layer and norms in bf16: the "
           f"stored weights are **{gb(nf4_70b)}** with double quantization ({gb(nf4_70b_plain)} without), as "
           f"loaded; {gb(nf4_70b_prepared)} once `prepare_model_for_kbit_training` casts those to fp32, as the "
           "QLoRA rows above price them. "
           f"Double quantization turns each fp32 absmax into 8 bits plus a share of one fp32 constant per {GROUP}: "
           f"(32 − 8 − 32/{GROUP}) / {BLOCK} = {saved_bits:.3f} bit per quantized weight, "
           f"**{gb(nf4_70b_plain - nf4_70b)}** for this model.")
results.record(nf4_weights_70b_bytes=nf4_70b, nf4_weights_70b_no_double_quant_bytes=nf4_70b_plain,
               double_quant_saving_70b_bytes=nf4_70b_plain - nf4_70b)

# %% [markdown]
# ### Try it: a 70B model on one A100 80GB
#
# The popular estimate of section 1 also priced 70e9 parameters (its second column, `claimed_estimate_bytes(70e9,
# approach)`), and section 5 priced Llama 3 70B exactly. Which approaches still fit one A100 80GB? Answer
# before you read the fit table below.

# %%
ex_fit = coursekit.exercises.get("02.fits_a100_70b")
ex_fit.show()

# %%
answer = None  # your choice: "a", "b", "c" or "d"
if answer is not None:
    ex_fit.check(answer)

# %% [markdown]
# ## 6. Which GPU does it fit?
#
# `hardware_fit` compares each estimate, in bytes, with the total memory the driver reports for each GPU (the table
# at the top, in GiB) and gives the headroom in GiB (negative: short by that much). A CUDA context and the
# allocator's slack come on top of the tensors; the estimate includes a stated overhead for it.

# %%
fits = {}
for arch in (N8B, N70B):
    rows_fit = hardware_fit(arch, precision="mixed-bf16", **SETUP)
    print(arch)
    print(fit_table(rows_fit))
    print()
    fits[arch] = {r.method: r.fits for r in rows_fit if r.gpu == "A100 80GB"}
results.record(fits_a100_80gb=fits)
display(Markdown(
    f"On one A100 80GB, {N70B} fits with: "
    f"**{', '.join(m for m, ok in fits[N70B].items() if ok) or 'none of the methods'}**; "
    f"{N8B} fits with: **{', '.join(m for m, ok in fits[N8B].items() if ok)}**."))

# %% [markdown]
# ### The batch-size helper
#
# The third estimate comes with a helper that suggests a micro-batch from the free memory left after loading the
# 4-bit model, which it computes as `model_size_b * quantization_bits / 8 / 1e9`: billions divided by 10⁹ again.

# %%
CLAIMED_VRAM_GB, CLAIMED_MODEL_B, CLAIMED_BITS = 24, 8, 4  # the quoted call
EFFECTIVE = 8  # the effective batch priced
claimed_pick = claimed_suggest_batch_size(CLAIMED_VRAM_GB, CLAIMED_MODEL_B)
claimed_model_gb = CLAIMED_MODEL_B * CLAIMED_BITS / 8 / 1e9
good = suggest_batch_size(N8B, RTX4090.name, method="qlora", effective_batch_size=EFFECTIVE,
                          seq_len=SETUP["seq_len"], precision="mixed-bf16")
fact_check(f"The claim: *`suggest_batch_size(gpu_vram_gb={CLAIMED_VRAM_GB}, model_size_b={CLAIMED_MODEL_B})` prints Batch "
           "size: 4, Gradient accumulation: 2.*",
           f"the helper as written returns **{claimed_pick}** (batch, accumulation): it thinks the {CLAIMED_BITS}-bit "
           f"{CLAIMED_MODEL_B}B model weighs {claimed_model_gb:.0e} GB instead of about "
           f"{CLAIMED_MODEL_B * CLAIMED_BITS / 8:.0f} GB, so every GPU looks empty and its printed output is not "
           f"what its code returns. Pricing the real run (QLoRA, {SETUP['seq_len']:,}-token sequences, effective batch "
           f"{EFFECTIVE}) on an {RTX4090.name} with the estimator: micro-batch **{good.batch_size}** × accumulation "
           f"**{good.gradient_accumulation_steps}**, peak {gib(good.total_bytes)} ({gb(good.total_bytes)}) of the "
           f"card's {RTX4090.gib:.1f} GiB ({RTX4090.mib:,} MiB in nvidia-smi).")
results.record(claimed_suggest_batch_size_24gb_8b=list(claimed_pick),
               suggest_batch_size_4090_8b=[good.batch_size, good.gradient_accumulation_steps],
               suggest_batch_size_4090_8b_total_bytes=good.total_bytes)

# %% [markdown]
# ## 7. Estimate vs measured
#
# An estimator is only as good as its agreement with a real run. `measure_peak_memory` builds a randomly
# initialised model of the architecture (memory does not depend on the values), runs real training steps (from the
# second one on, optimizer state exists) and reports the peak per component. On CPU every tensor is tracked as it is
# created and freed (PyTorch's `MemTracker`); on CUDA the allocator's own counter, `torch.cuda.max_memory_allocated`,
# gives the total. Here: the architecture of the lesson's `MODEL` (the embedded model by default; with
# `MODEL = "smollm2-135m-instruct"`, SmolLM2-135M's) at a small batch, fp32, each method (the settings are stated
# under the table).

# %%
device = resolve_device(DEVICE)
measure_device = "cuda" if device == "cuda" else "cpu"
from coursekit.models import is_embedded, resolve_model_path

# A real model at 4 x 256 tokens, where the activations set the peak: at smaller batches the two pieces of its large
# tied embedding's gradient (one from each use, summed at the end of backward) outweigh them. The tracker counts those
# pieces apart (`m.gradient_temporaries`), not in the activations line.
MEASURE = dict(batch_size=2, seq_len=64) if is_embedded(MODEL) else dict(batch_size=4, seq_len=256)
MEASURE["checkpointing"] = False

MEASURE_ARCH = "tiny" if is_embedded(MODEL) else resolve_model_path(MODEL)  # a real model: its folder's config
if not is_embedded(MODEL) and not Path(MEASURE_ARCH).is_dir():
    print(f"{MODEL} is not a local folder here; measuring the embedded model's architecture instead")
    MEASURE_ARCH = "tiny"
measured_parameters = resolve_arch(MEASURE_ARCH).total_parameters
pairs, rows = [], []
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for method in ("full", "lora", "qlora"):
        m = measure_peak_memory(MEASURE_ARCH, method, device=measure_device, precision="fp32", **MEASURE, seed=SEED)
        for component, c in m.comparison().items():
            pairs.append({"method": method, "component": component, "estimated_bytes": c["estimate"],
                          "measured_bytes": c["measured"]})
            rows.append({"method": method, "component": component, "estimated MB": c["estimate"] / 1e6,
                         "measured MB": c["measured"] / 1e6, "error %": 100 * c["error"]})
display(pd.DataFrame(rows).set_index(["method", "component"]).round(2))
total_errors = [abs(r["error %"]) for r in rows if r["component"] == "total"]
results.record(estimate_vs_measured=pairs, measured_on=measure_device, measured_with=m.tool,
               measured_parameters=measured_parameters)
display(Markdown(f"Measured for a model of {measured_parameters:,} parameters on **{measure_device}** with "
                 f"`{m.tool}`, batch {MEASURE['batch_size']} × "
                 f"{MEASURE['seq_len']} tokens, {m.steps} training steps: the estimated peak is within "
                 f"**{max(total_errors):.1f} %** of the measured peak for every method."))

# %% [markdown]
# ### Gradient checkpointing, measured
#
# The same architecture, full fine-tuning, without and with gradient checkpointing, at a batch where activations
# matter: the activation peak (estimated and measured as above) and the seconds per training step (timed separately,
# without the tracker, the median of three steps after a warm-up one).

# %%
from coursekit.memory.measure import training_step_seconds

CKPT = {"cpu": dict(batch_size=4, seq_len=256), "real-cpu": dict(batch_size=4, seq_len=256),
        "gpu": dict(batch_size=8, seq_len=512)}[coursekit.budget_key(MODEL, SIZE)]
ckpt = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for on in (False, True):
        m = measure_peak_memory(MEASURE_ARCH, "full", device=measure_device, precision="fp32", checkpointing=on,
                                seed=SEED, **CKPT)
        ckpt[on] = {"activations_measured": m.activations, "activations_estimated": m.estimate.activations,
                    "peak_measured": m.peak_bytes, "at_peak": m.peak_snapshot,  # bytes held at the peak (CPU)
                    "seconds_per_step": training_step_seconds(MEASURE_ARCH, "full", device=measure_device,
                                                              checkpointing=on, seed=SEED, steps=3, **CKPT)}
results.record(checkpointing_measured={"with" if on else "without": v for on, v in ckpt.items()},
               checkpointing_setup=CKPT)
display(pd.DataFrame([{"checkpointing": on, "activations estimated MB": v["activations_estimated"] / 1e6,
                       "activations measured MB": v["activations_measured"] / 1e6,
                       "peak measured MB": v["peak_measured"] / 1e6, "seconds per step": v["seconds_per_step"]}
                      for on, v in ckpt.items()]).set_index("checkpointing").round(3))
act_saved = 1 - ckpt[True]["activations_measured"] / ckpt[False]["activations_measured"]
slowdown = ckpt[True]["seconds_per_step"] / ckpt[False]["seconds_per_step"]
peak_without, peak_with = ckpt[False]["peak_measured"], ckpt[True]["peak_measured"]
held = ckpt[False]["at_peak"]  # empty on CUDA, where the allocator reports only the peak itself
if peak_with < 0.99 * peak_without:
    peak_text = f"and the peak from {peak_without / 1e6:,.1f} to {peak_with / 1e6:,.1f} MB"
else:
    peak_text = (f"but not the peak ({peak_without / 1e6:,.1f} MB without, {peak_with / 1e6:,.1f} MB with): at this "
                 "batch the activations are not what sets it" + (
                     f" (at its highest point the step without checkpointing held {held['Activation'] / 1e6:,.1f} MB "
                     f"of activations beside {(held['Gradient'] + held['Optstate']) / 1e6:,.1f} MB of gradients and "
                     "optimizer state)" if held else ""))
display(Markdown(
    f"At batch {CKPT['batch_size']} × {CKPT['seq_len']} tokens, checkpointing cut the measured activations by "
    f"**{act_saved:.0%}** {peak_text}; a step took **{slowdown:.2f}×** as long. "
    "The backward pass costs about twice the forward, so recomputing the layers' forward makes a step at most about "
    "4/3 as long (1.33×; the embeddings, the loss and the optimizer step are not recomputed) "
    + (f"and the measured {slowdown:.2f}× is within {TIMING_NOISE:.0%} of that bound (timings closer than that are "
       "read as equal)." if abs(slowdown / (4 / 3) - 1) <= TIMING_NOISE else
       f"and the measured {slowdown:.2f}× is no slower than without: a difference within the timing's noise (each "
       "figure is the median of three steps)." if slowdown < 1.0 else
       f"and the measured {slowdown:.2f}× is below that: on a small model the parts that are not recomputed (the "
       "optimizer step, the loss, Python overhead) take a larger share of the step." if slowdown < 4 / 3 else
       f"but the measured {slowdown:.2f}× is above it: a timing on a machine busy with other work, or a model so "
       "small that recomputation's own overhead shows; time it on your hardware.")))

# %% [markdown]
# On a CUDA GPU (`SIZE = "gpu"`), the same comparison at real size: Llama-3.2-1B-shaped models with random
# weights, one sequence, bf16 and checkpointing. `benchmarks/memory_grid.py` runs the whole grid
# (1B and 3B, both sequence lengths, checkpointing on and off) and writes `reports/memory-grid.md`.

# %%
GPU_SEQ = 512
if SIZE == "gpu" and device == "cuda":
    import torch

    gpu_rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("full", "lora", "qlora"):
            m = measure_peak_memory("llama-3.2-1b", method, device="cuda", precision="bf16", batch_size=1,
                                    seq_len=GPU_SEQ, checkpointing=True, seed=SEED)
            est = m.estimate.tensor_bytes
            gpu_rows.append({"method": method, "estimated GB": est / GB, "measured GB": m.peak_bytes / GB,
                             "error %": 100 * (est - m.peak_bytes) / m.peak_bytes})
    display(pd.DataFrame(gpu_rows).set_index("method").round(2))
    display(Markdown(f"One {GPU_SEQ}-token sequence per step, on a {torch.cuda.get_device_name(0)} "
                     f"({torch.cuda.get_device_properties(0).total_memory / GIB:.1f} GiB as CUDA reports it)."))
    results.record(gpu_estimate_vs_measured=gpu_rows)
else:
    print(f"No CUDA run here (device {device}, SIZE {SIZE!r}): set SIZE = 'gpu' on a GPU to see the table.")

# %% [markdown]
# ## 8. The memory calculator
#
# Drag the size (a Llama-3-shaped model of that many parameters) or pick a real architecture, then change the
# method, the LoRA rank and targets, the batch, the sequence length, the precision recipe, the optimizer and
# checkpointing. The bar stacks the components; the dashed lines are GPU capacities as the driver reports them (in
# GiB). The caption under the total names the size and every setting the figure was computed for; the sliders price
# the value you release them at.

# %%
calc = memory_calculator(model=N8B, method="full")
calc

# %%
DRAG_TO = 70.0  # billions
before = calc.figure_text
calc.controls["parameters_b"].value = DRAG_TO  # what releasing the slider there does
after = calc.figure_text
calc.set(model=N8B)  # back to the start for you
results.record(calculator_8b_full_text=before, calculator_70b_full_text=after,
               calculator_8b_full_bytes=calc.total_bytes)
display(Markdown(f"Dragging to {DRAG_TO:g} billion changes the figure from *{before}* to *{after}*."))

# %% [markdown]
# ## 9. Try it
#
# More questions, checked instantly. Run the cell to see a question, write your answer in the next one.

# %%
for exercise_id in ("02.full_ft_adam_8b", "02.llama_adam_state_gb", "02.adam_state_bytes"):
    coursekit.exercises.get(exercise_id).show()

# %%
my_full_ft_gb = None  # your answer in GB
my_adam_state_gb = None  # your answer in GB
if my_full_ft_gb is not None:
    coursekit.exercises.check("02.full_ft_adam_8b", my_full_ft_gb)
if my_adam_state_gb is not None:
    coursekit.exercises.check("02.llama_adam_state_gb", my_adam_state_gb)
# def adam_state_bytes(n_params, state_bytes_per_value=4):
#     ...
# coursekit.exercises.check("02.adam_state_bytes", adam_state_bytes)

# %% [markdown]
# ## Quiz

# %%
coursekit.quiz.quiz_widget("02")
