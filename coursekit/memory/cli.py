"""``python -m coursekit memory ARCH --method full|lora|qlora [...] [--json]``: the estimate as a table or JSON."""
from __future__ import annotations

import argparse
import json

from coursekit.archs.count import ALL_LINEAR
from coursekit.memory.estimator import estimate_memory
from coursekit.memory.hardware import gpu_capacity_bytes, gpu_label
from coursekit.memory.recipes import ATTENTIONS, ESTIMATED_METHODS, LOSSES, OPTIMIZERS, PRECISIONS
from coursekit.units import GB, GIB


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit memory", description="Estimate training memory.")
    ap.add_argument("arch", help="preset name (llama-3.1-8b, tiny, ...) or a config.json path")
    ap.add_argument("--method", default="lora", choices=ESTIMATED_METHODS)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--targets", default=ALL_LINEAR)
    ap.add_argument("--precision", default="bf16", choices=list(PRECISIONS))
    ap.add_argument("--optimizer", default="adamw", choices=list(OPTIMIZERS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--attention", default="sdpa", choices=ATTENTIONS)
    ap.add_argument("--padded", action="store_true", help="batches carry a padding mask (sdpa then repeats K/V)")
    ap.add_argument("--loss", default="logits", choices=LOSSES,
                    help="logits: cross-entropy on the full logits (Trainer); fused: TRL SFTTrainer's fused LM head")
    ap.add_argument("--gpu", default=None,
                    help="a GPU name (T4, A100 80GB, H100 80GB, ...) or its memory in GiB (24) to check the fit")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    gpu = args.gpu
    if gpu is not None:
        try:
            gpu = float(gpu)  # a size in GiB; a name stays a string
        except ValueError:
            pass
    cap = gpu_capacity_bytes(gpu) if gpu is not None else None
    est = estimate_memory(args.arch, args.method, precision=args.precision, optimizer=args.optimizer,
                          rank=args.rank, targets=args.targets, batch_size=args.batch, seq_len=args.seq,
                          checkpointing=args.checkpointing, attention=args.attention, padded=args.padded,
                          loss=args.loss)
    if args.json:
        out = {
            "arch": est.arch, "method": est.method, "precision": est.precision, "optimizer": est.optimizer_name,
            "total_parameters": est.total_parameters, "trainable_parameters": est.trainable_parameters,
            "components": est.components, "total_bytes": est.total_bytes, "peak_phase": est.peak_phase,
            "activation_parts": est.activation_parts,
        }
        if cap is not None:
            out["gpu"] = {"name": args.gpu, "capacity_bytes": cap, "fits": est.total_bytes <= cap,
                          "headroom_bytes": cap - est.total_bytes}
        print(json.dumps(out, indent=2))
        return 0
    print(est.table())
    if cap is not None:
        verdict = "fits" if est.total_bytes <= cap else "does not fit"
        head = cap - est.total_bytes
        print(f"{gpu_label(gpu)}: {verdict}, headroom {head / GIB:+.2f} GiB ({head / GB:+.2f} GB)")
    return 0
