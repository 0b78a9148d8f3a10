"""QLoRA on a CPU: seconds per training step with the 4-bit layers and the adapters in bf16 or in fp32.

On a CPU without AVX512-BF16, bf16 matmuls are emulated. TRL's ``SFTTrainer`` casts a 4-bit model's LoRA adapters to
bf16, and bitsandbytes runs the 4-bit matmuls in ``bnb_4bit_compute_dtype``. This times ``finetune(method="qlora")``
on the embedded model three ways: both in bf16 (the course's setting before), fp32 compute with bf16 adapters, and
both in fp32 (the course's setting now: ``load_base_model`` and ``finetune`` choose fp32 on a device that does not
compute in bf16; ``finetune(..., adapter_dtype="bf16")`` keeps TRL's bf16 adapters). The same data, seed and steps;
the last validation loss is printed beside the time to show the runs learn alike.

    python benchmarks/qlora_cpu_dtypes.py [--steps 6] [--batch 8]
"""
from __future__ import annotations

import argparse
import json
import tempfile


def run(variant: str, steps: int, batch: int) -> dict:
    import torch

    import coursekit
    from coursekit.data import load_task_dataset
    from coursekit.train import finetune

    data = load_task_dataset(size="cpu", seed=0)
    compute = torch.bfloat16 if variant == "bf16 compute, bf16 adapters" else torch.float32
    adapter_dtype = "fp32" if variant == "fp32 compute, fp32 adapters" else "bf16"  # bf16: what TRL leaves
    model, tokenizer = coursekit.load_base_model("tiny", device="cpu", quantization="nf4", compute_dtype=compute)
    r = finetune(model, tokenizer, data["train"], data["validation"], method="qlora", batch_size=batch,
                 max_steps=steps, learning_rate=5e-3, measure_task=False, measure_general=False, measure_before=False,
                 save_final=False, runs_dir=tempfile.mkdtemp(), progress=False, eval_size=32,
                 adapter_dtype=adapter_dtype)
    adapters = sorted({str(p.dtype).removeprefix("torch.") for p in r.model.parameters() if p.requires_grad})
    return {"variant": variant, "seconds_per_step": round(r.train_seconds / steps, 2), "adapters": adapters,
            "final_eval_loss": round(r.final_eval_loss, 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    for variant in ("bf16 compute, bf16 adapters", "fp32 compute, bf16 adapters", "fp32 compute, fp32 adapters"):
        print(json.dumps(run(variant, args.steps, args.batch)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
