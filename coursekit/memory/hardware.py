"""Which GPUs an architecture fits on, per method, and a batch-size / gradient-accumulation suggestion that is right.

GPU memory is binary. A card sold as "80GB" holds 80 GiB (2^30 bytes each): nvidia-smi shows an A100 80GB as
81,920 MiB, which is 85.9 GB of 10^9 bytes. ``GPU_TABLE`` below is the course's one table of GPU capacities, each as
the driver reports it; every comparison is bytes against bytes, and capacities are printed in GiB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from coursekit._results import ResultMixin
from coursekit.memory.estimator import estimate_memory
from coursekit.memory.recipes import ESTIMATED_METHODS
from coursekit.units import GIB, MIB, gib_text
from coursekit.validate import is_number, non_negative_number, positive_int, positive_number


@dataclass(frozen=True)
class GPU:
    name: str
    mib: int  # total memory in MiB (2^20 bytes)
    convention: str  # where the figure comes from: "nvidia-smi" or "marketed GiB" (see the table's comment)

    @property
    def capacity_bytes(self) -> int:
        return self.mib * MIB

    @property
    def gib(self) -> float:
        return self.capacity_bytes / GIB

    @property
    def label(self) -> str:
        return f"{self.name} ({self.gib:.1f} GiB)"


#: The course's one table of GPU memory (the calculator's lines, hardware_fit, recommend_method and the CLI all read
#: it). Convention "nvidia-smi": the card's total as ``nvidia-smi --query-gpu=memory.total`` prints it, in MiB, read
#: from public nvidia-smi outputs of that card. That is the figure a learner sees on their own machine; CUDA's figure
#: (``torch.cuda.get_device_properties(0).total_memory``) is a few hundred MiB lower on the same card (public outputs:
#: an H200 shown as 143,771 MiB by nvidia-smi reports 143,156 MiB to torch; an A100 40GB reports 40,339 MiB to
#: CUDA's deviceQuery). Convention "marketed GiB": the size in the card's name taken as GiB, used where public
#: nvidia-smi outputs of the card disagree between drivers.
GPU_TABLE: tuple[GPU, ...] = (
    # ECC on, as on Colab and cloud T4s (GDDR6 ECC keeps 1/16 of the memory): with ECC off nvidia-smi shows 16,384.
    GPU("T4", 15_360, "nvidia-smi"),
    GPU("V100 16GB", 16_384, "marketed GiB"),  # nvidia-smi shows 16,160 MiB with some drivers and 16,384 with others
    GPU("A10", 23_028, "nvidia-smi"),  # NVML total 24,146,608,128 bytes = 23,028 MiB
    GPU("A10G", 23_028, "nvidia-smi"),  # AWS g5 instances
    GPU("L4", 23_034, "nvidia-smi"),
    GPU("RTX 4090", 24_564, "nvidia-smi"),
    GPU("RTX 3090", 24_576, "nvidia-smi"),
    GPU("V100 32GB", 32_768, "nvidia-smi"),
    GPU("A100 40GB", 40_960, "nvidia-smi"),
    GPU("H100 80GB", 81_559, "nvidia-smi"),  # the SXM card, "NVIDIA H100 80GB HBM3": 79.6 GiB, not 80
    GPU("A100 80GB", 81_920, "nvidia-smi"),
    GPU("H200", 143_771, "nvidia-smi"),  # sold as 141 GB: 150.8e9 bytes, 140.4 GiB
)
#: GPU name -> capacity in bytes, smallest first (from ``GPU_TABLE``).
GPUS: dict[str, int] = {g.name: g.capacity_bytes for g in sorted(GPU_TABLE, key=lambda g: g.mib)}


def _names(name: str) -> set[str]:
    n = name.lower()
    return {n, n.replace(" ", ""), n.replace(" ", "-")}


def gpu_spec(gpu: str) -> GPU:
    """The :class:`GPU` of a name in ``GPU_TABLE`` (case-insensitive; spaces may be left out or written as '-')."""
    if isinstance(gpu, str):
        for g in GPU_TABLE:
            if gpu.strip().lower() in _names(g.name):
                return g
    raise ValueError(f"unknown GPU {gpu!r}; known: {', '.join(GPUS)} (or a size in GiB)")


def gpu_capacity_bytes(gpu) -> int:
    """Capacity in bytes of a GPU name from ``GPU_TABLE`` (case-insensitive) or a positive number of GiB (2^30 bytes,
    what nvidia-smi's MiB divided by 1024 gives)."""
    if is_number(gpu):
        return int(positive_number("GPU memory", gpu, of="GiB (2^30 bytes)") * GIB)
    if not isinstance(gpu, str):
        raise ValueError(f"gpu must be a GPU name ({', '.join(GPUS)}) or a number of GiB, got {gpu!r}")
    return gpu_spec(gpu).capacity_bytes


def gpu_label(gpu) -> str:
    """How a GPU is printed: its name and its capacity in GiB (``'A100 80GB (80.0 GiB)'``, ``'24 GiB'``)."""
    cap = gpu_capacity_bytes(gpu)
    if isinstance(gpu, str):
        return gpu_spec(gpu).label
    return gib_text(cap)


@dataclass(repr=False)
class FitRow(ResultMixin):
    gpu: str
    capacity_bytes: int
    method: str
    total_bytes: int
    fits: bool
    headroom_bytes: int


def hardware_fit(arch, methods=ESTIMATED_METHODS, gpus=None, **opts) -> list[FitRow]:
    """One row per (GPU, method): the estimate's total, whether it fits, and the headroom (negative: short by), all
    in bytes. ``gpus``: names from ``GPU_TABLE`` or numbers of GiB (default: every GPU in the table)."""
    gpus = list(GPUS) if gpus is None else [gpus] if isinstance(gpus, (str, int, float)) else list(gpus)
    rows = []
    estimates = {m: estimate_memory(arch, m, **opts) for m in methods}
    for g in gpus:
        cap = gpu_capacity_bytes(g)
        for m, est in estimates.items():
            rows.append(FitRow(gpu=str(g), capacity_bytes=cap, method=m, total_bytes=est.total_bytes,
                               fits=est.total_bytes <= cap, headroom_bytes=cap - est.total_bytes))
    return rows


def fit_table(rows: list[FitRow]) -> str:
    """The rows as text: one line per GPU, its capacity and each method's headroom, all in GiB (2^30 bytes)."""
    methods = list(dict.fromkeys(r.method for r in rows))
    lines = [f"{'GPU':<12}{'GiB':>7}  " + "".join(f"{m + ' (GiB)':>22}" for m in methods)]
    for g in dict.fromkeys(r.gpu for r in rows):
        cells = []
        for m in methods:
            r = next(x for x in rows if x.gpu == g and x.method == m)
            cells.append(f"{('fits, ' if r.fits else 'no, ') + f'{r.headroom_bytes / GIB:+.1f}':>22}")
        cap = next(x.capacity_bytes for x in rows if x.gpu == g)
        lines.append(f"{g:<12}{cap / GIB:>7.1f}  " + "".join(cells))
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

    A widely shared helper computed the 4-bit model as ``params_in_billions * bits / 8 / 1e9`` GB: the billions were
    divided by 1e9 twice, so an 8B model "weighed" 4e-9 GB and every GPU looked empty. Here every figure is bytes.
    """
    cap = gpu_capacity_bytes(gpu)
    positive_int("effective_batch_size", effective_batch_size)
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


def claimed_suggest_batch_size(gpu_vram_gb: float, model_size_b: float, quantization_bits: int = 4) -> tuple[int, int]:
    """That widely shared helper as quoted, unit bug included, so the lesson can show what it returns (do not use)."""
    model_memory = model_size_b * quantization_bits / 8 / 1e9
    available = gpu_vram_gb - model_memory - 2
    if available < 2:
        return 1, 8
    if available < 6:
        return 2, 4
    if available < 12:
        return 4, 2
    return 8, 1


def claimed_suggest_hardware(gb: float) -> str:
    """A widely shared "hardware suggestion" helper as quoted (do not use). It takes an estimate in GiB (its caller
    divides by ``1024**3``, while calling the result GB) and, past 160, suggests ``int(gb / 80)`` A100s: ``int``
    rounds down, so the GPUs it names hold less than the estimate (169.5 GiB -> 2 A100s = 160 GiB)."""
    if gb <= 24:
        return "RTX 4090 (24 GB)"
    elif gb <= 48:
        return "2x RTX 4090 or A6000 (48 GB)"
    elif gb <= 80:
        return "A100 80GB (single GPU)"
    elif gb <= 160:
        return "2x A100 80GB"
    else:
        return f"{int(gb / 80)} x A100 80GB (multi-node)"


def gpus_needed(total_bytes: int, gpu) -> int:
    """The fewest GPUs of one kind whose memory adds up to ``total_bytes``: ``ceil(total / capacity)``. A lower
    bound, reached only when everything is sharded evenly (FSDP, ZeRO stage 3); data parallelism (DDP) keeps a full
    copy on every GPU and needs the whole estimate on each."""
    non_negative_number("total_bytes", total_bytes, of="bytes")
    return max(1, math.ceil(total_bytes / gpu_capacity_bytes(gpu)))
