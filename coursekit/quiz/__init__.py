"""Quizzes: question banks per lesson (``quizzes/``), an in-notebook widget, and the nbgrader course.

    coursekit.quiz.quiz_widget("02")            # in a lesson
    python -m coursekit quiz build --out DIR   # an nbgrader course for instructors
"""
from __future__ import annotations

from coursekit.quiz.bank import Bank, Question, load_bank, quiz_dir, safe_eval, seal_document
from coursekit.quiz.session import QuestionResult, QuizSession, grade


def quiz_widget(lesson, max_tries: int = 2):
    """The ipywidgets quiz of ``lesson`` ("01"..."06")."""
    from coursekit.quiz.widget import quiz_widget as _make

    return _make(lesson, max_tries=max_tries)


def build_course(out_dir, lessons=None, **options):
    """Write an nbgrader course (config + one source assignment per lesson) at ``out_dir``; ``options``
    (``timeout_s``) and their defaults are :func:`coursekit.quiz.nbgrader_course.build_course`'s."""
    from coursekit.quiz.nbgrader_course import build_course as _build

    return _build(out_dir, lessons=lessons, **options)


__all__ = ["Bank", "Question", "QuestionResult", "QuizSession", "build_course", "grade", "load_bank", "quiz_dir",
           "quiz_widget", "safe_eval", "seal_document"]
