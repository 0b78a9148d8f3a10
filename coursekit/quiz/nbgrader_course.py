"""Build an nbgrader course from the question banks: ``python -m coursekit quiz build --out DIR``.

Layout written::

    DIR/nbgrader_config.py
    DIR/source/quizNN/quizNN.ipynb        one assignment per lesson

Each question becomes a read-only Markdown cell, a solution cell (``### BEGIN SOLUTION``) and an autograded test
cell whose visible part checks the form of the answer and whose hidden part (``### BEGIN HIDDEN TESTS``) checks the
value. Hidden tests must hold against hostile code in the same kernel, so they call no name a student can rebind:
the real ``type`` is reached as ``(0).__class__.__class__``, exact types are required (no look-alike objects, no
``bool`` for a number), comparisons use operators on exact ``int``/``float``/``str`` values whose methods cannot be
patched, and expected values are constants computed here, at build time, from the bank's parameters.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from coursekit.lessons import PRACTICE_LESSONS
from coursekit.quiz.bank import Bank, Question, load_bank, safe_eval
from coursekit.validate import positive_int

COURSE_ID = "finetuning-course"
_TYPE = "(0).__class__.__class__"
_INT, _FLOAT, _STR, _DICT = "(0).__class__", "(0.0).__class__", "''.__class__", "{}.__class__"


def assignment_name(lesson: str) -> str:
    return f"quiz{lesson}"


def _meta(grade_id, *, solution=False, grade=False, locked=False, points=None):
    nb = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
          "task": False}
    if points is not None:
        nb["points"] = points
    return {"nbgrader": nb}


def _md(source, grade_id):
    return {"cell_type": "markdown", "id": _cell_id(grade_id), "metadata": _meta(grade_id, locked=True),
            "source": source}


def _code(source, metadata):
    return {"cell_type": "code", "execution_count": None, "id": _cell_id(metadata["nbgrader"]["grade_id"]),
            "metadata": metadata, "outputs": [], "source": source}


def _cell_id(grade_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", grade_id)[:64]


def var_name(q: Question) -> str:
    return f"ANSWER_{q.id}"


def _float_literal(x: float) -> str:
    return repr(float(x))


def _choice_check(expr: str, key: str, what: str) -> list[str]:
    return [f"assert _T({expr}) is {_STR}, {what!r}",
            f"assert {_STR}.lower({_STR}.strip({expr})) == {key!r}, {what!r}"]


def _number_check(expr: str, name: str, integer: bool = False) -> list[str]:
    allowed = f"_T({expr}) is {_INT}" if integer else f"_T({expr}) is {_INT} or _T({expr}) is {_FLOAT}"
    return [f"assert {allowed}, {f'{name} must be a number' + (' (an int)' if integer else '')!r}",
            f"assert {expr} - {expr} == 0, {f'{name} must be finite'!r}"]


def _bound_source(expr, q: Question, field_vars: dict) -> str:
    """A bound expression as Python over the field variables (params become literals)."""
    tree = ast.parse(str(expr), mode="eval")
    safe_eval(str(expr), {**q.params, **{k: 1.0 for k in field_vars}})  # validates the expression

    class _Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id in field_vars:
                return ast.copy_location(ast.Name(id=field_vars[node.id], ctx=ast.Load()), node)
            if node.id in q.params:
                return ast.copy_location(ast.Constant(q.params[node.id]), node)
            raise ValueError(f"question {q.id!r}: bound {expr!r} uses {node.id!r}, which nbgrader tests cannot "
                             f"evaluate")

    return ast.unparse(_Rename().visit(tree))


def hidden_checks(q: Question) -> list[str]:
    """The hidden test lines for ``q`` (uses only operators, literals and ``_T``, the real ``type``)."""
    v = var_name(q)
    lines = [f"_T = {_TYPE}"]
    if q.kind == "choice":
        lines += _choice_check(v, q.correct_key(), "not the right option")
    elif q.kind == "numeric":
        expected = q.expected()
        tol = max(q.rel_tol * abs(expected), q.abs_tol)
        lines += _number_check(v, v)
        lines += [f"_d = {v} - {_float_literal(expected)}",
                  f"assert -{_float_literal(tol)} <= _d <= {_float_literal(tol)}, 'not the right value'"]
    else:
        lines.append(f"assert _T({v}) is {_DICT}, 'the plan must be a dict'")
        field_vars = {f.name: f"_f_{f.name}" for f in q.fields}
        for f in q.fields:
            lines.append(f"_f_{f.name} = {_DICT}.get({v}, {f.name!r})")
        for f in q.fields:
            fv = field_vars[f.name]
            if f.kind == "choice":
                lines += _choice_check(fv, q.field_key(f), f"{f.name}: not the right choice")
            else:
                lines += _number_check(fv, f.name, integer=f.integer)
        for f in q.fields:
            if f.kind == "range":
                fv = field_vars[f.name]
                if f.min is not None:
                    lines.append(f"assert {fv} >= ({_bound_source(f.min, q, field_vars)}), "
                                 f"{f'{f.name} is too small'!r}")
                if f.max is not None:
                    lines.append(f"assert {fv} <= ({_bound_source(f.max, q, field_vars)}), "
                                 f"{f'{f.name} is too large'!r}")
    return lines


def solution_value(q: Question):
    """A correct answer (the instructor's source notebook must pass its own tests)."""
    if q.kind == "choice":
        return q.correct_key()
    if q.kind == "numeric":
        value = q.expected()
        return int(value) if value == int(value) and abs(value) < 2 ** 53 else value
    plan, numbers = {}, {}
    for f in q.fields:
        if f.kind == "choice":
            plan[f.name] = q.field_key(f)
    for _ in range(len(q.fields)):  # bounds may depend on other fields: settle them in a few passes
        for f in q.fields:
            if f.kind != "range":
                continue
            if f.example is not None:
                numbers[f.name] = int(f.example) if f.integer else f.example
                continue
            names = {**q.params, **numbers}
            try:
                lo = None if f.min is None else float(safe_eval(str(f.min), names))
                hi = None if f.max is None else float(safe_eval(str(f.max), names))
            except ValueError:
                continue
            lo = hi if lo is None else lo
            hi = lo if hi is None else hi
            value = (lo + hi) / 2
            if f.integer:
                value = int(round(value))
            numbers[f.name] = value
    plan.update({f.name: numbers[f.name] for f in q.fields if f.kind == "range"})
    return plan


def _answer_hint(q: Question) -> str:
    if q.kind == "choice":
        return f"# Your answer: one option letter as a string, e.g. {var_name(q)} = \"a\""
    if q.kind == "numeric":
        unit = f" in {q.unit}" if q.unit else ""
        return f"# Your answer: a number{unit}, e.g. {var_name(q)} = 0.0"
    keys = ", ".join(f"\"{f.name}\": ..." for f in q.fields)
    return f"# Your answer: a dict, {var_name(q)} = {{{keys}}}"


def _question_markdown(number: int, q: Question) -> str:
    lines = [f"**Q{number}** ({q.points:g} point{'s' if q.points != 1 else ''}). {q.text()}"]
    if q.kind == "choice":
        lines.append("")
        lines += [f"- **{k}**: {t}" for k, t in q.options.items()]
    elif q.kind == "config":
        lines.append("")
        for f in q.fields:
            if f.kind == "choice":
                opts = "; ".join(f"`\"{k}\"` {t}" for k, t in f.options.items())
                lines.append(f"- `{f.name}`: one of {opts}")
            else:
                lines.append(f"- `{f.name}`: a number{' (whole)' if f.integer else ''}")
    return "\n".join(lines)


def assignment_notebook(bank: Bank) -> dict:
    name = assignment_name(bank.lesson)
    cells = [_md(f"# Quiz {bank.lesson}: {bank.title}\n\nAnswer each question in the cell below it, replacing "
                 f"`raise NotImplementedError()`. The cells after each answer check its form; hidden tests grade it. "
                 f"Run all cells before you submit.", f"{name}_intro")]
    for number, q in enumerate(bank.questions, start=1):
        v = var_name(q)
        cells.append(_md(_question_markdown(number, q), f"{q.id}_text"))
        solution = f"{_answer_hint(q)}\n### BEGIN SOLUTION\n{v} = {solution_value(q)!r}\n### END SOLUTION"
        cells.append(_code(solution, _meta(f"{q.id}_answer", solution=True)))
        visible = {"choice": f"assert isinstance({v}, str), 'answer with an option letter as a string'",
                   "numeric": f"assert isinstance({v}, (int, float)), 'answer with a number'",
                   "config": f"assert isinstance({v}, dict), 'answer with a dict'"}[q.kind]
        test = "\n".join([visible, "### BEGIN HIDDEN TESTS", *hidden_checks(q), "### END HIDDEN TESTS"])
        cells.append(_code(test, _meta(f"{q.id}_test", grade=True, locked=True, points=q.points)))
    return {"cells": cells, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}


# Seconds a quiz cell may run before nbgrader interrupts it. A quiz cell assigns a literal or runs a few asserts on
# exact values. Measured with `python benchmarks/autograde_class.py` (100 submissions of quiz 06, 2 shared CPU cores
# under load): 1552 answer and test cells took 8 ms median, 0.36 s at most (a notebook's first cell). 30 s is
# about 80 times that, so a much slower laptop still meets it, as does an answer cell that imports numpy (0.4 s
# here) or even torch (5.7 s here). It is also nbgrader's own default. The limit only bounds what a broken or
# hostile submission costs: each endless loop is cut after 30 s (the 600 s used before let one loop hold the batch
# for ten minutes). `quiz build --timeout-s N` changes it, e.g. for notebooks with cells that train.
CELL_TIMEOUT_S = 30

CONFIG_TEMPLATE = '''# nbgrader configuration of the course's quizzes (written by `python -m coursekit quiz build`).
c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.course_id = {course_id!r}

# nbgrader 0.9.6 runs every notebook (validate, autograde) with its Execute preprocessor, whose options are set here.
# Seconds per cell. Quiz cells run in milliseconds; this limit only bounds what an endless loop costs.
c.Execute.timeout = {timeout_s}
# At the limit, interrupt the kernel, record a CellTimeoutError in that cell (0 points for its answer) and go on
# with the next cell. (Execute always continues after a cell's error: its allow_errors is fixed to True.)
c.Execute.interrupt_on_timeout = True
# If a cell's output is still arriving 4 s (iopub_timeout) after its reply, as with a kernel that ignores the
# interrupt and keeps running, stop this notebook with an error (0 for it) instead of waiting on every later cell;
# nbgrader shuts the kernel down and grades the next submission.
c.Execute.raise_on_iopub_timeout = True
# Seconds to wait for a kernel to start (no student code runs before it is ready).
c.Execute.startup_timeout = 60
# A cell that prints megabytes is cut to this many lines in the graded notebook.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100
c.ClearSolutions.code_stub = {{"python": "# YOUR ANSWER HERE\\nraise NotImplementedError()"}}
'''


def build_course(out_dir, lessons=None, timeout_s: int = CELL_TIMEOUT_S) -> list[Path]:
    """Write ``nbgrader_config.py`` and ``source/quizNN/quizNN.ipynb`` for each lesson; returns the notebooks.

    ``timeout_s`` is nbgrader's limit per cell in seconds (a whole number >= 1; default :data:`CELL_TIMEOUT_S`).
    """
    if lessons is None:
        lessons = list(PRACTICE_LESSONS)
    if isinstance(lessons, str):
        lessons = [s.strip() for s in lessons.split(",") if s.strip()]
    bad = [ls for ls in lessons if ls not in PRACTICE_LESSONS]
    if bad or not lessons:
        raise ValueError(f"lessons must be among {', '.join(PRACTICE_LESSONS)}, got {lessons!r}")
    positive_int("timeout_s", timeout_s, of="seconds")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(CONFIG_TEMPLATE.format(course_id=COURSE_ID, timeout_s=timeout_s))
    written = []
    for lesson in lessons:
        bank = load_bank(lesson)
        name = assignment_name(lesson)
        folder = out / "source" / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.ipynb"
        path.write_text(json.dumps(assignment_notebook(bank), indent=1) + "\n")
        written.append(path)
    return written



def submit_answers(course_dir, assignment: str, student: str, answers: dict,
                   timestamp: str = "2024-01-01 12:00:00.000000 UTC") -> Path:
    """Write ``student``'s submission of ``assignment`` into ``course_dir/submitted``, as nbgrader collects it.

    ``answers`` maps a question's grade id (without ``_answer``) to the source of its answer cell; other cells stay
    as released. For trying the grading before a class does (tests, the ``autograde_class`` benchmark).
    """
    import json

    release = Path(course_dir) / "release" / assignment / f"{assignment}.ipynb"
    if not release.is_file():
        raise ValueError(f"{release} does not exist: run `nbgrader generate_assignment {assignment}` first")
    nb = json.loads(release.read_text())
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id", "")
        if grade_id.endswith("_answer") and grade_id[: -len("_answer")] in answers:
            cell["source"] = answers[grade_id[: -len("_answer")]]
    folder = Path(course_dir) / "submitted" / student / assignment
    folder.mkdir(parents=True)
    (folder / f"{assignment}.ipynb").write_text(json.dumps(nb))
    (folder / "timestamp.txt").write_text(timestamp)
    return folder
