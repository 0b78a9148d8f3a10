"""The Colab install cell as Colab runs it: a fresh Python that brings its own torch, then lesson 00.

A plain venv (it does not see .venv) gets what a Colab runtime ships (torch 2.13.0, numpy, matplotlib, IPython,
ipywidgets) and a stand-in ``google.colab`` module. Lesson 00 then runs cell by cell in an IPython shell: the
install cell installs coursekit from a wheel built from this checkout (``COURSEKIT_WHEEL``; on Colab it is the
GitHub URL) and the lesson packages at their pins, and the lesson runs to its end. torch's files must be exactly
the ones the runtime had, also when a package asks for another torch (then the cell must fail with a message).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import jupytext
import pytest

from coursekit import colab

ROOT = Path(__file__).resolve().parent.parent
COLAB_TORCH = "2.13.0"
# What a Colab runtime has before the install cell runs (besides torch).
COLAB_BASE = ["numpy", "matplotlib", "ipython", "ipywidgets"]

STAND_IN = {
    "google/__init__.py": "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
    "google/colab/__init__.py": "from google.colab import output  # noqa: F401\n",
    "google/colab/output.py": "def enable_custom_widget_manager():\n    print('stand-in: custom widget manager')\n",
}

DRIVER = textwrap.dedent('''
    import hashlib, json, os, sys
    from pathlib import Path

    import google.colab  # noqa: F401  (Colab imports it before any cell runs)
    from IPython.core.interactiveshell import InteractiveShell

    def torch_state():
        import importlib.metadata as md
        dist = md.distribution("torch")
        record = dist.read_text("RECORD")
        init = Path(str(dist.locate_file("torch/__init__.py")))
        return {"version": dist.version, "record": hashlib.sha256(record.encode()).hexdigest(),
                "init_mtime": init.stat().st_mtime_ns}

    before = torch_state()
    cells = json.loads(Path(sys.argv[1]).read_text())
    shell = InteractiveShell.instance()
    for i, source in enumerate(cells):
        result = shell.run_cell(source)
        if not result.success:
            print(f"CELL {i} FAILED", flush=True)
            result.raise_error()
    ns = shell.user_ns
    import coursekit.colab
    print("REPOSITORY", coursekit.colab.REPOSITORY)
    print("MODEL", ns["MODEL"], ns["DEVICE"], ns["SIZE"])
    after_lesson = torch_state()

    # A package that asks for another torch: the cell must stop with a message, torch must stay.
    coursekit.colab.install_plan = lambda installed=None: ["wants-other-torch==1.0"]
    try:
        coursekit.colab.setup("tiny", "auto", "cpu")
        print("OTHER-TORCH: no error")
    except RuntimeError as exc:
        print("OTHER-TORCH:", exc)
    after_conflict = torch_state()
    print("STATES", json.dumps([before, after_lesson, after_conflict]))
''')


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _wheel_needing_other_torch(directory: Path) -> Path:
    """A tiny wheel whose only requirement is a torch other than the runtime's."""
    name, version = "wants_other_torch", "1.0"
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"",
        f"{dist_info}/METADATA": (f"Metadata-Version: 2.1\nName: wants-other-torch\nVersion: {version}\n"
                                  "Requires-Dist: torch==2.12.0\n").encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


@pytest.mark.slow
def test_install_cell_on_a_colab_like_runtime_keeps_its_torch_and_runs_lesson_00(tmp_path):
    # coursekit as a wheel, built from a copy of the sources (the checkout stays untouched).
    src = tmp_path / "src"
    shutil.copytree(ROOT / "coursekit", src / "coursekit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
          str(src)])
    (wheel,) = dist.glob("coursekit-*.whl")
    _wheel_needing_other_torch(dist)

    # A fresh Python that does not see .venv, with what Colab ships.
    venv = tmp_path / "colab"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "COURSE_REPOSITORY"}}
    _run([str(py), "-m", "pip", "install", "-q", f"torch=={COLAB_TORCH}", *COLAB_BASE], cwd=tmp_path, env=env)
    probe = _run([str(py), "-c", "import torch; print(torch.__version__)"], cwd=tmp_path, env=env)
    assert probe.stdout.split()[0].startswith(COLAB_TORCH)
    assert _run([str(py), "-c", "import importlib.util as u; print(u.find_spec('coursekit'))"], cwd=tmp_path,
                env=env).stdout.strip() == "None", "the fresh venv must not see coursekit from .venv or the checkout"

    stand_in = tmp_path / "stand_in"
    for rel, text in STAND_IN.items():
        (stand_in / rel).parent.mkdir(parents=True, exist_ok=True)
        (stand_in / rel).write_text(text)
    nb = jupytext.read(ROOT / "notebooks" / "00_start_here.py")
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    (tmp_path / "cells.json").write_text(json.dumps(cells))
    (tmp_path / "driver.py").write_text(DRIVER)

    env.update(PYTHONPATH=str(stand_in), COURSEKIT_WHEEL=str(wheel), MPLBACKEND="Agg",
               PIP_FIND_LINKS=" ".join(filter(None, [os.environ.get("PIP_FIND_LINKS"), str(dist)])),
               PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(py), str(tmp_path / "driver.py"), str(tmp_path / "cells.json")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "stand-in: custom widget manager" in out and "Colab: installing" in out
    assert f"REPOSITORY {colab.pyproject_repository(ROOT / 'pyproject.toml')}" in out  # from the wheel's metadata
    assert "MODEL tiny" in out  # no GPU here: the embedded model stays
    conflict = next(line for line in out.splitlines() if line.startswith("OTHER-TORCH:"))
    assert "wants-other-torch==1.0" in conflict and "torch==2.13.0" in conflict and "Restart session" in conflict
    states = json.loads(next(line for line in out.splitlines() if line.startswith("STATES "))[7:])
    assert states[0]["version"].startswith(COLAB_TORCH)
    assert states[0] == states[1] == states[2], f"the install cell changed torch: {states}"
