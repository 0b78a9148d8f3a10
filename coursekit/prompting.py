"""Prompting baselines for lesson 01: zero-shot, few-shot with k examples, and retrieval-style prompts.

Before fine-tuning, measure what prompting the base model gets you. Three kinds of prompt, all built from the
course's instruction template (``coursekit.data.format_prompt``):

- zero-shot: the prompt alone (k = 0);
- few-shot: k solved training examples (prompt + answer) in front of the query, the same k for every query;
- retrieval: for each query, the k training examples most similar to it (TF-IDF cosine over words, in plain
  Python), the most similar one closest to the query. This is retrieval-augmented prompting in miniature: what a
  RAG system does with a vector index, done with word counts.

``measure_prompts`` scores one set of prompts with ``coursekit.evaluate.evaluate_task`` (task metric, prompt
tokens) and times answers one at a time (latency per answer, batch 1); ``compare_prompting`` runs every strategy
and returns a :class:`PromptingComparison` with a table and a plot.
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field

from coursekit._results import ResultMixin
from coursekit.evaluate import ANSWER_TOKENS  # new tokens per answer: a whole triage JSON + reply, then eos
from coursekit.validate import non_negative_int

SHOT_SEPARATOR = "\n\n"
DEFAULT_KS = (0, 1, 2, 4, 8)
_WORD = re.compile(r"[a-z]+")


# ---------------------------------------------------------------------------------------------------- checks


def _rows(data, name: str) -> list[dict]:
    if data is None:
        raise ValueError(f"{name} must be a list of examples (dicts with instruction, input, output), got None")
    if hasattr(data, "to_list") and hasattr(data, "column_names"):
        data = data.to_list()
    if isinstance(data, dict):
        raise ValueError(f"{name} must be a list of examples, got one dict; wrap it in a list")
    rows = list(data)
    for i, row in enumerate(rows):
        if not hasattr(row, "keys") or "instruction" not in row:
            raise ValueError(f"{name}[{i}] must be a dict with fields instruction, input, output; got {row!r:.80}")
    return rows


def _check_k(k, what: str = "k") -> int:
    return non_negative_int(what, k, hint="0 = zero-shot")


# ---------------------------------------------------------------------------------------------------- prompts


def shot_text(example) -> str:
    """One solved example as it appears inside a prompt: the template's prompt followed by the answer."""
    from coursekit.data import format_example

    return format_example(example)


def few_shot_prompt(example, shots, tokenizer=None, system: str | None = None) -> str:
    """``shots`` (solved examples) then the query's prompt, separated by blank lines. No shots: zero-shot.

    With a ``tokenizer`` that has a chat template, the shots become earlier user/assistant turns of the
    conversation and ``system`` (e.g. ``coursekit.data.house_rules()``) the system message; without one, ``system``
    text goes first.
    """
    from coursekit.data import format_prompt, task_messages, uses_chat_template

    shots = _rows(shots, "shots")
    if tokenizer is not None and uses_chat_template(tokenizer):
        return tokenizer.apply_chat_template(task_messages(example, system, shots=shots), tokenize=False,
                                             add_generation_prompt=True)
    parts = ([system.strip()] if system else []) + [shot_text(s) for s in shots]
    return SHOT_SEPARATOR.join(parts + [format_prompt(example)])


def choose_shots(pool, k: int, seed: int = 0) -> list[dict]:
    """``k`` examples drawn at random (fixed by ``seed``) from ``pool``, the same for every query."""
    k = _check_k(k)
    pool = _rows(pool, "pool")
    if k > len(pool):
        raise ValueError(f"k={k} shots asked for, but the pool holds only {len(pool)} examples")
    return random.Random(seed).sample(pool, k)


def few_shot_prompts(examples, pool, k: int, seed: int = 0, tokenizer=None, system: str | None = None) -> list[str]:
    """A k-shot prompt for each example, with the same ``choose_shots(pool, k, seed)`` in front of every query."""
    shots = choose_shots(pool, k, seed)
    return [few_shot_prompt(e, shots, tokenizer, system) for e in _rows(examples, "examples")]


def query_text(example) -> str:
    """What retrieval compares: the instruction and the ticket (never the answer)."""
    return f"{example.get('instruction', '')}\n{example.get('input', '') or ''}"


def words(text: str) -> list[str]:
    """Lower-case words (letters only: order numbers and names of digits carry no meaning for similarity)."""
    return _WORD.findall(str(text).lower())


class TfidfRetriever:
    """Nearest examples by TF-IDF cosine similarity over words, in plain Python (no downloads, no index files).

    ``idf(w) = ln((1 + N) / (1 + df(w))) + 1`` (scikit-learn's smoothed form); a document's vector is its word
    counts times idf, normalised to length 1.
    """

    def __init__(self, documents) -> None:
        docs = [str(d) for d in documents]
        if not docs:
            raise ValueError("TfidfRetriever needs at least one document")
        self.documents = docs
        counts = [Counter(words(d)) for d in docs]
        df = Counter(w for c in counts for w in c)
        n = len(docs)
        self.idf = {w: math.log((1 + n) / (1 + f)) + 1 for w, f in df.items()}
        self._vectors = [self._normalise({w: c * self.idf[w] for w, c in cnt.items()}) for cnt in counts]
        self._postings: dict[str, list[int]] = {}
        for i, vec in enumerate(self._vectors):
            for w in vec:
                self._postings.setdefault(w, []).append(i)

    @staticmethod
    def _normalise(vec: dict) -> dict:
        norm = math.sqrt(sum(v * v for v in vec.values()))
        return {w: v / norm for w, v in vec.items()} if norm else {}

    def vector(self, text: str) -> dict:
        """The query's TF-IDF vector (words never seen in the documents are dropped)."""
        cnt = Counter(w for w in words(text) if w in self.idf)
        return self._normalise({w: c * self.idf[w] for w, c in cnt.items()})

    def scores(self, text: str) -> list[float]:
        """Cosine similarity of ``text`` with every document, in document order."""
        q = self.vector(text)
        out = [0.0] * len(self.documents)
        for w, qv in q.items():
            for i in self._postings.get(w, ()):
                out[i] += qv * self._vectors[i][w]
        return out

    def top_k(self, text: str, k: int) -> list[int]:
        """Indices of the ``k`` most similar documents, most similar first (ties: the earlier document)."""
        k = _check_k(k)
        if k > len(self.documents):
            raise ValueError(f"k={k} but the retriever holds only {len(self.documents)} documents")
        s = self.scores(text)
        return sorted(range(len(s)), key=lambda i: (-s[i], i))[:k]


def retrieval_prompts(examples, pool, k: int = 4, retriever: TfidfRetriever | None = None, tokenizer=None,
                      system: str | None = None) -> list[str]:
    """For each example, the ``k`` most similar pool examples as shots (most similar last, next to the query)."""
    k = _check_k(k)
    examples, pool = _rows(examples, "examples"), _rows(pool, "pool")
    if k > len(pool):
        raise ValueError(f"k={k} shots asked for, but the pool holds only {len(pool)} examples")
    retriever = retriever or TfidfRetriever([query_text(p) for p in pool])
    if len(retriever.documents) != len(pool):
        raise ValueError(f"the retriever indexes {len(retriever.documents)} documents but the pool has {len(pool)}")
    prompts = []
    for e in examples:
        nearest = retriever.top_k(query_text(e), k)
        prompts.append(few_shot_prompt(e, [pool[i] for i in reversed(nearest)], tokenizer, system))
    return prompts


# ---------------------------------------------------------------------------------------------------- measuring


@dataclass(repr=False)
class PromptingRow(ResultMixin):
    """One strategy measured: quality, prompt length, latency."""

    strategy: str  # "zero-shot", "few-shot", "retrieval", or a name you give (e.g. "fine-tuned (LoRA)")
    k: int  # examples in the prompt
    task_metric: float | None  # fraction of answers exactly right (None: the prompts do not fit the context)
    fields: dict  # fraction right per field (json_valid, intent, order, priority, reply)
    prompt_tokens_mean: float
    seconds_per_answer: float | None  # latency: one request at a time (batch 1), greedy
    throughput_seconds_per_answer: float | None  # the scoring pass, batched: what a batch job pays per answer
    n: int  # examples scored
    latency_n: int  # examples timed at batch 1
    fits_context: bool = True  # False: the longest prompt + max_new_tokens exceeds the model's context
    prompt_tokens_max: int = 0
    answer_tokens_mean: float | None = None  # tokens in the timed answers (re-tokenized): latency grows with it


def _context_limit(model) -> int | None:
    cfg = getattr(model, "config", None)
    n = getattr(cfg, "max_position_embeddings", None) if cfg is not None else None
    return int(n) if n else None


def measure_prompts(model, tokenizer, examples, prompts: list[str] | None = None, *, strategy: str = "zero-shot",
                    k: int = 0, max_new_tokens: int = ANSWER_TOKENS, batch_size: int = 32, latency_examples: int = 8,
                    too_long: str = "raise") -> PromptingRow:
    """Score ``prompts`` (None: zero-shot prompts) on ``examples`` and time ``latency_examples`` answers at batch 1.

    When a prompt plus ``max_new_tokens`` does not fit the model's context: ``too_long="raise"`` raises a
    ValueError; ``"skip"`` returns a row with ``fits_context=False``, the prompt lengths, and no metric or latency.
    """
    from coursekit.evaluate import evaluate_task, timed_generate

    examples = _rows(examples, "examples")
    if not examples:
        raise ValueError("examples is empty; pass at least one example to score")
    _check_k(k)
    non_negative_int("latency_examples", latency_examples)
    if not isinstance(strategy, str) or not strategy:
        raise ValueError(f"strategy must be a non-empty name, got {strategy!r}")
    if prompts is None:
        from coursekit.data import task_prompt

        prompts = [task_prompt(e, tokenizer) for e in examples]
    prompts = list(prompts)
    if len(prompts) != len(examples):
        raise ValueError(f"{len(prompts)} prompts for {len(examples)} examples; they must match one to one")
    if too_long not in ("raise", "skip"):
        raise ValueError(f"too_long must be 'raise' or 'skip', got {too_long!r}")
    limit = _context_limit(model)
    lengths = [len(tokenizer(p)["input_ids"]) for p in prompts]
    longest = max(lengths)
    if limit and longest + max_new_tokens > limit:
        if too_long == "skip":
            return PromptingRow(strategy=strategy, k=k, task_metric=None, fields={},
                                prompt_tokens_mean=sum(lengths) / len(lengths), seconds_per_answer=None,
                                throughput_seconds_per_answer=None, n=0, latency_n=0, fits_context=False,
                                prompt_tokens_max=longest)
        raise ValueError(f"the longest {strategy} prompt (k={k}) is {longest} tokens; with {max_new_tokens} new "
                         f"tokens it exceeds the model's context of {limit}. Use fewer shots or a model with a "
                         "longer context")
    ev = evaluate_task(model, tokenizer, examples, prompts=prompts, max_new_tokens=max_new_tokens,
                       batch_size=batch_size)
    timed = prompts[:latency_examples]
    latency, answer_tokens = 0.0, None
    if timed:
        latency, answers = timed_generate(model, tokenizer, timed, max_new_tokens)
        answer_tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers) / len(answers)
    return PromptingRow(strategy=strategy, k=k, task_metric=float(ev.metric), fields=dict(ev.fields),
                        prompt_tokens_mean=float(ev.prompt_tokens_mean), seconds_per_answer=latency,
                        throughput_seconds_per_answer=float(ev.seconds_per_answer), n=len(examples),
                        latency_n=len(timed), prompt_tokens_max=longest, answer_tokens_mean=answer_tokens)


@dataclass(repr=False)
class PromptingComparison(ResultMixin):
    rows: list = field(default_factory=list)  # PromptingRow

    def add(self, row: PromptingRow) -> PromptingRow:
        if not isinstance(row, PromptingRow):
            raise ValueError(f"add() takes a PromptingRow (from measure_prompts), got {type(row).__name__}")
        self.rows.append(row)
        return row

    def row(self, strategy: str, k: int | None = None) -> PromptingRow:
        for r in self.rows:
            if r.strategy == strategy and (k is None or r.k == k):
                return r
        known = ", ".join(f"{r.strategy} (k={r.k})" for r in self.rows)
        raise ValueError(f"no row for strategy {strategy!r}{'' if k is None else f' k={k}'}; rows: {known}")

    @property
    def fewshot_task_metric(self) -> dict:
        """{k: task metric} of zero-shot (k = 0) and the few-shot rows."""
        return {r.k: r.task_metric for r in self.rows if r.strategy in ("zero-shot", "few-shot")}

    def table(self) -> str:
        head = f"{'strategy':<22}{'k':>3}{'task metric':>13}{'prompt tokens':>15}{'latency s/answer':>18}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            if not r.fits_context:
                lines.append(f"{r.strategy:<22}{r.k:>3}{'—':>13}{r.prompt_tokens_mean:>15.1f}{'—':>18}"
                             f"  does not fit the context ({r.prompt_tokens_max} tokens + answer)")
                continue
            lines.append(f"{r.strategy:<22}{r.k:>3}{r.task_metric:>13.3f}{r.prompt_tokens_mean:>15.1f}"
                         f"{r.seconds_per_answer:>18.4f}")
        return "\n".join(lines)

    def plot(self):
        """Task metric, prompt tokens and latency per strategy, side by side (a matplotlib Figure)."""
        from coursekit._figure import new_figure

        if not self.rows:
            raise ValueError("nothing to plot: the comparison has no rows")
        labels = [r.strategy if r.strategy not in ("few-shot", "retrieval") else f"{r.strategy} k={r.k}"
                  for r in self.rows]
        colours = ["tab:green" if r.strategy not in ("zero-shot", "few-shot", "retrieval") else
                   "tab:orange" if r.strategy == "retrieval" else "tab:blue" for r in self.rows]
        fig = new_figure(figsize=(11, 3.6))
        panels = [("task metric (exact)", [r.task_metric for r in self.rows]),
                  ("prompt tokens (mean)", [r.prompt_tokens_mean for r in self.rows]),
                  ("latency (s per answer, batch 1)", [r.seconds_per_answer for r in self.rows])]
        for i, (title, values) in enumerate(panels):
            ax = fig.add_subplot(1, 3, i + 1)
            ax.barh(range(len(values)), [0 if v is None else v for v in values], color=colours)
            for y, v in enumerate(values):
                if v is None:
                    ax.text(0, y, " does not fit the context", va="center", fontsize=8, color="gray")
            ax.set_yticks(range(len(values)))
            ax.set_yticklabels(labels if i == 0 else [""] * len(values))
            ax.invert_yaxis()
            ax.set_title(title, fontsize=10)
            if i == 0:
                ax.set_xlim(0, 1)
        fig.tight_layout()
        return fig


def compare_prompting(model, tokenizer, examples, pool, ks=DEFAULT_KS, retrieval_k: int | None = 4, seed: int = 0,
                      max_new_tokens: int = ANSWER_TOKENS, batch_size: int = 32, latency_examples: int = 8,
                      too_long: str = "skip", system: str | None = None) -> PromptingComparison:
    """Zero-shot and few-shot for each k in ``ks`` (k = 0 is zero-shot), then retrieval with ``retrieval_k`` shots.

    Prompts use the model's chat template when its tokenizer has one (shots as earlier turns); ``system`` is the
    instruction every strategy gets (e.g. ``coursekit.data.house_rules()``: the fields, allowed values and house
    style a practitioner would write down).

    ``pool`` is where the shots come from (the training split); ``examples`` what is scored (never in the pool).
    A strategy whose prompts do not fit the model's context is kept as a row with ``fits_context=False`` (its
    prompt length measured, nothing else), unless ``too_long="raise"``.
    """
    ks = list(ks)
    if not ks:
        raise ValueError("ks must name at least one k (0 = zero-shot), e.g. (0, 1, 2, 4, 8)")
    for k in ks:
        _check_k(k, "each k in ks")
    if len(set(ks)) != len(ks):
        raise ValueError(f"ks has repeated values: {ks}")
    if retrieval_k is not None:
        _check_k(retrieval_k, "retrieval_k")
        if retrieval_k == 0:
            raise ValueError("retrieval_k=0 retrieves nothing (that is zero-shot); use at least 1, or None to skip")
    if too_long not in ("raise", "skip"):
        raise ValueError(f"too_long must be 'raise' or 'skip', got {too_long!r}")
    examples, pool = _rows(examples, "examples"), _rows(pool, "pool")
    common = dict(max_new_tokens=max_new_tokens, batch_size=batch_size, latency_examples=latency_examples,
                  too_long=too_long)
    out = PromptingComparison()
    for k in sorted(ks):
        prompts = few_shot_prompts(examples, pool, k, seed=seed, tokenizer=tokenizer, system=system)
        out.add(measure_prompts(model, tokenizer, examples, prompts, strategy="zero-shot" if k == 0 else "few-shot",
                                k=k, **common))
    if retrieval_k is not None:
        out.add(measure_prompts(model, tokenizer, examples,
                                retrieval_prompts(examples, pool, retrieval_k, tokenizer=tokenizer, system=system),
                                strategy="retrieval", k=retrieval_k, **common))
    return out


__all__ = ["ANSWER_TOKENS", "DEFAULT_KS", "PromptingComparison", "PromptingRow", "TfidfRetriever", "choose_shots", "compare_prompting",
           "few_shot_prompt", "few_shot_prompts", "measure_prompts", "query_text", "retrieval_prompts", "shot_text",
           "words"]
