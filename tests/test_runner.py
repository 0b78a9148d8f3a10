"""The course runner on small fixture notebooks: parameters injected, results read, failures reported, CLI exit."""
from __future__ import annotations

import json

import nbformat
import pytest

from coursekit import runner


def _notebook(path, body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('MODEL = "tiny"\nDEVICE = "auto"\nSIZE = "cpu"\nSEED = 0\nRESULTS_PATH = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(nbformat.writes(nb))
    return path


RECORDING = ("import coursekit\nresults = coursekit.Results(RESULTS_PATH, notebook='90_fixture')\n"
             "results.record(size=SIZE, model=MODEL, answer=6 * 7, loss=0.25)")


@pytest.fixture
def fixture_dir(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "90_fixture.ipynb", RECORDING)
    _notebook(src / "91_broken.ipynb", "raise RuntimeError('lesson cell broke')")
    return src


def test_run_notebook_injects_parameters_and_reads_results(fixture_dir, tmp_path):
    run = runner.run_notebook(fixture_dir / "90_fixture.ipynb", out=tmp_path / "out", size="gpu",
                              parameters={"MODEL": "some/local-model"})
    assert run.ok, run.error
    assert run.results["answer"] == 42
    assert run.results["size"] == "gpu" and run.results["model"] == "some/local-model"
    assert run.key_figures() == {"answer": 42, "loss": 0.25}
    executed = nbformat.read(run.output_path, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert json.loads((tmp_path / "out" / "90_fixture.results.json").read_text())["notebook"] == "90_fixture"


def test_lessons_of_one_course_run_share_a_run_cache(tmp_path, monkeypatch):
    """Lesson 01 stores a training run that lesson 04 loads (finetune's reuse): both kernels of a course run see the
    same COURSEKIT_RUNS_CACHE, a folder of that run's output, unless the caller set one."""
    body = ("import os, coursekit\nresults = coursekit.Results(RESULTS_PATH, notebook='92_env')\n"
            "results.record(runs_cache=os.environ.get('COURSEKIT_RUNS_CACHE'))")
    nb = _notebook(tmp_path / "92_env.ipynb", body)
    monkeypatch.delenv("COURSEKIT_RUNS_CACHE", raising=False)
    run = runner.run_notebook(nb, out=tmp_path / "out")
    assert run.ok, run.error
    assert run.results["runs_cache"] == str((tmp_path / "out").resolve() / "run-cache")
    monkeypatch.setenv("COURSEKIT_RUNS_CACHE", str(tmp_path / "mine"))
    assert runner.run_notebook(nb, out=tmp_path / "out").results["runs_cache"] == str(tmp_path / "mine")


def test_failing_notebook_is_reported_and_table_says_so(fixture_dir, tmp_path):
    runs = runner.run_notebooks([fixture_dir / "91_broken.ipynb"], out=tmp_path / "out")
    assert [r.status for r in runs] == ["failed"]
    assert "RuntimeError" in runs[0].error and "lesson cell broke" in runs[0].error
    ok = runner.NotebookRun("90_fixture", "ok", 1.5, "a.ipynb", "a.json", {"notebook": "90", "acc": 0.5})
    table = runner.summary_table([ok, runs[0]])
    assert "1 passed, 1 failed" in table
    assert "acc=0.5" in table and "91_broken" in table and "lesson cell broke" in table
    report = runner.markdown_report([ok, runs[0]], "gpu")
    assert "| 90_fixture | ok | 1.5 | acc=0.5 |" in report
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in report


def test_discover_and_only(fixture_dir):
    assert [p.name for p in runner.discover_notebooks(fixture_dir)] == ["90_fixture.ipynb", "91_broken.ipynb"]
    assert [p.name for p in runner.discover_notebooks(fixture_dir, only=["91"])] == ["91_broken.ipynb"]
    with pytest.raises(ValueError, match="no notebook numbered 05"):
        runner.discover_notebooks(fixture_dir, only=["5"])
    with pytest.raises(ValueError, match="notebook numbers"):
        runner.discover_notebooks(fixture_dir, only=["lora"])


def test_bad_input_is_rejected(fixture_dir, tmp_path):
    with pytest.raises(ValueError, match="size must be one of cpu, gpu"):
        runner.run_notebooks([fixture_dir / "90_fixture.ipynb"], size="tpu")
    with pytest.raises(ValueError, match="not an .ipynb"):
        runner.run_notebook(tmp_path / "missing.ipynb")
    with pytest.raises(ValueError, match="cell_timeout_s"):
        runner.run_notebook(fixture_dir / "90_fixture.ipynb", cell_timeout_s=0)
    with pytest.raises(ValueError, match="starts? with its number"):
        runner.notebook_number("memory_math")


def test_cli_exit_status(monkeypatch, fixture_dir, tmp_path, capsys):
    from coursekit.cli import main

    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", fixture_dir)
    monkeypatch.setattr(runner.discover_notebooks, "__defaults__", (fixture_dir, None))
    assert main(["course", "--out", str(tmp_path / "o"), "--only", "90"]) == 0
    assert "answer=42" in capsys.readouterr().out
    assert "| 90_fixture | ok |" in (tmp_path / "o" / "course-run.md").read_text()
    assert main(["course", "--out", str(tmp_path / "o"), "--only", "91",
                 "--report", str(tmp_path / "r.md")]) == 1
    assert "| 91_broken | failed |" in (tmp_path / "r.md").read_text()
    assert main(["course", "--only", "7"]) == 2
