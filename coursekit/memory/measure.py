"""Measured peak memory of real training steps, per category, on CUDA or on CPU.

On CUDA the allocator's own counters are the truth (``torch.cuda.max_memory_allocated`` and ``..._reserved``).
On CPU there is no allocator to ask, so a tensor-level tracker counts every storage as it is created and freed:
``torch.distributed._tools.mem_tracker.MemTracker`` (private torch API; :class:`CategoryPeakTracker` wraps it, and
tests/test_memory.py pins the behaviour this module relies on).

The model is random-init from the architecture's config (no download): memory does not depend on the values.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

from coursekit._results import ResultMixin
from coursekit.archs.count import ALL_LINEAR, resolve_arch
from coursekit.memory.estimator import MemoryEstimate, QuantOptions, _positive_int, estimate_memory
from coursekit.memory.recipes import ATTENTIONS, ESTIMATED_METHODS, OPTIMIZERS, PRECISIONS, check_choice

CATEGORIES = ("weights", "adapter_weights", "gradients", "optimizer", "activations")


def _tracker_class():
    from coursekit.memory.tracker import CategoryPeakTracker

    return CategoryPeakTracker


def CategoryPeakTracker():  # noqa: N802 - a factory that reads like the class it builds
    """A fresh tracker (built lazily so that importing this module does not import torch)."""
    return _tracker_class()()


@dataclass(repr=False)
class MeasuredMemory(ResultMixin):
    arch: str
    method: str
    device: str
    tool: str  # "torch.cuda.max_memory_allocated" or "MemTracker"
    weights: int
    adapter_weights: int
    gradients: int
    optimizer: int
    activations: int
    peak_bytes: int  # the peak of all tensors together
    peak_reserved_bytes: int = 0  # CUDA only: what the caching allocator held
    steps: int = 2
    peak_snapshot: dict = field(default_factory=dict)
    estimate: MemoryEstimate | None = None
    # CPU only: the most bytes held at once by backward temporaries shaped like a trainable weight (pieces of a
    # gradient not yet in .grad, such as a tied embedding's two halves); not part of ``activations``
    gradient_temporaries: int = 0

    def comparison(self) -> dict[str, dict]:
        """``{category: {estimate, measured, error}}`` against ``self.estimate`` (relative error, measured as base)."""
        if self.estimate is None:
            raise ValueError("no estimate attached; pass estimate=True to measure_peak_memory")
        out = {}
        pairs = [(c, getattr(self.estimate, c), getattr(self, c)) for c in CATEGORIES]
        pairs.append(("total", self.estimate.tensor_bytes, self.peak_bytes))
        for name, est, meas in pairs:
            err = (est - meas) / meas if meas else (0.0 if est == 0 else float("inf"))
            out[name] = {"estimate": int(est), "measured": int(meas), "error": err}
        return out


def stored_weight_bytes(model, include_lora: bool = False) -> int:
    """Bytes of a model's parameters and buffers as stored, counting each storage once, plus bitsandbytes
    quantization state (absmax, nested absmax, code tables) held beside 4-bit weights."""
    seen, total = set(), 0

    def add(t):
        nonlocal total
        if t is None or not hasattr(t, "untyped_storage"):
            return
        st = t.untyped_storage()
        key = (st.data_ptr(), st.nbytes()) if st.data_ptr() else id(t)
        if key in seen:
            return
        seen.add(key)
        total += st.nbytes()

    for name, p in model.named_parameters():
        if ("lora_" in name) != include_lora:
            continue
        add(p)
        qs = getattr(p, "quant_state", None)
        if qs is not None and not include_lora:
            for attr in ("absmax", "code", "offset"):
                add(getattr(qs, attr, None))
            s2 = getattr(qs, "state2", None)
            if s2 is not None:
                add(getattr(s2, "absmax", None))
                add(getattr(s2, "code", None))
    return total


def build_training_model(arch, method: str, *, precision: str = "fp32", rank: int = 16, targets=ALL_LINEAR,
                         lora_dtype: str = "fp32", device: str = "cpu", attention: str = "sdpa",
                         quantization: QuantOptions | None = None, seed: int = 0):
    """A random-init model of ``arch`` ready to train with ``method`` (peft LoRA; bitsandbytes NF4 for QLoRA)."""
    import torch
    from transformers import AutoModelForCausalLM

    spec = resolve_arch(arch)
    p = PRECISIONS[precision]
    dtype = torch.float32 if p.weight_bytes == 4 and method == "full" else (
        torch.float32 if p.frozen_bytes == 4 else torch.bfloat16)
    config = spec.config()
    config._attn_implementation = attention
    torch.manual_seed(seed)
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        q = quantization or QuantOptions(other_dtype="fp32" if dtype == torch.float32 else "bf16")
        with tempfile.TemporaryDirectory() as tmp:
            with torch.device(device):  # random init where it is fast (a GPU initialises 3B weights in a blink)
                full = AutoModelForCausalLM.from_config(config, dtype=dtype)
            full.save_pretrained(tmp)
            del full
            bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q.quant_type,
                                     bnb_4bit_use_double_quant=q.double_quant, bnb_4bit_compute_dtype=dtype)
            model = AutoModelForCausalLM.from_pretrained(tmp, quantization_config=bnb, dtype=dtype,
                                                         device_map={"": device}, attn_implementation=attention)
        from peft import prepare_model_for_kbit_training

        # the QLoRA recipe: every parameter left unquantized (embeddings, norms, lm_head) cast to fp32
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attention)
    if method in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model

        tm = targets if isinstance(targets, list) or targets == ALL_LINEAR else [t.strip() for t in targets.split(",")]
        model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                                                 target_modules=tm, task_type="CAUSAL_LM"))
        if lora_dtype != "fp32":
            for n, prm in model.named_parameters():
                if "lora_" in n:
                    prm.data = prm.data.to(torch.bfloat16 if lora_dtype == "bf16" else torch.float16)
    model.train()
    return model


def make_optimizer(params, optimizer: str, lr: float = 1e-4):
    import torch

    params = [p for p in params if p.requires_grad]
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if optimizer in ("adamw", "paged-adamw"):
        if optimizer == "paged-adamw":
            import bitsandbytes as bnb

            return bnb.optim.PagedAdamW32bit(params, lr=lr)
        return torch.optim.AdamW(params, lr=lr)
    import bitsandbytes as bnb

    cls = bnb.optim.PagedAdamW8bit if optimizer == "paged-adamw-8bit" else bnb.optim.AdamW8bit
    return cls(params, lr=lr)


def measure_peak_memory(arch, method: str = "lora", *, precision: str = "fp32", optimizer: str = "adamw",
                        rank: int = 16, targets=ALL_LINEAR, lora_dtype: str = "fp32", batch_size: int = 2,
                        seq_len: int = 64, checkpointing: bool = False, attention: str = "sdpa", steps: int = 2,
                        device: str = "auto", seed: int = 0, estimate: bool = True) -> MeasuredMemory:
    """Run ``steps`` (at least 2, so optimizer state exists) real training steps and report peak memory per category.

    CUDA: ``max_memory_allocated`` / ``max_memory_reserved`` for the total; categories from the tensors themselves.
    CPU: every tensor through :func:`CategoryPeakTracker`. With ``estimate=True`` the matching
    :func:`estimate_memory` result is attached (``.comparison()`` gives the errors).
    """
    dev = _check_measure_arguments(method, precision, optimizer, attention, batch_size, seq_len, steps, device)
    import torch

    spec = resolve_arch(arch)
    model = build_training_model(spec, method, precision=precision, rank=rank, targets=targets,
                                 lora_dtype=lora_dtype, device=dev, attention=attention, seed=seed)
    if checkpointing:
        enable_checkpointing(model, method)
    opt = make_optimizer(model.parameters(), optimizer)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, spec.vocab_size, (batch_size, seq_len), generator=gen).to(dev)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if PRECISIONS[precision].autocast else None
    weights = stored_weight_bytes(model)
    adapter = stored_weight_bytes(model, include_lora=True)

    def step():
        return _train_step(model, opt, ids, autocast)

    known = {"arch": spec.name, "method": method, "device": dev, "weights": weights, "adapter_weights": adapter,
             "steps": steps}
    measure = _measure_on_cuda if dev == "cuda" else _measure_on_cpu
    result = measure(model, opt, step, steps, known)
    if estimate:
        result.estimate = estimate_memory(spec, method, precision=precision, optimizer=optimizer, rank=rank,
                                          targets=targets, lora_dtype=lora_dtype, batch_size=batch_size,
                                          seq_len=seq_len, checkpointing=checkpointing, attention=attention,
                                          device="cuda" if dev == "cuda" else "cpu",
                                          quantization=QuantOptions(other_dtype="fp32" if PRECISIONS[precision].frozen_bytes == 4 else "bf16")
                                          if method == "qlora" else None)
    model = opt = step = None  # drop the references before emptying the CUDA cache
    if dev == "cuda":
        torch.cuda.empty_cache()
    return result


def enable_checkpointing(model, method: str) -> None:
    """Gradient checkpointing as the Trainer turns it on (non-reentrant); with a frozen base (LoRA, QLoRA) the
    embeddings' output must require grad, or nothing flows back through the checkpointed layers."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if method != "full":
        model.enable_input_require_grads()


def _check_measure_arguments(method, precision, optimizer, attention, batch_size, seq_len, steps, device) -> str:
    """:func:`measure_peak_memory`'s input checks; returns the resolved device."""
    from coursekit.env import resolve_device

    check_choice(method, ESTIMATED_METHODS, "method")
    check_choice(precision, tuple(PRECISIONS), "precision")
    check_choice(optimizer, tuple(OPTIMIZERS), "optimizer")
    check_choice(attention, ATTENTIONS, "attention")
    _positive_int(batch_size, "batch_size")
    _positive_int(seq_len, "seq_len")
    if _positive_int(steps, "steps") < 2:
        raise ValueError(f"steps must be at least 2 (optimizer state appears at the first step), got {steps}")
    dev = resolve_device(device)
    if dev == "mps":
        raise ValueError("measuring on mps is not supported; use device='cpu' or 'cuda'")
    if PRECISIONS[precision].autocast and dev == "cpu":
        raise ValueError("amp-bf16 is measured on CUDA only; on CPU use precision 'fp32' or 'bf16'")
    return dev


def _measure_on_cuda(model, opt, step, steps: int, known: dict) -> MeasuredMemory:
    """The allocator's counters around ``steps - 1`` steps after a first one (which creates optimizer state);
    ``known`` holds the fields measured before training (arch, method, device, weights, adapter_weights, steps)."""
    import torch

    grads_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    torch.cuda.synchronize()
    step()  # the first step creates optimizer state
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    for _ in range(steps - 1):
        step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    reserved = torch.cuda.max_memory_reserved()
    opt_bytes = _optimizer_bytes(opt)
    return MeasuredMemory(**known, tool="torch.cuda.max_memory_allocated", gradients=grads_bytes, optimizer=opt_bytes,
                          activations=max(0, peak - base - max(0, grads_bytes - _early_grad_bytes(model))),
                          peak_bytes=peak, peak_reserved_bytes=reserved)


def _measure_on_cpu(model, opt, step, steps: int, known: dict) -> MeasuredMemory:
    """Every tensor of ``steps`` steps through :func:`CategoryPeakTracker`; ``known`` as in :func:`_measure_on_cuda`."""
    from coursekit.memory.tracker import GRADIENT_TEMPORARIES

    tracker = CategoryPeakTracker()
    tracker.track_external(model, opt)
    with tracker:
        for _ in range(steps):
            tracker.reset_mod_stats()  # per-module stats are per iteration; the peaks are kept
            step()
    cat = tracker.category_max
    snap = tracker.peak_snapshot()
    return MeasuredMemory(**known, tool="MemTracker", gradients=int(cat.get("Gradient", 0)),
                          optimizer=_optimizer_bytes(opt),
                          activations=int(cat.get("activations", 0)),
                          peak_bytes=tracker.peak_bytes() + _untracked_quant_state(model),
                          peak_snapshot=snap, gradient_temporaries=int(cat.get(GRADIENT_TEMPORARIES, 0)))


def _train_step(model, opt, ids, autocast) -> float:
    """One causal-LM training step on ``ids`` (labels = inputs), under ``autocast`` when one is given."""
    if autocast is not None:
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
    else:
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss)


def _optimizer_bytes(opt) -> int:
    seen, total = set(), 0
    for state in opt.state.values():
        for v in state.values():
            if hasattr(v, "untyped_storage"):
                st = v.untyped_storage()
                if st.data_ptr() not in seen:
                    seen.add(st.data_ptr())
                    total += st.nbytes()
    return total


def _early_grad_bytes(model) -> int:
    for name, p in model.named_parameters():
        if p.requires_grad and ("lm_head" in name or "embed_tokens" in name):
            return p.numel() * p.element_size()
    return 0


def _untracked_quant_state(model) -> int:
    """bitsandbytes quantization state is not a parameter, so the tracker does not see it; add it to the total."""
    total = 0
    for p in model.parameters():
        qs = getattr(p, "quant_state", None)
        if qs is not None:
            total += stored_weight_bytes_of_state(qs)
    return total


def stored_weight_bytes_of_state(qs) -> int:
    total = 0
    for t in (getattr(qs, "absmax", None), getattr(qs, "code", None), getattr(qs, "offset", None)):
        if t is not None and hasattr(t, "nbytes"):
            total += t.nbytes
    s2 = getattr(qs, "state2", None)
    if s2 is not None and getattr(s2, "absmax", None) is not None:
        total += s2.absmax.nbytes
    return total


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def training_step_seconds(arch, method: str = "full", *, precision: str = "fp32", batch_size: int = 2,
                          seq_len: int = 64, checkpointing: bool = False, steps: int = 3, device: str = "auto",
                          seed: int = 0) -> float:
    """Median wall-clock seconds of one training step of a random-init ``arch`` (after one warm-up step), with no
    memory tracking: what gradient checkpointing's recomputation costs in time, next to what it saves in memory."""
    import statistics
    import time

    _positive_int(steps, "steps")
    # the same checks as measure_peak_memory (which counts the warm-up step among its steps)
    dev = _check_measure_arguments(method, precision, "adamw", "sdpa", batch_size, seq_len, steps + 1, device)
    import torch

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if PRECISIONS[precision].autocast else None

    spec = resolve_arch(arch)
    model = build_training_model(spec, method, precision=precision, device=dev, seed=seed)
    if checkpointing:
        enable_checkpointing(model, method)
    opt = make_optimizer(model.parameters(), "adamw")
    ids = torch.randint(0, spec.vocab_size, (batch_size, seq_len),
                        generator=torch.Generator().manual_seed(seed)).to(dev)
    times = []
    for i in range(steps + 1):
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        _train_step(model, opt, ids, autocast)
        if dev == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step allocates the optimizer state
            times.append(time.perf_counter() - t0)
    return float(statistics.median(times))
