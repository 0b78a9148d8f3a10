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
from coursekit.quiz.nbgrader_course import (
    CELL_TIMEOUT_S,
    build_course,
    solution_value,
    submit_answers,
    var_name,
)

LESSON = "06"
ASSIGNMENT = f"quiz{LESSON}"
NBGRADER = str(Path(sys.executable).with_name("nbgrader"))
TEST_TIMEOUT_S = 5  # shorter than the course default (CELL_TIMEOUT_S): each endless loop here costs 5 s


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
        # an endless loop and nothing else: interrupted at the timeout, graded 0
        "spinner": {ids[0]: "while True:\n    pass"},
        # ignores the interrupt and loops: the notebook is stopped (graded 0), its kernel shut down
        "deaf": {**correct, ids[0]: "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n"
                                    "    pass"},
        # sys.exit in an answer cell: IPython reports SystemExit as that cell's error, the rest count
        "exiter": {**correct, ids[3]: "import sys\nsys.exit(0)"},
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


@pytest.mark.slow
def test_nbgrader_round_trip_with_hostile_submissions(tmp_path):
    bank = load_bank(LESSON)
    assert len(bank.questions) == 8 and bank.max_points == 8
    course = tmp_path / "course"
    build_course(course, lessons=[LESSON], timeout_s=TEST_TIMEOUT_S)
    config = (course / "nbgrader_config.py").read_text()
    assert f"c.Execute.timeout = {TEST_TIMEOUT_S}\n" in config

    _run(["validate", f"source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"], course)
    _run(["generate_assignment", ASSIGNMENT, "--force"], course)
    released = (course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" not in released and "BEGIN SOLUTION" not in released
    assert "(0).__class__.__class__" not in released  # no hidden check (and no expected value) leaks
    proc = _run(["validate", "--invert", f"release/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"], course)
    assert "Success" in proc.stdout + proc.stderr

    students = _hostile_sources(bank)
    for student, sources in students.items():
        submit_answers(course, ASSIGNMENT, student, sources)
    proc = _run(["autograde", ASSIGNMENT, "--create", "--force"], course, check=False)
    log = proc.stdout + proc.stderr
    _run(["generate_feedback", ASSIGNMENT, "--force"], course, check=False)
    _run(["export", "--to", "grades.csv"], course)

    with open(course / "grades.csv", newline="") as fh:
        rows = {row["student_id"]: row for row in csv.DictReader(fh)}
    scores = {s: float(rows[s]["score"]) for s in students}
    expected = {"perfect": 8.0, "partial": 4.0, "empty": 0.0, "looper": 7.0, "spinner": 0.0, "deaf": 0.0,
                "exiter": 7.0, "printer": 8.0, "patcher": 0.0, "alwayseq": 0.0, "deleter": 8.0, "killer": 0.0}
    assert scores == expected, log[-3000:]
    # the batch went on past the deaf loop and the killed kernel; only the deaf loop (stopped), the killer (no
    # kernel) and the deleter (removed its own autograded folder) may be reported as errors
    failed = {s for s in students if f"error processing assignment '{ASSIGNMENT}' for student '{s}'" in log}
    assert {"deaf", "killer"} <= failed <= {"deaf", "killer", "deleter"}, log[-3000:]
    assert all(float(rows[s]["max_score"]) == 8.0 for s in students)
    # each endless loop was cut by nbgrader at the configured limit: one timeout per looping cell (looper,
    # spinner, deaf), each reported with the limit in force, and the interrupt sent
    assert log.count(f"Timeout waiting for execute reply ({TEST_TIMEOUT_S}s)") == 3, log[-3000:]
    assert "Timeout waiting for execute reply" not in log.replace(
        f"Timeout waiting for execute reply ({TEST_TIMEOUT_S}s)", ""), log[-3000:]
    assert log.count("Interrupting kernel") == 3, log[-3000:]
    assert "Timeout waiting for IOPub output" in log  # the deaf kernel went on after the interrupt

    for student in ("perfect", "partial", "empty", "looper", "spinner", "exiter", "printer", "patcher", "alwayseq"):
        html = course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
        assert html.is_file(), student
    graded = json.loads((course / "autograded" / "printer" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    assert len(json.dumps(graded)) < 200_000  # the megabyte was cut to LimitOutput's 1000 lines
    for student, question in (("looper", 1), ("spinner", 0)):
        graded = json.loads((course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
        errors = {c["metadata"]["nbgrader"]["grade_id"]: o["ename"] for c in graded["cells"]
                  for o in c.get("outputs", []) if o.get("output_type") == "error" and c["cell_type"] == "code"}
        answer = f"{bank.questions[question].id}_answer"
        assert errors.get(answer) == "CellTimeoutError", (student, errors)  # nbgrader's timeout, not an exception
    exiter = json.loads((course / "autograded" / "exiter" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    assert any(o.get("ename") == "SystemExit" for c in exiter["cells"] for o in c.get("outputs", []))


def _config(path):
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def test_course_config_uses_nbgrader_execute_options(tmp_path):
    """Every option the course sets exists, configurable, in the installed nbgrader; the limit is quiz-sized."""
    from nbgrader.preprocessors import ClearSolutions, Execute, LimitOutput

    build_course(tmp_path, lessons=[LESSON])
    config = _config(tmp_path / "nbgrader_config.py")
    assert 1 <= CELL_TIMEOUT_S <= 60  # a quiz cell runs in milliseconds; 600 s let one endless loop cost 10 min
    assert config.Execute.timeout == CELL_TIMEOUT_S
    assert config.Execute.interrupt_on_timeout is True  # interrupt the loop, grade the rest of the notebook
    assert config.Execute.raise_on_iopub_timeout is True  # a kernel deaf to the interrupt stops its notebook
    assert config.Execute.startup_timeout >= 30
    assert "ExecutePreprocessor" not in config  # nbgrader's preprocessor is Execute; one name, one value

    for cls in (Execute, LimitOutput, ClearSolutions):
        names = set(cls.class_trait_names(config=True))
        assert set(config[cls.__name__]) <= names, (cls.__name__, set(config[cls.__name__]) - names)
    assert not Execute.class_traits()["allow_errors"].metadata.get("config")  # fixed True: not set in the config
    assert Execute().allow_errors is True


def test_the_public_build_course_has_the_quiz_sized_default(tmp_path):
    """`coursekit.quiz.build_course` (what instructors import) writes the same per-cell limit as the CLI."""
    import coursekit.quiz

    coursekit.quiz.build_course(tmp_path, lessons=[LESSON])
    config = _config(tmp_path / "nbgrader_config.py")
    assert config.Execute.timeout == CELL_TIMEOUT_S


@pytest.mark.parametrize("bad", [0, -1, True, False, 2.5, "30", None])
def test_build_course_rejects_a_bad_timeout(tmp_path, bad):
    with pytest.raises(ValueError, match=r"timeout_s must be a positive whole number of seconds, got "):
        build_course(tmp_path, lessons=[LESSON], timeout_s=bad)
    assert not (tmp_path / "nbgrader_config.py").exists()


def test_cli_build_timeout(tmp_path, capsys):
    from coursekit.cli import main

    assert main(["quiz", "build", "--out", str(tmp_path / "a"), "--lessons", LESSON]) == 0
    assert f"c.Execute.timeout = {CELL_TIMEOUT_S}\n" in (tmp_path / "a" / "nbgrader_config.py").read_text()
    assert main(["quiz", "build", "--out", str(tmp_path / "b"), "--lessons", LESSON, "--timeout-s", "120"]) == 0
    assert "c.Execute.timeout = 120\n" in (tmp_path / "b" / "nbgrader_config.py").read_text()
    capsys.readouterr()
    assert main(["quiz", "build", "--out", str(tmp_path / "c"), "--lessons", LESSON, "--timeout-s", "0"]) == 2
    assert "timeout_s must be a positive whole number of seconds, got 0" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
