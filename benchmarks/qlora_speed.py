"""QLoRA against LoRA: time per training step and peak memory on a real-size, random-init architecture.

A widely repeated claim (quoted in lesson 05) says QLoRA trains 20-30% slower than LoRA (every forward and backward
dequantizes the 4-bit weights). This measures it: the same random-init weights, once in bf16 with LoRA (AdamW), once
in NF4 with double quantization and LoRA (``prepare_model_for_kbit_training``, paged 8-bit AdamW), LoRA r=16 on all
linear layers, random tokens, the same batch and sequence length. Steps after the warm-up are timed. Writes
``reports/qlora-speed.json`` and ``reports/qlora-speed.md``.

    python benchmarks/qlora_speed.py                          # CUDA, llama-3.2-1b
    python benchmarks/qlora_speed.py --arch llama-3.1-8b --batch 1 --seq 1024
    python benchmarks/qlora_speed.py --cpu --arch tiny --steps 3  # a smoke test on a CPU
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def build_random_model(arch: str, folder: Path, seed: int, device: str = "cpu") -> None:
    """Save a random-init model of ``arch`` (bf16) to ``folder`` so both runs load the same weights.

    ``device="cuda"`` initialises the weights on the GPU (seconds instead of a minute for billions of weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    from coursekit.archs import count

    torch.manual_seed(seed)
    config = count.resolve_arch(arch).config()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    del model


def run(method: str, folder: Path, device: str, batch: int, seq: int, steps: int, warmup: int, rank: int) -> dict:
    import bitsandbytes as bnb
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    on_cuda = device == "cuda"
    if on_cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    kwargs = {"dtype": torch.bfloat16, "device_map": {"": 0 if on_cuda else "cpu"}}
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = bnb.optim.PagedAdamW8bit(params, lr=2e-4) if method == "qlora" else torch.optim.AdamW(params, lr=2e-4)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    times = []
    model.train()
    for step in range(warmup + steps):
        ids = torch.randint(0, vocab, (batch, seq), generator=gen).to(model.device)
        if on_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device_type="cuda" if on_cuda else "cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if on_cuda:
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    result = {"method": method, "seconds_per_step": statistics.median(times), "steps_timed": len(times),
              "tokens_per_second": batch * seq / statistics.median(times),
              "trainable_parameters": sum(p.numel() for p in params), "final_loss": loss.item()}
    if on_cuda:
        result["peak_memory_bytes"] = torch.cuda.max_memory_allocated()
    del model, opt
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="llama-3.2-1b", help="a preset of coursekit.archs (random-init weights)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per method")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (a smoke test; the timing means little)")
    ap.add_argument("--out", default="reports", help="folder for qlora-speed.json / .md")
    args = ap.parse_args(argv)
    import torch

    device = "cpu" if args.cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU here; use --cpu for a smoke test", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        build_random_model(args.arch, Path(tmp), seed=0)
        runs = {m: run(m, Path(tmp), device, args.batch, args.seq, args.steps, args.warmup, args.rank)
                for m in ("lora", "qlora")}
    ratio = runs["qlora"]["seconds_per_step"] / runs["lora"]["seconds_per_step"]
    report = {"arch": args.arch, "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
              "batch": args.batch, "seq": args.seq, "rank": args.rank, "runs": runs,
              "qlora_time_per_step_relative_to_lora": ratio, "qlora_slower_percent": 100 * (ratio - 1),
              "versions": {"torch": torch.__version__}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "qlora-speed.json").write_text(json.dumps(report, indent=2))
    lines = [f"# QLoRA vs LoRA speed: {args.arch} (random init), {report['device']}", "",
             f"batch {args.batch} x {args.seq} tokens, LoRA r={args.rank} on all linear layers, "
             f"median of {args.steps} steps after {args.warmup} warm-up steps.", "",
             "| method | s / step | tokens / s | peak memory (GB) |", "|---|---|---|---|"]
    for m, r in runs.items():
        peak = f"{r['peak_memory_bytes'] / 1e9:.2f}" if "peak_memory_bytes" in r else "n/a"
        lines.append(f"| {m} | {r['seconds_per_step']:.3f} | {r['tokens_per_second']:,.0f} | {peak} |")
    lines += ["", f"QLoRA takes {ratio:.2f}x LoRA's time per step ({100 * (ratio - 1):+.0f}%); "
              "the widely repeated claim is 20-30% slower."]
    (out / "qlora-speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
