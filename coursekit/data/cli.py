"""``python -m coursekit data --out DIR``: write the support task's JSONL files (and the general corpus sample)."""
from __future__ import annotations

import argparse
import json


def main(argv: list[str]) -> int:
    from coursekit.data.support import SIZES, write_task_files

    ap = argparse.ArgumentParser(prog="python -m coursekit data", description=main.__doc__)
    ap.add_argument("--out", default=None, help="folder for train/validation/test.jsonl (default: the cache)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", default="cpu", choices=sorted(SIZES))
    ap.add_argument("--overwrite", action="store_true", help="replace task files already in --out")
    args = ap.parse_args(argv)
    print(json.dumps(write_task_files(args.out, seed=args.seed, size=args.size, overwrite=args.overwrite), indent=2))
    return 0
