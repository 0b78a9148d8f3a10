"""The machine the course runs on: device, bf16, bitsandbytes, Colab/Binder, free memory, and ``coursekit doctor``."""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from coursekit import notices
from coursekit._results import ResultMixin
from coursekit.units import gb_and_gib_text

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"
# Packages without which no lesson runs; the rest of requirements.txt is needed by tests and tooling.
REQUIRED = ("torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate", "tokenizers")
DEVICES = ("auto", "cpu", "cuda", "mps")


def pinned_versions(path: str | os.PathLike = REQUIREMENTS) -> dict[str, str]:
    """``{package: version}`` from a requirements file's ``name==version`` lines."""
    pins = {}
    p = Path(path)
    if not p.exists():
        return pins
    for line in p.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def installed_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


#: The training stack whose versions a run depends on (reported by ``coursekit course``, keyed by finetune's reuse).
STACK_PACKAGES = ("torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate")


def stack_versions() -> dict[str, str | None]:
    """Each package of ``STACK_PACKAGES`` with its installed version (None: not installed)."""
    return {name: installed_version(name) for name in STACK_PACKAGES}


def in_colab() -> bool:
    return "google.colab" in sys.modules


def in_binder() -> bool:
    return "BINDER_SERVICE_HOST" in os.environ or "BINDER_REQUEST" in os.environ


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` becomes the best available of cuda, mps, cpu; an explicit name is checked."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but this machine has no Apple GPU; use 'auto' or 'cpu'")
    return device


def bf16_supported(device: str) -> bool:
    """Whether training in bf16 is sensible on ``device``: a CUDA GPU that computes in bf16 (compute capability 8.0
    or later: A100, L4, H100, RTX 30xx and later), not one that only emulates it (a T4 or V100, where
    ``torch.cuda.is_bf16_supported()`` answers True by default because a bf16 tensor can be created); CPU and MPS
    train in fp32."""
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
    return False


def bitsandbytes_support(device: str) -> dict[str, bool]:
    """Try a 4-bit NF4 round trip and an 8-bit optimizer step on ``device``."""
    out = {"4bit": False, "8bit_optimizer": False}
    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as F
        import torch
    except Exception:
        return out
    dev = "cuda" if device == "cuda" else "cpu"
    if device == "mps":
        return out
    try:
        w = torch.randn(64, 64, device=dev)
        q, state = F.quantize_4bit(w, quant_type="nf4", blocksize=64)
        out["4bit"] = bool((F.dequantize_4bit(q, state) - w).abs().max() < 1.0)
    except Exception:
        pass
    try:
        p = torch.nn.Parameter(torch.randn(4096, device=dev))
        opt = bnb.optim.AdamW8bit([p], lr=1e-3)
        p.grad = torch.ones_like(p)
        opt.step()
        out["8bit_optimizer"] = True
    except Exception:
        pass
    return out


def memory_available_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


@dataclass(repr=False)
class DoctorReport(ResultMixin):
    python: str
    packages: list = field(default_factory=list)  # [{name, installed, pinned, status}]
    device: str = "cpu"
    device_name: str = ""
    bf16: bool = False
    bnb_4bit: bool = False
    bnb_8bit_optimizer: bool = False
    colab: bool = False
    binder: bool = False
    memory_available_bytes: int = 0
    problems: list = field(default_factory=list)  # [(what, fix)]
    notes: list = field(default_factory=list)  # library messages kept out of the output, explained

    @property
    def ok(self) -> bool:
        return not self.problems

    def table(self) -> str:
        rows = [("python", self.python, "", "")]
        rows += [(p["name"], p["installed"] or "missing", p["pinned"] or "-", p["status"]) for p in self.packages]
        w = [max(len(str(r[i])) for r in rows + [("package", "installed", "pinned", "status")]) for i in range(4)]
        fmt = "  ".join("{:<%d}" % n for n in w)
        lines = [fmt.format("package", "installed", "pinned", "status"), fmt.format(*("-" * n for n in w))]
        lines += [fmt.format(*map(str, r)) for r in rows]
        lines += [
            "",
            f"device              {self.device} {self.device_name}".rstrip(),
            f"bf16 training       {'yes' if self.bf16 else 'no (fp32)'}",
            f"bitsandbytes 4-bit  {'yes' if self.bnb_4bit else 'no'} (on {self.device})",
            f"bitsandbytes 8-bit  {'yes' if self.bnb_8bit_optimizer else 'no'} optimizer (on {self.device})",
            f"Colab / Binder      {'yes' if self.colab else 'no'} / {'yes' if self.binder else 'no'}",
            f"memory available    {gb_and_gib_text(self.memory_available_bytes)} on {self.device}",
        ]
        lines += [f"note: {note}" for note in self.notes]
        if self.problems:
            lines += ["", "problems:"] + [f"  - {what}\n    fix: {fix}" for what, fix in self.problems]
        else:
            lines += ["", "all required packages present: ready."]
        return "\n".join(lines)


def doctor(device: str = "auto", requirements: str | os.PathLike = REQUIREMENTS) -> DoctorReport:
    """Check the installed packages against the pins and probe the device. Never raises for a missing package."""
    pins = pinned_versions(requirements)
    names = list(dict.fromkeys(list(REQUIRED) + list(pins)))
    packages, problems = [], []
    for name in names:
        have, want = installed_version(name), pins.get(name.lower())
        if have is None:
            status = "MISSING"
            if name in REQUIRED:
                problems.append((f"{name} is not installed", "pip install -r requirements.txt (or `make setup`)"))
        elif want and have.split("+")[0] != want.split("+")[0]:
            status = "differs (untested)"
        else:
            status = "ok"
        packages.append({"name": name, "installed": have, "pinned": want, "status": status})
    report = DoctorReport(python=platform.python_version(), packages=packages, colab=in_colab(), binder=in_binder())
    if installed_version("torch") is not None:
        dev = resolve_device(device)
        report.device = dev
        import torch

        report.device_name = torch.cuda.get_device_name(0) if dev == "cuda" else platform.processor() or ""
        report.bf16 = bf16_supported(dev)
        bnb = bitsandbytes_support(dev)
        report.bnb_4bit, report.bnb_8bit_optimizer = bnb["4bit"], bnb["8bit_optimizer"]
        if installed_version("bitsandbytes") and not bnb["4bit"] and dev != "mps":
            problems.append(("bitsandbytes is installed but its 4-bit kernels failed on " + dev,
                             "pip install -U 'bitsandbytes>=0.50' (0.50+ runs NF4 on CPU too)"))
        report.memory_available_bytes = memory_available_bytes(dev)
        if notices.BNB_HUB_KERNEL.seen:
            report.notes.append(notices.BNB_HUB_KERNEL.explanation)
    report.problems = problems
    return report


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit doctor", description="Check this machine for the course.")
    ap.add_argument("--device", default="auto", choices=DEVICES)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    report = doctor(args.device)
    if args.json:
        print(json.dumps({**report.to_dict(), "ok": report.ok}, indent=2))
    else:
        print(report.table())
    return 0 if report.ok else 1
