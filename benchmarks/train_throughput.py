"""Training throughput: ``coursekit.train.finetune`` against a plain ``transformers.Trainer`` (+ peft for LoRA)
and against TRL's ``SFTTrainer`` alone, which ``finetune`` runs.

Same model, data, micro-batch, steps and learning rate; the three run alternately in this one process, ROUNDS times
each, and the script prints tokens per second (padding excluded) for each and their ratio (finetune / baseline).
On a CUDA GPU it also prints model FLOPs utilisation: 6 N FLOPs per token for full fine-tuning, 4 N for LoRA
(no weight gradients for the frozen weights), against the GPU's dense bf16 peak.

    python benchmarks/train_throughput.py                 # full fine-tuning, embedded model, CPU
    python benchmarks/train_throughput.py --method lora
    python benchmarks/train_throughput.py --packing       # finetune with TRL's packing as well
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Dense bf16 peak FLOP/s of common GPUs (vendor datasheets, without sparsity).
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "T4": 65e12}


def load(model_name: str, device: str):
    """The base model and tokenizer, loaded the way the lessons load them."""
    from coursekit.models import load_base_model

    return load_base_model(model_name, device=device)


def _lora_defaults() -> dict:
    """finetune's LoRA defaults (coursekit.train.methods), as both baselines configure peft."""
    from coursekit.train import METHODS

    options = METHODS["lora"].options
    return dict(r=options["rank"], lora_alpha=options["alpha"], lora_dropout=options["dropout"],
                target_modules=options["target_modules"], task_type="CAUSAL_LM")


LORA = _lora_defaults()


def trainer_settings(device, steps, batch_size, lr, out_dir) -> dict:
    """The TrainingArguments both baselines share with finetune's run (SFTConfig is a TrainingArguments)."""
    import torch

    return dict(output_dir=str(out_dir), max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=lr,
                lr_scheduler_type="cosine", warmup_steps=0.1, weight_decay=0.01, logging_steps=10_000,
                save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=device == "cpu",
                bf16=device == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False), include_num_input_tokens_seen="non_padding",
                seed=0, dataloader_pin_memory=device == "cuda")


def baseline_run(model_name, device, method, rows, steps, batch_size, lr, out_dir):
    """A popular tutorial's pipeline, modernised: tokenize with labels masked on the prompt, pad per batch, Trainer."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from coursekit.data import tokenize_with_labels

    model, tok = load(model_name, device)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(**LORA))
    ds = Dataset.from_list([tokenize_with_labels(r, tok, 1024) for r in rows])
    args = TrainingArguments(**trainer_settings(device, steps, batch_size, lr, out_dir))
    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100))
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    return trainer.state.num_input_tokens_seen / seconds, n_params


def sft_trainer_run(model_name, device, method, rows, steps, batch_size, lr, out_dir):
    """TRL's SFTTrainer alone, as its docs show it, with finetune's settings: what finetune adds is the difference."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from coursekit.train import to_prompt_completion

    model, tok = load(model_name, device)
    peft_config = None
    if method == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(**LORA)
    args = SFTConfig(**trainer_settings(device, steps, batch_size, lr, out_dir), completion_only_loss=True,
                     activation_checkpointing=False)  # SFTConfig's default is on; finetune's and Trainer's off
    ds = Dataset.from_list(to_prompt_completion(rows, "train", tok))
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft_config)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    return trainer.state.num_input_tokens_seen / seconds, sum(p.numel() for p in trainer.model.parameters())


def finetune_run(model_name, device, method, rows, steps, batch_size, lr, runs_dir, packing):
    from coursekit.train import finetune

    model, tok = load(model_name, device)
    r = finetune(model, tok, rows, None, method=method, max_steps=steps, batch_size=batch_size, grad_accum=1,
                 learning_rate=lr, device=device, runs_dir=runs_dir, save_final=False, measure_task=False,
                 measure_general=False, progress=False, log_every=10_000, packing=packing)
    return r.tokens_per_second, r.total_parameters


def mfu(tokens_per_second, n_params, method, device):
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    if peak is None:
        return None
    return (6 if method == "full" else 4) * n_params * tokens_per_second / peak


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--method", default="full", choices=["full", "lora"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--examples", type=int, default=512)
    ap.add_argument("--packing", action="store_true", help="also time finetune with packing=True")
    args = ap.parse_args(argv)

    from coursekit.data import make_examples
    from coursekit.env import resolve_device

    device = resolve_device(args.device)
    rows = make_examples(args.examples, seed=0, split="train")
    lr = 2e-5 if args.method == "full" else 3e-4
    kinds = ["baseline", "SFTTrainer", "finetune"] + (["finetune+packing"] if args.packing else [])
    speeds = {k: [] for k in kinds}
    n_params = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for k in kinds:
                if k == "baseline":
                    tps, n = baseline_run(args.model, device, args.method, rows, args.steps, args.batch_size, lr,
                                          Path(tmp) / f"baseline-{i}")
                elif k == "SFTTrainer":
                    tps, n = sft_trainer_run(args.model, device, args.method, rows, args.steps, args.batch_size, lr,
                                             Path(tmp) / f"sft-{i}")
                else:
                    tps, n = finetune_run(args.model, device, args.method, rows, args.steps, args.batch_size, lr,
                                          Path(tmp) / "runs", k.endswith("packing"))
                speeds[k].append(tps)
                n_params[k] = n
                print(f"round {i + 1}: {k:<17} {tps:9,.0f} tokens/s", flush=True)
    print(f"\n{args.method} fine-tuning, model {args.model}, {device}, micro-batch {args.batch_size}, "
          f"{args.steps} steps, median of {args.rounds} alternating rounds")
    base = statistics.median(speeds["baseline"])
    for k in kinds:
        med = statistics.median(speeds[k])
        line = f"  {k:<17} {med:9,.0f} tokens/s   ratio to baseline {med / base:5.2f}"
        u = mfu(med, n_params[k], args.method, device)
        if u is not None:
            line += f"   MFU {100 * u:.1f}%"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
