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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fine-tuning-course/fine-tuning-llms/blob/main/notebooks/05_qlora.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fine-tuning-course/fine-tuning-llms/main?urlpath=lab/tree/notebooks/05_qlora.ipynb)
#
# # 05 · QLoRA: LoRA on a 4-bit model
#
# LoRA (lesson 04) makes the *trainable* part small, but the frozen model still sits in memory in 16 bits: 140 GB for
# a 70B model. QLoRA stores the frozen weights in 4 bits and trains LoRA adapters on top (in bf16 on a GPU that
# computes in bf16, in fp32 elsewhere: section 5 shows which). Three ideas make
# it work: the **NF4** data type, **double quantization** of the scaling constants, and **paged optimizers**. You will
# build the first two from scratch and match bitsandbytes bit for bit, then train a real QLoRA run and compare it with
# LoRA.

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

import bitsandbytes.functional as bnbf
import IPython.display as ipd
import matplotlib.pyplot as plt
import torch

import coursekit
from coursekit.notebook import count, fact_check
from coursekit.scratch import (
    dequantize_nf4,
    double_quant_overhead_bits,
    fp4_levels,
    int4_levels,
    nf4_levels,
    quantize_nf4,
    single_quant_overhead_bits,
)
from coursekit.scratch.double_quant import double_quant_saving_bytes
from coursekit.scratch.nf4 import quantization_error

results = coursekit.Results(RESULTS_PATH, notebook="05_qlora", model=MODEL)
results.record(model=MODEL, size=SIZE)
torch.manual_seed(SEED)
GB, GIB = 1e9, 2**30
BUDGET_KEY = coursekit.budget_key(MODEL, SIZE)  # "cpu": embedded model; "real-cpu": a real model on a CPU; "gpu"
# On a CPU, a training step of 8 examples on the real model takes seconds, with or without the 4-bit base (README:
# real-model figures), so the real-cpu run is a few steps that show the mechanics. The embedded model trains lesson
# 04's steps and batch, at which its LoRA answers most tickets.
STEPS = {"cpu": 100, "real-cpu": 4, "gpu": 400}[BUDGET_KEY]
BATCH = {"cpu": 8, "real-cpu": 8, "gpu": 4}[BUDGET_KEY]  # micro-batch
GRAD_ACCUM = {"cpu": 1, "real-cpu": 1, "gpu": 4}[BUDGET_KEY]  # micro-batches per optimizer step
RECIPE_STEPS = {"cpu": 5, "real-cpu": 1, "gpu": 20}[BUDGET_KEY]  # the recipe written out runs a few steps
# Learning rates scaled to the model (lesson 04): the same for LoRA and QLoRA, so the runs differ only in the 4-bit
# base and the optimizer each method uses (QLoRA's paged 8-bit AdamW). On the
# embedded model, twice lesson 04's rate: at 5e-3, QLoRA can fail to learn the task within this budget, at 1e-2 both
# learn it (`benchmarks/budget_seeds.py` measures that over several random seeds).
LR = {"cpu": 1e-2, "real-cpu": 1e-3, "gpu": 2e-4}[BUDGET_KEY]
N_METRIC = {"cpu": 64, "real-cpu": 8, "gpu": 200}[BUDGET_KEY]
EVAL_SIZE = {"cpu": 64, "real-cpu": 8, "gpu": 64}[BUDGET_KEY]  # validation examples for the loss during training
BUDGET = dict(max_steps=STEPS, batch_size=BATCH, grad_accum=GRAD_ACCUM, learning_rate=LR, metric_examples=N_METRIC,
              eval_size=EVAL_SIZE, seed=SEED, device=DEVICE, measure_general=False, measure_before=False)
RUNS_DIR = Path(tempfile.mkdtemp(prefix="lesson05-"))

# %% [markdown]
# ## 1. Quantization arithmetic
#
# Storing a weight in fewer bits shrinks the model proportionally. For 7B and 70B parameters (GB = 1e9 bytes):

# %%
BITS = {"fp32": 32, "fp16 / bf16": 16, "int8": 8, "int4": 4}
table = {size: {name: size * bits / 8 / GB for name, bits in BITS.items()} for size in (7e9, 70e9)}
rows = "\n".join(f"| {name} | {table[7e9][name]:.1f} GB | {table[70e9][name]:.1f} GB |" for name in BITS)
results.record(weights_gb_70b={name: table[70e9][name] for name in BITS})
ipd.Markdown("| storage | 7B | 70B |\n|---|---|---|\n" + rows + "\n\nThe widely quoted 280 / 140 / 70 / 35 GB for 70B "
             "are right for the raw weights; section 3 adds what 4-bit storage really costs on top.")

# %% [markdown]
# ## 2. NF4 from scratch
#
# A 4-bit type has 16 values. Which 16? Pretrained weights are close to normally distributed, so NF4 places its levels
# at **quantiles of the normal distribution**: each level then receives about the same number of weights. To keep an
# exact zero, the paper builds the halves separately (8 positive quantiles, 7 negative, and 0), then divides by the
# largest so the levels span [-1, 1]. `nf4_levels()` does exactly that with `torch.special.ndtri` (the normal inverse
# CDF); compare it with the table bitsandbytes ships.

# %%
levels = nf4_levels()
bnb_table = bnbf.get_4bit_type("nf4", device="cpu")
nf4_table_matches = bool(torch.equal(levels, bnb_table))
print([round(v, 4) for v in levels.tolist()])
print("identical to bitsandbytes' table, bit for bit:", nf4_table_matches)
results.record(nf4_table_matches=nf4_table_matches)

# %% [markdown]
# **Blockwise absmax.** A tensor is cut into blocks of 64 values; each block is divided by its largest absolute value
# (kept as a float32 *absmax*), so it lies in [-1, 1]; each value becomes the index of the nearest level; two 4-bit
# indices share a byte. One outlier then only costs precision in its own block. `quantize_nf4` and `dequantize_nf4`
# are that, and they give the same bytes as `bitsandbytes.functional.quantize_4bit` on a real weight of our model:

# %%
model, tokenizer = coursekit.load_base_model(MODEL, device="cpu", dtype=torch.float32)
weight = model.model.layers[0].self_attn.q_proj.weight.detach()
packed, absmax = quantize_nf4(weight)
ref_packed, ref_state = bnbf.quantize_4bit(weight, blocksize=64, quant_type="nf4")
restored = dequantize_nf4(packed, absmax, weight.shape)
nf4_bytes_match = bool(torch.equal(packed, ref_packed) and torch.equal(absmax, ref_state.absmax))
nf4_restore_match = bool(torch.equal(restored, bnbf.dequantize_4bit(ref_packed, ref_state, quant_type="nf4")))
results.record(nf4_bytes_match=nf4_bytes_match, nf4_restore_match=nf4_restore_match)
print(f"{tuple(weight.shape)} weight -> {packed.numel():,} bytes of codes + {absmax.numel()} absmax values; "
      f"same bytes as bitsandbytes: {nf4_bytes_match}; same restored values: {nf4_restore_match}")

# %% [markdown]
# **NF4 against int4 and fp4.** The same blockwise scheme with three tables of 16 codes, on every linear weight of
# the model: evenly spaced integers (int4), bitsandbytes' 4-bit float (fp4: sign, 2 exponent bits, 1 mantissa bit),
# and NF4. int4 and fp4 spend two codes on zero (15 distinct values); NF4 has a single zero, so 16 distinct values,
# which is part of its advantage.

# %%
tables = {"int4": torch.cat([int4_levels(), torch.zeros(1)]).sort().values, "fp4": fp4_levels(), "nf4": levels}
linears = [m.weight.detach() for name, m in model.named_modules()
           if isinstance(m, torch.nn.Linear) and "layers." in name]
errors = {k: torch.cat([quantization_error(w, t).flatten() for w in linears]) for k, t in tables.items()}
rmse = {k: e.pow(2).mean().sqrt().item() for k, e in errors.items()}
fig, ax = plt.subplots(figsize=(7, 3))
# the plot's range: 99.9% of the errors (torch.quantile takes at most 2**24 values, so a strided sample of them)
span = max(e[:: e.numel() // 2**22 + 1].abs().quantile(0.999).item() for e in errors.values())
for k, e in errors.items():
    ax.hist(e.clamp(-span, span).numpy(), bins=120, histtype="step", label=f"{k} (RMSE {rmse[k]:.2e})")
ax.set_xlabel("dequantized − original")
ax.set_yscale("log")
ax.legend()
plt.show()
results.record(rmse_int4=rmse["int4"], rmse_fp4=rmse["fp4"], rmse_nf4=rmse["nf4"])
ipd.Markdown(f"Root-mean-square error over {sum(w.numel() for w in linears):,} weights: int4 {rmse['int4']:.2e}, "
             f"fp4 {rmse['fp4']:.2e}, NF4 **{rmse['nf4']:.2e}**.")

# %% [markdown]
# ## 3. Double quantization
#
# One float32 absmax per 64 weights costs 32 / 64 = 0.5 bits per weight: 12.5% on top of the 4 bits. Double
# quantization quantizes those constants too: to 8 bits, in blocks of 256, each block keeping one float32 constant.

# %%
single_bits = single_quant_overhead_bits(64)
double_bits = double_quant_overhead_bits(64, 256)
saved_bits = single_bits - double_bits
claimed_double_bits = 8 / 64 + 32 / 1024  # the quoted second term
savings_gb = {size: double_quant_saving_bytes(size) / GB for size in (7e9, 70e9)}
results.record(double_quant_bits=double_bits, double_quant_saving_gb_70b=savings_gb[70e9],
               double_quant_saving_gb_7b=savings_gb[7e9])
ipd.Markdown(
    f"Overhead: {single_bits} bits per weight without, **{double_bits:.4f}** with double quantization "
    f"(8/64 + 32/(64·256)); saved {saved_bits:.3f} bits per weight: {savings_gb[7e9]:.2f} GB for 7B, "
    f"{savings_gb[70e9]:.2f} GB for 70B.")
fact_check(
    f"A widely repeated explanation writes the overhead as 8/64 + 32/1024 ≈ "
    f"{claimed_double_bits:.2f} bits and the saving as 0.34 bits (≈ 3 GB for 70B).",
    "the second-level constant "
    f"covers 256 blocks of 64 weights, i.e. 16,384 weights, not 1,024: the overhead is {double_bits:.3f} bits, "
    f"the saving {saved_bits:.3f} bits, "
    f"{savings_gb[70e9]:.2f} GB for 70B. And a 70B model in NF4 takes "
    f"{70e9 * (4 + double_bits) / 8 / GB:.1f} GB, not 35 GB, before anything else is loaded.")

# %%
from coursekit.memory import weight_bytes

RATIO_ARCH = "llama-2-7b"  # the quoted 7B model
stored = {"bf16": weight_bytes(RATIO_ARCH), "nf4": weight_bytes(RATIO_ARCH, {"double_quant": False}),
          "nf4 + double quantization": weight_bytes(RATIO_ARCH, "nf4")}
per_weight_ratio = {"nf4": 16 / (4 + single_bits), "nf4 + double quantization": 16 / (4 + double_bits)}
results.record(ratio_arch_weight_bytes=stored, double_quant_saved_bits=saved_bits)
fact_check(
    "A popular tutorial: *4-bit (NF4): 7B model = 3.5GB (4x smaller!)*; *double quantization saves "
    "additional ~0.37 bits/param*; *Total: 4.2x memory reduction*.",
    f"the saving per weight is right: {single_bits} − {double_bits:.3f} = **{saved_bits:.3f} bits**. "
    f"The ratios are not. A 16-bit weight against 4 bits plus its share of the constants is 16 / (4 + {single_bits}) "
    f"= {per_weight_ratio['nf4']:.2f}× without double quantization and 16 / (4 + {double_bits:.3f}) = "
    f"**{per_weight_ratio['nf4 + double quantization']:.2f}×** with it: the constants keep any 4-bit format below "
    f"4×, so 4.2× is out of reach. For the whole {RATIO_ARCH}, whose embeddings and output layer stay in bf16: "
    f"{stored['bf16'] / GB:.2f} GB in bf16, {stored['nf4'] / GB:.2f} GB in NF4 "
    f"({stored['bf16'] / stored['nf4']:.2f}×), **{stored['nf4 + double quantization'] / GB:.2f} GB** with double "
    f"quantization (**{stored['bf16'] / stored['nf4 + double quantization']:.2f}×**), not 3.5 GB.")

# %% [markdown]
# ## 4. Paged optimizers, honestly
#
# `optim="paged_adamw_8bit"` combines two things.
#
# * **8-bit optimizer state.** Adam keeps two numbers per trainable weight. bitsandbytes stores them in 8 bits
#   (blockwise quantized, like above) instead of 32: a quarter of the memory. Measured below. Only for tensors of
#   at least `min_8bit_size` elements (4,096 by default): smaller ones keep fp32 state, and LoRA's A and B matrices
#   are often that small (rank 8 times a 256-wide layer is 2,048), so on a small model much of the adapter keeps fp32
#   state; on a 7B model (rank 8 times 4,096) every adapter matrix is large enough.
# * **Paging.** The state is allocated in CUDA *unified memory*: when the GPU runs short (a long sequence makes a
#   memory spike), the driver moves state pages to CPU RAM and back when the optimizer step needs them. It moves
#   **only the optimizer state**, not weights, activations or gradients, and it is slow when it happens: it smooths
#   spikes, it does not make a model fit that does not fit. And only state tensors of at least 100,000 elements are
#   paged (smaller ones sit in ordinary GPU memory): a LoRA matrix has rank × width elements, so at rank 8 on a
#   Llama-2-7B no adapter's state is paged; at rank 16 its MLP adapters' are. On a CPU there is nothing to page: bitsandbytes allocates
#   the state in ordinary memory and the "paged" optimizer behaves like the unpaged one.

# %%
import bitsandbytes as bnb

probe_param = torch.nn.Parameter(torch.randn(4096, 1024) * 0.02)
state_bytes = {}
for name, make in {"AdamW (torch, fp32 state)": lambda p: torch.optim.AdamW([p]),
                   "AdamW8bit (bitsandbytes)": lambda p: bnb.optim.AdamW8bit([p]),
                   "PagedAdamW8bit (bitsandbytes)": lambda p: bnb.optim.PagedAdamW8bit([p])}.items():
    p = torch.nn.Parameter(probe_param.detach().clone())
    opt = make(p)
    p.grad = torch.randn_like(p) * 1e-3
    opt.step()
    tensors = [t for t in opt.state[p].values() if torch.is_tensor(t) and t.numel() > 1]
    state_bytes[name] = sum(t.numel() * t.element_size() for t in tensors)
    paged = any(getattr(t, "is_paged", False) for t in tensors)
    print(f"{name:32s} {state_bytes[name] / p.numel():.3f} bytes per parameter, paged: {paged}")
results.record(adam_state_bytes_per_param=state_bytes["AdamW (torch, fp32 state)"] / probe_param.numel(),
               adam8bit_state_bytes_per_param=state_bytes["AdamW8bit (bitsandbytes)"] / probe_param.numel())

# %% [markdown]
# **The whole budget.** A popular tutorial prices fine-tuning a 7B model three ways, line by line, and sums it up as
# *QLoRA loses 3-4% performance vs full fine-tuning but uses 8x less memory*. Its full fine-tuning lines: *Model
# weights: 14GB, Gradients: 14GB, Optimizer states (Adam): 28GB, Activations: 8-12GB, TOTAL: ~64-68GB*; for the
# adapters at r = 16: *LoRA adapters: 0.02GB, LoRA gradients: 0.02GB, Optimizer states: 0.04GB*; for QLoRA a total
# of *~7.5-9.5GB*. Lesson 02's estimator, for the same 7B model and one 2,048-token sequence: full fine-tuning in the
# textbook mixed precision (`mixed-bf16`: bf16 weights and gradients, an fp32 master copy and fp32 Adam moments, 16
# bytes per parameter; the `amp-bf16` recipe of lesson 03 costs more) with AdamW, QLoRA with NF4 + double
# quantization, r = 16 on all seven projections (the QLoRA paper adapts all seven too, with r = 64 and
# `paged_adamw_32bit`), bf16 adapters and `paged_adamw_8bit`.

# %%
from coursekit.archs import count_lora_parameters
from coursekit.memory import estimate_memory, weight_bytes_breakdown

BUDGET_ARCH, BUDGET_SEQ = "llama-2-7b", 2048
CLAIMED_ADAPTER_GB, CLAIMED_FULL_GB, CLAIMED_QLORA_GB, CLAIMED_RATIO = 0.02, (64, 68), (7.5, 9.5), 8
CLAIMED_FULL_LINES_GB, CLAIMED_ADAPTER_OPTIMIZER_GB = (14, 14, 28), 0.04  # weights, gradients, Adam; adapters' Adam
QLORA_BUDGET = dict(precision="bf16", optimizer="paged-adamw-8bit", rank=16, targets="all-linear", lora_dtype="bf16",
                    batch_size=1, seq_len=BUDGET_SEQ)
budget = {ck: {"full": estimate_memory(BUDGET_ARCH, "full", precision="mixed-bf16", optimizer="adamw", batch_size=1,
                                       seq_len=BUDGET_SEQ, checkpointing=ck),
               "qlora": estimate_memory(BUDGET_ARCH, "qlora", checkpointing=ck, **QLORA_BUDGET)}
          for ck in (True, False)}
ratio = {ck: b["full"].total_bytes / b["qlora"].total_bytes for ck, b in budget.items()}
pure_bf16_full = estimate_memory(BUDGET_ARCH, "full", precision="bf16", optimizer="adamw", batch_size=1,
                                 seq_len=BUDGET_SEQ, checkpointing=True)
n7b = pure_bf16_full.total_parameters
claimed_bytes_per_param = [gb_ * GB / 7e9 for gb_ in CLAIMED_FULL_LINES_GB]  # the tutorial's "7B" = 7e9
adapters = {"q_proj, v_proj": count_lora_parameters(BUDGET_ARCH, 16, ["q_proj", "v_proj"]),
            "all seven projections": count_lora_parameters(BUDGET_ARCH, 16, "all-linear")}
claimed_ratio_range = (CLAIMED_FULL_GB[0] / CLAIMED_QLORA_GB[1], CLAIMED_FULL_GB[1] / CLAIMED_QLORA_GB[0])
results.record(budget_7b_total_bytes={("checkpointing" if ck else "no checkpointing"): {m: e.total_bytes
                                                                                        for m, e in b.items()}
                                      for ck, b in budget.items()},
               budget_7b_full_over_qlora={("checkpointing" if ck else "no checkpointing"): r for ck, r in ratio.items()},
               budget_7b_adapter_parameters=adapters)
qv_16bit_gb = adapters["q_proj, v_proj"] * 2 / GB
unquantized_bf16 = weight_bytes_breakdown(BUDGET_ARCH, "nf4")["other_parameters"]  # fp32 doubles it
qlora_as_loaded = {ck: estimate_memory(BUDGET_ARCH, "qlora", checkpointing=ck, kbit_prepared=False, **QLORA_BUDGET)
                   for ck in budget}  # without prepare_model_for_kbit_training's fp32 cast
verdict = ("the claimed 8x is inside that range" if min(ratio.values()) <= CLAIMED_RATIO <= max(ratio.values())
           else f"the claimed {CLAIMED_RATIO}x is outside that range")
ipd.Markdown(
    "| | full fine-tuning | QLoRA | full ÷ QLoRA |\n|---|---|---|---|\n"
    + "\n".join(f"| {'with' if ck else 'without'} gradient checkpointing | {b['full'].total_gb:.1f} GB | "
                 f"{b['qlora'].total_gb:.1f} GB | **{ratio[ck]:.1f}×** |" for ck, b in budget.items())
    + f"\n\n> **Computed:** the ratio is not a property of QLoRA: it depends on the activations, which the tutorial "
    f"does not pin down. With checkpointing QLoRA's activations are small and full fine-tuning's fp32 master copy and "
    f"Adam moments (12 bytes per parameter) dominate: {ratio[True]:.1f}×; without checkpointing QLoRA carries "
    f"{budget[False]['qlora'].activations / GB:.1f} GB of activations: {ratio[False]:.1f}×. So {verdict}; the "
    f"tutorial's own totals give {claimed_ratio_range[0]:.1f}× to {claimed_ratio_range[1]:.1f}×. Its full "
    f"fine-tuning lines ({' + '.join(f'{g:g}' for g in CLAIMED_FULL_LINES_GB)} GB) are "
    f"{' + '.join(f'{b:g}' for b in claimed_bytes_per_param)} bytes per parameter: weights, gradients and both Adam "
    "moments in bf16, which is pure bf16 training (lesson 03 shows how it loses updates); priced that way the "
    f"estimator gives {pure_bf16_full.total_gb:.0f} GB with checkpointing. Mixed precision adds the fp32 master copy "
    f"and keeps the moments in fp32: {budget[True]['full'].total_gb:.0f} GB. The estimated QLoRA totals, "
    f"{budget[True]['qlora'].total_gb:.1f} and {budget[False]['qlora'].total_gb:.1f} GB, are "
    + ("both outside" if all(not CLAIMED_QLORA_GB[0] <= b["qlora"].total_gb <= CLAIMED_QLORA_GB[1]
                             for b in budget.values()) else "not both outside")
    + f" the claimed {CLAIMED_QLORA_GB[0]:g}-{CLAIMED_QLORA_GB[1]:g} GB: the activations decide. They price the "
    "model after `prepare_model_for_kbit_training` (section 5), in bf16 without autocast: that call casts the "
    f"parameters that stay unquantized (embeddings, output layer, norms) from bf16 to fp32, another "
    f"{unquantized_bf16 / GB:.2f} GB for {BUDGET_ARCH}, and the residual stream and every 4-bit layer's output are "
    "then fp32 too (bitsandbytes casts each 4-bit layer's output back to its input's dtype), so every activation "
    "autograd keeps is fp32 (under autocast the attention kernel would keep bf16 copies). Priced as the model loads (`kbit_prepared=False`), the "
    f"totals would be {qlora_as_loaded[True].total_gb:.1f} and {qlora_as_loaded[False].total_gb:.1f} GB.\n>\n"
    f"> The adapter line: r = 16 on q_proj and v_proj is {adapters['q_proj, v_proj']:,} parameters, "
    f"{qv_16bit_gb:.3f} GB in 16 bits, which rounds to the claimed {CLAIMED_ADAPTER_GB} GB; on all seven projections "
    f"it is {adapters['all seven projections']:,} parameters: {adapters['all seven projections'] * 2 / GB:.2f} GB in "
    f"bf16, {adapters['all seven projections'] * 4 / GB:.2f} GB in fp32 (peft's default dtype). The optimizer line "
    f"({CLAIMED_ADAPTER_OPTIMIZER_GB} GB) fits two 16-bit Adam moments for q_proj and v_proj "
    f"({adapters['q_proj, v_proj'] * 4 / GB:.3f} GB); fp32 moments take {adapters['q_proj, v_proj'] * 8 / GB:.3f} "
    f"GB and `paged_adamw_8bit` {adapters['q_proj, v_proj'] * 2 / GB:.3f} GB. Either way the adapters are small next "
    f"to the {budget[True]['qlora'].weights / GB:.1f} GB of base weights (4-bit layers, the rest in fp32). The "
    "quality half of the claim (3-4% lost) "
    "is about benchmarks at scale, where the QLoRA paper reports NF4 with double quantization matching 16-bit LoRA "
    "and full fine-tuning; section 5 measures what 4 bits cost this model.")

# %% [markdown]
# ## 5. QLoRA, for real
#
# `coursekit.load_base_model(MODEL, quantization="nf4")` is `from_pretrained` with
# `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
# bnb_4bit_compute_dtype=...)`, the compute dtype being the one the matmuls run in: bf16 on a GPU that computes in it
# (compute capability 8.0 and later: A100, L4, H100), fp16 on an older one such as a T4 (which can store bf16 but
# only emulates its arithmetic), fp32 on a CPU (there bf16 is emulated, unless the CPU has AVX512-BF16, so a QLoRA
# step in bf16 runs several times slower: `benchmarks/qlora_cpu_dtypes.py` times both on your machine). First, the
# weights it holds, measured, against lesson 02's estimator for the same architecture. (Measure before running the model: on CPUs with AVX512-BF16, bitsandbytes repacks a
# 4-bit weight for its CPU kernel at the first inference, with bf16 absmax.)

# %%
from coursekit.memory import weight_bytes
from coursekit.memory.measure import stored_weight_bytes

qmodel, qtokenizer = coursekit.load_base_model(MODEL, device=DEVICE, quantization="nf4")
qlora_weight_bytes_measured = stored_weight_bytes(qmodel)
# embeddings, norms and lm_head stay in the dtype the model was loaded in (fp32 on a CPU, bf16 on most GPUs)
other_dtype = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}[qmodel.dtype]
qlora_weight_bytes_estimated = weight_bytes(qmodel.config, quantization={"quant_type": "nf4", "double_quant": True,
                                                                        "other_dtype": other_dtype})
results.record(qlora_weight_bytes_measured=qlora_weight_bytes_measured,
               qlora_weight_bytes_estimated=qlora_weight_bytes_estimated)
full_weight_bytes_measured = stored_weight_bytes(model)
ipd.Markdown(f"4-bit model weights: measured {qlora_weight_bytes_measured / 1e6:.3f} MB, estimated "
             f"{qlora_weight_bytes_estimated / 1e6:.3f} MB "
             f"({100 * (qlora_weight_bytes_estimated / qlora_weight_bytes_measured - 1):+.2f}%). "
             "(On a model this small the parts kept in 16/32 bits, such as the embeddings, are a larger share than "
             "on a 7B model, where the 4-bit linears dominate.)")

# %% [markdown]
# **Counting the parameters of a 4-bit model.** bitsandbytes packs two 4-bit weights into each byte of a `uint8`
# tensor, so `p.numel()` of a 4-bit weight is half its number of weights. Two popular QLoRA scripts print
# `print_trainable_parameters()` lines for LoRA at rank 16 on all seven projections (q, k, v, o, gate, up, down), one
# for Llama-3.1-8B, one for Llama-2-13b; the second one's tutorial also puts QLoRA on a 7B model at about a million
# trainable parameters. Counted exactly:

# %%
import peft

from coursekit.archs import count_lora_parameters, count_parameters, resolve_arch


def numel_sum_4bit(arch):
    """What sum(p.numel() for p in model.parameters()) gives for the model loaded in 4 bits: each decoder Linear
    weight as packed bytes (two weights per byte), everything else as it is."""
    spec = resolve_arch(arch)
    quantized = [lin.weight_parameters for lin in spec.linears if lin.in_decoder]
    return spec.total_parameters - sum(quantized) + sum((n + 1) // 2 for n in quantized)


numel_here = sum(p.numel() for p in qmodel.parameters())  # the 4-bit model loaded above
CLAIMED_QLORA = {"llama-3.1-8b": (41_943_040, 4_579_280_896, "0.9160"),  # trainable, all, trainable% as printed
                 "llama-2-13b": (41_943_040, 13_016_035_328, "0.322")}
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
exact = {a: {"base": count_parameters(a), "lora": count_lora_parameters(a, 16, SEVEN), "numel_4bit": numel_sum_4bit(a)}
         for a in (*CLAIMED_QLORA, "llama-2-7b")}
results.record(numel_sum_4bit_model=numel_here, numel_sum_4bit_formula=numel_sum_4bit(qmodel.config),
               parameters_4bit_model=resolve_arch(qmodel.config).total_parameters, qlora_script_counts=exact)
e8, e13, e7 = exact["llama-3.1-8b"], exact["llama-2-13b"], exact["llama-2-7b"]
c8, c13 = CLAIMED_QLORA["llama-3.1-8b"], CLAIMED_QLORA["llama-2-13b"]
fact_check(
    f"The scripts print *trainable params: {c8[0]:,} || all params: {c8[1]:,} || trainable%: "
    f"{c8[2]}%* (Llama-3.1-8B) and *trainable params: {c13[0]:,} || all params: {c13[1]:,} || "
    f"trainable%: {c13[2]}%* (Llama-2-13b); the summary says *QLoRA: ~1M trainable params* for "
    "7B models.",
    f"for Llama-3.1-8B, {e8['lora']:,} trainable is exact, but the model has {e8['base']:,} "
    f"parameters, so all params are **{e8['base'] + e8['lora']:,}** "
    f"({100 * e8['lora'] / (e8['base'] + e8['lora']):.4f}% trainable). Summing `p.numel()` over the 4-bit model "
    f"counts each packed byte as one parameter and gives {e8['numel_4bit'] + e8['lora']:,} with the adapters: "
    f"about half, the size of the printed {c8[1]:,} (which is off that count by "
    f"{e8['numel_4bit'] + e8['lora'] - c8[1]:,} and matches none of these counts). This lesson's 4-bit model: numel "
    f"sums to {numel_here:,} for "
    f"{resolve_arch(qmodel.config).total_parameters:,} parameters. peft {peft.__version__} doubles the numel of "
    f"4-bit tensors in `print_trainable_parameters`, so it prints the real count. For Llama-2-13b the same LoRA "
    f"trains **{e13['lora']:,}**, not {c13[0]:,} (the 8B's count), of {e13['base'] + e13['lora']:,} "
    f"({100 * e13['lora'] / (e13['base'] + e13['lora']):.3f}%). For Llama-2-7b it trains **{e7['lora']:,}**, about "
    f"{e7['lora'] / 1e6:.0f} million, not one million.")

# %% [markdown]
# **What 4 bits cost in quality.** Perplexity on held-out general text (lower is better), the 16/32-bit model against
# the same model loaded in NF4 with double quantization, its 4-bit layers computing in the dtype stated below.

# %%
from coursekit.data import general_texts
from coursekit.evaluate import perplexity

PPL_TEXTS = general_texts("heldout", {"cpu": 200, "real-cpu": 24, "gpu": 200}[BUDGET_KEY])
ppl_full = perplexity(model, tokenizer, PPL_TEXTS)
ppl_nf4 = perplexity(qmodel, qtokenizer, PPL_TEXTS)
compute_dtype = next((m.compute_dtype for m in qmodel.modules() if isinstance(m, bnb.nn.Linear4bit)
                      and m.compute_dtype is not None), None)  # bnb_4bit_compute_dtype, as loaded
results.record(perplexity_full=ppl_full, perplexity_nf4=ppl_nf4, perplexity_texts=len(PPL_TEXTS),
               full_weight_bytes_measured=full_weight_bytes_measured, nf4_compute_dtype=str(compute_dtype))
from coursekit.models.packaged import packaged_model

packaged = packaged_model(MODEL)  # a copy stored rounded already (GGUF), not the original release
ipd.Markdown(
    f"The 4-bit layers compute in {str(compute_dtype).replace('torch.', '')}"
    + (", so the NF4 figure includes bf16 rounding too. " if compute_dtype == torch.bfloat16 else ". ")
    + f"Perplexity on {len(PPL_TEXTS)} held-out texts: **{ppl_full:.3f}** with the "
    f"unquantized weights ({full_weight_bytes_measured / 1e6:,.1f} MB), **{ppl_nf4:.3f}** in NF4 "
    f"({qlora_weight_bytes_measured / 1e6:,.1f} MB, {full_weight_bytes_measured / qlora_weight_bytes_measured:.1f}× "
    f"smaller): {100 * (ppl_nf4 / ppl_full - 1):+.1f}%. "
    + ("No measurable cost on this model: the adapters learn on top of weights that predict as well as the "
       "originals." if ppl_nf4 <= ppl_full else
       "A cost this small is why QLoRA trains on a 4-bit base: the adapters learn on top of weights that predict "
       "almost as well as the originals." if ppl_nf4 / ppl_full < 1.05 else
       "That is a visible cost: the 4-bit base predicts less well than the unquantized weights, and adapters trained on it "
       "start from there.")
    + (f" Here the \"unquantized\" weights are themselves the {packaged.gguf_file} copy, rounded once already "
       "(lesson 00), so NF4 rounds them a second time: this measures that second rounding, not what NF4 costs the "
       "original release." if packaged else ""))

# %% [markdown]
# Now train: `finetune(..., method="qlora")` runs `prepare_model_for_kbit_training` (freezes every weight and casts
# the non-quantized ones, such as norms, embeddings and the output layer, to fp32), adds LoRA on all linear layers,
# and uses `paged_adamw_8bit`. Beside it,
# LoRA on the 16/32-bit model with the same rank, data and steps.

# %%
from coursekit.data import load_task_dataset
from coursekit.train import finetune

data = load_task_dataset(size=SIZE, seed=SEED)
qlora = finetune(qmodel, qtokenizer, data["train"], data["validation"], method="qlora", test=data["test"],
                 runs_dir=RUNS_DIR, title="QLoRA", **BUDGET)
model, tokenizer = coursekit.load_base_model(MODEL, device=DEVICE)
lora = finetune(model, tokenizer, data["train"], data["validation"], method="lora", test=data["test"],
                runs_dir=RUNS_DIR, save_final=False, title="LoRA", **BUDGET)
from coursekit.bnb_cpu import dequantization_seconds
from coursekit.evaluate import rate_difference

qlora_vs_lora = rate_difference(qlora.task_metric_after, N_METRIC, lora.task_metric_after, N_METRIC)
dq_layers, dq_seconds = dequantization_seconds(qlora.model)  # all 4-bit weights once, fastest of 5
dq_train = 2 * dq_seconds * qlora.steps * BUDGET["grad_accum"]  # forward and backward, every micro-batch


def share(part, whole):  # a share under 1% keeps one decimal: 0.2%, not 0%
    return f"{part / whole:.{1 if part < 0.01 * whole else 0}%}"


extra = qlora.train_seconds - lora.train_seconds
results.record(dequantize_all_seconds=dq_seconds, dequantize_train_seconds=dq_train)
results.record(n_metric=N_METRIC, qlora_lora_verdict=qlora_vs_lora["verdict"], qlora=qlora, lora=lora)  # runs whole
ipd.Markdown(
    f"| | LoRA | QLoRA |\n|---|---|---|\n"
    f"| task metric | {lora.task_metric_after:.2f} | {qlora.task_metric_after:.2f} |\n"
    f"| peak memory ({qlora.memory_measured_as}) | {lora.peak_memory_bytes / 1e6:.0f} MB | "
    f"{qlora.peak_memory_bytes / 1e6:.0f} MB |\n"
    f"| training time | {lora.train_seconds:.1f} s | {qlora.train_seconds:.1f} s |\n"
    f"| validation loss, before → after | {lora.eval_loss[0][1]:.3f} → {lora.final_eval_loss:.3f} | "
    f"{qlora.eval_loss[0][1]:.3f} → {qlora.final_eval_loss:.3f} |\n\n"
    f"On {N_METRIC} test tickets, QLoRA and LoRA "
    + ({"tie": f"answer none exactly after {STEPS} steps: too few to compare task quality; the validation losses "
               "above show whether both learn at the same pace."} if lora.task_metric_after == 0 ==
       qlora.task_metric_after else
       {"tie": f"both answer **all {N_METRIC}** exactly: no cost of the 4-bit base shows on this many tickets (all "
              f"{N_METRIC} right is still consistent with a true rate as low as {0.025 ** (1 / N_METRIC):.0%}, the "
              "exact 95% lower bound)."} if lora.task_metric_after == 1 == qlora.task_metric_after else
       {"tie": f"**cannot be told apart** (a difference has to exceed about ±{qlora_vs_lora['margin']:.0%} to be "
              "more than chance): no cost of the 4-bit base large enough to detect on this many tickets.",
       "higher": "differ by more than chance explains, with **QLoRA ahead**.",
       "lower": "differ by more than chance explains, with **LoRA ahead**: the 4-bit base, or QLoRA's 8-bit "
                "optimizer state, cost quality here."})[
        qlora_vs_lora["verdict"]]
    + f" QLoRA took {qlora.train_seconds / lora.train_seconds:.2f}× LoRA's time (the widely quoted \"20–30% slower\" "
    "is a claim about GPUs). Each micro-batch dequantizes every 4-bit weight twice (forward, and backward for the "
    f"input's gradient); one pass over the {dq_layers} layers stored in 4 bits "
    f"takes {dq_seconds * 1e3:.2f} ms here, so {qlora.steps} steps spend about {dq_train:.2f} s dequantizing, "
    f"{share(dq_train, qlora.train_seconds)} of QLoRA's {qlora.train_seconds:.1f} s"
    + ("." if extra <= 0 else
       f", as much as the {extra:.1f} s difference or more." if dq_train >= extra else
       f": most of the {extra:.1f} s difference." if dq_train > extra / 2 else
       f": at most {share(dq_train, extra)} of the {extra:.1f} s difference. The rest is not dequantization: the "
       "runs also differ in their optimizer (8-bit paged AdamW for QLoRA) and in which came first in the process, "
       "and two timed runs differ by chance too.")
    + (f" Peak memory is *higher* for QLoRA here ({qlora.peak_memory_bytes / 1e6:.0f} against "
       f"{lora.peak_memory_bytes / 1e6:.0f} MB). On a CPU the figure is the model's weights plus what the process grew "
       "by while training: "
       "it counts bitsandbytes' dequantized copies and buffers, and also the one-off allocations (allocator arenas, "
       "thread pools) of whichever run comes first in the process, QLoRA here; it cannot tell them apart. On a model "
       "this small the 4-bit saving on the weights is smaller than either; lesson 02's estimator and the GPU report "
       "show the real-size picture."
       # "higher" only for a difference the printed MB show and process-memory noise does not explain
       if qlora.peak_memory_bytes > 1.05 * lora.peak_memory_bytes and "cuda" not in qlora.memory_measured_as
       else ""))

# %% [markdown]
# **Where the 4-bit weights are used.** A widely repeated explanation of why 4 bits cost so little quality says the
# quantized weights are only used in the forward pass. A 4-bit `Linear` computes its output with
# `bitsandbytes.matmul_4bit`; below, that call on the 4-bit weight of section 2, a backward pass through it, and the
# gradient it hands back to its input compared with the two candidate weights.

# %%
x_in = torch.randn(8, weight.shape[1], requires_grad=True)
y_out = bnb.matmul_4bit(x_in, ref_packed, quant_state=ref_state)  # what Linear4bit.forward calls
grad_out = torch.randn_like(y_out)
y_out.backward(grad_out)
w_dequantized = bnbf.dequantize_4bit(ref_packed, ref_state, quant_type="nf4")
grad_vs_dequantized = (x_in.grad - grad_out @ w_dequantized).abs().max().item()
grad_vs_original = (x_in.grad - grad_out @ weight).abs().max().item()
trained_dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in qlora.model.parameters() if p.requires_grad})
qlora_bf16 = bool(qlora.training_arguments.get("bf16"))  # the run computes in bf16 (a GPU that has it)
four_bit_trainable = any(p.requires_grad for p in qlora.model.parameters() if type(p).__name__ == "Params4bit")
results.record(backward_grad_vs_dequantized=grad_vs_dequantized, backward_grad_vs_original=grad_vs_original,
               qlora_trainable_dtypes=trained_dtypes, qlora_4bit_weights_trainable=four_bit_trainable,
               qlora_bf16=qlora_bf16)
fact_check(
    "The claim: *quantized weights are only used for the forward pass. Gradients and updates are "
    "computed at higher precision (bfloat16).*",
    f"the backward pass uses them too. bitsandbytes {bnb.__version__} dequantizes the 4-bit weight "
    f"again in `MatMul4Bit.backward` and multiplies the incoming gradient by it: the gradient handed back here "
    f"equals gradient × dequantized weight to within {grad_vs_dequantized:.1e}, and differs from gradient × "
    f"original weight by up to {grad_vs_original:.2f}. That input gradient is how the adapters of every earlier "
    "layer get theirs, so in a QLoRA step the adapters learn through the 4-bit weights of every later layer, "
    "quantization error included. What is true: no gradient is computed for the 4-bit weights themselves "
    f"(in the run above, {'some are' if four_bit_trainable else 'none is'} trainable), and what does train, the adapters, keeps its weights, "
    f"gradients and optimizer updates in {', '.join(trained_dtypes)} here ("
    + ("peft creates adapters in fp32, and TRL's `SFTTrainer` casts those of a 4-bit model to bf16, as the QLoRA "
       "paper trained them; " if trained_dtypes == ["bfloat16"] else
       "peft creates adapters in fp32; TRL's `SFTTrainer` casts those of a 4-bit model to bf16, as the QLoRA paper "
       "trained them on GPUs, and `finetune` casts them back to fp32 for a run that does not compute in bf16; ")
    + "`bnb_4bit_compute_dtype` sets the dtype of the matmuls).")

# %% [markdown]
# ### The same run, written out: the QLoRA recipe
#
# Here is the QLoRA recipe alone, as you would write it in your own project. Three things differ from LoRA (lesson
# 04): the model loads through a `BitsAndBytesConfig` (NF4, double quantization, the dtype the matmuls run in);
# `prepare_model_for_kbit_training` readies the 4-bit model for training (it freezes it and casts the non-quantized
# parameters such as norms, embeddings and the output layer to fp32; only with `use_gradient_checkpointing=True` and
# reentrant checkpointing does it also make the embeddings' output require a gradient, which that checkpointing
# needs); and the optimizer is
# `paged_adamw_8bit`. `SFTTrainer` adds the LoRA layers from `peft_config`, and on a 4-bit model makes them bf16 (the
# QLoRA paper's choice); where the run does not compute in bf16, the recipe casts them back to fp32, as `finetune`
# does. The cell runs `RECIPE_STEPS` steps; after
# it, the check that `finetune` built the same three configs for the QLoRA run above.

# %%
from datasets import Dataset
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from trl import SFTConfig, SFTTrainer

from coursekit.env import bf16_supported, resolve_device
from coursekit.models import keep_4bit_layout_on_cpu
from coursekit.train import to_prompt_completion
from coursekit.train.recipe import recipe_report

device = resolve_device(DEVICE)
bf16 = bf16_supported(device)
path = coursekit.resolve_model_path(MODEL)  # a hub id, or the local folder behind a short name such as "tiny"
bnb_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else (
                                    torch.float16 if device == "cuda" else torch.float32))
hf_tokenizer = AutoTokenizer.from_pretrained(path)
hf_model = AutoModelForCausalLM.from_pretrained(path, quantization_config=bnb_config,
                                                dtype=torch.bfloat16 if bf16 else torch.float32,
                                                device_map={"": 0 if device == "cuda" else device})
if device == "cpu":
    keep_4bit_layout_on_cpu(hf_model)  # bitsandbytes 0.50 on a CPU: see ??keep_4bit_layout_on_cpu
hf_model = prepare_model_for_kbit_training(hf_model, use_gradient_checkpointing=False)
rows = to_prompt_completion(data["train"].select(range(RECIPE_STEPS * BATCH * GRAD_ACCUM)), "train", hf_tokenizer)
peft_config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", bias="none",
                         task_type="CAUSAL_LM")
args = SFTConfig(
    output_dir=str(RUNS_DIR / "recipe"),
    max_steps=RECIPE_STEPS, per_device_train_batch_size=BATCH, gradient_accumulation_steps=GRAD_ACCUM,
    learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=0.1, weight_decay=0.01,
    optim="paged_adamw_8bit", bf16=bf16, activation_checkpointing=False, max_length=None,
    completion_only_loss=True, seed=SEED, report_to="none",
)
trainer = SFTTrainer(model=hf_model, args=args, train_dataset=Dataset.from_list(rows), processing_class=hf_tokenizer,
                     peft_config=peft_config)
if not bf16:  # SFTTrainer made a 4-bit model's adapters bf16; a run without bf16 compute would emulate them, slowly
    for param in trainer.model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
trainer.train()
trainer.save_model(args.output_dir)  # the adapter only; the 4-bit base is re-created from the hub id and bnb_config

recipe_same, recipe_text = recipe_report(
    {"SFTConfig": (args, qlora.training_arguments),
     "LoraConfig": (trainer.model.peft_config["default"], qlora.peft_config),
     "BitsAndBytesConfig": (hf_model.config.quantization_config, qlora.quantization_config)},
    expected={"max_steps": f"the recipe runs {count(RECIPE_STEPS, 'step')} to show that it works, the measured run {STEPS}"})
adapter_dtypes = {name: sorted({str(p.dtype) for p in m.parameters() if p.requires_grad})
                  for name, m in (("recipe", trainer.model), ("finetune", qlora.model))}
results.record(recipe_same_as_finetune=recipe_same, recipe_steps=trainer.state.global_step,
               recipe_adapter_dtypes=adapter_dtypes)
del hf_model, trainer
ipd.Markdown(recipe_text)

# %% [markdown]
# ## 6. Merging an adapter into a 4-bit model
#
# A LoRA update merges into a 16-bit weight with one addition (lesson 04). A 4-bit weight is packed codes plus
# constants: to merge, you dequantize, add, and then either **re-quantize** (rounding to the NF4 levels again: the
# part of the update that is small against the gap between neighbouring levels is rounded away) or **keep the merged
# weight in 16/32 bits**. `four_bit_merge_report` measures how much of this run's update re-quantizing loses;
# `dequantize_and_merge` does the second.

# %%
from coursekit.evaluate import merge_logit_gap
from coursekit.scratch import dequantize_and_merge, four_bit_merge_report

trained = qlora.model
layer = trained.base_model.model.model.layers[0].self_attn.q_proj
print("4-bit weight:", layer.get_base_layer().weight.dtype, tuple(layer.get_base_layer().weight.shape),
      " LoRA update:", tuple(layer.get_delta_weight("default").shape))
report = four_bit_merge_report(trained)
report

# %%
# no dropout (eval mode); coursekit keeps the 4-bit layers' standard layout on a CPU (see keep_4bit_layout_on_cpu).
# Logits of the unmerged QLoRA model, then of the dequantized-and-merged one, on four test prompts (lesson 04's check).
gap = merge_logit_gap(trained, dequantize_and_merge, qtokenizer, [data["test"][i]["instruction"] for i in range(4)])
merged, dequant_merge_max_abs_diff, logit_scale = gap.merged, gap.max_abs_diff, gap.logit_scale
results.record(merge_relative_error_requantized=report.relative_error,
               dequant_merge_max_abs_diff=dequant_merge_max_abs_diff,
               dequant_merge_relative_diff=dequant_merge_max_abs_diff / logit_scale)
ipd.Markdown(("Re-quantizing after the merge loses most of the update" if report.relative_error > 0.5 else
              "Re-quantizing after the merge keeps most of the update here")
             + f": the rounding error is {report.relative_error:.2f}× the update itself. Dequantize-then-merge keeps it: the merged 16/32-bit model's logits differ from the "
             f"unmerged QLoRA model's by at most {dequant_merge_max_abs_diff:.1e} (logits reach {logit_scale:.1f}; the "
             "unmerged model computes in the 4-bit layers' compute dtype).")

# %% [markdown]
# ## Try it
#
# * In section 2, pass `blocksize=256` to `quantize_nf4` and `dequantize_nf4` (and to bitsandbytes' `quantize_4bit`
#   for its byte-for-byte check) and watch the error grow; in section 3, give `single_quant_overhead_bits` 32 and
#   watch the overhead grow.
# * Set `MODEL` to a real model on a GPU with `SIZE = "gpu"`: the same cells run; section 5 then shows real memory.

# %%
import coursekit.exercises

for exercise_id in ("05.absmax_block", "05.double_quant_bits", "05.nf4_weights_gb", "05.adapter_precision"):
    coursekit.exercises.get(exercise_id).show()
# e.g. coursekit.exercises.check("05.double_quant_bits", 0.127)

# %%
import coursekit.quiz

coursekit.quiz.quiz_widget("05")
