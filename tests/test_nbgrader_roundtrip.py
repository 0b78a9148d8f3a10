"""The nbgrader instructor workflow end to end, with honest, partial, empty and hostile submissions.

build -> validate (source) -> generate_assignment -> validate --invert (release) -> submissions placed in
submitted/ -> autograde -> generate_feedback -> export CSV, with exact expected scores.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.quiz import load_bank
from coursekit.quiz.nbgrader_course import build_course, solution_value, var_name

LESSON = "06"
ASSIGNMENT = f"quiz{LESSON}"
NBGRADER = str(Path(sys.executable).with_name("nbgrader"))
CELL_TIMEOUT_S = 5  # the course config uses 600 s; the endless-loop student should not cost that here


def _run(args, cwd, check=True):
    bindir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH
    env = dict(os.environ, PYTHONHASHSEED="0", PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([NBGRADER, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _correct_sources(bank):
    return {q.id: f"{var_name(q)} = {solution_value(q)!r}" for q in bank.questions}


def _wrong_sources(bank):
    out = {}
    for q in bank.questions:
        if q.kind == "choice":
            wrong = next(k for k in q.options if k != q.correct_key())
            out[q.id] = f"{var_name(q)} = {wrong!r}"
        elif q.kind == "numeric":
            out[q.id] = f"{var_name(q)} = {q.expected() * 3 + 1!r}"
        else:
            plan = solution_value(q)
            plan["method"] = "a"
            out[q.id] = f"{var_name(q)} = {plan!r}"
    return out


PATCH_EVERYTHING = """
import builtins, math, operator, hashlib
import numpy
math.isclose = lambda *a, **k: True
numpy.allclose = lambda *a, **k: True
numpy.isclose = lambda *a, **k: True
operator.eq = lambda *a: True
hashlib.sha256 = lambda *a, **k: None
builtins.abs = lambda x: 0
builtins.round = lambda *a, **k: 0
"""

ALWAYS_EQUAL = """
class _Eq(str):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def lower(self): return self
    def strip(self): return self
    __hash__ = str.__hash__
class _Num(float):
    def __eq__(self, other): return True
    def __sub__(self, other): return 0.0
    def __le__(self, other): return True
    def __ge__(self, other): return True
    def __lt__(self, other): return True
    def __gt__(self, other): return True
class _Plan(dict):
    def get(self, key, default=None): return _Eq("b") if key in ("method", "target_modules", "evaluation") else _Num(8)
    def __getitem__(self, key): return self.get(key)
"""


def _hostile_sources(bank):
    correct = _correct_sources(bank)
    qs = bank.questions
    ids = [q.id for q in qs]
    students = {
        "perfect": dict(correct),
        "partial": {**_wrong_sources(bank), **{i: correct[i] for i in ids[:4]}},
        "empty": {},
        # an endless loop before the assignment: interrupted at the timeout, this answer is lost, the rest count
        "looper": {**correct, ids[1]: "while True:\n    pass\n" + correct[ids[1]]},
        # a megabyte of output: cut by LimitOutput, all answers right
        "printer": {**correct, ids[0]: correct[ids[0]] + "\nfor _ in range(20000):\n    print('x' * 60)"},
        # every comparison helper and builtin a test might use is rebound; all answers are wrong
        "patcher": {**_wrong_sources(bank), ids[0]: PATCH_EVERYTHING + _wrong_sources(bank)[ids[0]]},
        # objects that claim to equal anything
        "alwayseq": {q.id: ALWAYS_EQUAL + (
            f"{var_name(q)} = _Eq('zz')" if q.kind == "choice" else
            f"{var_name(q)} = _Num(-1.0)" if q.kind == "numeric" else f"{var_name(q)} = _Plan()") for q in qs},
        # deletes every file it can reach from its working folder (its own autograded copy), answers all right
        "deleter": {**correct, ids[0]: "import os, shutil\nfor _root in ('.', '..'):\n"
                                       "    for _n in os.listdir(_root):\n"
                                       "        _p = os.path.join(_root, _n)\n"
                                       "        shutil.rmtree(_p, ignore_errors=True) if os.path.isdir(_p) else os.remove(_p)\n"
                                       + correct[ids[0]]},
        # kills its own kernel half-way: nbgrader cannot finish the notebook and records no points
        "killer": {**correct, ids[2]: "import os\nos._exit(1)"},
    }
    return students


def _submit(course: Path, student: str, sources: dict):
    release = json.loads((course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    for cell in release["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id", "")
        if grade_id.endswith("_answer") and grade_id[: -len("_answer")] in sources:
            cell["source"] = sources[grade_id[: -len("_answer")]]
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(release))
    (folder / "timestamp.txt").write_text("2024-01-01 12:00:00.000000 UTC")


@pytest.mark.slow
def test_nbgrader_round_trip_with_hostile_submissions(tmp_path):
    bank = load_bank(LESSON)
    assert len(bank.questions) == 8 and bank.max_points == 8
    course = tmp_path / "course"
    build_course(course, lessons=[LESSON], timeout_s=CELL_TIMEOUT_S)
    config = (course / "nbgrader_config.py").read_text()
    assert f"c.Execute.timeout = {CELL_TIMEOUT_S}" in config

    _run(["validate", f"source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"], course)
    _run(["generate_assignment", ASSIGNMENT, "--force"], course)
    released = (course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" not in released and "BEGIN SOLUTION" not in released
    assert "(0).__class__.__class__" not in released  # no hidden check (and no expected value) leaks
    proc = _run(["validate", "--invert", f"release/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"], course)
    assert "Success" in proc.stdout + proc.stderr

    students = _hostile_sources(bank)
    for student, sources in students.items():
        _submit(course, student, sources)
    proc = _run(["autograde", ASSIGNMENT, "--create", "--force"], course, check=False)
    log = proc.stdout + proc.stderr
    _run(["generate_feedback", ASSIGNMENT, "--force"], course, check=False)
    _run(["export", "--to", "grades.csv"], course)

    with open(course / "grades.csv", newline="") as fh:
        rows = {row["student_id"]: row for row in csv.DictReader(fh)}
    scores = {s: float(rows[s]["score"]) for s in students}
    expected = {"perfect": 8.0, "partial": 4.0, "empty": 0.0, "looper": 7.0, "printer": 8.0, "patcher": 0.0,
                "alwayseq": 0.0, "deleter": 8.0, "killer": 0.0}
    assert scores == expected, log[-3000:]
    # the batch went on past the killed kernel; only the killer (no kernel) and the deleter (removed its own
    # autograded folder) are reported as errors
    failed = {s for s in students if f"error processing assignment '{ASSIGNMENT}' for student '{s}'" in log}
    assert failed <= {"killer", "deleter"}, log[-3000:]
    assert all(float(rows[s]["max_score"]) == 8.0 for s in students)

    for student in ("perfect", "partial", "empty", "looper", "printer", "patcher", "alwayseq"):
        html = course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
        assert html.is_file(), student
    graded = json.loads((course / "autograded" / "printer" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    assert len(json.dumps(graded)) < 200_000  # the megabyte was cut to LimitOutput's 1000 lines
    looper = json.loads((course / "autograded" / "looper" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    assert any(o.get("output_type") == "error" for c in looper["cells"] for o in c.get("outputs", []))
