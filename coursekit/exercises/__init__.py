"""Try-it exercises with instant feedback, used inside every lesson.

    ex = coursekit.exercises.get("02.full_ft_adam_8b")
    ex.show()                 # the question, as Markdown
    ex.check(96)              # correct / close (with the tolerance) / wrong, and a hint
    ex.hint()                 # the next, more specific hint

Each exercise keeps its own tries: hints get more specific on every wrong try and the explanation appears after a
correct answer or after ``max_tries`` tries.
"""
from __future__ import annotations

from coursekit.exercises._core import (
    ChoiceExercise,
    CodeExercise,
    Exercise,
    Feedback,
    NumericExercise,
    run_with_time_limit,
)
from coursekit.lessons import PRACTICE_LESSONS, check_lesson

__all__ = ["get", "list_exercises", "check", "Exercise", "Feedback", "NumericExercise", "ChoiceExercise",
           "CodeExercise", "run_with_time_limit", "PRACTICE_LESSONS"]

_REGISTRY: dict[str, Exercise] | None = None


def _registry() -> dict[str, Exercise]:
    global _REGISTRY
    if _REGISTRY is None:
        from coursekit.exercises.catalog import EXERCISES

        _REGISTRY = {ex.id: ex for ex in EXERCISES}
    return _REGISTRY


def list_exercises(lesson: str | None = None) -> list[str]:
    """Exercise ids, all or for one lesson ("01" ... "06")."""
    ids = list(_registry())
    if lesson is None:
        return ids
    lesson = check_lesson(lesson)
    return [i for i in ids if i.startswith(lesson + ".")]


def get(exercise_id: str) -> Exercise:
    """The exercise with this id, e.g. ``"04.lora_forward"`` (its tries are kept between calls)."""
    if not isinstance(exercise_id, str):
        raise ValueError(f"exercise_id must be a string like '02.full_ft_adam_8b', got {type(exercise_id).__name__}")
    registry = _registry()
    if exercise_id not in registry:
        lesson = exercise_id.split(".", 1)[0]
        same = [i for i in registry if i.startswith(lesson + ".")]
        known = same or list(registry)
        raise ValueError(f"no exercise {exercise_id!r}; known ids: {', '.join(known)}")
    return registry[exercise_id]


def check(exercise_id: str, answer=None, *, display: bool = True) -> Feedback:
    """Shortcut: ``get(exercise_id).check(answer)``."""
    return get(exercise_id).check(answer, display=display)
