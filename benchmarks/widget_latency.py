"""How long the memory calculator takes to redraw after a control changes (target: median under 50 ms, none over
0.5 s), measured on the lesson 02 widget driven headless.

    python benchmarks/widget_latency.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import time


def measure(rounds: int) -> list[float]:
    from coursekit.widgets.memory import memory_calculator

    calc = memory_calculator()
    calc.set(model="llama-3.1-70b", method="lora")
    times = []
    for _ in range(rounds):
        for b in (1.0, 3.0, 8.0, 70.0, 405.0, 13.0):
            t = time.perf_counter()
            calc.controls["parameters_b"].value = b
            times.append(time.perf_counter() - t)
        for m in ("full", "lora", "qlora", "full"):
            t = time.perf_counter()
            calc.controls["method"].value = m
            times.append(time.perf_counter() - t)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    times = measure(args.rounds)
    median, worst = statistics.median(times), max(times)
    met = median < 0.05 and worst < 0.5
    print(f"{len(times)} updates: median {1000 * median:.1f} ms, max {1000 * worst:.1f} ms "
          f"(target: median < 50 ms, max < 500 ms): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
