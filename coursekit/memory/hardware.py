"""Which GPUs an architecture fits on, per method, and a batch-size / gradient-accumulation suggestion that is right.

GPU capacities are the marketed sizes in GB (1e9 bytes); the table states headroom in GB too.
"""
from __future__ import annotations

from dataclasses import dataclass

from coursekit._results import ResultMixin
from coursekit.memory.estimator import GB, estimate_memory
from coursekit.memory.recipes import METHODS

GPUS: dict[str, float] = {  # name -> memory in GB (1e9 bytes)
    "T4": 16, "L4": 24, "A10": 24, "RTX 3090": 24, "RTX 4090": 24,
    "A100 40GB": 40, "A100 80GB": 80, "H100 80GB": 80, "H200": 141,
}


def gpu_capacity_bytes(gpu) -> int:
    """Capacity in bytes of a GPU name from ``GPUS`` (case-insensitive) or a number of GB."""
    if isinstance(gpu, (int, float)) and not isinstance(gpu, bool):
        if gpu <= 0:
            raise ValueError(f"GPU memory must be positive, got {gpu!r} GB")
        return int(gpu * GB)
    if isinstance(gpu, str):
        for name, gb in GPUS.items():
            if gpu.strip().lower() in {name.lower(), name.lower().replace(" ", ""), name.lower().replace(" ", "-")}:
                return int(gb * GB)
    raise ValueError(f"unknown GPU {gpu!r}; known: {', '.join(GPUS)} (or a size in GB)")


@dataclass(repr=False)
class FitRow(ResultMixin):
    gpu: str
    capacity_bytes: int
    method: str
    total_bytes: int
    fits: bool
    headroom_bytes: int


def hardware_fit(arch, methods=METHODS, gpus=None, **opts) -> list[FitRow]:
    """One row per (GPU, method): the estimate's total, whether it fits, and the headroom (negative: short by)."""
    gpus = list(GPUS) if gpus is None else list(gpus)
    rows = []
    estimates = {m: estimate_memory(arch, m, **opts) for m in methods}
    for g in gpus:
        cap = gpu_capacity_bytes(g)
        for m, est in estimates.items():
            rows.append(FitRow(gpu=str(g), capacity_bytes=cap, method=m, total_bytes=est.total_bytes,
                               fits=est.total_bytes <= cap, headroom_bytes=cap - est.total_bytes))
    return rows


def fit_table(rows: list[FitRow]) -> str:
    methods = list(dict.fromkeys(r.method for r in rows))
    lines = [f"{'GPU':<12}{'GB':>6}  " + "".join(f"{m:>22}" for m in methods)]
    for g in dict.fromkeys(r.gpu for r in rows):
        cells = []
        for m in methods:
            r = next(x for x in rows if x.gpu == g and x.method == m)
            cells.append(f"{('fits, ' if r.fits else 'no, ') + f'{r.headroom_bytes / GB:+.1f} GB':>22}")
        cap = next(x.capacity_bytes for x in rows if x.gpu == g)
        lines.append(f"{g:<12}{cap / GB:>6.0f}  " + "".join(cells))
    return "\n".join(lines)


@dataclass(repr=False)
class BatchSuggestion(ResultMixin):
    batch_size: int
    gradient_accumulation_steps: int
    effective_batch_size: int
    total_bytes: int
    capacity_bytes: int
    fits: bool


def suggest_batch_size(arch, gpu, method: str = "qlora", effective_batch_size: int = 16, **opts) -> BatchSuggestion:
    """The largest power-of-two micro-batch (≤ ``effective_batch_size``) whose estimate fits ``gpu``, and the
    gradient accumulation that makes up the effective batch.

    The seeds' helper computed the 4-bit model as ``params_in_billions * bits / 8 / 1e9`` GB: the billions were
    divided by 1e9 twice, so an 8B model "weighed" 4e-9 GB and every GPU looked empty. Here every figure is bytes.
    """
    cap = gpu_capacity_bytes(gpu)
    if isinstance(effective_batch_size, bool) or not isinstance(effective_batch_size, int) or effective_batch_size <= 0:
        raise ValueError(f"effective_batch_size must be a positive integer, got {effective_batch_size!r}")
    opts = {k: v for k, v in opts.items() if k != "batch_size"}
    best, est = None, None
    b = 1
    while b <= effective_batch_size:
        e = estimate_memory(arch, method, batch_size=b, **opts)
        if e.total_bytes > cap:
            break
        best, est = b, e
        b *= 2
    if best is None:
        e = estimate_memory(arch, method, batch_size=1, **opts)
        return BatchSuggestion(1, effective_batch_size, effective_batch_size, e.total_bytes, cap, False)
    accum = -(-effective_batch_size // best)
    return BatchSuggestion(best, accum, best * accum, est.total_bytes, cap, True)


def seed_suggest_batch_size(gpu_vram_gb: float, model_size_b: float, quantization_bits: int = 4) -> tuple[int, int]:
    """The seed's helper, unit bug included, so the lesson can show what it returns (do not use it)."""
    model_memory = model_size_b * quantization_bits / 8 / 1e9
    available = gpu_vram_gb - model_memory - 2
    if available < 2:
        return 1, 8
    if available < 6:
        return 2, 4
    if available < 12:
        return 4, 2
    return 8, 1
