"""How long `nbgrader autograde` takes for a class: N submissions of one quiz, a few of them hostile.

    python benchmarks/autograde_class.py [--students 100] [--lesson 06] [--timeout-s S] [--keep DIR]

Builds the course (``python -m coursekit quiz build``: its nbgrader_config.py, the per-cell limit of
``--timeout-s`` or the course default), releases the quiz and places N submissions in ``submitted/``: honest
students with a varying number of right answers, and three hostile ones (``hostile_loop``: an endless loop in every
answer cell, the most one submission can cost; ``hostile_crash``: ``os._exit(1)`` kills the kernel in the first
answer cell; ``hostile_empty``: the blank release). Then it times one ``nbgrader autograde --create --force`` of the
class and prints the total, the seconds per submission (from the time each submission's log lines arrive), how long
the quiz cells themselves ran (from the execution times nbclient records in each graded notebook), the timeouts
nbgrader reported and the grades of the hostile submissions (``nbgrader export``). Exit status 1 if any grade
differs from the expected one.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from coursekit.quiz import load_bank
from coursekit.quiz.nbgrader_course import (
    CELL_TIMEOUT_S,
    assignment_name,
    build_course,
    solution_value,
    submit_answers,
    var_name,
)

NBGRADER = str(Path(sys.executable).with_name("nbgrader"))
HOSTILE = ("hostile_loop", "hostile_crash", "hostile_empty")


def _env():
    bindir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH
    return dict(os.environ, PYTHONHASHSEED="0", PATH=bindir + os.pathsep + os.environ.get("PATH", ""))


def _nbgrader(args, cwd):
    proc = subprocess.run([NBGRADER, *args], cwd=cwd, capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise SystemExit(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _answers(bank):
    """Per question: (right source, wrong source, points)."""
    out = {}
    for q in bank.questions:
        v = var_name(q)
        if q.kind == "choice":
            wrong = repr(next(k for k in q.options if k != q.correct_key()))
        elif q.kind == "numeric":
            wrong = repr(q.expected() * 3 + 1)
        else:
            wrong = "{}"  # a plan without its fields
        out[q.id] = (f"{v} = {solution_value(q)!r}", f"{v} = {wrong}", q.points)
    return out


def class_submissions(bank, n: int) -> dict[str, tuple[dict, float]]:
    """student id -> (answer sources by question id, expected score)."""
    answers = _answers(bank)
    ids = list(answers)
    students = {
        "hostile_loop": ({i: "while True:\n    pass" for i in ids}, 0.0),
        "hostile_crash": ({ids[0]: "import os\nos._exit(1)", **{i: answers[i][0] for i in ids[1:]}}, 0.0),
        "hostile_empty": ({}, 0.0),
    }
    for k in range(max(0, n - len(students))):
        sources, score = {}, 0.0
        for j, i in enumerate(ids):  # student k gets question j wrong when (k + j) % 3 == 0
            right = (k + j) % 3 != 0 or k % 10 == 0
            sources[i] = answers[i][0] if right else answers[i][1]
            score += answers[i][2] if right else 0.0
        students[f"s{k:03d}"] = (sources, score)
    return students


def _timed_autograde(course: Path, assignment: str):
    """Run autograde; returns (total seconds, log lines with their arrival time)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([NBGRADER, "autograde", assignment, "--create", "--force"], cwd=course, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = [(time.perf_counter() - t0, line.rstrip("\n")) for line in proc.stdout]
    proc.wait()
    return time.perf_counter() - t0, lines, proc.returncode


def _per_student_seconds(lines, total: float, assignment: str) -> dict[str, float]:
    """Seconds from one submission's first log line ('Sanitizing .../submitted/<id>/...') to the next one's."""
    starts = []
    for t, line in lines:
        m = re.search(rf"Sanitizing .*[/\\]submitted[/\\]([^/\\]+)[/\\]{assignment}[/\\]", line)
        if m:
            starts.append((t, m.group(1)))
    ends = [t for t, _ in starts[1:]] + [total]
    return {student: end - t for (t, student), end in zip(starts, ends)}


def _cell_seconds(notebook: Path) -> list[float]:
    """Execution time of each code cell, from nbclient's timestamps (input received -> reply sent)."""
    out = []
    for cell in json.loads(notebook.read_text())["cells"]:
        ex = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in ex and "shell.execute_reply" in ex:
            a, b = (datetime.fromisoformat(ex[k].replace("Z", "+00:00"))
                    for k in ("iopub.execute_input", "shell.execute_reply"))
            out.append((b - a).total_seconds())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=100, help="submissions, hostile ones included (default 100)")
    ap.add_argument("--lesson", default="06")
    ap.add_argument("--timeout-s", type=int, default=CELL_TIMEOUT_S,
                    help=f"nbgrader's limit per cell (default: the course's, {CELL_TIMEOUT_S} s)")
    ap.add_argument("--keep", default=None, help="build the course in this (new) folder and keep it")
    args = ap.parse_args()
    if args.students < len(HOSTILE) + 1:
        ap.error(f"--students must be at least {len(HOSTILE) + 1}")

    with tempfile.TemporaryDirectory() as tmp:
        course = Path(args.keep) if args.keep else Path(tmp) / "course"
        bank = load_bank(args.lesson)
        assignment = assignment_name(args.lesson)
        build_course(course, lessons=[args.lesson], timeout_s=args.timeout_s)
        _nbgrader(["generate_assignment", assignment, "--force"], course)
        students = class_submissions(bank, args.students)
        for student, (sources, _) in students.items():
            submit_answers(course, assignment, student, sources)

        print(f"nbgrader autograde {assignment}: {len(students)} submissions ({len(bank.questions)} questions, "
              f"{len(HOSTILE)} hostile), limit {args.timeout_s} s per cell, {os.cpu_count()} CPUs")
        total, lines, rc = _timed_autograde(course, assignment)
        _nbgrader(["export", "--to", "grades.csv"], course)
        with open(course / "grades.csv", newline="") as fh:
            grades = {r["student_id"]: float(r["score"]) for r in csv.DictReader(fh) if r["assignment"] == assignment}

        per = _per_student_seconds(lines, total, assignment)
        honest = [s for s in students if s not in HOSTILE]
        honest_s = [per[s] for s in honest if s in per]
        cells = [c for s in honest for c in _cell_seconds(course / "autograded" / s / assignment /
                                                           f"{assignment}.ipynb")]
        timeouts = sum(f"Timeout waiting for execute reply ({args.timeout_s}s)" in line for _, line in lines)
        wrong = {s: (grades.get(s), exp) for s, (_, exp) in students.items() if grades.get(s) != exp}

        print(f"total: {total:.1f} s for {len(students)} submissions = {total / len(students):.2f} s per submission "
              f"(autograde exit status {rc})")
        print(f"honest submissions: median {statistics.median(honest_s):.2f} s, max {max(honest_s):.2f} s each")
        print(f"quiz cells of honest submissions ({len(cells)}): median {statistics.median(cells) * 1000:.1f} ms, "
              f"99th percentile {sorted(cells)[int(0.99 * (len(cells) - 1))] * 1000:.1f} ms, "
              f"max {max(cells) * 1000:.1f} ms")
        print(f"timeouts reported by nbgrader: {timeouts} (limit {args.timeout_s} s)")
        for s in HOSTILE:
            print(f"{s:<14} grade {grades.get(s)} of {bank.max_points:g} (expected {students[s][1]:g}), "
                  f"{per.get(s, float('nan')):.1f} s")
        failed = [s for s in students if f"error processing assignment '{assignment}' for student '{s}'" in
                  "\n".join(line for _, line in lines)]
        print(f"reported as errors by autograde: {', '.join(failed) or 'none'}")
        print(f"grades as expected: {len(students) - len(wrong)}/{len(students)}"
              + (f"; differing: {wrong}" if wrong else ""))
        return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
