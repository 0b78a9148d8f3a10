"""Run the course headless: every ``notebooks/*.ipynb`` executed with papermill, then a table of what each measured.

``python -m coursekit course [--out build/executed] [--size cpu|gpu] [--only 02 05] [--report reports/gpu-run.md]``

Each notebook gets its parameters injected (``SIZE``, ``RESULTS_PATH``; for ``--size gpu`` also ``MODEL`` and
``DEVICE``), is written executed to ``OUT/NN_name.ipynb`` and records its figures in ``OUT/NN_name.results.json``;
``OUT/course-run.md`` holds the whole run (device, versions, times, key figures) as Markdown.
The command exits non-zero when a notebook failed. Tests use :func:`run_notebooks`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from coursekit._results import ResultMixin
from coursekit.lessons import LESSONS  # noqa: F401 - the course map, read from here by lesson 00 and gpu_check
from coursekit.model_ids import REAL_MODEL_HUB_ID
from coursekit.units import gib_text
from coursekit.validate import positive_int

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
SIZES = ("cpu", "gpu")
KERNEL = "python3"

# Parameters each size injects (RESULTS_PATH is added per notebook).
SIZE_PARAMETERS = {
    "cpu": {"SIZE": "cpu"},
    "gpu": {"MODEL": REAL_MODEL_HUB_ID, "DEVICE": "cuda", "SIZE": "gpu"},
}

# The course map (coursekit.lessons): number, notebook, title, what you learn, CPU minutes, real-size path.

# A few figures per notebook for the summary table; a notebook not listed shows its first numeric figures.
KEY_FIGURES: dict[str, list[str]] = {
    "00": ["device", "n_parameters", "probe_score", "train_examples"],
}
MAX_FIGURES_SHOWN = 4


@dataclass(repr=False)
class NotebookRun(ResultMixin):
    notebook: str  # e.g. "02_memory_math"
    status: str  # "ok" or "failed"
    seconds: float
    output_path: str
    results_path: str
    results: dict = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def number(self) -> str:
        return notebook_number(self.notebook)

    def key_figures(self, limit: int = MAX_FIGURES_SHOWN) -> dict:
        """The figures worth showing in a one-line summary (``KEY_FIGURES`` or the first numeric ones)."""
        wanted = KEY_FIGURES.get(self.number)
        if wanted:
            return {k: self.results[k] for k in wanted if k in self.results}
        numeric = {k: v for k, v in self.results.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return dict(list(numeric.items())[:limit])


def notebook_number(name: str) -> str:
    """``"02_memory_math"`` (or a path to it) -> ``"02"``."""
    m = re.match(r"^(\d+)_", Path(str(name)).name)
    if not m:
        raise ValueError(f"notebook name {name!r} does not start with its number, e.g. '02_memory_math'")
    return m.group(1)


def discover_notebooks(directory: str | os.PathLike = NOTEBOOKS_DIR, only=None) -> list[Path]:
    """The course's ``NN_*.ipynb`` files in order; ``only`` keeps those whose number (``2``, ``"02"``) is listed."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"notebook folder {directory} does not exist")
    found = sorted(p for p in directory.glob("*.ipynb") if re.match(r"^\d+_", p.name))
    if only is None:
        return found
    if isinstance(only, (str, int)):
        only = [only]
    wanted = []
    for item in only:
        text = str(item).strip()
        if not text.isdigit():
            raise ValueError(f"--only takes notebook numbers such as 02 or 5, got {item!r}")
        wanted.append(f"{int(text):02d}")
    known = {notebook_number(p.stem) for p in found}
    missing = [w for w in wanted if w not in known]
    if missing:
        raise ValueError(f"no notebook numbered {', '.join(missing)} in {directory}; "
                         f"available: {', '.join(sorted(known)) or 'none'}")
    return [p for p in found if notebook_number(p.stem) in wanted]


@contextmanager
def _environment(changes: dict[str, str]):
    """Temporarily set environment variables (the kernel inherits them)."""
    old = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _error_text(exc: BaseException) -> str:
    # papermill's PapermillExecutionError carries the failing cell's exception name and message.
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        cell = getattr(exc, "exec_count", None)
        return f"{ename}: {evalue}" + (f" (cell [{cell}])" if cell else "")
    return f"{type(exc).__name__}: {exc}"


def run_notebook(path: str | os.PathLike, out: str | os.PathLike = "build/executed", size: str = "cpu",
                 parameters: dict | None = None, cell_timeout_s: int = 900, log_output: bool = False) -> NotebookRun:
    """Execute one notebook with papermill; never raises for a failing notebook (the run says ``failed``)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    positive_int("cell_timeout_s", cell_timeout_s, of="seconds")
    path = Path(path).resolve()
    if not path.is_file() or path.suffix != ".ipynb":
        raise ValueError(f"{path} is not an .ipynb notebook file")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    output_path = out / path.name
    results_path = out / f"{path.stem}.results.json"
    if results_path.exists():
        results_path.unlink()
    params = {**SIZE_PARAMETERS[size], **(parameters or {}), "RESULTS_PATH": str(results_path)}
    # the inline backend, whatever the caller's MPLBACKEND: the executed notebook keeps every figure as an image
    env = {"TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    if not os.environ.get("COURSEKIT_RUNS_CACHE"):  # runs one lesson stores for a later one (finetune's reuse)
        env["COURSEKIT_RUNS_CACHE"] = str(out / "run-cache")
    if size == "gpu":
        env["HF_HUB_OFFLINE"] = os.environ.get("COURSE_HF_HUB_OFFLINE", "0")  # the real model downloads once

    import papermill

    start = time.perf_counter()
    error = ""
    try:
        with _environment(env):
            papermill.execute_notebook(
                str(path), str(output_path), parameters=params, kernel_name=KERNEL, cwd=str(path.parent),
                progress_bar=False, log_output=log_output, execution_timeout=cell_timeout_s,
            )
    except Exception as exc:  # a failing cell, a timeout, a dead kernel: reported, not raised
        error = _error_text(exc)
    seconds = time.perf_counter() - start
    results = {}
    if results_path.exists():
        try:
            results = json.loads(results_path.read_text())
        except json.JSONDecodeError as exc:
            error = error or f"results JSON unreadable: {exc}"
    return NotebookRun(notebook=path.stem, status="failed" if error else "ok", seconds=round(seconds, 1),
                       output_path=str(output_path), results_path=str(results_path), results=results, error=error)


def run_notebooks(notebooks=None, out: str | os.PathLike = "build/executed", size: str = "cpu", only=None,
                  parameters: dict | None = None, cell_timeout_s: int = 900, log_output: bool = False,
                  progress=None) -> list[NotebookRun]:
    """Execute notebooks in order (default: every ``notebooks/NN_*.ipynb``) and return one :class:`NotebookRun` each.

    ``progress`` (optional) is called with each finished run, e.g. to print a line as the course goes.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    paths = discover_notebooks(only=only) if notebooks is None else [Path(p) for p in notebooks]
    if not paths:
        raise ValueError("no notebooks to run")
    runs = []
    for p in paths:
        run = run_notebook(p, out=out, size=size, parameters=parameters, cell_timeout_s=cell_timeout_s,
                           log_output=log_output)
        runs.append(run)
        if progress is not None:
            progress(run)
    return runs


def _format_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def summary_table(runs: list[NotebookRun]) -> str:
    """A plain-text table: notebook, status, seconds, key figures (and the error of a failed one)."""
    rows = []
    for r in runs:
        figures = ", ".join(f"{k}={_format_value(v)}" for k, v in r.key_figures().items())
        rows.append((r.notebook, r.status, f"{r.seconds:.1f}", figures or ("-" if r.ok else r.error)))
    header = ("notebook", "status", "seconds", "key figures")
    widths = [max(len(x[i]) for x in rows + [header]) for i in range(3)]
    fmt = "{:<%d}  {:<%d}  {:>%d}  {}" % tuple(widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths), "-" * 11)]
    lines += [fmt.format(*row) for row in rows]
    failed = [r for r in runs if not r.ok]
    total = sum(r.seconds for r in runs)
    lines.append("")
    lines.append(f"{len(runs) - len(failed)} passed, {len(failed)} failed in {total:.0f} s")
    for r in failed:
        lines.append(f"  {r.notebook}: {r.error}  (executed notebook: {r.output_path})")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    from coursekit.env import stack_versions

    return {name: version or "missing" for name, version in stack_versions().items()}


def _device_description() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return (f"{torch.cuda.get_device_name(0)} ({gib_text(props.total_memory)}), "
                    f"CUDA {torch.version.cuda}")
    except Exception:  # pragma: no cover - reported, not fatal
        pass
    return f"CPU only ({platform.processor() or platform.machine()})"


def markdown_report(runs: list[NotebookRun], size: str, parameters: dict | None = None) -> str:
    """The run as Markdown (``reports/gpu-run.md``): device, versions, each notebook's time and figures."""
    params = {**SIZE_PARAMETERS[size], **(parameters or {})}
    lines = [f"# Course run ({size} size)", "",
             f"- device: {_device_description()}",
             f"- python: {platform.python_version()}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
             "- parameters: " + ", ".join(f"{k}={v!r}" for k, v in params.items()),
             f"- date: {time.strftime('%Y-%m-%d')}", "",
             "| notebook | status | seconds | key figures |", "| --- | --- | ---: | --- |"]
    for r in runs:
        figures = ", ".join(f"{k}={_format_value(v)}" for k, v in r.key_figures(limit=6).items())
        lines.append(f"| {r.notebook} | {r.status} | {r.seconds:.1f} | {figures or r.error or '-'} |")
    lines.append("")
    lines.append("Every figure above was measured by this run (`python -m coursekit course --size "
                 f"{size}`); the executed notebooks hold the rest.")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit course",
                                 description="Execute every lesson notebook with papermill and print a summary table.")
    ap.add_argument("--out", default="build/executed", help="folder for executed notebooks and results JSON")
    ap.add_argument("--size", default="cpu", choices=SIZES,
                    help="cpu: laptop defaults on the embedded model; gpu: a real small model on CUDA")
    ap.add_argument("--only", nargs="+", metavar="NN", help="run only these notebook numbers (e.g. 02 05)")
    ap.add_argument("--model", help="override MODEL (a hub id or local folder)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="override DEVICE")
    ap.add_argument("--cell-timeout", type=int, default=900, help="seconds one cell may run (default 900)")
    ap.add_argument("--report", help="also write the run as Markdown to this file (e.g. reports/gpu-run.md)")
    ap.add_argument("--json", action="store_true", help="print the runs as JSON instead of a table")
    args = ap.parse_args(argv)
    overrides = {}
    if args.model:
        overrides["MODEL"] = args.model
    if args.device:
        overrides["DEVICE"] = args.device

    def progress(run: NotebookRun) -> None:
        if not args.json:
            print(f"{run.notebook:<28} {run.status:<6} {run.seconds:7.1f} s", flush=True)

    runs = run_notebooks(out=args.out, size=args.size, only=args.only, parameters=overrides,
                         cell_timeout_s=args.cell_timeout, progress=progress)
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2))
    else:
        print()
        print(summary_table(runs))
    report_text = markdown_report(runs, args.size, overrides)
    (Path(args.out) / "course-run.md").write_text(report_text)
    if args.report:
        report = Path(args.report)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(report_text)
        print(f"report written to {report}", file=sys.stderr)
    return 0 if all(r.ok for r in runs) else 1
