"""How long `import coursekit` takes in a fresh interpreter (target: under 0.5 s), median of several runs.

    python benchmarks/import_time.py [--runs 7]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CODE = "import time; t = time.perf_counter(); import coursekit; print(time.perf_counter() - t)"
BASELINE = "import time; t = time.perf_counter(); import json, dataclasses; print(time.perf_counter() - t)"


def measure(code: str, runs: int) -> list[float]:
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(runs)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    rows = [("import coursekit", measure(CODE, args.runs)), ("import json, dataclasses (reference)",
                                                             measure(BASELINE, args.runs))]
    print(f"{'what':<38} {'median s':>9} {'max s':>8}  target")
    for name, times in rows:
        target = "< 0.5 s" if "coursekit" in name else ""
        print(f"{name:<38} {statistics.median(times):>9.4f} {max(times):>8.4f}  {target}")
    return 0 if statistics.median(rows[0][1]) < 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
