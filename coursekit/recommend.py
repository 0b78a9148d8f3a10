"""Should you fine-tune, and with which method? The decision framework of lesson 01 as data plus one function.

The framework asks six questions in order (can a few examples in the prompt do it? is it about external
knowledge? enough data? is it behaviour rather than facts? is prompting exhausted? which method?) and stops at the
first answer that rules fine-tuning out. The last question, which method, is not a rule of thumb: it asks the
memory estimator (``coursekit.memory.estimate_memory``, through ``hardware_fit``) what full fine-tuning, LoRA and
QLoRA of the chosen architecture need and whether that fits the GPU.

    rec = coursekit.recommend_method(num_examples=10_000, goal="format", model="llama-3.1-8b", gpu="RTX 4090")
    rec.approach, rec.method      # ('fine-tune', 'lora')
    print(rec.summary())          # the recommendation and every reason, with the memory figures

The same data (``QUESTIONS``, ``GOALS``, ``SCENARIOS``, ``NOT_TO_FINE_TUNE``) drives the interactive widget in
``coursekit.widgets.decision``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from coursekit._results import ResultMixin

GB, GIB = 1e9, 2**30  # estimates are compared with GPUs in bytes and shown in GiB, as GPU memory is reported

# ------------------------------------------------------------------------------------------------ the framework as data

#: What the model must learn. The first six are the scenarios where fine-tuning wins; the last two are not.
GOALS: dict[str, str] = {
    "style": "a consistent voice or tone across every answer",
    "domain": "domain-specific behaviour or reasoning (medical, legal, scientific)",
    "latency_cost": "cheaper, faster requests: no long example-filled prompts, no retrieval step",
    "format": "a strict output format (JSON, code) every single time",
    "specialization": "one narrow task, done by a small model as well as a big one",
    "privacy": "a model you run yourself because the data may not leave your servers",
    "facts": "answers drawn from facts or documents",
    "general": "many unrelated tasks (a generalist assistant)",
}
FINE_TUNE_GOALS = ("style", "domain", "latency_cost", "format", "specialization", "privacy")

#: The six scenarios where fine-tuning beats prompting and retrieval (lesson 01 shows them as cards).
SCENARIOS: list[dict] = [
    {"goal": "style", "title": "Style and tone",
     "problem": "Every reply must sound like your company.",
     "why_not_prompting": "Retrieval brings facts, not a voice; a handful of examples cannot cover every situation.",
     "why_fine_tuning": "Thousands of past replies teach the voice itself."},
    {"goal": "domain", "title": "Domain behaviour",
     "problem": "The task needs a field's own reasoning patterns and vocabulary.",
     "why_not_prompting": "Retrieved documents still have to be reasoned about with expertise the model lacks.",
     "why_fine_tuning": "Case after case, the model picks up how the field decides."},
    {"goal": "latency_cost", "title": "Latency and cost",
     "problem": "Long prompts and a retrieval step make every request slower and dearer.",
     "why_not_prompting": "Few-shot examples ride along with every request; retrieval adds a search before it.",
     "why_fine_tuning": "What the examples showed moves into the weights, so the prompt shrinks (lesson 01 measures "
                        "by how much on the support task)."},
    {"goal": "format", "title": "Output format",
     "problem": "The answer must follow a structure exactly, every time.",
     "why_not_prompting": "Shown examples are followed loosely; edge cases break the format.",
     "why_fine_tuning": "Thousands of correctly formatted answers make the format the model's habit."},
    {"goal": "specialization", "title": "Narrow specialisation",
     "problem": "One narrow task at high volume.",
     "why_not_prompting": "A large generalist is expensive to call and still not a specialist.",
     "why_fine_tuning": "A small model trained on the task can match a much larger prompted one, at a fraction of "
                        "the serving cost."},
    {"goal": "privacy", "title": "Privacy and compliance",
     "problem": "The data may not be sent to an outside API.",
     "why_not_prompting": "Hosted models mean sending the data away.",
     "why_fine_tuning": "You train and serve an open model on your own hardware; nothing leaves."},
]

#: When fine-tuning is the wrong tool: the flag that signals it, and what to do instead.
NOT_TO_FINE_TUNE: list[dict] = [
    {"when": "fewer than 500 good examples", "instead": "few-shot prompting; collect and label more data"},
    {"when": "knowledge that changes daily or weekly", "instead": "retrieval (RAG): re-index, do not retrain"},
    {"when": "many unrelated tasks", "instead": "a general model and good prompts"},
    {"when": "no clear success metric", "instead": "build an evaluation set first: without it you cannot tell "
                                                   "whether fine-tuning helped"},
    {"when": "tight budget or deadline", "instead": "prompting and retrieval reach users sooner"},
    {"when": "mostly factual question answering", "instead": "retrieval: fine-tuning is poor at storing facts"},
]

#: Common thresholds, stated as rules of thumb (not measured): 1,000+ examples to fine-tune, under 500 never.
MIN_EXAMPLES = 1000
TOO_FEW_EXAMPLES = 500


@dataclass(frozen=True)
class Question:
    key: str  # the keyword argument of recommend_method
    text: str
    kind: str  # "bool", "int" or "choice"
    default: object
    choices: tuple = ()
    help: str = ""


def _gpu_names() -> tuple:
    from coursekit.memory.hardware import GPUS

    return tuple(GPUS)


def _model_names() -> tuple:
    from coursekit.archs import PRESETS

    return tuple(PRESETS)


#: The questions in the order the framework asks them (the widget renders these).
QUESTIONS: tuple = (
    Question("few_shot_works", "Can 2-10 examples in the prompt show the model how to do it?", "bool", False,
             help="Try it and measure it before answering yes or no (lesson 01 does, on the support task)."),
    Question("needs_external_knowledge", "Is the task mainly about looking things up in documents or facts?",
             "bool", False),
    Question("knowledge_changes_often", "Does that knowledge change daily or weekly?", "bool", False),
    Question("num_examples", "How many good training examples (input and ideal answer) do you have?", "int", 0),
    Question("goal", "What must change in the model?", "choice", "style", tuple(GOALS)),
    Question("has_eval_metric", "Can you measure success (an evaluation set and a metric)?", "bool", True),
    Question("prompting_exhausted", "Have you truly exhausted prompt engineering (measured, not guessed)?",
             "bool", False),
    Question("multiple_tasks", "Will one base model serve several separate tasks?", "bool", False),
    Question("max_quality", "Do you need the last point of quality, whatever the hardware?", "bool", False),
    Question("model", "Which base model (architecture)?", "choice", "llama-3.1-8b", ("<presets>",),
             help="Any name from coursekit.archs.PRESETS, or a config.json path."),
    Question("gpu", "Which single GPU?", "choice", "RTX 4090", ("<gpus>",),
             help="A name from coursekit.memory.GPUS (capacities as nvidia-smi reports them), or its memory in GiB."),
)


def question(key: str) -> Question:
    for q in QUESTIONS:
        if q.key == key:
            return q
    raise ValueError(f"unknown question {key!r}; questions: {', '.join(q.key for q in QUESTIONS)}")


def question_choices(q: Question) -> tuple:
    """The allowed answers of a choice question (presets and GPUs are read from the modules that own them)."""
    if q.choices == ("<presets>",):
        return _model_names()
    if q.choices == ("<gpus>",):
        return _gpu_names()
    return q.choices


#: How each method is estimated: the precision recipe and optimizer the course's training engine uses for it.
METHOD_SETTINGS: dict[str, dict] = {
    "full": {"precision": "amp-bf16", "optimizer": "adamw"},  # fp32 master weights, bf16 autocast: 16 bytes/param
    "lora": {"precision": "bf16", "optimizer": "adamw"},  # frozen bf16 base, fp32 adapters
    "qlora": {"precision": "bf16", "optimizer": "paged-adamw-8bit"},  # NF4 base, paged 8-bit AdamW
}
METHODS = tuple(METHOD_SETTINGS)
APPROACHES = ("prompting", "rag", "rag + prompting", "fine-tune", "fine-tune + rag")


# ------------------------------------------------------------------------------------------------ the result


@dataclass(repr=False)
class Recommendation(ResultMixin):
    approach: str  # one of APPROACHES
    method: str | None  # "full", "lora", "qlora" when the approach fine-tunes and a method fits; else None
    reasons: list = field(default_factory=list)  # why, step by step, in the framework's order
    trail: list = field(default_factory=list)  # [{"question", "answer", "outcome"}] the questions asked
    cautions: list = field(default_factory=list)  # what to watch even though the answer stands
    model: str = ""
    gpu: str = ""
    gpu_capacity_bytes: int = 0
    memory_bytes: dict = field(default_factory=dict)  # method -> estimated peak training memory
    fits: dict = field(default_factory=dict)  # method -> fits the GPU
    smallest_gpu: dict = field(default_factory=dict)  # method -> smallest listed GPU it fits (None: none)
    settings: dict = field(default_factory=dict)  # batch_size, seq_len, rank, checkpointing

    @property
    def fine_tune(self) -> bool:
        return self.approach.startswith("fine-tune")

    def memory_table(self) -> str:
        cap = self.gpu_capacity_bytes / GIB
        lines = [f"{'method':<8}{'estimate GiB':>14}{'(GB)':>8}  on {self.gpu} ({cap:,.1f} GiB)"]
        for m, b in self.memory_bytes.items():
            lines.append(f"{m:<8}{b / GIB:>14.1f}{b / GB:>8.1f}  {'fits' if self.fits[m] else 'does not fit'}")
        return "\n".join(lines)

    def summary(self) -> str:
        head = f"Recommendation: {self.approach}" + (f" with {self.method}" if self.method else "")
        body = [head, ""] + [f"- {r}" for r in self.reasons]
        if self.cautions:
            body += ["", "Watch out:"] + [f"- {c}" for c in self.cautions]
        if self.memory_bytes:
            body += ["", self.memory_table()]
        return "\n".join(body)


# ------------------------------------------------------------------------------------------------ checks


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------ hardware


def method_memory(model, gpu, *, batch_size: int = 1, seq_len: int = 512, rank: int = 16,
                  checkpointing: bool = True) -> dict:
    """For each method: estimated peak training memory on one GPU, whether it fits, and the smallest listed GPU
    that holds it. Everything comes from ``coursekit.memory.hardware_fit`` (the estimator), per method's settings.
    """
    from coursekit.memory.hardware import GPUS, gpu_capacity_bytes, hardware_fit

    capacity = gpu_capacity_bytes(gpu)
    by_size = sorted(GPUS, key=lambda g: GPUS[g])
    out = {}
    for m, settings in METHOD_SETTINGS.items():
        rows = hardware_fit(model, methods=(m,), gpus=[gpu, *by_size], batch_size=batch_size, seq_len=seq_len,
                            rank=rank, checkpointing=checkpointing, **settings)
        smallest = next((r.gpu for r in rows[1:] if r.fits), None)
        out[m] = {"total_bytes": rows[0].total_bytes, "fits": rows[0].fits, "smallest_gpu": smallest,
                  "capacity_bytes": capacity}
    return out


def _gib(b: float) -> str:
    """A size compared with a GPU, in the GPU's unit: GiB (2^30 bytes)."""
    return f"{b / GIB:,.1f} GiB"


def _listed(gpu: str | None) -> str | None:
    """A GPU of the table with its capacity: 'A100 80GB (80.0 GiB)'."""
    from coursekit.memory.hardware import gpu_label

    return gpu_label(gpu) if gpu else None


# ------------------------------------------------------------------------------------------------ the function


def recommend_method(*, few_shot_works: bool = False, needs_external_knowledge: bool = False,
                     knowledge_changes_often: bool = False, num_examples: int = 0, goal: str = "style",
                     has_eval_metric: bool = True, prompting_exhausted: bool = False, multiple_tasks: bool = False,
                     max_quality: bool = False, model="llama-3.1-8b", gpu="RTX 4090", batch_size: int = 1,
                     seq_len: int = 512, rank: int = 16, checkpointing: bool = True) -> Recommendation:
    """Walk the decision framework and return a :class:`Recommendation` with the approach, the method and why.

    The keyword arguments answer ``QUESTIONS`` (``goal`` is a key of ``GOALS``). ``model`` is an architecture
    (a preset of ``coursekit.archs``, a config.json path, ...) and ``gpu`` a name in ``coursekit.memory.GPUS`` or a
    size in GiB (2^30 bytes); ``batch_size``, ``seq_len``, ``rank`` and ``checkpointing`` describe the training run
    the memory estimator prices. Memory is estimated for every method whatever the answer, so the table is always there.
    """
    for name, value in (("few_shot_works", few_shot_works), ("needs_external_knowledge", needs_external_knowledge),
                        ("knowledge_changes_often", knowledge_changes_often), ("has_eval_metric", has_eval_metric),
                        ("prompting_exhausted", prompting_exhausted), ("multiple_tasks", multiple_tasks),
                        ("max_quality", max_quality), ("checkpointing", checkpointing)):
        _check_bool(name, value)
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 0:
        raise ValueError(f"num_examples must be a non-negative integer, got {num_examples!r}")
    if not isinstance(goal, str) or goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}; allowed: {', '.join(GOALS)}")
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len), ("rank", rank)):
        _check_positive_int(name, value)

    memory = method_memory(model, gpu, batch_size=batch_size, seq_len=seq_len, rank=rank, checkpointing=checkpointing)
    from coursekit.archs import resolve_arch

    rec = Recommendation(
        approach="", method=None, model=resolve_arch(model).name, gpu=str(gpu),
        gpu_capacity_bytes=next(iter(memory.values()))["capacity_bytes"],
        memory_bytes={m: v["total_bytes"] for m, v in memory.items()},
        fits={m: v["fits"] for m, v in memory.items()},
        smallest_gpu={m: v["smallest_gpu"] for m, v in memory.items()},
        settings={"batch_size": batch_size, "seq_len": seq_len, "rank": rank, "checkpointing": checkpointing},
    )

    def ask(key, answer, outcome):
        rec.trail.append({"question": question(key).text, "answer": answer, "outcome": outcome})

    def stop(approach, reason):
        rec.approach = approach
        rec.reasons.append(reason)
        return rec

    behaviour = goal in FINE_TUNE_GOALS
    hybrid = False

    # 1. Can a few examples in the prompt do it?
    if few_shot_works and goal != "latency_cost":
        ask("few_shot_works", True, "in-context learning")
        return stop("prompting", "A few examples in the prompt already show the model the task: use in-context "
                                 "learning. Nothing to train, nothing to host beyond the base model.")
    if few_shot_works:
        ask("few_shot_works", True, "continue: prompting works, but cost and latency are the goal")
        rec.reasons.append("Few-shot prompting works, but its examples ride along with every request; fine-tuning "
                           "can move them into the weights and shorten the prompt.")
    else:
        ask("few_shot_works", False, "continue")

    # 2. Is it about external knowledge?
    if needs_external_knowledge or knowledge_changes_often or goal == "facts":
        if not behaviour:
            ask("needs_external_knowledge", True, "retrieval")
            reason = ("The task is about knowledge in documents: retrieve it (RAG). Fine-tuning is a poor way to "
                      "store facts")
            reason += ", and knowledge that changes weekly would need retraining every week." if (
                knowledge_changes_often) else "."
            return stop("rag", reason)
        hybrid = True
        ask("needs_external_knowledge", True, "continue: retrieve the facts, fine-tune the behaviour")
        rec.reasons.append(f"The facts belong in retrieval (RAG); the goal, {GOALS[goal]}, is behaviour, which "
                           "retrieval does not teach: a hybrid, fine-tuned for behaviour and fed facts by RAG.")
    else:
        ask("needs_external_knowledge", False, "continue")
    fallback = "rag + prompting" if hybrid else "prompting"

    # 3. Enough data?
    if num_examples < MIN_EXAMPLES:
        ask("num_examples", num_examples, "not enough data")
        if num_examples < TOO_FEW_EXAMPLES:
            why = (f"{num_examples:,} examples is under {TOO_FEW_EXAMPLES}: too few for fine-tuning to learn more "
                   "than the examples in a prompt show. Use them as few-shot examples, and collect more.")
        else:
            why = (f"{num_examples:,} examples is under the rule of thumb of {MIN_EXAMPLES:,}: try prompting with "
                   "them first and keep collecting; fine-tune once you have enough to also hold some out for "
                   "evaluation.")
        return stop(fallback, why)
    ask("num_examples", num_examples, "enough data")
    rec.reasons.append(f"{num_examples:,} examples: enough to fine-tune (rule of thumb: {MIN_EXAMPLES:,}+).")

    # 4. Behaviour, style, reasoning?
    if not behaviour:
        ask("goal", goal, "prompting and retrieval")
        if goal == "general":
            return stop("rag + prompting", "Many unrelated tasks: fine-tuning specialises a model and can erode its "
                                           "general skills (lesson 03 measures forgetting). Prompt a general model.")
        return stop("rag", "Answering from facts is retrieval's job.")
    ask("goal", goal, "fine-tuning territory")
    rec.reasons.append(f"The goal is {GOALS[goal]}: one of the six cases where fine-tuning wins.")

    # 4b. Can you tell whether it worked?
    if not has_eval_metric:
        ask("has_eval_metric", False, "build an evaluation first")
        return stop(fallback, "No way to measure success yet: build an evaluation set and a metric first, then "
                              "measure prompting against it. Without it, nobody can tell whether fine-tuning helped.")
    ask("has_eval_metric", True, "continue")

    # 5. Prompting exhausted?
    if not prompting_exhausted:
        ask("prompting_exhausted", False, "try prompting harder")
        return stop(fallback, "Prompting is not exhausted yet: measure zero-shot, few-shot and retrieval prompts "
                              "on your evaluation set first (lesson 01 shows how). Fine-tune when they fall short.")
    ask("prompting_exhausted", True, "fine-tune")
    rec.approach = "fine-tune + rag" if hybrid else "fine-tune"

    # 6. Which method? Ask the memory estimator.
    cap = rec.gpu_capacity_bytes
    trail_at = len(rec.trail)
    mem, fits = rec.memory_bytes, rec.fits
    where = f"one {rec.gpu} ({_gib(cap)})"
    run = f"batch {batch_size} x {seq_len} tokens, gradient checkpointing {'on' if checkpointing else 'off'}"
    if max_quality and fits["full"] and not multiple_tasks:
        rec.method = "full"
        rec.reasons.append(f"Full fine-tuning of {rec.model} needs about {_gib(mem['full'])} ({run}): it fits {where}, "
                           "and every weight can move.")
    elif fits["lora"]:
        rec.method = "lora"
        why = f"LoRA (rank {rank}) on a bf16 base needs about {_gib(mem['lora'])}: it fits {where}"
        if max_quality and multiple_tasks:
            why += "; with several tasks, one small adapter per task beats one full model copy per task"
        elif max_quality:
            why += (f"; full fine-tuning would need {_gib(mem['full'])} (smallest GPU that holds it: "
                    f"{_listed(rec.smallest_gpu['full']) or 'none on the list, it needs several GPUs'})")
        else:
            why += f", with {_gib(cap - mem['lora'])} to spare, and trains faster than QLoRA (no 4-bit dequantizing)"
        rec.reasons.append(why + ".")
    elif fits["qlora"]:
        rec.method = "qlora"
        rec.reasons.append(f"LoRA on a bf16 base needs about {_gib(mem['lora'])}, more than {where}; QLoRA keeps the "
                           f"base in 4 bits (NF4) and needs about {_gib(mem['qlora'])}, which fits.")
    else:
        rec.method = None
        bigger = rec.smallest_gpu["qlora"]
        rec.reasons.append(f"Even QLoRA needs about {_gib(mem['qlora'])} ({run}), more than {where}. "
                           + (f"The smallest listed GPU that holds it is the {_listed(bigger)}; " if bigger else
                              "No single listed GPU holds it; ")
                           + "or pick a smaller model, a shorter sequence or a smaller batch.")
    rec.trail.insert(trail_at, {"question": "Which method fits the hardware?", "answer": f"{rec.model} on {rec.gpu}",
                                "outcome": rec.method or "nothing fits this GPU"})
    if multiple_tasks and rec.method in ("lora", "qlora"):
        rec.cautions.append("Several tasks: train one adapter per task on the same base model and swap adapters at "
                            "serving time (peft's load_adapter / set_adapter); each adapter is megabytes.")
    if rec.method == "qlora":
        rec.cautions.append("A QLoRA adapter is trained against the 4-bit base: merging it into bf16 weights changes "
                            "the outputs slightly (lesson 05 measures it); serve unmerged or re-check after merging.")
    if rec.method == "full":
        rec.cautions.append("Full fine-tuning moves every weight: watch general skills (lesson 03's forgetting "
                            "probe), use a low learning rate and stop on validation loss.")
    if hybrid:
        rec.cautions.append("Keep the changing facts out of the training data: they belong in the retrieval index.")
    return rec



# ------------------------------------------------------------------------------------------------ a quoted recommender


#: The quoted recommender's rules of thumb: method -> (GB per billion parameters, GB added for adapters and
#: activations).
CLAIMED_GB_RULES: dict[str, tuple[float, float]] = {"qlora": (0.6, 2.0), "lora": (2.0, 2.0)}


def claimed_recommend_peft_method(model_size_billions: float, available_gpu_gb: float, task_complexity: str,
                                  multiple_tasks: bool) -> dict:
    """A widely shared ``recommend_peft_method`` as quoted, so lesson 06 can show what its code returns (do not use).

    It prices memory with two rules of thumb (4-bit QLoRA: 0.6 GB per billion parameters + 2; bf16 LoRA: 2 GB per
    billion + 2), collects every method that passes, and returns the *first*: LoRA whenever the LoRA rule fits, so
    its multiple-task branch never wins when LoRA fits; and its QLoRA branch requires more than 7 billion parameters,
    so a 7B model that misses the LoRA rule gets no recommendation at all.
    """
    qlora_memory = model_size_billions * CLAIMED_GB_RULES["qlora"][0] + CLAIMED_GB_RULES["qlora"][1]
    lora_memory = model_size_billions * CLAIMED_GB_RULES["lora"][0] + CLAIMED_GB_RULES["lora"][1]
    recommendations = []
    if lora_memory <= available_gpu_gb:
        rank = 8 if task_complexity == "simple" else 16 if task_complexity == "moderate" else 32
        recommendations.append({"method": "LoRA", "rank": rank, "reason": "Base model fits in memory; fastest training"})
    if qlora_memory <= available_gpu_gb and model_size_billions > 7:
        recommendations.append({"method": "QLoRA", "rank": 16,
                                "reason": "Model too large for bf16 LoRA; 4-bit quantization enables training"})
    if multiple_tasks:
        recommendations.append({"method": "Adapter Layers", "bottleneck": 64,
                                "reason": "Adapters can be hot-swapped for different tasks at inference time"})
    if not recommendations:
        return {"method": "none", "reason": "Model too large even for QLoRA on this hardware"}
    return recommendations[0]


__all__ = ["APPROACHES", "CLAIMED_GB_RULES", "FINE_TUNE_GOALS", "GOALS", "METHODS", "METHOD_SETTINGS", "MIN_EXAMPLES", "NOT_TO_FINE_TUNE",
           "QUESTIONS", "Question", "Recommendation", "SCENARIOS", "TOO_FEW_EXAMPLES", "claimed_recommend_peft_method",
           "method_memory", "question", "question_choices", "recommend_method"]
