"""``python -m coursekit params ARCH [--lora-rank R --targets all-linear|q_proj,v_proj] [--json]``."""
from __future__ import annotations

import argparse
import json

from coursekit.archs.count import ALL_LINEAR, parameter_report


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit params", description="Exact parameter counts (meta device).")
    ap.add_argument("arch", help="preset name (llama-3.1-8b, tiny, ...) or a config.json path")
    ap.add_argument("--lora-rank", type=int, default=None, help="also count what LoRA of this rank adds")
    ap.add_argument("--targets", default=ALL_LINEAR, help="all-linear or comma-separated module names")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = parameter_report(args.arch, args.lora_rank, args.targets)
    if args.json:
        print(json.dumps(r.to_dict(), indent=2))
        return 0
    print(f"{r.arch}: {r.total_parameters:,} parameters ({r.total_parameters / 1e9:.3f} billion)")
    if args.lora_rank is not None:
        print(f"LoRA r={r.lora_rank} on {', '.join(r.lora_targets)}: {r.trainable_parameters:,} trainable "
              f"({100 * r.trainable_fraction:.3f}% of all)")
    for kind, n in r.parameters_by_kind.items():
        print(f"  {kind:<26}{n:>18,}")
    return 0
