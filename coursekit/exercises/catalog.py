"""The try-it exercises of lessons 01-06.

Numeric answers are computed when checked, from each question's parameters (exact parameter counts through
``coursekit.archs``); choice answers are salted hashes with sealed explanations (``_keys.py``); code answers are
compared with the reference implementations below on fresh random inputs.
"""
from __future__ import annotations

import math

from coursekit.exercises._core import ChoiceExercise, CodeExercise, NumericExercise, compare_tensors
from coursekit.exercises._keys import CHOICE_KEYS
from coursekit.units import GB


def _choice(exercise_id, title, prompt, hints, options, **kw):
    digest, sealed = CHOICE_KEYS[exercise_id]
    return ChoiceExercise(exercise_id, title, prompt, hints, options=options, answer_sha256=digest,
                          explanation_sealed=sealed, **kw)


# --- references for the code exercises ------------------------------------------------------------------
def lora_forward_reference(x, W, A, B, scaling):
    """y = x W^T + scaling * (x A^T) B^T with W (out, in), A (r, in), B (out, r)."""
    return x @ W.T + scaling * ((x @ A.T) @ B.T)


def absmax_quantize_reference(block):
    """int8 codes round(127 * block / absmax) and the block's absmax (a Python float)."""
    import torch

    absmax = float(block.abs().max())
    if absmax == 0.0:
        return torch.zeros_like(block, dtype=torch.int8), 0.0
    return torch.round(block / absmax * 127).to(torch.int8), absmax


def adam_state_bytes_reference(n_params, state_bytes_per_value=4):
    """Adam keeps two values per parameter (m and v)."""
    return 2 * n_params * state_bytes_per_value


def _lora_cases(gen):
    import torch

    cases = []
    for _ in range(5):
        batch, d_in, d_out, r = (int(torch.randint(1, 5, (1,), generator=gen)),
                                 int(torch.randint(4, 33, (1,), generator=gen)),
                                 int(torch.randint(4, 33, (1,), generator=gen)),
                                 int(torch.randint(1, 5, (1,), generator=gen)))
        x = torch.randn(batch, d_in, generator=gen)
        W = torch.randn(d_out, d_in, generator=gen)
        A = torch.randn(r, d_in, generator=gen)
        B = torch.randn(d_out, r, generator=gen)
        scaling = float(torch.rand(1, generator=gen)) * 4 + 0.25
        cases.append((x, W, A, B, scaling))
    return cases


def _absmax_cases(gen):
    import torch

    sizes = [64, 64, 32, 128, 64]
    return [(torch.randn(n, generator=gen) * float(torch.rand(1, generator=gen) * 3 + 0.1),) for n in sizes]


def _compare_absmax(got, expected, case):
    import torch

    if type(got) is not tuple or len(got) != 2:  # noqa: E721
        return "invalid", f"return a tuple (codes, absmax), got {type(got).__name__}"
    codes, absmax = got
    exp_codes, exp_absmax = expected
    if type(codes) is not torch.Tensor:  # noqa: E721
        return "invalid", f"codes must be a torch.Tensor, got {type(codes).__name__}"
    if codes.dtype != torch.int8:
        return "wrong", f"codes must have dtype torch.int8 (one byte each), got {codes.dtype}"
    if tuple(codes.shape) != tuple(exp_codes.shape):
        return "wrong", f"codes must have the block's shape {tuple(exp_codes.shape)}, got {tuple(codes.shape)}"
    if isinstance(absmax, bool) or not isinstance(absmax, (int, float)) or type(absmax) not in (int, float):
        if not (hasattr(absmax, "item") and getattr(absmax, "numel", lambda: 0)() == 1):
            return "invalid", f"absmax must be a number, got {type(absmax).__name__}"
        absmax = absmax.item()
    absmax = float(absmax)
    if math.isnan(absmax):
        return "invalid", "absmax is NaN"
    if abs(absmax - exp_absmax) > 1e-6 * max(1.0, abs(exp_absmax)):
        return "wrong", f"absmax should be the largest |value| in the block ({exp_absmax:.6g}), got {absmax:.6g}"
    diff = (codes.to(torch.int32) - exp_codes.to(torch.int32)).abs().max().item()
    if diff > 1:
        return "wrong", f"codes differ from round(127 * x / absmax) by up to {diff}"
    return None


def _compare_lora(got, expected, case):
    return compare_tensors(got, expected, rtol=1e-4, atol=1e-4)


def _adam_cases(gen):
    import torch

    out = []
    for _ in range(5):
        n = int(torch.randint(1, 10**6, (1,), generator=gen)) * int(torch.randint(1, 10**4, (1,), generator=gen))
        b = [4, 2, 1][int(torch.randint(0, 3, (1,), generator=gen))]
        out.append((n, b))
    return out


def _compare_int(got, expected, case):
    if isinstance(got, bool) or type(got) not in (int, float):
        return "invalid", f"return a number of bytes (an int), got {type(got).__name__}"
    if isinstance(got, float) and not math.isfinite(got):
        return "invalid", f"your result is {got!r}"
    if got != expected:
        return "wrong", f"for n_params={case[0]:,} and {case[1]} bytes per value the answer is not {got:,}"
    return None


# --- numeric answer functions (computed at check time from the parameters) ------------------------------
def _full_ft_total_gb(p):
    n = p["params"]
    return n * (p["weight_bytes"] + p["grad_bytes"] + 2 * p["moment_bytes"]) / GB


def _explain_full_ft(p, total):
    n = p["params"]
    w, g = n * p["weight_bytes"] / GB, n * p["grad_bytes"] / GB
    m = n * p["moment_bytes"] / GB
    return (f"weights {w:,.0f} GB + gradients {g:,.0f} GB + first moment m {m:,.0f} GB + second moment v "
            f"{m:,.0f} GB = {total:,.0f} GB (GB = 1e9 bytes) before any activation. The claimed '~56 GB' does not "
            f"follow from its own per-parameter bytes; and real mixed-precision training usually adds a 4-byte fp32 "
            f"master copy of the weights on top.")


def _llama_adam_gb(p):
    from coursekit.archs import count_parameters

    return 2 * p["moment_bytes"] * count_parameters(p["arch"]) / GB


def _explain_llama_adam(p, total):
    from coursekit.archs import count_parameters

    n = count_parameters(p["arch"])
    return (f"{p['arch']} has exactly {n:,} parameters (counted on the meta device); Adam keeps m and v, "
            f"{p['moment_bytes']} bytes each: 2 x {p['moment_bytes']} x {n:,} = {total:,.2f} GB.")


EXERCISES = [
    # ---------------------------------------------------------------- 01 why fine-tune
    _choice("01.which_approach", "Prompting, RAG or fine-tuning?",
            "A SaaS company has 10,000 past support tickets with the replies its agents sent. The new assistant "
            "must answer in the company's house style and always start with a one-line JSON triage record. Product "
            "facts change monthly. Which approach fits best?",
            ["Ask of each requirement: is it knowledge (facts) or behaviour (style, format)?",
             "Retrieval supplies facts; it does not teach a tone or a strict output format.",
             "Behaviour with thousands of labelled examples is fine-tuning's home ground; facts can still be retrieved."],
            {"a": "Few-shot prompting only", "b": "RAG only",
             "c": "Fine-tune on the tickets for house style and the triage record, retrieve the changing facts",
             "d": "Full pretraining from scratch"}),
    _choice("01.not_to_fine_tune", "When not to fine-tune",
            "In which case is fine-tuning the weakest choice?",
            ["Think about what goes stale after training.",
             "A fine-tuned model knows what it saw at training time.",
             "Weekly-changing knowledge is retrieval's job."],
            {"a": "Tickets must be sorted into the company's 40 internal categories; 20,000 labelled tickets exist",
             "b": "Answers depend on a knowledge base rewritten every week",
             "c": "Patient data may not leave the hospital's own servers",
             "d": "The bot must write in one consistent brand voice"}),
    NumericExercise(
        "01.sweep_cost", "What a hyperparameter sweep costs",
        "A full fine-tuning run takes {hours} hours on a GPU rented at ${usd_per_hour} per hour. You try {runs} "
        "hyperparameter settings. What does the sweep cost in US dollars?",
        ["Cost of one run = hours x price per hour.", "Multiply one run by the number of runs.",
         "{hours} x {usd_per_hour} x {runs}"],
        answer_fn=lambda p: p["hours"] * p["usd_per_hour"] * p["runs"],
        explain_fn=lambda p, v: (f"{p['hours']} h x ${p['usd_per_hour']}/h = ${p['hours'] * p['usd_per_hour']:,.2f} per "
                                 f"run, x {p['runs']} runs = ${v:,.2f}."),
        unit="USD", rel_tol=0.005, params={"hours": 16, "usd_per_hour": 1.5, "runs": 8}),
    # ---------------------------------------------------------------- 02 memory
    NumericExercise(
        "02.full_ft_adam_8b", "Full fine-tuning memory of an 8B model with AdamW",
        "Full fine-tuning of a model with {params:,.0f} parameters: weights in bf16 ({weight_bytes} bytes each), "
        "gradients in bf16 ({grad_bytes} bytes), AdamW's two moments m and v in fp32 ({moment_bytes} bytes each). "
        "How many GB (1 GB = 1e9 bytes) do weights + gradients + optimizer state take, before activations?",
        ["Add the bytes per parameter of every component, then multiply by the parameter count.",
         "AdamW keeps two fp32 values per parameter: m and v.",
         "bytes per parameter = {weight_bytes} + {grad_bytes} + 2 x {moment_bytes}; divide the total by 1e9."],
        answer_fn=_full_ft_total_gb, explain_fn=_explain_full_ft, unit="GB", rel_tol=0.01,
        params={"params": 8e9, "weight_bytes": 2, "grad_bytes": 2, "moment_bytes": 4}),
    NumericExercise(
        "02.llama_adam_state_gb", "Adam state of a real architecture, exactly",
        "Llama 3.1 8B (preset `{arch}`, count it with `coursekit.count_parameters(\"{arch}\")`): how many GB does "
        "Adam's state (m and v, {moment_bytes} bytes each) take? 1 GB = 1e9 bytes.",
        ["Count the parameters exactly; the '8B' in the name is rounded.",
         "Adam stores two values per parameter.",
         "2 x {moment_bytes} x count_parameters(\"{arch}\") / 1e9"],
        answer_fn=_llama_adam_gb, explain_fn=_explain_llama_adam, unit="GB", rel_tol=0.001,
        params={"arch": "llama-3.1-8b", "moment_bytes": 4}),
    _choice("02.fits_a100_70b", "A 70B model on one A100 80GB",
            "Price 70e9 parameters (Llama-3 70B): section 1's quoted estimate, claimed_estimate_bytes(70e9, approach), "
            "or the exact counts of section 5. Which approach still fits one A100 80GB, "
            "with the model, its gradients and its optimizer state on the GPU (no CPU or NVMe offload)?",
            ["Start with the weights alone: 70e9 parameters at 2 bytes is how many GB?",
             "If the frozen bf16 weights do not fit, neither full fine-tuning nor bf16 LoRA can.",
             "At 4 bits the weights are 0.5 bytes per parameter."],
            {"a": "Full fine-tuning", "b": "LoRA on a bf16 base", "c": "QLoRA (4-bit base)", "d": "None of them"}),
    CodeExercise(
        "02.adam_state_bytes", "Adam state bytes",
        "Write `adam_state_bytes(n_params, state_bytes_per_value=4)` returning how many bytes Adam's optimizer "
        "state takes for `n_params` trainable parameters (an int).",
        ["Adam keeps a running mean (m) and a running mean of squares (v) for every parameter.",
         "Two values per parameter, each state_bytes_per_value bytes.",
         "return 2 * n_params * state_bytes_per_value"],
        function_name="adam_state_bytes", signature="adam_state_bytes(n_params, state_bytes_per_value=4)",
        make_cases=_adam_cases, reference=adam_state_bytes_reference, compare=_compare_int,
        explain_text="Adam stores m and v per parameter: 2 x n x bytes. With fp32 state that is 8 bytes per "
                     "parameter, 64 GB for 8e9 parameters; 8-bit optimizers bring it to 2 bytes per parameter."),
    # ---------------------------------------------------------------- 03 full fine-tuning
    NumericExercise(
        "03.effective_batch", "Effective batch size",
        "per_device_train_batch_size={per_device}, gradient_accumulation_steps={accum}, on {gpus} GPU(s). What is "
        "the effective batch size (examples per optimizer step)?",
        ["Gradient accumulation sums gradients over several micro-batches before one optimizer step.",
         "Each GPU processes its own micro-batch.", "{per_device} x {accum} x {gpus}"],
        answer_fn=lambda p: p["per_device"] * p["accum"] * p["gpus"],
        explain_fn=lambda p, v: f"{p['per_device']} x {p['accum']} x {p['gpus']} = {v:g} examples per optimizer step.",
        unit="examples", rel_tol=0.0, abs_tol=0.0, params={"per_device": 4, "accum": 4, "gpus": 2}),
    NumericExercise(
        "03.warmup_steps", "Warmup steps",
        "{examples:,} training examples, effective batch {batch}, {epochs} epochs, warmup = {warmup_ratio:.0%} of "
        "all optimizer steps. How many warmup steps?",
        ["First: optimizer steps per epoch = ceil(examples / effective batch).",
         "Total steps = steps per epoch x epochs.",
         "warmup = ceil({warmup_ratio} x ceil({examples} / {batch}) x {epochs}): Trainer rounds up"],
        answer_fn=lambda p: math.ceil(p["warmup_ratio"] * math.ceil(p["examples"] / p["batch"]) * p["epochs"]),
        explain_fn=lambda p, v: (f"ceil({p['examples']:,} / {p['batch']}) = {math.ceil(p['examples'] / p['batch'])} steps "
                                 f"per epoch, x {p['epochs']} = {math.ceil(p['examples'] / p['batch']) * p['epochs']} "
                                 f"steps; {p['warmup_ratio']:.0%} of that, rounded up as Trainer does, is {v:g}."),
        unit="steps", rel_tol=0.0, abs_tol=1.0,
        params={"examples": 10_000, "batch": 16, "epochs": 3, "warmup_ratio": 0.1}),
    _choice("03.forgetting_signal", "Detecting catastrophic forgetting",
            "Which measurement tells you a fine-tuned model has forgotten general skills?",
            ["Forgetting is about skills outside the training task.",
             "Training and validation loss are both measured on the task's own data.",
             "Compare the same general-skills measurement before and after."],
            {"a": "Training loss keeps going down", "b": "Validation loss on the task set rises",
             "c": "The task metric reaches 100%",
             "d": "The general-knowledge probe score falls between the base and the fine-tuned model"}),
    # ---------------------------------------------------------------- 04 LoRA
    CodeExercise(
        "04.lora_forward", "Implement the LoRA forward pass",
        "Write `lora_forward(x, W, A, B, scaling)` for a LoRA-wrapped linear layer without bias: `x` is (batch, "
        "in), the frozen `W` is (out, in) as in `torch.nn.Linear`, `A` is (r, in), `B` is (out, r), `scaling` is "
        "alpha / r. Return a (batch, out) tensor.",
        ["The base path is the ordinary linear layer: x @ W.T.",
         "The adapter path goes down to r dimensions with A, then up with B, and is scaled.",
         "x @ W.T + scaling * (x @ A.T) @ B.T"],
        function_name="lora_forward", signature="lora_forward(x, W, A, B, scaling)",
        make_cases=_lora_cases, reference=lora_forward_reference, compare=_compare_lora,
        explain_text="y = x W^T + (alpha/r) x A^T B^T. Computing (x A^T) first keeps the adapter at r x (in + out) "
                     "multiply-adds per token instead of forming the full out x in matrix B A; after training, B A can "
                     "be merged into W so inference costs nothing extra."),
    NumericExercise(
        "04.lora_params_matrix", "LoRA parameters of one matrix",
        "A {d_out} x {d_in} weight matrix gets a LoRA adapter of rank r = {rank}. How many trainable parameters "
        "does the adapter add?",
        ["A is r x in and B is out x r.", "Add the sizes of A and B.", "{rank} x ({d_in} + {d_out})"],
        answer_fn=lambda p: p["rank"] * (p["d_in"] + p["d_out"]),
        explain_fn=lambda p, v: (f"A: {p['rank']} x {p['d_in']} and B: {p['d_out']} x {p['rank']}, together {v:,.0f} "
                                 f"parameters, {v / (p['d_in'] * p['d_out']):.3%} of the {p['d_in'] * p['d_out']:,} in W."),
        unit="parameters", rel_tol=0.0, params={"d_in": 4096, "d_out": 4096, "rank": 8}),
    NumericExercise(
        "04.lora_scaling", "The scaling factor",
        "LoraConfig(r={rank}, lora_alpha={alpha}): by what factor is the adapter's output multiplied?",
        ["peft's default scaling is a ratio of two LoraConfig fields.", "It is alpha divided by something.",
         "{alpha} / {rank}"],
        answer_fn=lambda p: p["alpha"] / p["rank"],
        explain_fn=lambda p, v: (f"scaling = lora_alpha / r = {p['alpha']} / {p['rank']} = {v:g} (with use_rslora=True "
                                 f"peft would use alpha / sqrt(r) instead)."),
        unit="", rel_tol=1e-6, params={"rank": 16, "alpha": 32}),
    _choice("04.why_zero_b", "Why B starts at zero",
            "LoRA initialises A randomly and B with zeros. Why?",
            ["What is B A at step 0 if B is all zeros?", "Think about the model's output before any training step.",
             "Zero B means the adapted layer equals the pretrained layer at the start."],
            {"a": "So the adapted model starts exactly as the pretrained model",
             "b": "To make the adapter sparse", "c": "Zeros use less memory",
             "d": "So that A receives no gradient"}),
    # ---------------------------------------------------------------- 05 QLoRA
    CodeExercise(
        "05.absmax_block", "Blockwise absmax quantization of one block",
        "Write `absmax_quantize(block)` for a 1-D float tensor (one quantization block): return `(codes, absmax)` "
        "where `absmax` is the largest absolute value (a Python float) and `codes` is an int8 tensor of "
        "round(127 * block / absmax).",
        ["absmax = block.abs().max(); every value is divided by it so it lies in [-1, 1].",
         "Scale to [-127, 127], round, and store one byte per value.",
         "codes = torch.round(block / absmax * 127).to(torch.int8); return codes, float(absmax)"],
        function_name="absmax_quantize", signature="absmax_quantize(block)",
        make_cases=_absmax_cases, reference=absmax_quantize_reference, compare=_compare_absmax,
        explain_text="Each block keeps one absmax constant; the largest value maps to +-127 and the rest scale "
                     "linearly. Smaller blocks isolate outliers (better precision) but need more constants: that "
                     "overhead is what double quantization shrinks."),
    NumericExercise(
        "05.double_quant_bits", "Double quantization overhead",
        "Blocks of {block} weights share one absmax constant. With double quantization the constants are stored in "
        "{const_bits} bits, in second-level blocks of {block2} constants that each keep one fp32 ({fp32_bits}-bit) "
        "constant. How many bits per parameter does the overhead cost?",
        ["Without double quantization: 32 bits / {block} weights.",
         "With it: {const_bits} bits per block, plus one 32-bit constant per {block2} blocks.",
         "{const_bits}/{block} + {fp32_bits}/({block} x {block2})"],
        answer_fn=lambda p: p["const_bits"] / p["block"] + p["fp32_bits"] / (p["block"] * p["block2"]),
        explain_fn=lambda p, v: (f"{p['const_bits']}/{p['block']} + {p['fp32_bits']}/({p['block']} x {p['block2']}) = "
                                 f"{v:.4f} bits per parameter, versus {p['fp32_bits'] / p['block']:.3f} without: a "
                                 f"saving of {p['fp32_bits'] / p['block'] - v:.3f} bits. (The quoted 32/1024 term "
                                 f"uses the wrong second-level block.)"),
        unit="bits", rel_tol=0.005,
        params={"block": 64, "block2": 256, "const_bits": 8, "fp32_bits": 32}),
    NumericExercise(
        "05.nf4_weights_gb", "4-bit weights of a 70B model, with the overhead",
        "{params:,.0f} parameters stored in NF4 (4 bits each) plus {overhead_bits} bits per parameter of "
        "quantization constants. How many GB (1e9 bytes)?",
        ["Bits per parameter = 4 + overhead.", "Divide bits by 8 for bytes.",
         "{params} x (4 + {overhead_bits}) / 8 / 1e9"],
        answer_fn=lambda p: p["params"] * (4 + p["overhead_bits"]) / 8 / GB,
        explain_fn=lambda p, v: (f"{p['params']:.0e} x {4 + p['overhead_bits']:.4f} bits / 8 = {v:.2f} GB; the "
                                 f"widely quoted '35 GB' leaves out the constants "
                                 f"({p['params'] * p['overhead_bits'] / 8 / GB:.2f} GB)."),
        unit="GB", rel_tol=0.005, params={"params": 70e9, "overhead_bits": 0.126953125}),
    _choice("05.adapter_precision", "Why the adapters stay in higher precision",
            "In QLoRA, the base weights are stored in 4-bit NF4 but the LoRA matrices in 16 or 32 bits (bf16 in the "
            "QLoRA paper's recipe, fp32 in peft's default and on a CPU). Why?",
            ["Which weights change during training?", "What happens to a tiny update rounded to one of 16 levels?",
             "Frozen weights only need to be read; trained weights need fine-grained updates."],
            {"a": "bf16 matmuls are faster than 4-bit ones",
             "b": "Only the adapters are trained, and small updates would be lost at 4 bits",
             "c": "bitsandbytes cannot store matrices smaller than 4096 x 4096",
             "d": "To make the saved adapter file larger"}),
    # ---------------------------------------------------------------- 06 PEFT comparison
    _choice("06.method_fits_gpu", "Which method fits this GPU?",
            "You must adapt a 13B model on one GPU sold as 24 GB (24 GiB: 25.8e9 bytes), one task, with the model, its gradients and its optimizer "
            "state on the GPU (no CPU or NVMe offload). Which method can run?",
            ["Start from the frozen weights: 13e9 parameters at 2 bytes.",
             "26e9 bytes (24.2 GiB) of bf16 weights already fill the 24 GiB card, before any training state.",
             "Only a 4-bit base leaves room for training."],
            {"a": "Full fine-tuning", "b": "LoRA on a bf16 base", "c": "QLoRA", "d": "None"}),
    NumericExercise(
        "06.adapter_params", "Houlsby adapter parameters",
        "A Houlsby adapter on hidden size {hidden} with bottleneck {bottleneck}: a down-projection Linear(hidden, "
        "bottleneck) and an up-projection Linear(bottleneck, hidden), both with bias. How many parameters?",
        ["Each Linear(i, o) with bias has i x o + o parameters.",
         "The down-projection's bias has bottleneck entries; the up-projection's has hidden entries.",
         "2 x {hidden} x {bottleneck} + {bottleneck} + {hidden}"],
        answer_fn=lambda p: 2 * p["hidden"] * p["bottleneck"] + p["bottleneck"] + p["hidden"],
        explain_fn=lambda p, v: (f"down {p['hidden']} x {p['bottleneck']} + {p['bottleneck']}, up {p['bottleneck']} x "
                                 f"{p['hidden']} + {p['hidden']}: {v:,.0f}. A common tutorial prints "
                                 f"{2 * (p['hidden'] * p['bottleneck'] + p['bottleneck']):,}, giving the up-projection "
                                 f"a bias of the wrong size."),
        unit="parameters", rel_tol=0.0, params={"hidden": 4096, "bottleneck": 64}),
    NumericExercise(
        "06.prefix_params", "Prefix tuning parameters",
        "Prefix tuning with {prefix_len} virtual tokens on a model with {layers} layers and {heads} heads of "
        "dimension {head_dim}: one key and one value vector per virtual token per layer. How many parameters?",
        ["Each layer gets prefix vectors for keys and for values.",
         "Each vector has heads x head_dim entries.", "{layers} x 2 x {prefix_len} x {heads} x {head_dim}"],
        answer_fn=lambda p: p["layers"] * 2 * p["prefix_len"] * p["heads"] * p["head_dim"],
        explain_fn=lambda p, v: f"{p['layers']} x 2 x {p['prefix_len']} x {p['heads'] * p['head_dim']} = {v:,.0f}.",
        unit="parameters", rel_tol=0.0, params={"layers": 32, "heads": 32, "head_dim": 128, "prefix_len": 20}),
]
