"""Grading quiz answers and keeping a score: the headless logic behind ``quiz_widget``."""
from __future__ import annotations

import dataclasses
import math

from coursekit import grading
from coursekit._results import ResultMixin
from coursekit.quiz.bank import Bank, Field, Question, load_bank, safe_eval
from coursekit.validate import positive_int


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
    return grading.grade_number(answer, q.expected(), rel_tol=q.rel_tol, abs_tol=q.abs_tol, unit=q.unit)


def _grade_choice(scope, digest, options, salt, answer) -> tuple[str, str]:
    return grading.grade_choice(answer, options, digest, scope, salt)


def _range_values(q: Question, answer: dict) -> tuple[dict, list[str]]:
    """The range fields' answers as numbers, and a problem for each that is not one."""
    values, problems = {}, []
    for f in q.fields:
        if f.kind != "range":
            continue
        v = grading.as_number(answer[f.name])
        if v is None or not math.isfinite(v):
            problems.append(f"{f.name}: expected a number, got {answer[f.name]!r:.30}")
        else:
            values[f.name] = v
    return values, problems


def _range_problem(q: Question, f: Field, v: float, values: dict) -> str | None:
    """What is wrong with range field ``f``'s value ``v`` (its bounds may name other fields), or None."""
    names = {**q.params, **values}
    try:
        lo = None if f.min is None else float(safe_eval(str(f.min), names))
        hi = None if f.max is None else float(safe_eval(str(f.max), names))
    except ValueError:
        return f"{f.name}: its bounds depend on fields that are not valid yet"
    if f.integer and v != int(v):
        return f"{f.name}: must be a whole number, got {v:g}"
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        return f"{f.name}: {v:g} is outside the sensible range"
    return None


def _grade_config(q: Question, answer) -> tuple[str, str]:
    if not isinstance(answer, dict):
        return "invalid", f"expected a dict with fields {', '.join(f.name for f in q.fields)}, got {type(answer).__name__}"
    missing = [f.name for f in q.fields if f.name not in answer]
    if missing:
        return "invalid", f"missing field(s): {', '.join(missing)}"
    values, problems = _range_values(q, answer)
    for f in q.fields:
        if f.kind == "choice":
            status, msg = _grade_choice(f"{q.scope}.{f.name}", f.answer_sha256, f.options, q.salt, answer[f.name])
            problem = None if status == "correct" else f"{f.name}: {msg}"
        else:
            problem = _range_problem(q, f, values[f.name], values) if f.name in values else None
        if problem:
            problems.append(problem)
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
        self.max_tries = positive_int("max_tries", max_tries)
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
