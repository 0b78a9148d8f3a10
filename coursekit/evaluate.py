"""Evaluation: greedy generation, the task metric, the general-skills probe (forgetting) and perplexity."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from coursekit._results import ResultMixin
from coursekit.validate import positive_int

# Room for a whole support answer (triage JSON + reply: about 56 tokens with the embedded tokenizer, 80-95 with
# larger vocabularies' tokenizers) and its end-of-sequence token.
ANSWER_TOKENS = 96
#: Timings within this fraction of each other are read as equal in the lessons: a few answers or steps timed on
#: a shared machine move that much from one run to the next.
TIMING_NOISE = 0.10
# New tokens beyond the longest reference answer: its end-of-sequence token, and room for a model that splits the
# same text into a few more tokens than the reference's own tokenization.
ANSWER_MARGIN = 8


def answer_budget(tokenizer, examples, margin: int = ANSWER_MARGIN) -> int:
    """New tokens that let every reference answer in ``examples`` be written in full, plus ``margin``.

    An answer scored exactly right is the reference, so generating further only costs time: a model that rambles
    (a base model writing a letter instead of the JSON line) is cut where no right answer could still be going.
    """
    outputs = [e["output"] for e in examples]
    if not outputs:
        raise ValueError("no examples: the answer budget comes from their reference answers")
    return max(len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs) + int(margin)


def _device_of(model):
    return next(model.parameters()).device


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 64, batch_size: int = 64,
             stop_at_eos: bool = True) -> list[str]:
    """Greedy continuations of ``prompts`` (the new text only), batched with left padding."""
    import torch

    if isinstance(prompts, str):
        prompts = [prompts]
    positive_int("max_new_tokens", max_new_tokens)
    positive_int("batch_size", batch_size)
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    outs: list[str] = []
    try:
        for i in range(0, len(prompts), batch_size):
            chunk = list(prompts[i: i + batch_size])
            # a prompt rendered by a chat template already holds its begin-of-sequence token: do not add a second
            bos = tokenizer.bos_token
            special = not (bos and all(p.startswith(bos) for p in chunk))
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=special).to(_device_of(model))
            with torch.no_grad():
                ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id,
                                     eos_token_id=tokenizer.eos_token_id if stop_at_eos else None)
            new = ids[:, enc["input_ids"].shape[1]:]
            outs += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return outs


@dataclass(repr=False)
class TaskEval(ResultMixin):
    metric: float  # fraction of answers exactly right (triage JSON and reply)
    fields: dict = field(default_factory=dict)  # fraction right per field
    n: int = 0
    seconds_per_answer: float = 0.0
    prompt_tokens_mean: float = 0.0
    samples: list = field(default_factory=list)  # a few (prompt, prediction, reference)


def evaluate_task(model, tokenizer, examples, prompts: list[str] | None = None, max_new_tokens: int | None = None,
                  batch_size: int = 64, n_samples: int = 3) -> TaskEval:
    """Score generated answers against the references, field by field (``coursekit.data.score_answer``).

    ``max_new_tokens``: None gives ``answer_budget`` (the longest reference answer in this tokenizer, plus a margin).

    ``prompts`` replaces the default zero-shot prompts (``coursekit.data.task_prompt``: the chat template for a
    model that has one); lesson 01 passes few-shot and retrieval prompts.
    """
    from coursekit.data import score_answer, task_prompt

    examples = list(examples)
    if not examples:
        raise ValueError("no examples to evaluate; pass a non-empty split")
    prompts = [task_prompt(e, tokenizer) for e in examples] if prompts is None else list(prompts)
    if len(prompts) != len(examples):
        raise ValueError(f"{len(prompts)} prompts for {len(examples)} examples; they must match one to one")
    if max_new_tokens is None:
        max_new_tokens = answer_budget(tokenizer, examples)
    t0 = time.perf_counter()
    preds = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    scores = [score_answer(p, e["output"]) for p, e in zip(preds, examples)]
    fields = {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}
    tokens = [len(tokenizer(p)["input_ids"]) for p in prompts]
    samples = [(prompts[i], preds[i], examples[i]["output"]) for i in range(min(n_samples, len(examples)))]
    return TaskEval(metric=fields["exact"], fields=fields, n=len(examples), seconds_per_answer=seconds / len(examples),
                    prompt_tokens_mean=sum(tokens) / len(tokens), samples=samples)


def task_metric(model, tokenizer, examples, **kwargs) -> float:
    """Fraction of ``examples`` answered exactly right."""
    return evaluate_task(model, tokenizer, examples, **kwargs).metric


def probe_answers(model, tokenizer, items: list[dict] | None = None) -> list[dict]:
    """Each probe item with the model's answer and whether it is right (the answer's first word matches)."""
    from coursekit.data import general_probe

    items = general_probe() if items is None else items
    preds = generate(model, tokenizer, [it["prompt"] for it in items], max_new_tokens=8, batch_size=128)
    out = []
    for it, p in zip(items, preds):
        got = p.strip().split("\n")[0].strip().rstrip(".").strip()
        out.append({**it, "prediction": got, "correct": got == it["answer"] or got.startswith(it["answer"] + " ")
                    or got.startswith(it["answer"] + ".")})
    return out


def general_probe_score(model, tokenizer, items: list[dict] | None = None) -> float:
    """Fraction of the general-skills probe answered right: what fine-tuning must not destroy."""
    answers = probe_answers(model, tokenizer, items)
    return sum(a["correct"] for a in answers) / len(answers)


def perplexity(model, tokenizer, texts: list[str], batch_size: int = 64, max_length: int = 256) -> float:
    """exp(mean token cross-entropy) over ``texts`` (each as ``<s> text </s>``)."""
    import math

    import torch

    texts = list(texts)
    if not texts:
        raise ValueError("perplexity needs at least one text")
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "right"
    total_loss, total_tokens = 0.0, 0
    try:
        for i in range(0, len(texts), batch_size):
            chunk = [t + tokenizer.eos_token for t in texts[i: i + batch_size]]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
            enc = enc.to(_device_of(model))
            labels = enc["input_ids"].clone()
            labels[enc["attention_mask"] == 0] = -100
            with torch.no_grad():
                logits = model(**enc).logits.float()
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)),
                                                     labels[:, 1:].reshape(-1), reduction="sum", ignore_index=-100)
            total_loss += float(loss)
            total_tokens += int((labels[:, 1:] != -100).sum())
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return math.exp(total_loss / total_tokens)


def timed_generate(model, tokenizer, prompts: list[str], max_new_tokens: int, *, stop_at_eos: bool = True,
                   rounds: int = 1) -> tuple[float, list[str]]:
    """Seconds per answer at batch 1 (one request at a time, greedy) after one warm-up answer, and the answers.

    The prompts are answered ``rounds`` times and the fastest round is kept (as ``timeit`` does): a slower round
    measures what else the machine was doing."""
    import time

    positive_int("rounds", rounds)
    generate(model, tokenizer, prompts[:1], max_new_tokens=max_new_tokens, batch_size=1, stop_at_eos=stop_at_eos)
    best, answers = float("inf"), []
    for _ in range(rounds):
        t0 = time.perf_counter()
        answers = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=1,
                           stop_at_eos=stop_at_eos)
        best = min(best, time.perf_counter() - t0)
    return best / len(prompts), answers


def rate_difference(p1: float, n1: int, p2: float, n2: int, z: float = 1.96) -> dict:
    """Whether two success rates measured on ``n1`` and ``n2`` examples differ by more than chance would explain.

    A two-proportion z-test with the pooled rate and Yates' continuity correction: the standard error of
    ``p1 - p2`` is ``sqrt(p(1-p) (1/n1 + 1/n2))`` with ``p`` the pooled rate, and the margin is ``z`` standard errors
    (95% two-sided at the default) plus the correction ``(1/n1 + 1/n2) / 2``, half a ticket on each side. Without
    it the test calls differences significant that Fisher's exact test does not on a few dozen examples near 0 or 1
    (32/32 against 28/32: z-test margin 11.9%, exact two-sided p = 0.11), and a margin of 0 when both rates are 0 or
    1. Returns the difference, its standard error, the margin and ``verdict``: ``"higher"`` (p1 above p2),
    ``"lower"``, or ``"tie"`` (within the margin: on this many examples the two cannot be told apart).
    """
    import math

    for name, v in (("n1", n1), ("n2", n2)):
        positive_int(name, v, of="examples")
    for name, v in (("p1", p1), ("p2", p2)):
        if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
            raise ValueError(f"{name} must be a rate between 0 and 1, got {v!r}")
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = p1 - p2
    margin = z * se + (1 / n1 + 1 / n2) / 2
    verdict = "tie" if abs(diff) <= margin else ("higher" if diff > 0 else "lower")
    return {"difference": diff, "standard_error": se, "margin": margin, "verdict": verdict}


def best_and_ties(scores: dict, n: int) -> dict:
    """The best of several success rates, each measured on ``n`` examples, and those chance cannot tell from it.

    ``scores`` maps a name (a method, a rank) to its rate. Returns ``best`` (the name of the highest rate; the first
    one on equal rates), ``tied`` (the other names whose difference from the best is within ``rate_difference``'s
    margin, in the order given) and ``margin``: the difference that would have counted in the widest comparison
    that made a tie (the pooled margin grows as the rates move away from 0 and 1), or without ties the margin at the
    best rate (the continuity correction alone when the best rate is 0 or 1).
    """
    if not scores:
        raise ValueError("best_and_ties needs at least one score")
    best = max(scores, key=lambda k: scores[k])
    top = scores[best]
    tests = {k: rate_difference(v, n, top, n) for k, v in scores.items() if k != best}
    tied = [k for k, t in tests.items() if t["verdict"] == "tie"]
    margin = max((tests[k]["margin"] for k in tied), default=rate_difference(top, n, top, n)["margin"])
    return {"best": best, "tied": tied, "margin": margin}


@dataclass
class MergeGap:
    """How far a merge moved a model's logits on a few inputs: ``max_abs_diff`` against ``logit_scale``."""

    max_abs_diff: float
    logit_scale: float
    merged: object = field(repr=False, default=None)

    @property
    def relative(self) -> float:
        return self.max_abs_diff / self.logit_scale if self.logit_scale else float("inf")


def merge_logit_gap(model, merge, tokenizer, texts: list[str]) -> MergeGap:
    """Logits of ``model`` on ``texts``, then of ``merge(model)``: the largest difference, in fp32.

    ``merge`` may change ``model`` in place (``merge_and_unload`` does), so the unmerged logits are taken first.
    """
    import torch

    if not texts:
        raise ValueError("merge_logit_gap needs at least one text to compare the logits on")
    model.eval()
    batch = tokenizer(list(texts), return_tensors="pt", padding=True)
    batch = {k: v.to(_device_of(model)) for k, v in batch.items()}
    with torch.no_grad():
        before = model(**batch).logits.float()
    merged = merge(model).eval()
    with torch.no_grad():
        after = merged(**batch).logits.float()
    return MergeGap((after - before).abs().max().item(), before.abs().max().item(), merged)
