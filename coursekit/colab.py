"""Opening a lesson on Google Colab (or Binder): the badge, the install cell, and what that cell installs.

Every lesson starts with two cells a lesson's author pastes from here:

- :func:`badge_markdown` (``NN_name``) — the "Open in Colab" and "Launch Binder" badges (a Markdown cell);
- :data:`INSTALL_CELL` — a code cell placed right after the ``parameters`` cell. Outside Colab it does nothing.
  On Colab it installs coursekit (without its dependencies), then :func:`setup` installs the pinned packages that
  Colab lacks or has at another version — never torch, torchvision, torchaudio or anything Jupyter, which Colab
  provides and must keep — turns on Colab's widget manager, and switches ``MODEL`` to a real small model when the
  runtime has a GPU (set ``COLAB_MODEL = "tiny"`` in that cell to keep the embedded one).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from coursekit.model_ids import EMBEDDED_MODEL, REAL_MODEL_HUB_ID

# The repository is named once, in pyproject.toml's [project.urls] Repository; `python -m coursekit retarget
# OWNER/NAME` rewrites it there and in every badge, install cell and README link (see coursekit.retarget).
DEFAULT_REPOSITORY = "fine-tuning-course/fine-tuning-llms"
BRANCH = "main"
_URL_REPOSITORY = re.compile(r"^https?://github\.com/([A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?:\.git)?/?$")
_URLS_REPOSITORY_LINE = re.compile(r"""^["']?repository["']?\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def repository_from_url(url: str) -> str | None:
    """``OWNER/NAME`` of a GitHub URL such as ``https://github.com/OWNER/NAME``; None for anything else."""
    m = _URL_REPOSITORY.match(url.strip())
    return m.group(1) if m else None


def pyproject_repository(path: str | os.PathLike) -> str | None:
    """The ``Repository`` URL of ``[project.urls]`` in a pyproject.toml, as ``OWNER/NAME`` (None if absent)."""
    section = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[] ")
        elif section == "project.urls":
            m = _URLS_REPOSITORY_LINE.match(stripped)
            if m:
                return repository_from_url(m.group(1))
    return None


def _configured_repository() -> str:
    """COURSE_REPOSITORY, else the checkout's pyproject.toml, else the installed package's metadata."""
    env = os.environ.get("COURSE_REPOSITORY", "").strip()
    if env:
        return env
    # A checkout (editable install included): pyproject.toml is the source and may be newer than the metadata.
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        if pyproject.is_file() and re.search(r'(?m)^name\s*=\s*"coursekit"', pyproject.read_text(encoding="utf-8")):
            found = pyproject_repository(pyproject)
            if found:
                return found
    except OSError:
        pass
    # An installed wheel (Colab): its metadata holds "Project-URL: Repository, https://github.com/OWNER/NAME".
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        for entry in metadata("coursekit").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() == "repository" and repository_from_url(url):
                return repository_from_url(url)
    except PackageNotFoundError:
        pass
    return DEFAULT_REPOSITORY


# Where the course lives on GitHub (badges and the Colab install); COURSE_REPOSITORY overrides it for a session.
REPOSITORY = _configured_repository()
REAL_SMALL_MODEL = REAL_MODEL_HUB_ID  # what a Colab GPU runtime switches to

# Colab ships these; reinstalling them breaks its runtime (CUDA build of torch, its own Jupyter front end).
NEVER_INSTALL = frozenset({
    "torch", "torchvision", "torchaudio", "jupyter", "jupyterlab", "notebook", "ipykernel", "ipython",
    "ipywidgets", "jupyter-client", "jupyter-core", "jupyter-server", "nbclient", "nbformat", "traitlets",
    "tornado", "numpy", "matplotlib",
})
# What the lessons import at run time; tooling and tests (pytest, papermill, ruff, nbgrader, ...) are not needed.
LESSON_PACKAGES = ("transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate", "tokenizers",
                   "safetensors", "psutil", "faker")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def colab_url(notebook: str, repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    name = _notebook_file(notebook)
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/notebooks/{name}"


def binder_url(notebook: str, repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    name = _notebook_file(notebook)
    return f"https://mybinder.org/v2/gh/{repository}/{branch}?urlpath=lab/tree/notebooks/{name}"


def _notebook_file(notebook: str) -> str:
    if not isinstance(notebook, str) or not notebook.strip():
        raise ValueError("notebook must be a lesson's name such as '02_memory_math'")
    name = Path(notebook).name
    if name.endswith(".py"):
        name = name[:-3]
    if not name.endswith(".ipynb"):
        name += ".ipynb"
    if not name[:2].isdigit():
        raise ValueError(f"notebook {notebook!r} does not start with its two-digit number, e.g. '02_memory_math'")
    return name


def badge_markdown(notebook: str, repository: str = REPOSITORY) -> str:
    """The Markdown for a lesson's first cell: the Colab and Binder badges pointing at this notebook."""
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(notebook, repository)}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(notebook, repository)})")


INSTALL_CELL = f'''\
# Colab only: install coursekit and the packages Colab lacks (never torch or Jupyter). Elsewhere: nothing happens.
COLAB_MODEL = "{REAL_SMALL_MODEL}"  # used on a Colab GPU; "tiny" keeps the embedded model
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    source = os.environ.get("COURSEKIT_WHEEL") or (  # COURSEKIT_WHEEL: a local wheel, for tests
        "coursekit @ git+https://github.com/{REPOSITORY}@{BRANCH}")
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", source]).returncode:
        raise RuntimeError(f"pip could not install coursekit from {{source!r}} (its message is above): check that "
                           "the runtime is online, then Runtime > Restart session and run this cell again")
    import coursekit.colab
    MODEL, DEVICE, SIZE = coursekit.colab.setup(MODEL, DEVICE, SIZE, colab_model=COLAB_MODEL)'''


def install_cell_text() -> str:
    """The code cell that follows the ``parameters`` cell in every lesson (see :data:`INSTALL_CELL`)."""
    return INSTALL_CELL


def keep_constraints(installed: dict[str, str | None] | None = None) -> list[str]:
    """pip constraints (``name==version``) holding every installed package of :data:`NEVER_INSTALL` where it is.

    :func:`setup` passes them with ``-c``: a lesson package that asks for another torch (or Jupyter, numpy, ...)
    makes pip fail with a conflict instead of replacing the runtime's own build.
    """
    if installed is None:
        from coursekit.env import installed_version

        installed = {name: installed_version(name) for name in sorted(NEVER_INSTALL)}
    return [f"{name}=={version}" for name, version in sorted(installed.items())
            if name in NEVER_INSTALL and version]


def _pins() -> dict[str, str]:
    from coursekit.env import pinned_versions

    pins = pinned_versions()
    if not pins:
        # An installed (non-editable) coursekit has no requirements.txt beside it; these are the tested pins.
        pins = dict(_FALLBACK_PINS)
    return pins


_FALLBACK_PINS = {
    "transformers": "5.24.0", "peft": "0.21.2", "trl": "1.16.0", "bitsandbytes": "0.50.2", "datasets": "5.2.0",
    "accelerate": "1.15.0", "tokenizers": "0.23.3", "safetensors": "0.8.0", "psutil": "7.2.2", "faker": "40.63.0",
}


def install_plan(installed: dict[str, str | None] | None = None, pins: dict[str, str] | None = None) -> list[str]:
    """``pip install`` arguments for the lesson packages that are missing or at another version than pinned.

    ``installed`` maps a package to its installed version (None: missing); by default it is read from this Python.
    Packages in :data:`NEVER_INSTALL` are never in the plan, whatever the pins say.
    """
    pins = {k.lower(): v for k, v in (pins if pins is not None else _pins()).items()}
    if installed is None:
        from coursekit.env import installed_version

        installed = {name: installed_version(name) for name in LESSON_PACKAGES}
    installed = {k.lower(): v for k, v in installed.items()}
    plan = []
    for name in LESSON_PACKAGES:
        if name in NEVER_INSTALL or name not in pins:
            continue
        have = installed.get(name)
        if have is None or have.split("+")[0] != pins[name]:
            plan.append(f"{name}=={pins[name]}")
    return plan


def setup(model: str = EMBEDDED_MODEL, device: str = "auto", size: str = "cpu", colab_model: str = REAL_SMALL_MODEL,
          run=None, installed: dict[str, str | None] | None = None, cuda: bool | None = None):
    """On Colab: install what is missing, enable widgets, and choose the model. Returns ``(MODEL, DEVICE, SIZE)``.

    Outside Colab it changes nothing and returns its arguments. On a Colab GPU runtime with ``model == "tiny"`` the
    lesson switches to ``colab_model`` (a hub id) on CUDA at ``size="gpu"``; ``colab_model="tiny"`` keeps the
    embedded model. ``run`` executes the pip command (tests pass a stand-in); ``cuda`` overrides GPU detection.
    """
    if not isinstance(colab_model, str) or not colab_model:
        raise ValueError("colab_model must be 'tiny' or a Hugging Face model id such as "
                         f"{REAL_SMALL_MODEL!r}")
    if not in_colab():
        return model, device, size
    plan = install_plan(installed)
    if plan:
        print("Colab: installing " + " ".join(plan))
        keep = keep_constraints()
        with tempfile.TemporaryDirectory() as tmp:
            constraints = Path(tmp) / "colab-keeps.txt"
            constraints.write_text("".join(line + "\n" for line in keep))
            try:
                (run or subprocess.run)([sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints),
                                         *plan], check=True)
            except subprocess.CalledProcessError as exc:
                kept = ", ".join(keep) or "nothing"
                raise RuntimeError(
                    f"pip could not install {' '.join(plan)} (exit status {exc.returncode}; pip's message above "
                    f"names the package). The runtime's own packages stay as they are ({kept}), so a package "
                    "that needs another torch fails here instead of replacing Colab's. "
                    "Runtime > Restart session, then run this cell again; if it fails again, "
                    "Runtime > Disconnect and delete runtime, and start over.") from None
    try:  # ipywidgets 8 needs Colab's custom widget manager
        from google.colab import output

        output.enable_custom_widget_manager()
    except Exception:  # a stand-in module, or an older Colab
        pass
    if cuda is None:
        try:
            import torch

            cuda = bool(torch.cuda.is_available())
        except Exception:
            cuda = False
    if cuda and model == EMBEDDED_MODEL and colab_model != EMBEDDED_MODEL:
        print(f"Colab GPU runtime: MODEL = {colab_model!r} on CUDA at the gpu size "
              "(set COLAB_MODEL = 'tiny' in the install cell to keep the embedded model)")
        return colab_model, "cuda", "gpu"
    return model, device, size
