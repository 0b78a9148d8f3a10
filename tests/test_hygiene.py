"""Repository hygiene: notebooks stripped, parameterised and paired with their py:percent file; ruff clean."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from coursekit import colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
REQUIRED_PARAMETERS = {"MODEL", "DEVICE", "SIZE", "SEED", "RESULTS_PATH"}


def _cells(nb):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run nbstripout {path.relative_to(ROOT)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_is_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    assert "parameters" in code[0].metadata.get("tags", []), \
        f"{path.name}: the first code cell must be tagged 'parameters' (# %% tags=[\"parameters\"])"
    names = {t.id for node in ast.parse(code[0].source).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    missing = REQUIRED_PARAMETERS - names
    assert not missing, f"{path.name}: the parameters cell does not set {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_pair_in_sync(path):
    py = path.with_suffix(".py")
    assert py.is_file(), f"{path.name} has no py:percent pair {py.name}; run jupytext --set-formats ipynb,py:percent"
    from_py = jupytext.read(py, fmt="py:percent")
    from_ipynb = jupytext.read(path)
    a, b = _cells(from_py), _cells(from_ipynb)
    fix = f"run: jupytext --to ipynb {py.relative_to(ROOT)}  (or jupytext --sync)"
    assert len(a) == len(b), f"{path.name}: {len(b)} cells, {py.name}: {len(a)}; {fix}"
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"{path.name} cell {i} differs from {py.name}: {y[1][:80]!r} vs {x[1][:80]!r}; {fix}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_opens_with_colab_badge_and_install_cell(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and colab.colab_url(path.stem) in first.source, \
        f"{path.name}: the first cell must hold coursekit.colab.badge_markdown({path.stem!r})"
    code = [c for c in nb.cells if c.cell_type == "code"]
    # The same code as coursekit.colab.INSTALL_CELL (comments may differ).
    assert len(code) > 1 and _same_code(code[1].source, colab.INSTALL_CELL), \
        f"{path.name}: the cell after 'parameters' must be coursekit.colab.INSTALL_CELL"


def _same_code(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
    except SyntaxError:
        return False


def test_readme_course_map_lists_every_notebook_with_badges():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README's course map does not list {path.name}"
        assert colab.colab_url(path.stem) in readme, f"README has no Colab badge for {path.name}"


def test_ruff_passes_on_coursekit():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed (it is pinned in requirements.txt)")
    proc = subprocess.run([ruff, "check", "coursekit"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
