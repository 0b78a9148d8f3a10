"""Execute every lesson notebook once (papermill, CPU defaults) and assert on the figures it recorded.

Each notebook ``notebooks/NN_name.ipynb`` needs ``tests/notebook_checks/nbNN.py`` with ``check(results)``.
A lesson that draws a figure must leave at least one image in its executed copy.
Run one lesson: ``pytest tests/test_notebooks.py -k 02``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from coursekit.runner import discover_notebooks, notebook_number, run_notebook

pytestmark = pytest.mark.slow

NOTEBOOKS = discover_notebooks()
CHECKS_DIR = Path(__file__).resolve().parent / "notebook_checks"
CELL_TIMEOUT_S = 600
# Code (not Markdown or comments) that draws: pyplot, a coursekit plot_* function, a .plot() method, a `fig`.
DRAWS_A_FIGURE = re.compile(r"\.plot\(|\bplot_\w+\(|\bplt\.|\bfig\b")


def draws_a_figure(notebook: Path) -> bool:
    """Whether the lesson's paired .py has code that draws a matplotlib figure."""
    code = [line for line in notebook.with_suffix(".py").read_text().splitlines()
            if not line.lstrip().startswith("#")]
    return any(DRAWS_A_FIGURE.search(line) for line in code)


def image_outputs(executed_path) -> int:
    nb = nbformat.read(executed_path, as_version=4)
    return sum(1 for cell in nb.cells for out in cell.get("outputs", [])
               if out.get("output_type") in ("display_data", "execute_result") and "image/png" in out.get("data", {}))


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    """Runs each notebook at most once per session, on first request (so ``-k 02`` runs only lesson 02)."""
    out = tmp_path_factory.mktemp("executed")
    cache = {}

    def get(path, model=None):
        key = (path, model)
        if key not in cache:
            # The kernel runs as under `make course`: without conftest's MPLBACKEND=Agg, which would keep
            # plt.show() from drawing anything.
            with pytest.MonkeyPatch.context() as mp:
                mp.delenv("MPLBACKEND", raising=False)
                folder = out / (model or "default")
                cache[key] = run_notebook(path, out=folder, size="cpu", cell_timeout_s=CELL_TIMEOUT_S,
                                          parameters={"MODEL": model} if model else None)
        return cache[key]

    return get


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no NN_*.ipynb lesson"


def load_checks(path):
    number = notebook_number(path.stem)
    checks_file = CHECKS_DIR / f"nb{number}.py"
    if not checks_file.is_file():
        pytest.fail(f"{path.name} has no tests/notebook_checks/nb{number}.py with check(results): "
                    "a notebook that only runs is not tested")
    spec = importlib.util.spec_from_file_location(f"notebook_checks_nb{number}", checks_file)
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    assert callable(getattr(checks, "check", None)), f"nb{number}.py defines no check(results)"
    return checks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(path, executed):
    checks = load_checks(path)
    run = executed(path)
    assert run.ok, f"{path.name} failed: {run.error} (executed copy: {run.output_path})"
    assert run.results.get("notebook"), f"{path.name} recorded nothing to {run.results_path}"
    checks.check(run.results)
    if draws_a_figure(path):
        assert image_outputs(run.output_path) >= 1, (
            f"{path.name} draws a figure but its executed copy has no image/png output: {run.output_path}")


# What `make test` runs on the real pretrained model (the whole course on it is `make course-real`, about 36 minutes on
# 2 cores):
# lesson 00 loads it offline, shows the task through its chat template and measures the probe.
REAL_MODEL = "smollm2-135m-instruct"
REAL_MODEL_LESSONS = [p for p in NOTEBOOKS if notebook_number(p.stem) == "00"]


@pytest.mark.parametrize("path", REAL_MODEL_LESSONS, ids=[f"{p.stem}-{REAL_MODEL}" for p in REAL_MODEL_LESSONS])
def test_notebook_on_the_real_model(path, executed):
    checks = load_checks(path)
    run = executed(path, model=REAL_MODEL)
    assert run.ok, f"{path.name} failed on {REAL_MODEL}: {run.error} (executed copy: {run.output_path})"
    assert run.results["model"] == REAL_MODEL
    checks.check(run.results)


# The same checks on a course run's recorded results, without executing anything: `make course-real` runs them on
# build/executed-real (COURSE_RESULTS=DIR pytest tests/test_notebooks.py -k recorded).
RECORDED = os.environ.get("COURSE_RESULTS")


@pytest.mark.skipif(not RECORDED, reason="COURSE_RESULTS names no course run's output folder")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_recorded_results(path):
    results_path = Path(RECORDED) / f"{path.stem}.results.json"
    assert results_path.is_file(), f"{RECORDED} holds no {results_path.name}: did the course run lesson {path.stem}?"
    load_checks(path).check(json.loads(results_path.read_text()))
