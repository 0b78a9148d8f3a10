"""The recipe that pretrains the embedded base model: ``python -m coursekit build-base-model``.

1. Generate the general corpus (``coursekit.data.general_texts``).
2. Train a byte-level BPE tokenizer on it with the ``tokenizers`` library (digits split one by one, so numbers copy
   digit by digit).
3. Pretrain a small Llama (``tiny/config.json``: RoPE, RMSNorm, grouped-query attention, SwiGLU MLP with gate/up/down
   projections) with next-token prediction on packed sequences, AdamW and a cosine schedule. The loop is written out
   (nanoGPT-style) so it can be read top to bottom; it is deterministic given the seed on a given torch build.
4. Save with ``save_pretrained`` (weights, tokenizer) plus ``recipe.json``: settings, the first steps' losses (a test
   replays them to check the recipe still reproduces the weights), held-out perplexity and probe score.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from coursekit.models import EMBEDDED_MODEL_DIR
from coursekit.validate import positive_int

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]


@dataclass
class Recipe:
    seed: int = 0
    corpus_docs: int = 150_000
    vocab_size: int = 2048
    seq_len: int = 256
    batch_size: int = 16
    steps: int = 2000
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 40
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    record_steps: int = 8  # first steps' losses stored for the reproducibility test


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts``, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=1024, padding_side="right")


def pack(texts: list[str], tokenizer, seq_len: int):
    """Documents as ``<s> text </s>``, concatenated and cut into rows of ``seq_len + 1`` tokens."""
    import torch

    ids = []
    for enc in tokenizer(texts, add_special_tokens=True)["input_ids"]:
        ids.extend(enc)
        ids.append(tokenizer.eos_token_id)
    n = (len(ids) - 1) // seq_len
    data = torch.tensor(ids[: n * seq_len + 1], dtype=torch.long)
    x = data[:-1].view(n, seq_len)
    y = data[1:].view(n, seq_len)
    return x, y


def lr_at(step: int, r: Recipe) -> float:
    if step < r.warmup_steps:
        return r.lr * (step + 1) / r.warmup_steps
    progress = (step - r.warmup_steps) / max(1, r.steps - r.warmup_steps)
    return r.min_lr + 0.5 * (r.lr - r.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def pretrain(recipe: Recipe, steps: int | None = None, log_every: int = 50, quiet: bool = False):
    """Run the recipe (or its first ``steps``); return ``(model, tokenizer, losses)``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from coursekit.data import general_texts

    torch.manual_seed(recipe.seed)
    texts = general_texts("train", recipe.corpus_docs)
    tokenizer = train_tokenizer(texts, recipe.vocab_size)
    x, y = pack(texts, tokenizer, recipe.seq_len)
    config = LlamaConfig.from_pretrained(EMBEDDED_MODEL_DIR)
    config.vocab_size = recipe.vocab_size
    model = LlamaForCausalLM(config)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(recipe.seed)
    losses, t0 = [], time.time()
    total = recipe.steps if steps is None else steps
    for step in range(total):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, recipe)
        idx = torch.randint(0, x.shape[0], (recipe.batch_size,), generator=gen)
        out = model(input_ids=x[idx], labels=None)
        loss = torch.nn.functional.cross_entropy(out.logits.view(-1, out.logits.size(-1)), y[idx].view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        losses.append(loss.item())
        if not quiet and (step % log_every == 0 or step == total - 1):
            tok_s = (step + 1) * recipe.batch_size * recipe.seq_len / (time.time() - t0)
            print(f"step {step:5d}  loss {loss.item():.4f}  lr {lr_at(step, recipe):.2e}  {tok_s:,.0f} tokens/s",
                  flush=True)
    model.eval()
    return model, tokenizer, losses


def build(out_dir: str | Path = EMBEDDED_MODEL_DIR, recipe: Recipe | None = None, quiet: bool = False) -> dict:
    """Pretrain and save the embedded model to ``out_dir``; return what was written to ``recipe.json``."""
    import torch

    from coursekit.data import general_texts
    from coursekit.evaluate import general_probe_score, perplexity

    recipe = recipe or Recipe()
    out = Path(out_dir)
    t0 = time.time()
    model, tokenizer, losses = pretrain(recipe, quiet=quiet)
    seconds = time.time() - t0
    out.mkdir(parents=True, exist_ok=True)
    model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id = 1, 2, 0
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    heldout = general_texts("heldout")
    with torch.no_grad():
        ppl = perplexity(model, tokenizer, heldout)
        probe = general_probe_score(model, tokenizer)
    info = {
        "recipe": asdict(recipe),
        "parameters": sum(p.numel() for p in model.parameters()),
        "first_losses": losses[: recipe.record_steps],
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "heldout_perplexity": ppl,
        "general_probe": probe,
        "train_seconds": round(seconds, 1),
        "torch_version": torch.__version__,
        "weights_sha256": hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest(),
    }
    (out / "recipe.json").write_text(json.dumps(info, indent=2))
    return info


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit build-base-model", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(EMBEDDED_MODEL_DIR), help="folder to write (default: the embedded model)")
    ap.add_argument("--steps", type=int, default=Recipe.steps)
    ap.add_argument("--seed", type=int, default=Recipe.seed)
    args = ap.parse_args(argv)
    positive_int("--steps", args.steps)
    info = build(args.out, Recipe(seed=args.seed, steps=args.steps))
    print(json.dumps({k: v for k, v in info.items() if k != "first_losses"}, indent=2))
    return 0
