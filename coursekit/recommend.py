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

from dataclasses import dataclass, field, fields, replace
from typing import Callable

from coursekit._results import ResultMixin
from coursekit.units import GB, GIB, gib_text  # estimates are compared with GPUs in bytes, shown in GiB
from coursekit.validate import boolean, non_negative_int, one_of, positive_int

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
    key: str  # the field of Answers (and keyword of recommend_method)
    text: str
    kind: str  # "bool", "int" or "choice"
    default: object
    choices: tuple = ()  # a choice question's answers; empty when they are read from another module (choices_from)
    help: str = ""
    choices_from: Callable[[], tuple] | None = None  # where the answers of a model or GPU question come from


def _gpu_names() -> tuple:
    from coursekit.memory.hardware import GPUS

    return tuple(GPUS)


def _model_names() -> tuple:
    from coursekit.archs import PRESETS

    return tuple(PRESETS)


def _asked(default, text: str, kind: str, *, choices: tuple = (), help: str = "", choices_from=None):
    """A field of :class:`Answers` that is one of the framework's questions."""
    return field(default=default, metadata={"question": {"text": text, "kind": kind, "choices": choices,
                                                         "help": help, "choices_from": choices_from}})


def _run(default, label: str, *, widget_choices: tuple = ()):
    """A field of :class:`Answers` that describes the training run the memory estimator prices."""
    return field(default=default, metadata={"run": {"label": label, "widget_choices": widget_choices}})


@dataclass(frozen=True)
class Answers:
    """The inputs of the decision framework: the answers to its questions, in the order it asks them, and the
    training run the memory estimator prices. Checked when made; the widget builds one control per field."""

    few_shot_works: bool = _asked(
        False, "Can 2-10 examples in the prompt show the model how to do it?", "bool",
        help="Try it and measure it before answering yes or no (lesson 01 does, on the support task).")
    needs_external_knowledge: bool = _asked(
        False, "Is the task mainly about looking things up in documents or facts?", "bool")
    knowledge_changes_often: bool = _asked(False, "Does that knowledge change daily or weekly?", "bool")
    num_examples: int = _asked(0, "How many good training examples (input and ideal answer) do you have?", "int")
    goal: str = _asked("style", "What must change in the model?", "choice", choices=tuple(GOALS))
    has_eval_metric: bool = _asked(True, "Can you measure success (an evaluation set and a metric)?", "bool")
    prompting_exhausted: bool = _asked(
        False, "Have you truly exhausted prompt engineering (measured, not guessed)?", "bool")
    multiple_tasks: bool = _asked(False, "Will one base model serve several separate tasks?", "bool")
    max_quality: bool = _asked(False, "Do you need the last point of quality, whatever the hardware?", "bool")
    model: object = _asked("llama-3.1-8b", "Which base model (architecture)?", "choice", choices_from=_model_names,
                           help="Any name from coursekit.archs.PRESETS, or a config.json path.")
    gpu: object = _asked("RTX 4090", "Which single GPU?", "choice", choices_from=_gpu_names,
                         help="A name from coursekit.memory.GPUS (capacities as nvidia-smi reports them), or its "
                              "memory in GiB.")
    batch_size: int = _run(1, "micro-batch", widget_choices=(1, 2, 4, 8, 16))
    seq_len: int = _run(512, "sequence length (tokens)", widget_choices=(256, 512, 1024, 2048, 4096, 8192))
    rank: int = _run(16, "LoRA rank", widget_choices=(4, 8, 16, 32, 64))
    checkpointing: bool = _run(True, "gradient checkpointing")

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_answer(f, getattr(self, f.name))

    # what the answers mean for the framework
    @property
    def about_knowledge(self) -> bool:
        return self.needs_external_knowledge or self.knowledge_changes_often or self.goal == "facts"

    @property
    def behaviour(self) -> bool:
        """The goal is one of the six cases where fine-tuning wins (behaviour, not facts)."""
        return self.goal in FINE_TUNE_GOALS

    @property
    def hybrid(self) -> bool:
        """Facts from retrieval, behaviour from fine-tuning."""
        return self.about_knowledge and self.behaviour

    @property
    def fallback(self) -> str:
        """The approach when fine-tuning is not (yet) the answer."""
        return "rag + prompting" if self.hybrid else "prompting"

    def run_settings(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if "run" in f.metadata}


def _check_answer(f, value) -> None:
    question = f.metadata.get("question", {})
    kind = question.get("kind") or ("bool" if isinstance(f.default, bool) else "positive int")
    if kind == "bool":
        boolean(f.name, value)
    elif kind == "int":
        non_negative_int(f.name, value)
    elif kind == "positive int":
        positive_int(f.name, value)
    elif question.get("choices"):  # model and gpu are checked where they are read (resolve_arch, gpu_capacity_bytes)
        one_of(f.name, value, question["choices"])


#: The questions in the order the framework asks them (the fields of ``Answers`` that are questions).
QUESTIONS: tuple = tuple(Question(f.name, default=f.default, **f.metadata["question"])
                         for f in fields(Answers) if "question" in f.metadata)
#: The fields of ``Answers`` that describe the training run: name -> (label, the widget's choices, default).
RUN_FIELDS: dict = {f.name: (f.metadata["run"]["label"], f.metadata["run"]["widget_choices"], f.default)
                    for f in fields(Answers) if "run" in f.metadata}


def question(key: str) -> Question:
    for q in QUESTIONS:
        if q.key == key:
            return q
    raise ValueError(f"unknown question {key!r}; questions: {', '.join(q.key for q in QUESTIONS)}")


def question_choices(q: Question) -> tuple:
    """The allowed answers of a choice question (presets and GPUs are read from the modules that own them)."""
    return q.choices_from() if q.choices_from else q.choices


#: How each method is estimated: the precision recipe and optimizer the course's training engine uses for it.
METHOD_SETTINGS: dict[str, dict] = {
    "full": {"precision": "amp-bf16", "optimizer": "adamw"},  # fp32 master weights, bf16 autocast: 16 bytes/param
    "lora": {"precision": "bf16", "optimizer": "adamw"},  # frozen bf16 base, fp32 adapters
    "qlora": {"precision": "bf16", "optimizer": "paged-adamw-8bit"},  # NF4 base, paged 8-bit AdamW
}
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

    # what the steps of the framework write
    def ask(self, key: str, answer, outcome: str) -> None:
        """Record a question on the path: its text, the answer given, where it leads."""
        self.trail.append({"question": question(key).text, "answer": answer, "outcome": outcome})

    def stop(self, approach: str, reason: str) -> Recommendation:
        """End the walk with ``approach``."""
        self.approach = approach
        self.reasons.append(reason)
        return self


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


def _listed(gpu: str | None) -> str | None:
    """A GPU of the table with its capacity: 'A100 80GB (80.0 GiB)'."""
    from coursekit.memory.hardware import gpu_label

    return gpu_label(gpu) if gpu else None


def _priced(a: Answers) -> Recommendation:
    """An unfinished recommendation that already holds what every method needs on the GPU (always shown)."""
    from coursekit.archs import resolve_arch

    memory = method_memory(a.model, a.gpu, **a.run_settings())
    return Recommendation(
        approach="", method=None, model=resolve_arch(a.model).name, gpu=str(a.gpu),
        gpu_capacity_bytes=next(iter(memory.values()))["capacity_bytes"],
        memory_bytes={m: v["total_bytes"] for m, v in memory.items()},
        fits={m: v["fits"] for m, v in memory.items()},
        smallest_gpu={m: v["smallest_gpu"] for m, v in memory.items()},
        settings=a.run_settings(),
    )


# ------------------------------------------------------------------------------------------------ the steps
# Each step asks one question: it records it on the trail and either ends the walk (returns the recommendation
# with its approach) or lets it go on (returns None), adding a reason where the answer matters later.


def few_shot_step(a: Answers, rec: Recommendation) -> Recommendation | None:
    """1. Can a few examples in the prompt do it?"""
    if not a.few_shot_works:
        rec.ask("few_shot_works", False, "continue")
        return None
    if a.goal != "latency_cost":
        rec.ask("few_shot_works", True, "in-context learning")
        return rec.stop("prompting", "A few examples in the prompt already show the model the task: use in-context "
                                     "learning. Nothing to train, nothing to host beyond the base model.")
    rec.ask("few_shot_works", True, "continue: prompting works, but cost and latency are the goal")
    rec.reasons.append("Few-shot prompting works, but its examples ride along with every request; fine-tuning "
                       "can move them into the weights and shorten the prompt.")
    return None


def knowledge_step(a: Answers, rec: Recommendation) -> Recommendation | None:
    """2. Is it about external knowledge?"""
    if not a.about_knowledge:
        rec.ask("needs_external_knowledge", False, "continue")
        return None
    if not a.behaviour:
        rec.ask("needs_external_knowledge", True, "retrieval")
        weekly = ", and knowledge that changes weekly would need retraining every week."
        return rec.stop("rag", "The task is about knowledge in documents: retrieve it (RAG). Fine-tuning is a poor "
                               "way to store facts" + (weekly if a.knowledge_changes_often else "."))
    rec.ask("needs_external_knowledge", True, "continue: retrieve the facts, fine-tune the behaviour")
    rec.reasons.append(f"The facts belong in retrieval (RAG); the goal, {GOALS[a.goal]}, is behaviour, which "
                       "retrieval does not teach: a hybrid, fine-tuned for behaviour and fed facts by RAG.")
    return None


def data_step(a: Answers, rec: Recommendation) -> Recommendation | None:
    """3. Enough data?"""
    n = a.num_examples
    if n >= MIN_EXAMPLES:
        rec.ask("num_examples", n, "enough data")
        rec.reasons.append(f"{n:,} examples: enough to fine-tune (rule of thumb: {MIN_EXAMPLES:,}+).")
        return None
    rec.ask("num_examples", n, "not enough data")
    if n < TOO_FEW_EXAMPLES:
        return rec.stop(a.fallback, f"{n:,} examples is under {TOO_FEW_EXAMPLES}: too few for fine-tuning to learn "
                                    "more than the examples in a prompt show. Use them as few-shot examples, and "
                                    "collect more.")
    return rec.stop(a.fallback, f"{n:,} examples is under the rule of thumb of {MIN_EXAMPLES:,}: try prompting with "
                                "them first and keep collecting; fine-tune once you have enough to also hold some "
                                "out for evaluation.")


def goal_step(a: Answers, rec: Recommendation) -> Recommendation | None:
    """4. Behaviour, style, reasoning?"""
    if a.behaviour:
        rec.ask("goal", a.goal, "fine-tuning territory")
        rec.reasons.append(f"The goal is {GOALS[a.goal]}: one of the six cases where fine-tuning wins.")
        return None
    rec.ask("goal", a.goal, "prompting and retrieval")
    if a.goal == "general":
        return rec.stop("rag + prompting", "Many unrelated tasks: fine-tuning specialises a model and can erode its "
                                           "general skills (lesson 03 measures forgetting). Prompt a general model.")
    return rec.stop("rag", "Answering from facts is retrieval's job.")


def _gate(rec: Recommendation, question: str, yes: bool, go_on: str, instead: str, fallback: str,
          why: str) -> Recommendation | None:
    """A yes/no question of the framework: yes goes on (None), no stops at ``fallback`` with ``why``."""
    rec.ask(question, bool(yes), go_on if yes else instead)
    return None if yes else rec.stop(fallback, why)


def metric_step(a: Answers, rec: Recommendation) -> Recommendation | None:
    """4b. Can you tell whether it worked?"""
    return _gate(rec, "has_eval_metric", a.has_eval_metric, "continue", "build an evaluation first", a.fallback,
                 "No way to measure success yet: build an evaluation set and a metric first, then measure prompting "
                 "against it. Without it, nobody can tell whether fine-tuning helped.")


def prompting_step(a: Answers, rec: Recommendation) -> Recommendation | None:
    """5. Prompting exhausted?"""
    return _gate(rec, "prompting_exhausted", a.prompting_exhausted, "fine-tune", "try prompting harder", a.fallback,
                 "Prompting is not exhausted yet: measure zero-shot, few-shot and retrieval prompts on your "
                 "evaluation set first (lesson 01 shows how). Fine-tune when they fall short.")


#: The questions before the method, in the order the framework asks them.
STEPS = (few_shot_step, knowledge_step, data_step, goal_step, metric_step, prompting_step)


def choose_method(a: Answers, rec: Recommendation) -> tuple[str | None, str]:
    """6. Which method? The memory estimator's answer: (method or None, the reason)."""
    mem, fits = rec.memory_bytes, rec.fits
    where = f"one {rec.gpu} ({gib_text(rec.gpu_capacity_bytes)})"
    if a.max_quality and fits["full"] and not a.multiple_tasks:
        run = f"batch {a.batch_size} x {a.seq_len} tokens, gradient checkpointing {'on' if a.checkpointing else 'off'}"
        return "full", (f"Full fine-tuning of {rec.model} needs about {gib_text(mem['full'])} ({run}): it fits "
                        f"{where}, and every weight can move.")
    if fits["lora"]:
        return "lora", _lora_reason(a, rec, where) + "."
    if fits["qlora"]:
        return "qlora", (f"LoRA on a bf16 base needs about {gib_text(mem['lora'])}, more than {where}; QLoRA keeps "
                         f"the base in 4 bits (NF4) and needs about {gib_text(mem['qlora'])}, which fits.")
    return None, _nothing_fits_reason(a, rec, where)


def _lora_reason(a: Answers, rec: Recommendation, where: str) -> str:
    mem = rec.memory_bytes
    why = f"LoRA (rank {a.rank}) on a bf16 base needs about {gib_text(mem['lora'])}: it fits {where}"
    if a.max_quality and a.multiple_tasks:
        return why + "; with several tasks, one small adapter per task beats one full model copy per task"
    if a.max_quality:
        return why + (f"; full fine-tuning would need {gib_text(mem['full'])} (smallest GPU that holds it: "
                      f"{_listed(rec.smallest_gpu['full']) or 'none on the list, it needs several GPUs'})")
    return why + (f", with {gib_text(rec.gpu_capacity_bytes - mem['lora'])} to spare, and trains faster than QLoRA "
                  "(no 4-bit dequantizing)")


def _nothing_fits_reason(a: Answers, rec: Recommendation, where: str) -> str:
    run = f"batch {a.batch_size} x {a.seq_len} tokens, gradient checkpointing {'on' if a.checkpointing else 'off'}"
    bigger = rec.smallest_gpu["qlora"]
    return (f"Even QLoRA needs about {gib_text(rec.memory_bytes['qlora'])} ({run}), more than {where}. "
            + (f"The smallest listed GPU that holds it is the {_listed(bigger)}; " if bigger else
               "No single listed GPU holds it; ")
            + "or pick a smaller model, a shorter sequence or a smaller batch.")


def cautions(a: Answers, method: str | None) -> list[str]:
    """What to watch even though the answer stands."""
    out = []
    if a.multiple_tasks and method in ("lora", "qlora"):
        out.append("Several tasks: train one adapter per task on the same base model and swap adapters at "
                   "serving time (peft's load_adapter / set_adapter); each adapter is megabytes.")
    if method == "qlora":
        out.append("A QLoRA adapter is trained against the 4-bit base: merging it into bf16 weights changes "
                   "the outputs slightly (lesson 05 measures it); serve unmerged or re-check after merging.")
    if method == "full":
        out.append("Full fine-tuning moves every weight: watch general skills (lesson 03's forgetting "
                   "probe), use a low learning rate and stop on validation loss.")
    if a.hybrid:
        out.append("Keep the changing facts out of the training data: they belong in the retrieval index.")
    return out


# ------------------------------------------------------------------------------------------------ the function


def recommend(answers: Answers) -> Recommendation:
    """Walk the decision framework for ``answers``: the steps in order, then the method from the estimator."""
    rec = _priced(answers)
    for step in STEPS:
        stopped = step(answers, rec)
        if stopped is not None:
            return stopped
    rec.approach = "fine-tune + rag" if answers.hybrid else "fine-tune"
    rec.method, reason = choose_method(answers, rec)
    rec.reasons.append(reason)
    rec.trail.append({"question": "Which method fits the hardware?", "answer": f"{rec.model} on {rec.gpu}",
                      "outcome": rec.method or "nothing fits this GPU"})
    rec.cautions = cautions(answers, rec.method)
    return rec


def recommend_method(answers: Answers | None = None, /, **kwargs) -> Recommendation:
    """Walk the decision framework and return a :class:`Recommendation` with the approach, the method and why.

    The keyword arguments are the fields of :class:`Answers`, with the same defaults: the answers to ``QUESTIONS``
    (``goal`` is a key of ``GOALS``; ``model`` an architecture: a preset of ``coursekit.archs``, a config.json
    path, ...; ``gpu`` a name in ``coursekit.memory.GPUS`` or a size in GiB, 2^30 bytes) and the training run the
    memory estimator prices (``batch_size``, ``seq_len``, ``rank``, ``checkpointing``). An :class:`Answers` may be
    passed first; keywords then change some of its fields. Memory is estimated for every method whatever the
    answer, so the table is always there.
    """
    unknown = sorted(set(kwargs) - {f.name for f in fields(Answers)})
    if unknown:
        raise ValueError(f"unknown answer(s) {unknown}; recommend_method takes: "
                         f"{', '.join(f.name for f in fields(Answers))}")
    if answers is None:
        answers = Answers(**kwargs)
    elif isinstance(answers, Answers):
        answers = replace(answers, **kwargs)
    else:
        raise ValueError(f"answers must be a coursekit.recommend.Answers, got {type(answers).__name__}")
    return recommend(answers)


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


__all__ = ["APPROACHES", "Answers", "CLAIMED_GB_RULES", "FINE_TUNE_GOALS", "GOALS", "METHOD_SETTINGS", "MIN_EXAMPLES",
           "NOT_TO_FINE_TUNE", "QUESTIONS", "Question", "RUN_FIELDS", "Recommendation", "SCENARIOS", "STEPS",
           "TOO_FEW_EXAMPLES", "cautions", "choose_method", "claimed_recommend_peft_method", "method_memory",
           "question", "question_choices", "recommend", "recommend_method"]
