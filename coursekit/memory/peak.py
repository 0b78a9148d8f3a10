"""A training run's memory: the peak measured while it trains, and the estimator's figure for the same run.

``PeakMemory`` measures a block of code (CUDA: ``torch.cuda.max_memory_allocated``; CPU and MPS: the process RSS
sampled every 20 ms). ``estimated_training_bytes`` asks ``estimate_memory`` about a loaded model with the settings a
Trainer run uses (the Trainer's optimizer names, bf16 autocast), so a run can report the estimate next to what it
measured. Plain arguments in, plain numbers out: this module knows nothing of ``coursekit.train``.
"""
from __future__ import annotations

import threading

#: the Trainer's ``optim`` names -> the estimator's optimizer names (others: no estimate)
TRAINER_OPTIMIZERS = {
    "adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw_8bit": "adamw-8bit", "adamw_bnb_8bit": "adamw-8bit",
    "paged_adamw_8bit": "paged-adamw-8bit", "paged_adamw_32bit": "paged-adamw", "paged_adamw": "paged-adamw",
    "sgd": "sgd",
}


class PeakMemory:
    """Peak memory of a block: CUDA ``max_memory_allocated``, or on CPU/MPS the process RSS sampled every 20 ms.

    On CPU the figure is the model's weights (``model_bytes``) plus what the process grew by during the block
    (gradients, optimizer state, activations), comparable to an estimate of training memory. After the block,
    ``peak_bytes`` holds the figure and ``how`` says how it was measured.
    """

    def __init__(self, device: str, model_bytes: int):
        self.device, self.model_bytes = device, model_bytes
        self.peak_bytes, self.how = 0, ""

    def __enter__(self):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        import psutil

        self._proc = psutil.Process()
        self._base = self._peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            self.peak_bytes = int(torch.cuda.max_memory_allocated())
            self.how = "torch.cuda.max_memory_allocated"
        else:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self.peak_bytes = int(self.model_bytes + self._peak - self._base)
            self.how = "model weights + process RSS growth during training"
        return False


def model_bytes(model) -> int:
    """Bytes of a model's parameters and buffers, as stored (a 4-bit weight counts its packed bytes)."""
    return int(sum(p.numel() * p.element_size() for p in model.parameters())
               + sum(b.numel() * b.element_size() for b in model.buffers()))


def estimated_training_bytes(model, method: str, *, optim: str, batch_size: int, seq_len: int, bf16: bool,
                             gradient_checkpointing: bool = False, device: str = "cpu", rank: int | None = None,
                             target_modules=None, lora_dropout: float = 0.0, padded: bool = False) -> int | None:
    """``estimate_memory``'s total for training ``model`` (loaded, possibly PEFT-wrapped) this way, in bytes.

    ``optim``: the Trainer's optimizer name (``TRAINER_OPTIMIZERS``); ``bf16``: autocast on (a model whose floating
    weights are all bf16 is estimated as pure bf16 whatever ``bf16`` says); ``rank``, ``target_modules``,
    ``lora_dropout``: the LoRA settings (given for ``lora`` and ``qlora``); ``padded``: the batches carry a padding
    mask (``estimate_memory``'s option). Returns None where the estimator has no
    recipe: a method it does not price (it prices full, lora and qlora), an optimizer it does not model, an
    architecture it cannot describe.
    """
    optimizer = TRAINER_OPTIMIZERS.get(optim)
    if optimizer is None:
        return None
    try:
        import torch

        from coursekit.memory.estimator import estimate_memory

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        float_dtypes = {p.dtype for p in base.parameters() if p.dtype.is_floating_point}
        if float_dtypes == {torch.bfloat16}:
            precision = "bf16"
        else:
            precision = "amp-bf16" if bf16 else "fp32"
        lora = {}
        if rank is not None:
            lora = {"rank": int(rank), "targets": target_modules, "lora_dropout": lora_dropout,
                    "lora_dtype": "bf16" if method == "qlora" else "fp32"}
        est = estimate_memory(base.config, method, precision=precision, optimizer=optimizer,
                              batch_size=int(batch_size), seq_len=int(seq_len), checkpointing=bool(gradient_checkpointing),
                              device="cuda" if device == "cuda" else "cpu", padded=bool(padded), **lora)
    except Exception:  # a method or architecture the estimator cannot describe: no estimate, the run goes on
        return None
    return int(est.total_bytes)


__all__ = ["PeakMemory", "TRAINER_OPTIMIZERS", "estimated_training_bytes", "model_bytes"]
