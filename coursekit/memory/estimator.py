"""The memory estimator: what fine-tuning an architecture costs, component by component, in bytes.

Inputs are plain arguments (checked at the door); each component is a small pure function; the result is a
:class:`MemoryEstimate` dataclass. Presentation (tables, widgets) lives elsewhere.

Components
  weights          the base model as stored (fp32/bf16, or NF4 for QLoRA)
  adapter_weights  trainable parameters the method adds (LoRA A and B; 0 for full fine-tuning)
  gradients        one gradient per trainable parameter, in the parameter's dtype
  optimizer        optimizer state (Adam moments, an fp32 master copy where the recipe keeps one)
  activations      what autograd keeps for backward at its peak, plus the loss's batch × seq × vocab tensors
  overhead         framework / CUDA context, stated separately (invisible to ``torch.cuda.max_memory_allocated``)

``total_bytes`` is the modelled peak, not the plain sum: gradients of full fine-tuning are written while the
activations are freed, so the peak is ``weights + adapter + optimizer + overhead + max(backward start, step)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from coursekit._results import ResultMixin
from coursekit.archs.count import (
    ALL_LINEAR,
    ArchSpec,
    count_lora_parameters,
    lora_target_modules,
    resolve_arch,
)
from coursekit.memory.recipes import (
    ATTENTIONS,
    BNB_MIN_8BIT_SIZE,
    BNB_OPTIMIZER_BLOCKSIZE,
    BYTES,
    ESTIMATED_METHODS,
    LOSSES,
    OPTIMIZERS,
    PRECISIONS,
    check_choice,
)
from coursekit.units import GB, GIB, MIB  # estimates are in bytes; lessons read the units from here too
from coursekit.validate import boolean, fraction, non_negative_int, positive_int

#: What a CUDA context and the caching allocator's slack typically take beyond the tensors (stated, not measured).
CUDA_OVERHEAD_BYTES = 512 * MIB
DEVICES = ("cuda", "cpu")

# ---------------------------------------------------------------- weights as stored (QLoRA and friends)


@dataclass(frozen=True)
class QuantOptions:
    """How bitsandbytes stores a 4-bit model (the BitsAndBytesConfig fields that change bytes)."""

    quant_type: str = "nf4"  # nf4 or fp4: same bytes
    blocksize: int = 64  # weights per absmax
    double_quant: bool = True  # absmax in 8 bits + one fp32 absmax per 256 absmax values
    other_dtype: str = "bf16"  # embeddings, lm_head, norms, biases (what torch_dtype the model was loaded in)


def _quant_options(quantization) -> QuantOptions | None:
    if quantization is None or quantization is False:
        return None
    if isinstance(quantization, QuantOptions):
        q = quantization
    elif isinstance(quantization, str):
        if quantization.lower() not in {"nf4", "fp4", "4bit"}:
            raise ValueError(f"unknown quantization {quantization!r}; allowed: None, 'nf4', 'fp4', or a dict/QuantOptions")
        q = QuantOptions(quant_type="nf4" if quantization.lower() == "4bit" else quantization.lower())
    elif isinstance(quantization, dict):
        unknown = set(quantization) - set(QuantOptions.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown quantization option(s) {sorted(unknown)}; allowed: {list(QuantOptions.__dataclass_fields__)}")
        q = QuantOptions(**quantization)
    else:
        raise ValueError(f"quantization must be None, 'nf4', a dict or QuantOptions; got {quantization!r}")
    if q.quant_type not in {"nf4", "fp4"}:
        raise ValueError(f"quant_type must be 'nf4' or 'fp4', got {q.quant_type!r}")
    positive_int("blocksize", q.blocksize)
    check_choice(q.other_dtype, tuple(k for k in BYTES if k != "int8"), "dtype for the unquantized parameters")
    return q


def quantized_tensor_bytes(numel: int, q: QuantOptions) -> int:
    """Bytes of one Linear weight stored by bitsandbytes in 4 bits: packed data, absmax, per-tensor code table."""
    blocks = math.ceil(numel / q.blocksize)
    data = math.ceil(numel / 2)  # two 4-bit codes per uint8
    code = 16 * 4  # the 16-value NF4/FP4 table (fp32), one per tensor
    if q.double_quant:
        absmax = blocks * 1 + math.ceil(blocks / 256) * 4 + 4  # uint8 absmax, fp32 absmax per 256, fp32 offset
    else:
        absmax = blocks * 4
    return data + absmax + code


def weight_bytes(arch, quantization=None, dtype: str = "bf16") -> int:
    """The base model's weights as stored, in bytes.

    ``quantization=None``: every parameter in ``dtype``. ``"nf4"`` (or a dict / :class:`QuantOptions`): the Linear
    layers inside the decoder blocks in 4 bits as bitsandbytes keeps them; embeddings, lm_head, norms and biases in
    ``other_dtype`` (default bf16).
    """
    return sum(weight_bytes_breakdown(arch, quantization, dtype).values())


def weight_bytes_breakdown(arch, quantization=None, dtype: str = "bf16") -> dict[str, int]:
    spec = resolve_arch(arch)
    q = _quant_options(quantization)
    if q is None:
        check_choice(dtype, tuple(BYTES), "dtype")
        return {"parameters": spec.total_parameters * BYTES[dtype]}
    quantized = [lin for lin in spec.linears if lin.in_decoder]
    packed = sum(quantized_tensor_bytes(lin.weight_parameters, q) for lin in quantized)
    shared_tables = 256 * 4 if q.double_quant else 0  # the 8-bit dynamic map the nested absmax uses (shared)
    other = spec.total_parameters - sum(lin.weight_parameters for lin in quantized)
    return {"quantized_linears": packed + shared_tables, "other_parameters": other * BYTES[q.other_dtype]}


# ---------------------------------------------------------------- optimizer state


def _optimizer_state_bytes(numels, optimizer: str, state_bytes: int, master_bytes: int) -> int:
    spec = OPTIMIZERS[optimizer]
    total = 0
    for n in numels:
        total += n * master_bytes
        if spec.states == 0:
            continue
        if spec.eight_bit and n >= BNB_MIN_8BIT_SIZE:
            blocks = math.ceil(n / BNB_OPTIMIZER_BLOCKSIZE)
            total += spec.states * (n + 4 * blocks)
        elif spec.eight_bit:
            total += spec.states * 4 * n  # small tensors keep fp32 state
        else:
            total += spec.states * state_bytes * n
    return total


# ---------------------------------------------------------------- activations


#: With gradient checkpointing, the backward of one recomputed layer holds this many layers' worth of activations.
CKPT_WORKING_LAYERS_FULL, CKPT_WORKING_LAYERS_LORA = 1.15, 1.35


# long: Korthikanti et al.'s count, one term per saved tensor, read top to bottom against the paper
def activation_breakdown(spec: ArchSpec, *, method: str, batch_size: int, seq_len: int, precision: str,
                         checkpointing: bool, attention: str, target_kinds: set, rank: int,
                         lora_bytes: int, lora_dropout: float = 0.0, device: str = "cuda",
                         padded: bool = False, loss: str = "logits", kbit_prepared: bool = False) -> dict[str, int]:
    """What autograd keeps for backward, after Korthikanti et al. 2022, counted for a Llama-style block.

    Per layer and token: the two RMSNorms (fp32 input copy, normalized output when the norm weight trains), the
    inputs each trainable or LoRA-wrapped Linear saves, q/k/v after RoPE (repeated to all heads unless the kernel
    does grouped-query attention), the attention kernel's own state (eager: the s×s softmax per head; sdpa /
    flash: the output and a log-sum-exp), and the SwiGLU MLP's gate, activation and up projections.
    With gradient checkpointing only each layer's input is kept and one layer is recomputed at a time.
    ``padded``: the batches carry an attention mask (padded rows). transformers' sdpa path then repeats K/V to every
    query head before the kernel (``use_gqa_in_sdpa`` allows the kernel's own grouped-query attention only without a
    mask), so the kernel keeps the repeated copies, and each layer's kernel keeps the mask converted to the compute
    dtype (batch × seq × seq; measured on CPU in fp32: tests/test_memory.py).
    ``loss="fused"``: TRL's fused LM head (``ChunkedLogProbFunction``) instead of cross-entropy on the full logits.
    ``kbit_prepared``: a QLoRA base after peft's ``prepare_model_for_kbit_training``, whose embeddings and norms are
    fp32, so the residual stream is fp32; bitsandbytes' ``Linear4bit`` computes in its compute dtype and casts its
    output back to its input's dtype, so every projection's output (the MLP's gate and up included) is fp32 too.
    Without autocast nothing casts back down: every activation autograd keeps is fp32, though the 4-bit matmuls
    compute in bf16 (measured on CPU, loaded in bf16: tests/test_memory.py); under autocast the attention kernel still
    takes bf16 copies (derived from the source, not measured).
    """
    p = PRECISIONS[precision]
    full = method == "full"
    compute = e = p.activation_bytes  # compute: the dtype a 4-bit weight is dequantized to
    sb = 4 if p.autocast else e  # residual stream / norm output dtype
    projected = e  # a projection's output (the MLP's gate and up)
    if method == "qlora" and kbit_prepared:
        sb = projected = 4
        e = e if p.autocast else 4
    h, i, L = spec.hidden_size, spec.intermediate_size, spec.num_hidden_layers
    a, g, d = spec.num_attention_heads, spec.num_key_value_heads, spec.head_dim
    qdim, kvdim, V = a * d, g * d, spec.vocab_size
    tokens = batch_size * seq_len

    def trains(kind: str) -> bool:
        return full or kind in target_kinds

    def linear_inputs(kinds, in_dim: int) -> int:
        hit = [k for k in kinds if trains(k)]
        if not hit:
            return 0
        if full:
            return (len(hit) * e if p.autocast else sb) * in_dim  # autocast casts the input once per Linear
        own = lora_bytes != sb or lora_dropout > 0  # peft casts (or drops out) the input per wrapped Linear
        per = len(hit) * lora_bytes * in_dim if own else sb * in_dim
        if lora_dropout > 0:
            per += len(hit) * in_dim  # the dropout mask (bool)
        return per + len(hit) * lora_bytes * rank  # lora_A's output, saved by lora_B

    norm = 4 * h + (e * h if full else 0)
    repeat = g < a
    if attention == "eager":
        attn_kernel = e * (qdim + 2 * (qdim if repeat else kvdim)) + a * seq_len * (4 + (e if e != 4 else 0))
    else:
        masked = padded and attention == "sdpa"
        kv_saved = qdim if (repeat and masked) else kvdim
        # with a mask, each layer's kernel also keeps the mask in the compute dtype (batch × seq × seq)
        attn_kernel = e * (qdim + 2 * kv_saved + qdim) + 4 * a + (e * seq_len if masked else 0)
    per_token_layer = (
        2 * norm
        + linear_inputs(("q_proj", "k_proj", "v_proj"), h)
        + attn_kernel
        + linear_inputs(("o_proj",), qdim)
        + linear_inputs(("gate_proj", "up_proj"), h)
        + 3 * projected * i  # gate (saved by SiLU), SiLU(gate) and up (saved by the product)
        + linear_inputs(("down_proj",), i)
    )
    layer = per_token_layer * tokens
    parts = {}
    stored = (L * sb * h if checkpointing else L * per_token_layer) * tokens
    parts["layer_inputs" if checkpointing else "layers"] = stored
    head_norm = 4 * h + (e * h if full else 0) + (sb * h if full else 0)
    parts["final_norm"] = head_norm * tokens
    if loss == "fused":
        parts.update(_fused_loss_parts(spec, tokens, e, head_trains=full))
    else:
        # the loss: log-softmax output (fp32) that cross-entropy keeps plus two fp32 gradients of the same size while
        # it backpropagates: batch × seq × vocab × 12 bytes, which dominates for 128k vocabularies at long context.
        # (The logits themselves are freed after the forward: the training loop keeps only the loss.)
        parts["loss"] = 12 * V * tokens
    # The backward of the top layer: with checkpointing it is recomputed, so one layer's activations are alive again,
    # plus the gradients alive while autograd walks back through it (each activation is freed once used). Measured
    # with CategoryPeakTracker on CPU in fp32, 4 x 256 tokens, on three Llama shapes with a 256-entry vocabulary (so
    # that this working set is the peak; two of them are tests/test_memory.py's CKPT_SHAPES): 1.08-1.15 layers for
    # full fine-tuning, 1.29-1.32 with LoRA. Rounded up to the next 0.05. Not yet checked in bf16 on CUDA.
    working = layer * (CKPT_WORKING_LAYERS_FULL if full else CKPT_WORKING_LAYERS_LORA) if checkpointing else 0
    parts["backward_working_set"] = int(working)
    if method == "qlora" and device == "cuda":
        biggest = max((lin.weight_parameters for lin in spec.linears if lin.in_decoder), default=0)
        parts["dequantized_weight"] = biggest * compute  # a Linear's 4-bit weight dequantized for its matmul
    if p.autocast:
        trainable_weights = spec.total_parameters if full else 0
        parts["autocast_weight_copies"] = trainable_weights * 2  # bf16 copies cached for the forward
    return parts


#: TRL's fused LM head (trl/kernels/chunked_logprob.py): tokens per tile and vocabulary entries per tile.
FUSED_TOKEN_TILE, FUSED_VOCAB_TILE = 4096, 32768


def _fused_loss_parts(spec: ArchSpec, tokens: int, e: int, head_trains: bool) -> dict[str, int]:
    """TRL's fused LM head, priced as an upper bound (every position carries a label).

    Kept for backward, per token: the hidden states it scores (a copy, ``e`` bytes per value), the int64 targets,
    two fp32 statistics (the log-partition and the entropy) and the boolean label mask. Alive during its backward: one logits tile (``FUSED_TOKEN_TILE`` ×
    ``FUSED_VOCAB_TILE`` in the compute dtype), the fp32 gradient of the hidden states and, when the output layer
    trains, the fp32 gradient of its weight.
    """
    h, V = spec.hidden_size, spec.vocab_size
    tile = min(tokens, FUSED_TOKEN_TILE) * min(V, FUSED_VOCAB_TILE) * e
    return {"loss_saved": tokens * (h * e + 8 + 2 * 4 + 1),
            "loss": tile + 4 * tokens * h + (4 * V * h if head_trains else 0)}


def activation_peak(parts: dict[str, int]) -> int:
    """The activation peak from :func:`activation_breakdown`'s parts: the larger of two moments, the loss's backward
    (everything stored plus the loss tensors) and the top layer's backward (stored plus its working set)."""
    stored = sum(parts.get(k, 0) for k in ("layers", "layer_inputs", "final_norm", "loss_saved"))
    extra = parts.get("dequantized_weight", 0) + parts.get("autocast_weight_copies", 0)
    return stored + extra + max(parts.get("loss", 0), parts.get("backward_working_set", 0))


# ---------------------------------------------------------------- the estimate


@dataclass(repr=False)
class MemoryEstimate(ResultMixin):
    arch: str
    method: str
    precision: str
    optimizer_name: str
    total_parameters: int
    trainable_parameters: int
    weights: int
    adapter_weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int
    total_bytes: int
    peak_phase: str = ""  # "backward" (activations alive) or "optimizer step" (all gradients alive)
    batch_size: int = 1
    seq_len: int = 512
    checkpointing: bool = True
    activation_parts: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def components(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in COMPONENTS}

    @property
    def total_gb(self) -> float:
        return self.total_bytes / GB

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    @property
    def tensor_bytes(self) -> int:
        """The peak without ``overhead``: what ``torch.cuda.max_memory_allocated`` (or a tensor tracker) sees."""
        return self.total_bytes - self.overhead

    @property
    def sum_of_components_bytes(self) -> int:
        return sum(self.components.values())

    def table(self) -> str:
        rows = [(k, v) for k, v in self.components.items()] + [("total (peak)", self.total_bytes)]
        lines = [f"{self.arch}: {self.method}, {self.precision}, {self.optimizer_name}, batch {self.batch_size} × "
                 f"seq {self.seq_len}, checkpointing {'on' if self.checkpointing else 'off'}",
                 f"parameters {self.total_parameters:,} total, {self.trainable_parameters:,} trainable",
                 f"{'component':<16}{'GB (1e9 B)':>14}{'GiB (2^30 B)':>14}"]
        for name, b in rows:
            if name.startswith("total"):
                lines.append("-" * 44)
            lines.append(f"{name:<16}{b / GB:>14.3f}{b / GIB:>14.3f}")
        lines.append(f"peak during: {self.peak_phase}")
        return "\n".join(lines)


COMPONENTS = ("weights", "adapter_weights", "gradients", "optimizer", "activations", "overhead")


def _positive_int(value, what: str) -> int:
    return positive_int(what, value)


# long: lesson 02's derivation in order (weights, gradients, optimizer, activations, peak) in one read
def estimate_memory(arch, method: str = "lora", *, precision: str = "bf16", optimizer: str = "adamw",
                    rank: int = 16, targets=ALL_LINEAR, lora_dtype: str = "fp32", lora_dropout: float = 0.0,
                    batch_size: int = 1, seq_len: int = 512, checkpointing: bool = True,
                    attention: str = "sdpa", padded: bool = False, loss: str = "logits", quantization=None,
                    kbit_prepared: bool = True, device: str = "cuda",
                    overhead_bytes: int | None = None) -> MemoryEstimate:
    """Estimate peak training memory of ``arch`` for ``method`` in ``full``, ``lora``, ``qlora``.

    ``precision`` is a recipe name (``fp32``, ``bf16``, ``amp-bf16``, ``mixed-bf16``; see ``PRECISIONS``),
    ``optimizer`` one of ``adamw``, ``adamw-8bit``, ``paged-adamw``, ``paged-adamw-8bit``, ``sgd``. For QLoRA,
    ``quantization`` defaults to NF4 with double quantization and the non-Linear parameters loaded in 16 bits
    (``QuantOptions.other_dtype``); ``kbit_prepared=True`` (the QLoRA recipe) prices them as peft's
    ``prepare_model_for_kbit_training`` leaves them, in fp32, with the activations that follow from it (see
    ``activation_breakdown``); ``False`` prices the model as loaded.
    ``padded=True`` prices batches that carry a padding mask (see ``activation_breakdown``); the default prices
    unpadded batches (one sequence, or packed rows without a mask), where sdpa runs grouped-query attention itself.
    ``loss``: ``"logits"`` (cross-entropy on the full logits: a plain ``Trainer``) or ``"fused"`` (TRL's
    ``SFTTrainer``, which computes the loss in tiles without the batch × seq × vocab logits).
    ``device="cuda"`` adds a CUDA context as ``overhead`` and assumes torch's foreach AdamW (one extra copy of the
    state at the step); ``"cpu"`` adds none and steps tensor by tensor.
    """
    spec = resolve_arch(arch)
    check_choice(method, ESTIMATED_METHODS, "method")
    check_choice(precision, tuple(PRECISIONS), "precision")
    check_choice(optimizer, tuple(OPTIMIZERS), "optimizer")
    check_choice(attention, ATTENTIONS, "attention")
    check_choice(loss, LOSSES, "loss")
    check_choice(device, DEVICES, "device")
    check_choice(lora_dtype, ("fp32", "bf16", "fp16"), "lora_dtype")
    batch_size = _positive_int(batch_size, "batch_size")
    seq_len = _positive_int(seq_len, "seq_len")
    fraction("lora_dropout", lora_dropout)
    kbit_prepared = method == "qlora" and boolean("kbit_prepared", kbit_prepared)  # only a 4-bit base is prepared
    if overhead_bytes is not None:
        non_negative_int("overhead_bytes", overhead_bytes)
    p = PRECISIONS[precision]
    notes = [p.explanation, OPTIMIZERS[optimizer].explanation]

    if method == "full":
        lora, target_kinds, lb = 0, set(), p.weight_bytes
        weights = spec.total_parameters * p.weight_bytes
        trainable_numels = list(spec.param_numels)
        tb = p.weight_bytes
    else:
        lora = count_lora_parameters(spec, rank, targets)
        mods = lora_target_modules(spec, targets)
        target_kinds = {m.kind for m in mods}
        lb = BYTES[lora_dtype]
        trainable_numels = [n for m in mods for n in (rank * m.in_features, m.out_features * rank)]
        tb = lb
        if method == "qlora":
            q = _quant_options(quantization or QuantOptions(other_dtype="fp32" if precision == "fp32" else "bf16"))
            if kbit_prepared:
                q = replace(q, other_dtype="fp32")  # prepare_model_for_kbit_training casts them up
            weights = weight_bytes(spec, q)
            notes.append(f"base weights: decoder Linear layers in {q.quant_type.upper()} (block {q.blocksize}"
                         f"{', double quantization' if q.double_quant else ''}); the rest in {q.other_dtype}"
                         + (" (prepare_model_for_kbit_training casts them to fp32)" if kbit_prepared else ""))
        else:
            weights = spec.total_parameters * p.frozen_bytes
    trainable = sum(trainable_numels)
    adapter = lora * lb
    gradients = trainable * tb
    master = p.master_bytes if tb < 4 else 0  # an fp32 master copy only for trainable weights below fp32
    state_bytes = 4 if p.master_bytes else tb
    opt = _optimizer_state_bytes(trainable_numels, optimizer, state_bytes, master)

    parts = activation_breakdown(spec, method=method, batch_size=batch_size, seq_len=seq_len, precision=precision,
                                 checkpointing=checkpointing, attention=attention, target_kinds=target_kinds,
                                 rank=rank, lora_bytes=lb, lora_dropout=lora_dropout, device=device,
                                 padded=boolean("padded", padded), loss=loss, kbit_prepared=kbit_prepared)
    activations = activation_peak(parts)
    overhead = overhead_bytes if overhead_bytes is not None else (CUDA_OVERHEAD_BYTES if device == "cuda" else 0)

    # Gradients that exist while all activations are still alive: the output layer's (written first).
    head = spec.parameters_by_kind.get("lm_head", 0) or spec.parameters_by_kind.get("embed_tokens", 0)
    early_grads = head * tb if method == "full" else gradients
    at_backward = activations + early_grads
    step_temp = 0
    if OPTIMIZERS[optimizer].states and not OPTIMIZERS[optimizer].eight_bit and not p.master_bytes:
        # torch's AdamW: foreach on CUDA allocates sqrt(v) for every tensor at once; on CPU one tensor at a time
        # CPU: the end of backward (a tied embedding's gradient summed from its two uses) and the single-tensor
        # step each hold about two temporaries the size of the largest tensor
        step_temp = trainable * state_bytes if device == "cuda" else 2 * max(trainable_numels, default=0) * tb
    at_step = gradients + step_temp
    phase = "backward" if at_backward >= at_step else "optimizer step"
    total = weights + adapter + opt + overhead + max(at_backward, at_step)
    return MemoryEstimate(
        arch=spec.name, method=method, precision=precision, optimizer_name=optimizer,
        total_parameters=spec.total_parameters + lora, trainable_parameters=trainable,
        weights=weights, adapter_weights=adapter, gradients=gradients, optimizer=opt,
        activations=activations, overhead=overhead, total_bytes=total, peak_phase=phase,
        batch_size=batch_size, seq_len=seq_len, checkpointing=bool(checkpointing),
        activation_parts=parts, notes=notes,
    )
