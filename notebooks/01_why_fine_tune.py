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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fine-tuning-course/fine-tuning-llms/blob/main/notebooks/01_why_fine_tune.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fine-tuning-course/fine-tuning-llms/main?urlpath=lab/tree/notebooks/01_why_fine_tune.ipynb)
#
# # 01 · Why fine-tune? Prompting first, measured
#
# Fine-tuning costs data, compute and maintenance. Prompting a model with a few examples, or retrieving relevant
# documents into the prompt (RAG), costs almost nothing to try. So the honest question is not "how do I fine-tune?"
# but **"is a fine-tuned model better than just prompting the base model, and by how much?"** This lesson answers it
# with measurements on the course's task, after laying out when fine-tuning is worth it and a decision framework you
# can click through.

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
import torch

import coursekit
import coursekit.exercises
import coursekit.quiz
from coursekit.data import house_rules, load_task_dataset, uses_chat_template
from coursekit.evaluate import ANSWER_TOKENS, TIMING_NOISE
from coursekit.notebook import fact_check
from coursekit.prompting import compare_prompting, measure_prompts
from coursekit.recommend import NOT_TO_FINE_TUNE, SCENARIOS, recommend_method
from coursekit.train import finetune
from coursekit.widgets.decision import decision_widget
from coursekit.units import gib_text

results = coursekit.Results(RESULTS_PATH, notebook="01_why_fine_tune", model=MODEL)
torch.manual_seed(SEED)
# Budgets belong to the model as well as to the machine: "cpu" is the embedded model, "real-cpu" a real pretrained
# model on a CPU (SmolLM2-135M-Instruct trains at a few hundred tokens per second there), "gpu" real size.
BUDGET = coursekit.budget_key(MODEL, SIZE)
N_EVAL = {"cpu": 24, "real-cpu": 64, "gpu": 300}[BUDGET]  # test examples scored per strategy
LATENCY_N = {"cpu": 4, "real-cpu": 4, "gpu": 16}[BUDGET]  # answers timed one at a time per strategy
# Examples in the prompt. On a CPU with the real model, reading long prompts dominates the time: there the lesson
# measures zero-shot (with the rules) and retrieval, the few-shot prompt with the most similar examples.
KS = {"cpu": (0, 1, 2, 4, 8), "real-cpu": (0,), "gpu": (0, 1, 2, 4, 8)}[BUDGET]
# New tokens per answer: room for the longest reference answer and its end token (checked below), so a model that
# rambles is cut there (real-cpu: 64, enough for the real tokenizer's longest answer, and CPU time is short).
NEW_TOKENS = {"cpu": ANSWER_TOKENS, "real-cpu": 64, "gpu": ANSWER_TOKENS}[BUDGET]
# examples retrieved per ticket (3 keeps a retrieval prompt near the length of a 2- to 4-shot prompt)
RETRIEVAL_K = {"cpu": 3, "real-cpu": 2, "gpu": 3}[BUDGET]
FT_METHOD = "lora"  # the short fine-tune: "lora" (lesson 04) or "full" (lesson 03)
FT = {"cpu": dict(max_steps=100, batch_size=8, learning_rate=5e-3, eval_size=64),
      "real-cpu": dict(max_steps=40, batch_size=8, learning_rate=1e-3, eval_size=8),
      "gpu": dict(max_steps=600, batch_size=16, learning_rate=2e-4, eval_size=64)}[BUDGET]
RUNS_DIR = Path(tempfile.mkdtemp(prefix="lesson01-"))

# %% [markdown]
# ## 1. Six cases where fine-tuning wins
#
# Prompting and retrieval change what the model *sees*; fine-tuning changes what the model *is*. That difference
# matters in six situations:

# %%
ipd.display(ipd.Markdown("\n".join(
    f"**{i}. {s['title']}.** {s['problem']} *Prompting/RAG falls short:* {s['why_not_prompting']} "
    f"*Fine-tuning:* {s['why_fine_tuning']}\n" for i, s in enumerate(SCENARIOS, 1))))

# %% [markdown]
# ### …and when not to fine-tune
#
# Fine-tuning is the wrong tool in these cases, whatever the hype:

# %%
ipd.display(ipd.Markdown("\n".join(f"- **{n['when'].capitalize()}** → {n['instead']}." for n in NOT_TO_FINE_TUNE)))

# %%
ex = coursekit.exercises.get("01.which_approach")
ex.show()
# ex.check("?")   # your answer: a, b, c or d

# %%
ex = coursekit.exercises.get("01.not_to_fine_tune")
ex.show()
# ex.check("?")

# %% [markdown]
# ## 2. The decision framework, interactive
#
# The framework asks, in order: can a few examples in the prompt do it? Is it about external knowledge? Do you have
# enough data (1,000+ good examples is the usual rule of thumb for fine-tuning, and under 500 the usual advice is not to
# fine-tune yet)? Is it behaviour — style, format, specialised
# reasoning — rather than facts? Have you truly exhausted prompting? Only then: which method. For that last question
# the widget does not use a rule of thumb: it asks the memory estimator of lesson 02 what full fine-tuning, LoRA and
# QLoRA of your model need and whether that fits your GPU.
#
# Answer the questions on the left; the recommendation and its reasons update on the right.

# %%
widget = decision_widget(num_examples=10_000, goal="style", model="llama-3.1-8b", gpu="A100 80GB")
widget

# %% [markdown]
# The same logic is a plain function, `coursekit.recommend_method`, so you can script it and test it. Here is the
# planning scenario of the course: a customer-support assistant, 10,000 ticket/reply pairs, one A100 80GB, an 8B
# model, and a team that wants the best quality it can get.

# %%
plan = recommend_method(num_examples=10_000, goal="style", prompting_exhausted=True, max_quality=True,
                        model="llama-3.1-8b", gpu="A100 80GB")
print(plan.summary())
_ = results.record(plan_approach=plan.approach, plan_method=plan.method,
                   plan_memory_bytes=plan.memory_bytes, plan_fits=plan.fits)

# %%
fact_check(
    "A widely repeated decision framework says *\"need 99% accuracy, have A100 GPUs → full fine-tuning\"*.",
    f"on one A100 80GB, full fine-tuning of Llama-3.1-8B (fp32 master weights, bf16 autocast, torch's AdamW, "
    f"batch 1 × 512 tokens, gradient checkpointing: the `amp-bf16` recipe, one of those lesson 02 prices) needs an "
    f"estimated **{gib_text(plan.memory_bytes['full'])}**: it does "
    f"{'' if plan.fits['full'] else 'not '}fit"
    + ("" if plan.fits["full"] else " on one; sharded over several A100s (FSDP or DeepSpeed ZeRO-3 split the "
       "weights, gradients and optimizer state between them) it can, which is the claim's setting")
    + f". For one GPU the estimator recommends **{plan.method}** ({gib_text(plan.memory_bytes[plan.method])}). "
    "The *99% accuracy* half is about the task and the data, which no memory estimate decides.")

# %% [markdown]
# ## 3. Measure it: prompting the base model vs a short fine-tune
#
# Now the question this lesson is about, measured on `MODEL` and the course's support task: a ticket
# comes in, the answer is a JSON triage line plus a reply in the house style, scored exactly (every field right).
#
# We try, on the same held-out test tickets:
#
# * **zero-shot** — the instruction and the ticket, nothing else;
# * **few-shot** with k solved training examples in front of every ticket, for each k in `KS` (the cell below prints
#   the k measured: on a CPU with a real model, reading long prompts takes too long and `KS` holds zero-shot only);
# * **retrieval** — for each ticket, the `RETRIEVAL_K` most similar training tickets (TF-IDF over words, a
#   miniature RAG);
# * **a short fine-tune** — the plain prompt (instruction and ticket), on a model trained for `FT["max_steps"]` steps.
#
# For an instruct model (one whose tokenizer has a chat template, such as `MODEL = "smollm2-135m-instruct"`) every
# prompt goes through that template, few-shot examples become earlier user/assistant turns, and every prompting
# strategy also gets a fair instruction in the system message: what a practitioner would write down (the JSON
# fields, their allowed values, the house style with the sentence for each intent). The fine-tuned model gets none
# of it: it has to have learned the rules. For each strategy: the task metric, the mean prompt length in tokens, and
# the latency per answer (one request at a time, greedy decoding).

# %%
data = load_task_dataset(size=SIZE, seed=SEED)
test = data["test"].select(range(N_EVAL)).to_list()
pool = data["train"].to_list()
model, tokenizer = coursekit.load_base_model(MODEL, device=DEVICE)
CHAT = uses_chat_template(tokenizer)
SYSTEM = house_rules() if CHAT else None  # the fair instruction, for an instruct model
if SYSTEM:
    print("System message of every prompting strategy:\n\n" + SYSTEM + "\n")
print(f"measured: zero-shot{', few-shot k = ' + ', '.join(str(k) for k in KS if k) if any(KS) else ''}, retrieval "
      f"with {RETRIEVAL_K} examples, and a {FT['max_steps']}-step {FT_METHOD} fine-tune, on {N_EVAL} test tickets")
longest_answer = max(len(tokenizer(e["output"], add_special_tokens=False)["input_ids"]) for e in test)
assert longest_answer < NEW_TOKENS, f"answers need {longest_answer + 1} new tokens; raise NEW_TOKENS"
comparison = compare_prompting(model, tokenizer, test, pool, ks=KS, retrieval_k=RETRIEVAL_K, seed=SEED,
                               latency_examples=LATENCY_N, system=SYSTEM, max_new_tokens=NEW_TOKENS)
print(comparison.table())

# %% [markdown]
# Look at one few-shot prompt and what the base model made of it:

# %%
from coursekit.evaluate import generate
from coursekit.prompting import few_shot_prompts, retrieval_prompts

shown_ks = [k for k in KS if k > 0]
if shown_ks:  # a few-shot prompt with random examples
    prompt = few_shot_prompts(test[:1], pool, min(shown_ks), seed=SEED, tokenizer=tokenizer, system=SYSTEM)[0]
else:  # the retrieval prompt: the most similar training tickets as examples
    prompt = retrieval_prompts(test[:1], pool, RETRIEVAL_K, tokenizer=tokenizer, system=SYSTEM)[0]
print(prompt + "⟨model⟩" + generate(model, tokenizer, [prompt], max_new_tokens=NEW_TOKENS)[0])
print("\nreference:\n" + test[0]["output"])

# %% [markdown]
# Now a short LoRA fine-tune (lesson 04) on the training split, then the same measurement with the plain prompt (no
# examples, no rules). The adapter is merged into the weights for serving, so the fine-tuned model has the base
# model's architecture and cost per token; what each answer costs also depends on how long it runs (section 4). Set `FT_METHOD = "full"` to compare with full fine-tuning (lesson 03); lesson 06 puts every
# method on the same budget. With the defaults (the embedded model, `SIZE = "cpu"`) this is exactly lesson 04's first
# LoRA run (same model, data, settings and seed): with `REUSE_RUNS = True` the run is kept in the run cache
# (`coursekit.train.reuse`), and lesson 04 loads it instead of training it again.

# %%
ft = finetune(model, tokenizer, data["train"], data["validation"], method=FT_METHOD, test=test, seed=SEED,
              device=DEVICE, runs_dir=RUNS_DIR, measure_general=False, measure_before=False, measure_task=False,
              save_final=False, reuse=REUSE_RUNS, title=f"{FT_METHOD} fine-tuning for lesson 01", **FT)
tuned = ft.model.merge_and_unload() if hasattr(ft.model, "merge_and_unload") else ft.model
finetuned = comparison.add(measure_prompts(tuned, tokenizer, test, strategy=f"fine-tuned ({FT_METHOD})", k=0,
                                           latency_examples=LATENCY_N, max_new_tokens=NEW_TOKENS))
print(comparison.table())
print(f"\n{FT_METHOD}: {ft.steps} steps of {ft.batch_size} examples, {ft.train_seconds:.0f} s of training")

# %%
fig = comparison.plot()
fig

# %%
few = {k: comparison.row("zero-shot" if k == 0 else "few-shot", k) for k in KS}
retrieval = comparison.row("retrieval")
fitting = [r for r in [*few.values(), retrieval] if r.fits_context]
best_prompt = max(fitting, key=lambda r: r.task_metric)
_ = results.record(
    fewshot_task_metric={k: r.task_metric for k, r in few.items()},
    fewshot_fits_context={k: r.fits_context for k, r in few.items()},
    retrieval_task_metric=retrieval.task_metric,
    finetuned_task_metric=finetuned.task_metric,
    fewshot_prompt_tokens={k: r.prompt_tokens_mean for k, r in few.items()},
    retrieval_prompt_tokens=retrieval.prompt_tokens_mean,
    finetuned_prompt_tokens=finetuned.prompt_tokens_mean,
    fewshot_latency_seconds={k: r.seconds_per_answer for k, r in few.items()},
    retrieval_latency_seconds=retrieval.seconds_per_answer,
    finetuned_latency_seconds=finetuned.seconds_per_answer,
    best_prompting_strategy=f"{best_prompt.strategy} k={best_prompt.k}",
    best_prompting_task_metric=best_prompt.task_metric,
    ft_method=FT_METHOD, ft_steps=ft.steps, ft_train_seconds=ft.train_seconds, n_eval=len(test),
    finetuned_fields=finetuned.fields, zero_shot_fields=few[0].fields, answer_tokens=NEW_TOKENS,
    longest_answer_tokens=longest_answer,
    context_tokens=model.config.max_position_embeddings, chat_template=CHAT, system_rules=bool(SYSTEM),
    ks=list(KS), base_fields={k: r.fields for k, r in few.items() if r.fits_context},
    best_prompting_fields=best_prompt.fields,
)

# %%
gain = finetuned.task_metric - best_prompt.task_metric
too_long = [k for k, r in few.items() if not r.fits_context]
all_prompts_equal = len({r.task_metric for r in fitting}) == 1
ipd.display(ipd.Markdown(
    "**What the measurement says.** "
    + (f"Every prompting strategy that fits the context gets {best_prompt.task_metric:.0%} of the {len(test)} test tickets exactly right. "
       if all_prompts_equal else
       f"The best prompting strategy, *{best_prompt.strategy}* with k = {best_prompt.k}, gets "
       f"{best_prompt.task_metric:.0%} of the {len(test)} test tickets exactly right; the base model zero-shot gets "
       f"{few[0].task_metric:.0%}. ")
    + f"A {ft.steps}-step {FT_METHOD} fine-tune "
    f"(reading {ft.train_examples:,} of the {len(pool):,} training examples, {ft.train_seconds:.0f} s on this "
    f"machine) gets {finetuned.task_metric:.0%} with the zero-shot prompt: "
    f"{'+' if gain >= 0 else ''}{gain * 100:.0f} points against the best prompt."
    + (f" Retrieval put the {RETRIEVAL_K} training tickets most similar in wording into the prompt and scored "
       f"{retrieval.task_metric:.0%}."
       if retrieval.fits_context else "")
    + (f" With k = {', '.join(map(str, too_long))} the prompt (about "
       f"{few[too_long[0]].prompt_tokens_mean:,.0f} tokens and more) plus the answer does not fit the model's "
       f"context of {model.config.max_position_embeddings:,} tokens at all: a hard limit of few-shot prompting that "
       "a fine-tuned model does not have." if too_long else "")))

# %%
from coursekit.evaluate import rate_difference
from coursekit.models import pretraining_seq_len

PRETRAINED_SEQ_LEN = pretraining_seq_len(MODEL)  # the embedded model's recipe; None for a real model
verdict = rate_difference(finetuned.task_metric, len(test), best_prompt.task_metric, len(test))
n_parameters = sum(p.numel() for p in model.parameters())
FIELDS = ("json_valid", "intent", "order", "priority", "reply")
_ = results.record(finetune_vs_best_prompt=verdict, n_parameters=n_parameters)
table = ["| field | zero-shot | best prompt | fine-tuned |", "|---|---|---|---|"]
table += [f"| {f} | {few[0].fields[f]:.0%} | {best_prompt.fields[f]:.0%} | {finetuned.fields[f]:.0%} |"
          for f in FIELDS]
outcome = {"higher": "beats the best prompt by more than chance explains",
           "tie": "cannot be told apart from the best prompt",
           "lower": "is behind the best prompt by more than chance explains"}[verdict["verdict"]]
weakest = min(FIELDS, key=lambda f: best_prompt.fields[f])
field_rates = {best_prompt.fields[f] for f in FIELDS}
ipd.display(ipd.Markdown(
    "\n".join(table) + "\n\n"
    f"On {len(test)} tickets a difference in exact-match rate smaller than about ±{verdict['margin']:.0%} (1.96 "
    f"standard errors of an unpaired two-proportion test, plus half a ticket of continuity correction; both models answered the same tickets and the best prompt "
    f"was picked on them, so read it as a rough guide) is within chance, so the fine-tune **{outcome}** "
    f"({finetuned.task_metric:.0%} vs {best_prompt.task_metric:.0%}). "
    + (f"Field by field, the best prompt does worst on **{weakest}** ({best_prompt.fields[weakest]:.0%} right)."
       if len(field_rates) > 1 else
       f"Field by field, the best prompt gets {best_prompt.fields[weakest]:.0%} of every field right.")
    + (f" This is a real instruct model of {n_parameters / 1e6:,.0f}M parameters, prompted with its chat template "
       "and the rules written out, so the comparison is fair to prompting. How another model, or a longer "
       "fine-tune, compares is what this same measurement tells you." if CHAT else
       f" A caveat that matters here: this model has {n_parameters / 1e6:,.1f}M parameters, was pretrained on "
       f"{PRETRAINED_SEQ_LEN}-token sequences (the few-shot prompts of k = "
       f"{', '.join(str(k) for k in KS if few[k].prompt_tokens_mean > (PRETRAINED_SEQ_LEN or 0)) or 'none'} are "
       "longer on average: positions it never saw in pretraining) and saw only a few instruction-format examples in pretraining, never "
       "the triage format, so it has little in-context learning ability: prompting is at a disadvantage. Run this notebook with `MODEL = \"smollm2-135m-instruct\"` (a real "
       "instruct model, offline) to see the comparison on a model that can follow an instruction.")))

# %% [markdown]
# **Format problems have a cheaper first fix: constrained decoding.** When what goes wrong is the *shape* of the
# answer (invalid JSON, a value outside the allowed set), generation can be constrained to a grammar or a JSON
# schema, so that the model can only write valid output: llama.cpp's GBNF grammars, and structured-output options of
# vLLM, TGI and OpenAI-compatible servers, or the `outlines` library, do this. It guarantees valid JSON with allowed
# values; it cannot make the model choose the *right* intent, copy the right order number, or write the house
# reply, because those are about content. Read the field table above with two rules of the scorer in mind: an answer
# whose JSON does not parse scores zero on intent, order and priority too, and the reply is read from the answer's
# second line, so an answer that skips the JSON line (or writes the reply first) scores zero on the reply as well. So
# the JSON column caps the three triage columns and, through the line order, the reply's; constrained decoding would
# lift that cap, and how much it would then fix depends on whether the content written inside the JSON is right,
# which the table cannot show for answers that never parsed.

# %% [markdown]
# ## 4. "3× faster, 5× cheaper"? Check the cost and latency claims
#
# A widely repeated claim prices RAG at *"500 ms retrieval + 1000 tokens"* and a fine-tuned model at *"0 ms
# retrieval + 200 tokens"*, hence *"3× faster, 5× cheaper"*. Those are made-up inputs, not a measurement. Here is what ours
# shows, on prompt tokens (what an API bills per request) and latency per answer, for the longest prompt in `KS`
# that fits the context (with the rules in it, for an instruct model) and for retrieval:

# %%
import time

from coursekit.prompting import TfidfRetriever, query_text

# Retrieval's latency is its search plus the answer: the search (a word-count index over the training pool) is
# timed here, over every test ticket, and added to the answer's time measured above.
retriever = TfidfRetriever([query_text(p) for p in pool])
t0 = time.perf_counter()
for e in test:
    retriever.top_k(query_text(e), RETRIEVAL_K)
retrieval_ms = (time.perf_counter() - t0) / len(test) * 1000
retrieval_seconds = retrieval.seconds_per_answer + retrieval_ms / 1000 if retrieval.fits_context else None
K_MAX = max(k for k, r in few.items() if r.fits_context)
K_LABEL = f"{K_MAX}-shot prompt" if K_MAX else ("zero-shot prompt with the rules" if SYSTEM else "zero-shot prompt")
token_ratio_k = few[K_MAX].prompt_tokens_mean / finetuned.prompt_tokens_mean
token_ratio_rag = retrieval.prompt_tokens_mean / finetuned.prompt_tokens_mean
latency_ratio_k = few[K_MAX].seconds_per_answer / finetuned.seconds_per_answer
latency_ratio_rag = retrieval_seconds / finetuned.seconds_per_answer if retrieval_seconds else None
_ = results.record(token_ratio_fewshot_max=token_ratio_k, fewshot_k_max_fitting=K_MAX,
                   token_ratio_retrieval=token_ratio_rag, latency_ratio_fewshot_max=latency_ratio_k,
                   latency_ratio_retrieval=latency_ratio_rag)


def _ms(seconds):
    return "—" if seconds is None else f"{seconds * 1000:,.0f} ms"


ipd.display(ipd.Markdown(
    f"| versus the fine-tuned model | prompt tokens | latency per answer |\n|---|---|---|\n"
    f"| {K_LABEL} | {few[K_MAX].prompt_tokens_mean:,.0f} vs {finetuned.prompt_tokens_mean:,.0f} "
    f"(**{token_ratio_k:.1f}×**) | {_ms(few[K_MAX].seconds_per_answer)} vs "
    f"{_ms(finetuned.seconds_per_answer)} (**{latency_ratio_k:.1f}×**) |\n"
    f"| retrieval, {RETRIEVAL_K} examples | {retrieval.prompt_tokens_mean:,.0f} vs "
    f"{finetuned.prompt_tokens_mean:,.0f} (**{token_ratio_rag:.1f}×**) | {_ms(retrieval_seconds)} with its search vs "
    f"{_ms(finetuned.seconds_per_answer)}"
    + (f" (**{latency_ratio_rag:.1f}×**) |" if latency_ratio_rag else " |")))

# %%
# The same (fine-tuned) weights, the same number of new tokens: what the longer prompt alone costs per answer
from coursekit.comparison import measure_latency
from coursekit.prompting import few_shot_prompts as _k_shot

long_prompts = _k_shot(test[:LATENCY_N], pool, K_MAX, seed=SEED, tokenizer=tokenizer, system=SYSTEM)
short_prompts = _k_shot(test[:LATENCY_N], pool, 0, seed=SEED, tokenizer=tokenizer)  # what the fine-tuned model reads
prompt_cost_ratio = (measure_latency(tuned, tokenizer, long_prompts, NEW_TOKENS)
                     / measure_latency(tuned, tokenizer, short_prompts, NEW_TOKENS))
CLAIM = dict(rag_tokens=1000, finetuned_tokens=200, rag_retrieval_ms=500)  # the claim's own inputs
cheaper = token_ratio_k > 1 and token_ratio_rag > 1  # fewer prompt tokens than both prompting strategies
ratios = [(name, r) for name, r in (("retrieval", latency_ratio_rag), (f"the {K_LABEL}", latency_ratio_k))
          if r is not None]
below_one = [(name, r) for name, r in ratios if r < 1 - TIMING_NOISE]  # answered faster than the fine-tuned model


def faster_text(ratio):
    return (f"holds ({ratio:.2f}×)" if ratio > 1 + TIMING_NOISE else
            f"does not hold, the fine-tuned model was slower ({ratio:.2f}×)" if ratio < 1 - TIMING_NOISE else
            f"does not hold, the two are about equal ({ratio:.2f}×)")


claim_reading = (
    "So, for this task: *cheaper* (fewer prompt tokens) "
    + ("holds: the fine-tuned model needs neither the rules nor examples in its prompt" if cheaper else
       "does not hold here")
    + "; *faster* per answer, as measured, "
    + "; ".join(f"against {name} {faster_text(r)}" for name, r in ratios)
    + (f" (at equal answer length the {K_LABEL} takes {prompt_cost_ratio:.1f}× the time)"
       if latency_ratio_k <= 1 + TIMING_NOISE < prompt_cost_ratio else "")
    + ". The size of any win is whatever *your* prompts, model and hardware measure: measure it the way this "
    "lesson does.")
claim_token_ratio = CLAIM["rag_tokens"] / CLAIM["finetuned_tokens"]
answers_k, answers_ft = few[K_MAX].answer_tokens_mean, finetuned.answer_tokens_mean  # the timed answers' length
answer_length_reading = (
    f"here the answers timed with the {K_LABEL} average {answers_k:.0f} tokens against the fine-tuned model's "
    f"{answers_ft:.0f}: " + ("answers that stop short of the fine-tuned model's make prompting look faster than a "
                             "complete answer would" if answers_k < 0.9 * answers_ft else
                             "the longer answers add to its latency" if answers_k > 1.1 * answers_ft else
                             "about the same length, so the gap is the prompt's"))
_ = results.record(retrieval_ms_per_query=retrieval_ms, claim_token_ratio=claim_token_ratio,
                   latency_ratio_same_answer_length=prompt_cost_ratio, answer_tokens_fewshot_max=answers_k,
                   answer_tokens_finetuned=answers_ft)
ipd.display(ipd.Markdown(
    f"**Fact check, with the caveats stated.** The claim's *\"5× cheaper\"* is its own made-up inputs divided: "
    f"{CLAIM['rag_tokens']:,} / {CLAIM['finetuned_tokens']:,} tokens = {claim_token_ratio:.0f}×; its "
    f"*\"3× faster\"* follows from nothing it states (it gives no generation speed). Measured here instead: "
    f"retrieval prompts are **{token_ratio_rag:.1f}×** the fine-tuned model's prompt tokens and the "
    f"{K_LABEL} **{token_ratio_k:.1f}×**; per answer ({LATENCY_N} answers timed one at a time per strategy), "
    + (f"retrieval takes **{latency_ratio_rag:.2f}×** and " if latency_ratio_rag else "")
    + f"the {K_LABEL} **{latency_ratio_k:.2f}×** the fine-tuned model's time"
    + (f" — *less* than 1 for {' and '.join(name for name, r in below_one)}: latency here mixes prompt length "
       "with how long each answer runs (see the caveats below)" if below_one else "")
    + f" (ratios within {TIMING_NOISE:.0%} of 1 are read as equal: timings of so few answers move that much)"
    + f". With the answer length held equal ({NEW_TOKENS} new tokens, same weights), the {K_LABEL} "
    f"alone takes **{prompt_cost_ratio:.1f}×** the time per answer of the fine-tuned model's own prompt (no rules, "
    "no examples). Caveats:\n\n"
    f"* *Cost* scales with tokens when you pay per token: the ratios above are what this task's prompts cost"
    + (", and they grow with k" if K_MAX > 0 else "") + f". They leave out the one-off cost of fine-tuning ({ft.train_seconds:.0f} s here, minutes to hours on a "
    f"GPU for a real model) and of hosting your own model.\n"
    f"* *Latency* here is a {n_parameters / 1e6:,.1f}M-parameter model on this machine. Each answer is generated until the model stops "
    f"(at most {NEW_TOKENS} tokens), so latency mixes prompt length with answer length: {answer_length_reading}. "
    f"On a GPU with a large model, reading a long prompt is cheap per token compared with "
    f"generating, so the latency gap is usually *smaller* than the token gap; here, at equal answer length, it "
    f"is {prompt_cost_ratio:.1f}× against a token gap of {token_ratio_k:.1f}×.\n"
    f"* Our retrieval step is a word-count search in memory: **{retrieval_ms:.1f} ms** per ticket over "
    f"{len(pool):,} examples. The claim's \"{CLAIM['rag_retrieval_ms']} ms\" for a vector database is an "
    f"assumption about someone's infrastructure, not a property of RAG.\n"
    f"* The fine-tuned model still needs retrieval if facts change (see the hybrid in the framework above).\n\n"
    + claim_reading))

# %% [markdown]
# ## 5. Try it
#
# * Change `KS` to `(0, 16)`: what happens to prompt tokens, and does the embedded model's 1,024-token context hold?
# * Retrieval with 1 example (`RETRIEVAL_K = 1`) vs 3: is the nearest example enough?
# * Halve `FT["max_steps"]`, then double it: how much training does it take before fine-tuning beats the best
#   prompt? Which field of the answer (`finetuned.fields`) does LoRA get right first, and which one last?
# * `FT_METHOD = "full"` with a learning rate fit for full fine-tuning (lesson 03's gentle rate: 1e-3 on the embedded
#   model, 5e-5 on the real one): does full fine-tuning learn the task in fewer steps?

# %%
ex = coursekit.exercises.get("01.sweep_cost")
ex.show()
# ex.check(0.0)   # your answer in US dollars

# %%
coursekit.quiz.quiz_widget("01")
