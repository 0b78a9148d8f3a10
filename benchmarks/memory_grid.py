"""Estimate vs measured peak memory on a CUDA GPU, over a grid of real training steps.

    python benchmarks/memory_grid.py            # CUDA: {full, lora, qlora} x {Llama-3.2-1B, -3B} x checkpointing
                                                #       {on, off} x seq {512, 2048}; writes reports/memory-grid.md
    python benchmarks/memory_grid.py --cpu      # no GPU: the same comparison on the embedded tiny model (prints only)

Models are random-init from the published configs (memory does not depend on the values, nothing is downloaded).
Measured = ``torch.cuda.max_memory_allocated`` during the second training step; estimated =
``coursekit.memory.estimate_memory(...).tensor_bytes`` (the peak without the CUDA context, which the allocator's
counter does not see). Error = (estimated - measured) / measured.
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import statistics
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def grid(cpu: bool, quick: bool = False, archs=None):
    if cpu:
        return list(itertools.product(("full", "lora", "qlora"), archs or ("tiny",), (True, False), (64, 128)))
    archs = archs or (("llama-3.2-1b",) if quick else ("llama-3.2-1b", "llama-3.2-3b"))
    return list(itertools.product(("full", "lora", "qlora"), archs, (True, False), (512, 2048)))


def measure_row(method: str, arch, ckpt: bool, seq: int, cpu: bool, precision: str) -> dict:
    """One grid point: estimate vs measured peak (CUDA OOM gives a row with ``note='OOM'`` and no figures).

    ``arch``: a preset name, or a dict of config fields whose ``name`` labels the row."""
    import torch

    from coursekit.memory import measure_peak_memory

    label = arch if isinstance(arch, str) else str(arch.get("name", "custom"))
    row = {"method": method, "arch": label, "checkpointing": ckpt, "seq_len": seq}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = measure_peak_memory(arch, method, device="cpu" if cpu else "cuda", batch_size=1, seq_len=seq,
                                    checkpointing=ckpt, precision="fp32" if cpu else precision)
        est = m.estimate.tensor_bytes
        row.update(estimated_bytes=est, measured_bytes=m.peak_bytes, reserved_bytes=m.peak_reserved_bytes,
                   error=(est - m.peak_bytes) / m.peak_bytes)
    except torch.OutOfMemoryError:
        row.update(estimated_bytes=None, measured_bytes=None, reserved_bytes=None, error=None, note="OOM")
        torch.cuda.empty_cache()
    return row


def run(cpu: bool, precision: str, quick: bool = False) -> list[dict]:
    rows = []
    for method, arch, ckpt, seq in grid(cpu, quick):
        row = measure_row(method, arch, ckpt, seq, cpu, precision)
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(r: dict) -> str:
    if r.get("error") is None:
        return (f"{r['method']:<7}{r['arch']:<14}{'on' if r['checkpointing'] else 'off':<5}{r['seq_len']:>6}  "
                f"{r.get('note', 'OOM')}")
    return (f"{r['method']:<7}{r['arch']:<14}{'on' if r['checkpointing'] else 'off':<5}{r['seq_len']:>6}"
            f"{r['estimated_bytes'] / 1e9:>12.3f}{r['measured_bytes'] / 1e9:>12.3f}{100 * r['error']:>+9.1f} %")


def summary(rows: list[dict]) -> dict:
    errs = [abs(r["error"]) for r in rows if r.get("error") is not None]
    if not errs:
        return {"runs": 0}
    worst = max((r for r in rows if r.get("error") is not None), key=lambda r: abs(r["error"]))
    return {"runs": len(errs), "median_abs_error": statistics.median(errs), "worst_abs_error": abs(worst["error"]),
            "worst": f"{worst['method']} {worst['arch']} seq {worst['seq_len']} "
                     f"checkpointing {'on' if worst['checkpointing'] else 'off'}"}


def report(rows: list[dict], precision: str) -> str:
    import bitsandbytes
    import peft
    import torch
    import transformers

    s = summary(rows)
    lines = [
        "# Memory estimate vs measured (CUDA)", "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- device: {torch.cuda.get_device_name(0)} ({torch.cuda.get_device_properties(0).total_memory / 1e9:.1f} GB)",
        f"- versions: torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
        f"bitsandbytes {bitsandbytes.__version__}",
        f"- setup: random-init models, batch 1, precision `{precision}`, AdamW, LoRA r=16 on all linear layers, "
        "sdpa attention, two training steps",
        "- measured: `torch.cuda.max_memory_allocated`; estimated: `estimate_memory(...).tensor_bytes` (no CUDA "
        "context); error = (estimated - measured) / measured",
        f"- median |error| {100 * s.get('median_abs_error', float('nan')):.1f} %, worst "
        f"{100 * s.get('worst_abs_error', float('nan')):.1f} % ({s.get('worst', '-')}), over {s['runs']} runs",
        "", "| method | model | checkpointing | seq | estimated GB | measured GB | reserved GB | error |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if r.get("error") is None:
            lines.append(f"| {r['method']} | {r['arch']} | {'on' if r['checkpointing'] else 'off'} | {r['seq_len']} "
                         "| | | | OOM |")
        else:
            lines.append(f"| {r['method']} | {r['arch']} | {'on' if r['checkpointing'] else 'off'} | {r['seq_len']} "
                         f"| {r['estimated_bytes'] / 1e9:.3f} | {r['measured_bytes'] / 1e9:.3f} "
                         f"| {r['reserved_bytes'] / 1e9:.3f} | {100 * r['error']:+.1f} % |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="no GPU: run a tiny grid on CPU and print the table")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32", "amp-bf16", "mixed-bf16"])
    ap.add_argument("--quick", action="store_true", help="CUDA: Llama-3.2-1B only")
    ap.add_argument("--out", default=str(ROOT / "reports" / "memory-grid.md"))
    args = ap.parse_args(argv)
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("No CUDA GPU here: the grid needs one. `--cpu` runs the same comparison on the embedded tiny model.")
        return 0
    print(f"{'method':<7}{'model':<14}{'ckpt':<5}{'seq':>6}{'est. GB':>12}{'meas. GB':>12}{'error':>11}")
    rows = run(args.cpu, args.precision, args.quick)
    s = summary(rows)
    if s["runs"]:
        print(f"median |error| {100 * s['median_abs_error']:.1f} %, worst {100 * s['worst_abs_error']:.1f} % "
              f"({s['worst']}), {s['runs']} runs")
    if not args.cpu:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report(rows, args.precision))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
