"""Try-it exercises: a question, a checker, hints that get more specific, an explanation at the end.

Three kinds:

* ``NumericExercise`` - the answer is computed at check time from the question's parameters; ``correct`` within
  the tolerance, ``close`` within a wider band (the feedback says the tolerance), otherwise ``wrong``.
* ``ChoiceExercise`` - options shown, the correct one stored as a salted hash, the explanation sealed with it.
* ``CodeExercise`` - the learner's function runs on hidden cases with fresh random inputs, under a time limit, and
  is compared with a reference implementation; exceptions, wrong types, wrong shapes and NaNs get a clear message.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import threading
from typing import Any, Callable

from coursekit import grading
from coursekit._results import ResultMixin
from coursekit.grading import STATUSES


@dataclasses.dataclass(repr=False)
class Feedback(ResultMixin):
    """What ``Exercise.check`` says: ``status`` is one of correct / close / wrong / invalid."""

    exercise_id: str
    status: str
    message: str
    tries: int
    hint: str | None = None
    explanation: str | None = None

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.correct

    def markdown(self) -> str:
        icon = {"correct": "✅", "close": "🟡", "wrong": "❌", "invalid": "⚠️"}[self.status]
        parts = [f"{icon} **{self.status}** (try {self.tries}): {self.message}"]
        if self.hint:
            parts.append(f"💡 *Hint:* {self.hint}")
        if self.explanation:
            parts.append(f"📘 *Explanation:* {self.explanation}")
        return "\n\n".join(parts)

    def _repr_markdown_(self) -> str:  # pragma: no cover - notebook presentation
        return self.markdown()


def _display_markdown(text: str) -> None:
    """Show Markdown in a notebook, plain text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is not None:
            display(Markdown(text))
            return
    except ImportError:  # pragma: no cover - IPython is a dependency of the course
        pass
    print(text)


class Exercise:
    """Base class: tries, hints and explanation bookkeeping. Subclasses implement ``_grade``."""

    kind = "exercise"

    def __init__(self, exercise_id: str, title: str, prompt: str, hints: list[str], *, params: dict | None = None,
                 max_tries: int = 3) -> None:
        if not hints:
            raise ValueError(f"exercise {exercise_id!r}: at least one hint is needed")
        if max_tries < 1:
            raise ValueError(f"exercise {exercise_id!r}: max_tries must be >= 1, got {max_tries}")
        self.id = exercise_id
        self.lesson = exercise_id.split(".", 1)[0]
        self.title = title
        self.prompt = prompt
        self.params = dict(params or {})
        self.hints = [self._fill(h) for h in hints]
        self.max_tries = max_tries
        self.tries = 0
        self._hints_shown = 0
        self.solved = False

    def _fill(self, text: str) -> str:
        """``text`` with the question's parameters filled in."""
        try:
            return text.format(**self.params)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"exercise {self.id!r}: text {text[:40]!r} names a parameter that is not in "
                             f"params ({', '.join(self.params) or 'none'}): {exc}") from None

    # --- what the learner calls -------------------------------------------------------------------------
    def question_markdown(self) -> str:
        text = self._fill(self.prompt)
        return f"### Try it ({self.id}): {self.title}\n\n{text}\n\n{self._extra_markdown()}".rstrip()

    def show(self) -> None:
        """Display the question as Markdown."""
        _display_markdown(self.question_markdown())

    def hint(self) -> str:
        """The next hint (each call is more specific, the last one repeats)."""
        index = min(self._hints_shown, len(self.hints) - 1)
        self._hints_shown = min(self._hints_shown + 1, len(self.hints))
        text = self.hints[index]
        _display_markdown(f"💡 *Hint {index + 1}/{len(self.hints)}:* {text}")
        return text

    def check(self, answer: Any = None, *, display: bool = True) -> Feedback:
        """Grade ``answer``: displays and returns a ``Feedback`` (correct / close / wrong / invalid)."""
        self.tries += 1
        status, message = self._grade(answer)
        if status not in STATUSES:  # pragma: no cover - programming error in a subclass
            raise RuntimeError(f"bad status {status!r}")
        feedback = Feedback(self.id, status, message, self.tries)
        if status == "correct":
            self.solved = True
            feedback.explanation = self.explanation()
        else:
            index = min(self.tries - 1, len(self.hints) - 1)
            self._hints_shown = max(self._hints_shown, index + 1)
            feedback.hint = self.hints[index]
            if self.tries >= self.max_tries:
                feedback.explanation = self.explanation()
        if display:
            _display_markdown(feedback.markdown())
        return feedback

    def reset(self) -> None:
        self.tries = 0
        self._hints_shown = 0
        self.solved = False

    # --- subclass hooks --------------------------------------------------------------------------------
    def _extra_markdown(self) -> str:
        return ""

    def _grade(self, answer) -> tuple[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def explanation(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}: {self.title}>"


class NumericExercise(Exercise):
    """A number computed from the question's parameters at check time."""

    kind = "numeric"

    def __init__(self, exercise_id, title, prompt, hints, *, answer_fn: Callable[[dict], float],
                 explain_fn: Callable[[dict, float], str], unit: str = "", rel_tol: float = 0.01,
                 abs_tol: float = 0.0, close_factor: float = 10.0, **kwargs) -> None:
        super().__init__(exercise_id, title, prompt, hints, **kwargs)
        if rel_tol < 0 or abs_tol < 0 or close_factor < 1:
            raise ValueError(f"exercise {exercise_id!r}: tolerances must be >= 0 and close_factor >= 1")
        self._answer_fn = answer_fn
        self._explain_fn = explain_fn
        self.unit = unit
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.close_factor = close_factor

    def expected(self) -> float:
        return float(self._answer_fn(dict(self.params)))

    def tolerance_text(self) -> str:
        return grading.tolerance_text(self.rel_tol, self.abs_tol, self.unit)

    def _extra_markdown(self) -> str:
        unit = f" in **{self.unit}**" if self.unit else ""
        if not (self.rel_tol or self.abs_tol):
            return f"*Answer with a number{unit}; exact answers only.*"
        return f"*Answer with a number{unit}; accepted within {self.tolerance_text()}.*"

    def _grade(self, answer):
        return grading.grade_number(answer, self.expected(), rel_tol=self.rel_tol, abs_tol=self.abs_tol,
                                    close_factor=self.close_factor, unit=self.unit)

    def explanation(self) -> str:
        return self._explain_fn(dict(self.params), self.expected())


class ChoiceExercise(Exercise):
    """Pick one option; the correct key is stored as a salted hash and the explanation sealed with it."""

    kind = "choice"

    def __init__(self, exercise_id, title, prompt, hints, *, options: dict[str, str], answer_sha256: str,
                 explanation_sealed: str, **kwargs) -> None:
        super().__init__(exercise_id, title, prompt, hints, **kwargs)
        if len(options) < 2:
            raise ValueError(f"exercise {exercise_id!r}: a choice needs at least two options")
        self.options = {grading.normalize_choice(k): v for k, v in options.items()}
        self._digest = answer_sha256
        self._sealed = explanation_sealed

    def _extra_markdown(self) -> str:
        lines = [f"- **{k}**: {v}" for k, v in self.options.items()]
        return "\n".join(lines) + "\n\n*Answer with the option's letter, e.g. `check(\"a\")`.*"

    def _grade(self, answer):
        return grading.grade_choice(answer, self.options, self._digest, self.id, match_text=True)

    def explanation(self) -> str:
        key = grading.find_choice(self.id, self._digest, self.options)
        if key is None:  # pragma: no cover - a broken catalog entry; tests catch it
            return "(no explanation stored)"
        text = grading.unseal(self._sealed, self.id, key) or "(no explanation stored)"
        return f"The answer is ({key}): {text}"


class _TimeLimit(BaseException):
    """Raised inside learner code when the time limit is reached (BaseException: `except Exception` won't eat it)."""


def run_with_time_limit(fn: Callable, args: tuple, timeout_s: float):
    """Call ``fn(*args)``; raise ``TimeoutError`` after ``timeout_s`` seconds.

    In the main thread on POSIX a real-time timer interrupts endless Python loops. Elsewhere (threads, Windows)
    the call runs in a daemon thread and is abandoned after the limit.
    """
    main = threading.current_thread() is threading.main_thread()
    if main and hasattr(signal, "setitimer") and os.name == "posix":
        def _on_alarm(signum, frame):
            raise _TimeLimit()

        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            return fn(*args)
        except _TimeLimit:
            raise TimeoutError(f"your function did not return within {timeout_s:g} s") from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    box: dict = {}

    def _target():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - reported to the learner
            box["error"] = exc

    worker = threading.Thread(target=_target, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"your function did not return within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


class CodeExercise(Exercise):
    """Implement a function; it is compared with a reference on hidden cases with fresh random inputs."""

    kind = "code"

    def __init__(self, exercise_id, title, prompt, hints, *, function_name: str, signature: str,
                 make_cases: Callable[[Any], list[tuple]], reference: Callable, compare: Callable,
                 explain_text: str, n_cases: int = 5, timeout_s: float = 5.0, **kwargs) -> None:
        super().__init__(exercise_id, title, prompt, hints, **kwargs)
        self.function_name = function_name
        self.signature = signature
        self._make_cases = make_cases
        self._reference = reference
        self._compare = compare
        self._explain_text = explain_text
        self.n_cases = n_cases
        self.timeout_s = timeout_s

    def _extra_markdown(self) -> str:
        return (f"*Write `def {self.signature}:` and pass the function itself: `check({self.function_name})`. "
                f"It runs on {self.n_cases} hidden cases with fresh random inputs, {self.timeout_s:g} s each.*")

    def _grade(self, answer):
        if not callable(answer):
            return "invalid", (f"pass your function itself (e.g. check({self.function_name})), not its result; "
                               f"got {type(answer).__name__}")
        import torch

        seed = int.from_bytes(os.urandom(4), "little")
        generator = torch.Generator().manual_seed(seed)
        cases = self._make_cases(generator)[: self.n_cases]
        for number, case in enumerate(cases, start=1):
            learner_args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in case)
            expected = self._reference(*case)
            try:
                got = run_with_time_limit(answer, learner_args, self.timeout_s)
            except TimeoutError as exc:
                return "wrong", f"case {number}: {exc} (an endless loop?)."
            except Exception as exc:  # noqa: BLE001 - the learner's error, shown briefly
                return "wrong", f"case {number}: your function raised {type(exc).__name__}: {exc}"
            problem = self._compare(got, expected, case)
            if problem:
                kind, text = problem
                return kind, f"case {number} (shapes {self._describe(case)}): {text}"
        return "correct", f"all {len(cases)} hidden cases match the reference."

    @staticmethod
    def _describe(case) -> str:
        out = []
        for a in case:
            shape = getattr(a, "shape", None)
            out.append("x".join(map(str, shape)) if shape is not None else repr(a))
        return ", ".join(out)

    def explanation(self) -> str:
        return self._explain_text


# --- comparisons shared by the code exercises ----------------------------------------------------------
def compare_tensors(got, expected, *, rtol=1e-4, atol=1e-5, dtype_exact=False):
    """None when ``got`` matches; otherwise (status, message). Exact type check: no look-alike objects."""
    import torch

    if type(got) is not torch.Tensor:  # noqa: E721 - exact type on purpose
        return "invalid", f"expected a torch.Tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return "wrong", f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    if dtype_exact and got.dtype != expected.dtype:
        return "wrong", f"expected dtype {expected.dtype}, got {got.dtype}"
    if not got.is_floating_point() and expected.is_floating_point():
        return "wrong", f"expected a floating-point tensor, got {got.dtype}"
    g = got.detach().to(torch.float64)
    e = expected.detach().to(torch.float64)
    if bool(torch.isnan(g).any()):
        return "invalid", "your result contains NaN"
    if bool(torch.isinf(g).any()) and not bool(torch.isinf(e).any()):
        return "invalid", "your result contains inf"
    err = (g - e).abs()
    limit = atol + rtol * e.abs()
    if bool((err <= limit).all()):
        return None
    worst = float((err - limit).max()) + float(limit.max())
    return "wrong", f"values differ from the reference (largest difference {worst:.3g})"
