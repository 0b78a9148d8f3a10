"""How a lesson's training budget holds up across seeds: the task metric each seed reaches, on the embedded model.

A lesson's CPU budget (steps, micro-batch, learning rate) is chosen so that its effect shows with the lesson's seed;
a check that passes only with that seed fails by chance on a machine whose kernels round differently. This script
trains one method at one budget with several seeds (each seed changes the new weights' initialisation and the data
order) and prints, per seed, the task metric on the first test tickets, the final validation loss and the training
time. Lessons 05 and 06 chose their learning rates from its figures (their comments quote them).

    python benchmarks/budget_seeds.py --method qlora --steps 60 --lr 5e-3 --seeds 0 1 2
    python benchmarks/budget_seeds.py --method lora --steps 100 --lr 1e-2 --fields   # per-field scores too
"""
from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    from coursekit.train import METHODS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="lora", choices=sorted(METHODS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tickets", type=int, default=64, help="test tickets scored per run")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--fields", action="store_true", help="also score every field of the answer")
    args = parser.parse_args(argv)

    import tempfile

    from coursekit import evaluate
    from coursekit.data import load_task_dataset
    from coursekit.train import finetune_fresh

    data = load_task_dataset(size="cpu", seed=0)
    print(f"{args.method}, {args.steps} steps x {args.batch_size}, learning rate {args.lr:g}, model {args.model}, "
          f"{args.tickets} test tickets")
    with tempfile.TemporaryDirectory() as runs_dir:
        for seed in args.seeds:
            t0 = time.perf_counter()
            run = finetune_fresh(args.model, data["train"], data["validation"], method=args.method,
                                 test=data["test"], device="cpu", max_steps=args.steps, batch_size=args.batch_size,
                                 learning_rate=args.lr, seed=seed, metric_examples=args.tickets, eval_size=64,
                                 measure_before=False, measure_general=False, save_final=False, progress=False,
                                 runs_dir=runs_dir)
            line = (f"seed {seed}: task metric {run.task_metric_after:.3f}, final validation loss "
                    f"{run.final_eval_loss:.4f}, {run.train_seconds:.1f} s of training "
                    f"({time.perf_counter() - t0:.1f} s in all)")
            if args.fields:
                rows = list(data["test"].select(range(args.tickets)))
                scored = evaluate.evaluate_task(run.model, run.tokenizer, rows)
                line += "; fields " + ", ".join(f"{k} {v:.2f}" for k, v in scored.fields.items())
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
