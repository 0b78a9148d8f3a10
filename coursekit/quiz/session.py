"""Grading quiz answers and keeping a score: the headless logic behind ``quiz_widget``."""
from __future__ import annotations

import dataclasses
import math

from coursekit._results import ResultMixin
from coursekit.exercises import _seal
from coursekit.exercises._core import _as_number
from coursekit.quiz.bank import Bank, Question, load_bank, safe_eval


@dataclasses.dataclass(repr=False)
class QuestionResult(ResultMixin):
    question_id: str
    status: str  # correct | close | wrong | invalid
    message: str
    points: float
    max_points: float
    explanation: str = ""

    @property
    def correct(self) -> bool:
        return self.status == "correct"


def _grade_number(q: Question, answer) -> tuple[str, str]:
    value = _as_number(answer)
    if value is None or not math.isfinite(value):
        return "invalid", f"expected a finite number{(' in ' + q.unit) if q.unit else ''}, got {answer!r:.40}"
    expected = q.expected()
    allowed = max(q.rel_tol * abs(expected), q.abs_tol)
    err = abs(value - expected)
    if err <= allowed:
        return "correct", f"{value:,.6g} {q.unit}".strip() + " is right."
    if err <= 10 * allowed:
        return "close", f"{value:,.6g} is close; the tolerance is {q.rel_tol:.2%} relative."
    return "wrong", f"{value:,.6g} is not it."


def _grade_choice(scope, digest, options, salt, answer) -> tuple[str, str]:
    if not isinstance(answer, str) or _seal.normalize_choice(answer) not in options:
        return "invalid", f"expected one of {', '.join(options)}, got {answer!r:.40}"
    if _seal.choice_digest(scope, answer, salt) == digest:
        return "correct", f"({_seal.normalize_choice(answer)}) is right."
    return "wrong", f"({_seal.normalize_choice(answer)}) is not the best answer."


def _grade_config(q: Question, answer) -> tuple[str, str]:
    if not isinstance(answer, dict):
        return "invalid", f"expected a dict with fields {', '.join(f.name for f in q.fields)}, got {type(answer).__name__}"
    missing = [f.name for f in q.fields if f.name not in answer]
    if missing:
        return "invalid", f"missing field(s): {', '.join(missing)}"
    values, problems = {}, []
    for f in q.fields:
        if f.kind == "range":
            v = _as_number(answer[f.name])
            if v is None or not math.isfinite(v):
                problems.append(f"{f.name}: expected a number, got {answer[f.name]!r:.30}")
                continue
            values[f.name] = v
    for f in q.fields:
        a = answer[f.name]
        if f.kind == "choice":
            status, msg = _grade_choice(f"{q.scope}.{f.name}", f.answer_sha256, f.options, q.salt, a)
            if status != "correct":
                problems.append(f"{f.name}: {msg}")
        elif f.name in values:
            v = values[f.name]
            names = {**q.params, **values}
            try:
                lo = None if f.min is None else float(safe_eval(str(f.min), names))
                hi = None if f.max is None else float(safe_eval(str(f.max), names))
            except ValueError:
                problems.append(f"{f.name}: its bounds depend on fields that are not valid yet")
                continue
            if f.integer and v != int(v):
                problems.append(f"{f.name}: must be a whole number, got {v:g}")
            elif (lo is not None and v < lo) or (hi is not None and v > hi):
                problems.append(f"{f.name}: {v:g} is outside the sensible range")
    if problems:
        return "wrong", "; ".join(problems)
    return "correct", "every field is sensible."


def grade(question: Question, answer) -> QuestionResult:
    """Grade one answer (a number, an option letter, or a dict for a configuration question)."""
    if question.kind == "numeric":
        status, msg = _grade_number(question, answer)
    elif question.kind == "choice":
        status, msg = _grade_choice(question.scope, question.answer_sha256, question.options, question.salt, answer)
    else:
        status, msg = _grade_config(question, answer)
    points = question.points if status == "correct" else 0.0
    explanation = question.explanation_text() if status == "correct" else ""
    return QuestionResult(question.id, status, msg, points, question.points, explanation)


class QuizSession:
    """A learner's pass through one bank: answers, feedback and a running score (the widget's model)."""

    def __init__(self, lesson_or_bank, max_tries: int = 2) -> None:
        self.bank: Bank = lesson_or_bank if isinstance(lesson_or_bank, Bank) else load_bank(lesson_or_bank)
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise ValueError(f"max_tries must be a positive integer, got {max_tries!r}")
        self.max_tries = max_tries
        self.tries: dict[str, int] = {}
        self.results: dict[str, QuestionResult] = {}

    def answer(self, question_id: str, value) -> QuestionResult:
        q = self.bank[question_id]
        done = self.results.get(question_id)
        if done is not None and (done.correct or self.tries[question_id] >= self.max_tries):
            return done  # locked: a finished question keeps its score
        self.tries[question_id] = self.tries.get(question_id, 0) + 1
        result = grade(q, value)
        if result.status == "invalid":
            self.tries[question_id] -= 1  # a malformed answer does not use up a try
        elif not result.correct and self.tries[question_id] >= self.max_tries:
            result.explanation = q.explanation_text()
        self.results[question_id] = result
        return result

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results.values())

    @property
    def max_score(self) -> float:
        return self.bank.max_points

    def summary(self) -> str:
        return f"{self.score:g} / {self.max_score:g} points ({len(self.results)} of {len(self.bank.questions)} answered)"
