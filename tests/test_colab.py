"""The Colab install cell's logic, run with a stand-in ``google.colab`` module."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import jupytext
import pytest

from coursekit import colab, retarget
from coursekit.env import pinned_versions

# What a Colab runtime typically has: its own CUDA torch and Jupyter, an older transformers, no peft/trl/bnb.
COLAB_LIKE = {"torch": "2.8.0+cu126", "transformers": "4.57.1", "tokenizers": "0.22.1", "accelerate": "1.11.0",
              "datasets": "4.0.0", "safetensors": "0.6.2", "psutil": "5.9.5", "peft": None, "trl": None,
              "bitsandbytes": None, "faker": None}


@pytest.fixture
def fake_colab(monkeypatch):
    calls = []
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("widgets")
    google = types.ModuleType("google")
    mod = types.ModuleType("google.colab")
    mod.output = output
    google.colab = mod
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", mod)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    return calls


def test_install_plan_is_pins_of_what_differs_and_never_torch_or_jupyter():
    pins = pinned_versions()
    plan = colab.install_plan(COLAB_LIKE)
    names = {p.split("==")[0] for p in plan}
    assert {"transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate"} <= names
    assert not names & colab.NEVER_INSTALL
    assert "torch" not in names and "jupyterlab" not in names and "ipywidgets" not in names
    for p in plan:
        name, version = p.split("==")
        assert pins[name] == version
    already = dict(COLAB_LIKE, peft=pins["peft"], trl=pins["trl"] + "+local")
    names_after = {p.split("==")[0] for p in colab.install_plan(already)}
    assert "peft" not in names_after and "trl" not in names_after


def test_install_plan_never_installs_torch_even_if_pinned():
    plan = colab.install_plan({"torch": None, "peft": None}, pins={"torch": "2.13.0", "peft": "0.21.2"})
    assert plan == ["peft==0.21.2"]


def test_setup_on_colab_installs_enables_widgets_and_switches_model(fake_colab):
    commands = []
    result = colab.setup("tiny", "auto", "cpu", run=lambda cmd, check: commands.append(cmd),
                         installed=COLAB_LIKE, cuda=True)
    assert result == (colab.REAL_SMALL_MODEL, "cuda", "gpu")
    assert len(commands) == 1 and commands[0][:4] == [sys.executable, "-m", "pip", "install"]
    assert any(a.startswith("trl==") for a in commands[0]) and not any(a.startswith("torch") for a in commands[0])
    assert fake_colab == ["widgets"]
    # No GPU, or COLAB_MODEL = "tiny": the embedded model stays.
    noop = lambda cmd, check: None  # noqa: E731
    assert colab.setup("tiny", "auto", "cpu", run=noop, installed=COLAB_LIKE, cuda=False) == ("tiny", "auto", "cpu")
    assert colab.setup("tiny", "auto", "cpu", colab_model="tiny", run=noop, installed=COLAB_LIKE,
                       cuda=True) == ("tiny", "auto", "cpu")


def test_setup_outside_colab_does_nothing():
    assert "google.colab" not in sys.modules

    def fail(*a, **k):
        raise AssertionError("must not install outside Colab")

    assert colab.setup("tiny", "auto", "cpu", run=fail, installed=COLAB_LIKE, cuda=True) == ("tiny", "auto", "cpu")
    with pytest.raises(ValueError, match="colab_model"):
        colab.setup("tiny", colab_model="")


def test_install_cell_runs_with_stand_in_colab(fake_colab, monkeypatch):
    commands = []
    monkeypatch.delenv("COURSEKIT_WHEEL", raising=False)
    monkeypatch.setattr("subprocess.run",
                        lambda cmd, check=False: commands.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    monkeypatch.setattr(colab, "install_plan", lambda installed=None: ["trl==1.16.0"])
    ns = {"MODEL": "tiny", "DEVICE": "auto", "SIZE": "cpu"}
    exec(colab.install_cell_text(), ns)
    assert "--no-deps" in commands[0]
    assert commands[0][-1] == f"coursekit @ git+https://github.com/{colab.REPOSITORY}@{colab.BRANCH}"
    assert commands[1][-1] == "trl==1.16.0"
    # The runtime's torch and Jupyter are held where they are by a constraints file.
    assert "-c" in commands[1] and "torch" not in " ".join(commands[1][commands[1].index("-c") + 2:])
    assert ns["COLAB_MODEL"] == colab.REAL_SMALL_MODEL
    assert ns["MODEL"] in ("tiny", colab.REAL_SMALL_MODEL)


def test_install_cell_failure_says_what_to_do(fake_colab, monkeypatch):
    monkeypatch.setenv("COURSEKIT_WHEEL", "/nowhere/coursekit-0.1.0-py3-none-any.whl")
    commands = []
    monkeypatch.setattr("subprocess.run",
                        lambda cmd, check=False: commands.append(cmd) or subprocess.CompletedProcess(cmd, 1))
    ns = {"MODEL": "tiny", "DEVICE": "auto", "SIZE": "cpu"}
    with pytest.raises(RuntimeError, match="Restart session and run this cell again") as err:
        exec(colab.install_cell_text(), ns)
    assert "/nowhere/coursekit-0.1.0-py3-none-any.whl" in str(err.value)
    assert commands[0][-1] == "/nowhere/coursekit-0.1.0-py3-none-any.whl"


def test_setup_failure_names_the_packages_and_keeps_torch(fake_colab):
    def fail(cmd, check):
        raise subprocess.CalledProcessError(1, cmd)

    with pytest.raises(RuntimeError) as err:
        colab.setup("tiny", "auto", "cpu", run=fail, installed=COLAB_LIKE, cuda=False)
    message = str(err.value)
    assert "trl==" in message and "peft==" in message and "Restart session" in message
    assert "torch==" in message  # the constraint that kept the runtime's torch


def test_keep_constraints_hold_torch_and_jupyter_only():
    keep = colab.keep_constraints({"torch": "2.8.0+cu126", "ipykernel": "6.17.1", "transformers": "4.57.1",
                                   "numpy": None})
    assert keep == ["ipykernel==6.17.1", "torch==2.8.0+cu126"]
    here = colab.keep_constraints()
    assert any(line.startswith("torch==") for line in here)


def test_badges_point_at_the_notebook():
    md = colab.badge_markdown("02_memory_math")
    assert f"colab.research.google.com/github/{colab.REPOSITORY}/blob/main/notebooks/02_memory_math.ipynb" in md
    assert "mybinder.org/v2/gh/" in md and "lab/tree/notebooks/02_memory_math.ipynb" in md
    with pytest.raises(ValueError, match="two-digit number"):
        colab.badge_markdown("memory_math")


# --- One repository name everywhere, and `python -m coursekit retarget` ------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
_URL_REPO = re.compile(r"(?:github\.com|colab\.research\.google\.com/github|mybinder\.org/v2/gh)/"
                       r"([A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?=\.git\b|[^A-Za-z0-9._-]|$)")
COURSE_URLS = ("colab.research.google.com/github/", "mybinder.org/v2/gh/", "git+https://github.com/")


def _course_repositories(root: Path) -> dict[str, set[str]]:
    """Which repositories the badges, install cells and pyproject of the course under ``root`` name."""
    found = {"pyproject.toml": {colab.pyproject_repository(root / "pyproject.toml")}}
    for path in [root / "README.md", *sorted((root / "notebooks").glob("[0-9][0-9]_*"))]:
        text = path.read_text(encoding="utf-8")
        found[path.name] = {m.group(1) for m in _URL_REPO.finditer(text)
                            if any(u in text[max(0, m.start() - 30):m.end()] for u in COURSE_URLS)}
    return found


def _assert_course_agrees(root: Path, repository: str):
    found = _course_repositories(root)
    for name, repos in found.items():
        assert repos == {repository}, f"{name} names {sorted(repos)}, pyproject.toml says {repository}"
    for py in sorted((root / "notebooks").glob("[0-9][0-9]_*.py")):
        for path in (py, py.with_suffix(".ipynb")):
            nb = jupytext.read(path)
            assert colab.colab_url(py.stem, repository) in nb.cells[0].source, path.name
            assert colab.binder_url(py.stem, repository) in nb.cells[0].source, path.name
            code = [c for c in nb.cells if c.cell_type == "code"]
            assert f'"coursekit @ git+https://github.com/{repository}@{colab.BRANCH}"' in code[1].source, path.name
        assert [c.source for c in jupytext.read(py).cells] == \
            [c.source for c in jupytext.read(py.with_suffix(".ipynb")).cells], f"{py.name}: pair out of sync"
    readme = (root / "README.md").read_text(encoding="utf-8")
    for py in sorted((root / "notebooks").glob("[0-9][0-9]_*.py")):
        assert colab.colab_url(py.stem, repository) in readme, f"README: no Colab badge for {py.stem}"


def test_badges_install_cells_readme_and_pyproject_name_one_repository():
    repository = colab.pyproject_repository(ROOT / "pyproject.toml")
    assert repository and colab.REPOSITORY == repository
    _assert_course_agrees(ROOT, repository)
    assert f"github.com/{repository}@" in colab.INSTALL_CELL


def _copy_course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    root.mkdir()
    shutil.copytree(ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for name in ("README.md", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_retarget_rewrites_only_the_repository_name_and_is_idempotent(tmp_path):
    root = _copy_course(tmp_path)
    old = colab.pyproject_repository(root / "pyproject.toml")
    # A user's own edits: another repository's link and a longer name that starts like the course's stay as they are.
    readme = root / "README.md"
    readme.write_text(readme.read_text() + f"\nSee https://github.com/{old}-extras and https://github.com/huggingface/peft.\n")
    before = _snapshot(root)
    new = "someone-else/my.course_v2"
    proc = subprocess.run([sys.executable, "-m", "coursekit", "retarget", new, "--root", str(root)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    after = _snapshot(root)
    assert set(after) == set(before)
    changed = {k for k in after if after[k] != before[k]}
    assert {"pyproject.toml", "README.md"} <= changed
    assert {k for k in changed if k.startswith("notebooks/")} == \
        {k for k in before if k.startswith("notebooks/") and k[10:12].isdigit()}
    for name in changed:  # the only edit is the name: putting the old one back gives the file as it was
        assert after[name].decode().replace(new, old).encode() == before[name], name
    assert f"https://github.com/{old}-extras" in readme.read_text() and "github.com/huggingface/peft" in readme.read_text()
    _assert_course_agrees(root, new)
    # Idempotent: a second run changes nothing.
    again = subprocess.run([sys.executable, "-m", "coursekit", "retarget", new, "--root", str(root)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to change" in again.stdout
    assert _snapshot(root) == after
    # And back: the files are byte for byte what they were.
    assert retarget.retarget(old, root)
    assert _snapshot(root) == before


@pytest.mark.parametrize("bad", ["", "owner", "owner/", "/name", "a/b/c", "https://github.com/a/b", "-owner/x",
                                 "owner-/x", "ow--ner/x", "owner/..", "owner/na me", "own er/x", "a" * 40 + "/x"])
def test_retarget_rejects_what_is_not_owner_slash_name(bad, tmp_path):
    with pytest.raises(ValueError, match="OWNER/NAME"):
        retarget.validate_repository(bad)
    root = _copy_course(tmp_path)
    before = _snapshot(root)
    proc = subprocess.run([sys.executable, "-m", "coursekit", "retarget", "--root", str(root), "--", bad],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "OWNER/NAME" in proc.stderr
    assert _snapshot(root) == before


def test_retarget_accepts_github_names():
    assert retarget.validate_repository("my-org/fine-tuning-llms") == "my-org/fine-tuning-llms"
    assert retarget.validate_repository(" A1/x.y_z-2.git ") == "A1/x.y_z-2"
    text = ("[b](https://colab.research.google.com/github/o/n/blob/main/x) https://github.com/o/n.git "
            "https://github.com/o/nn https://github.com/xo/n mybinder.org/v2/gh/o/n/main")
    assert retarget.retarget_text(text, "o/n", "p/q") == (
        "[b](https://colab.research.google.com/github/p/q/blob/main/x) https://github.com/p/q.git "
        "https://github.com/o/nn https://github.com/xo/n mybinder.org/v2/gh/p/q/main")


def test_repository_is_read_from_installed_metadata(monkeypatch):
    assert colab.repository_from_url("https://github.com/a-b/c.d.git") == "a-b/c.d"
    assert colab.repository_from_url("https://gitlab.com/a/b") is None
    monkeypatch.delenv("COURSE_REPOSITORY", raising=False)
    monkeypatch.setattr(colab, "__file__", "/nonexistent/site-packages/coursekit/colab.py")

    class Meta:
        def get_all(self, key):
            return ["Homepage, https://example.org", "Repository, https://github.com/from/metadata"]

    monkeypatch.setattr("importlib.metadata.metadata", lambda name: Meta())
    assert colab._configured_repository() == "from/metadata"
