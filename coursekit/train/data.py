"""From the course's instruction / input / output rows to what TRL trains on, with checks before any training.

TRL's SFTTrainer computes the loss on the completion only when a dataset has ``prompt`` and ``completion``
columns. For a model without a chat template every row becomes ``{"prompt": format_prompt(row), "completion":
row["output"]}`` (TRL appends the end-of-sequence token). For a model with one (an instruct model) the row is
conversational: ``{"prompt": [{"role": "user", ...}], "completion": [{"role": "assistant", ...}]}``; TRL renders
both through the chat template and the loss covers the assistant turn, ending with its end-of-turn token.
Rows of general text (``{"text": ...}``, used to mix general data in) become a prompt of ``""`` and the text as
completion: the loss then covers the whole text.
"""
from __future__ import annotations

import random

from coursekit.validate import fraction as check_fraction

TASK_FIELDS = ("instruction", "output")  # and "input", optional


def _format_prompt(example: dict) -> str:
    from coursekit.data import format_prompt

    return format_prompt(example)


def _rows(data, name: str) -> list[dict]:
    """A datasets.Dataset, a list of dicts, or None -> list of dicts (None -> [])."""
    if data is None:
        return []
    if hasattr(data, "to_list") and hasattr(data, "column_names"):
        return data.to_list()
    if isinstance(data, (list, tuple)) and all(isinstance(r, dict) for r in data):
        return list(data)
    raise ValueError(f"{name} must be a datasets.Dataset or a list of dicts, got {type(data).__name__}")


def row_kind(row: dict) -> str:
    if all(k in row for k in TASK_FIELDS):
        return "task"
    if "prompt" in row and "completion" in row:
        return "prompt_completion"
    if "text" in row:
        return "text"
    return "unknown"


def to_prompt_completion(data, name: str = "train", tokenizer=None) -> list[dict]:
    """Rows as ``{"prompt", "completion"}`` dicts; a clear ValueError for a missing field or an empty split.

    With a ``tokenizer`` that has a chat template, task rows become conversational (lists of messages).
    """
    from coursekit.data import task_messages, uses_chat_template

    chat = tokenizer is not None and uses_chat_template(tokenizer)
    rows = _rows(data, name)
    if not rows:
        raise ValueError(f"the {name} split is empty; it needs at least one example")
    out = []
    for i, row in enumerate(rows):
        kind = row_kind(row)
        if kind == "task":
            if not isinstance(row["output"], str) or not row["output"]:
                raise ValueError(f"{name} example {i} has an empty 'output'; every example needs a response")
            if chat:
                messages = task_messages(row, answer=True)
                out.append({"prompt": messages[:-1], "completion": messages[-1:]})
            else:
                out.append({"prompt": _format_prompt(row), "completion": row["output"]})
        elif kind == "prompt_completion":
            if isinstance(row["prompt"], list) or isinstance(row["completion"], list):  # already conversational
                out.append({"prompt": list(row["prompt"]), "completion": list(row["completion"])})
            else:
                out.append({"prompt": str(row["prompt"]), "completion": str(row["completion"])})
        elif kind == "text":
            if not row["text"]:
                raise ValueError(f"{name} example {i} has an empty 'text'")
            out.append({"prompt": "", "completion": str(row["text"])})
        else:
            missing = [k for k in TASK_FIELDS if k not in row]
            raise ValueError(
                f"{name} example {i} is missing field(s) {missing} (it has {sorted(row)}); each example needs "
                "instruction, input (optional), output (or prompt + completion, or text for general data)"
            )
    return out


def _training_text(row: dict, tokenizer, eos: str) -> str:
    if isinstance(row["prompt"], list):  # conversational: what the chat template makes of the whole conversation
        return tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    return row["prompt"] + row["completion"] + eos


def check_lengths(rows: list[dict], tokenizer, max_tokens: int, name: str) -> int:
    """Tokenize prompt + completion (+ eos) and raise if any is longer than ``max_tokens``; returns the longest."""
    eos = tokenizer.eos_token or ""
    texts = [_training_text(r, tokenizer, eos) for r in rows]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
    longest = max(lengths)
    if longest > max_tokens:
        i = lengths.index(longest)
        n_over = sum(n > max_tokens for n in lengths)
        raise ValueError(
            f"{name} example {i} is {longest} tokens long, more than the {max_tokens} the model takes "
            f"({n_over} example(s) too long); shorten or drop them, or use a model with a longer context"
        )
    return longest


GENERAL_TEXT_REQUEST = "Write a short text."  # the user's turn in front of general text, for chat models


def mix_general_text(train, texts: list[str], fraction: float = 0.25, seed: int = 0, tokenizer=None) -> list[dict]:
    """Task rows plus general text, so that ``fraction`` of the result is general text (a remedy for forgetting).

    Returns prompt/completion rows, shuffled with ``seed``; pass them to ``finetune`` as the training set. With a
    ``tokenizer`` that has a chat template every row is conversational: general text becomes the assistant's
    answer to a short request, so the whole set goes through the same template.
    """
    fraction = check_fraction("fraction", fraction)
    if fraction > 0 and not texts:
        raise ValueError("mix_general_text needs at least one general text when fraction > 0")
    from coursekit.data import uses_chat_template

    rows = to_prompt_completion(train, "train", tokenizer)
    n_general = round(len(rows) * fraction / (1 - fraction))
    rng = random.Random(seed)
    if tokenizer is not None and uses_chat_template(tokenizer):
        general = [{"prompt": [{"role": "user", "content": GENERAL_TEXT_REQUEST}],
                    "completion": [{"role": "assistant", "content": texts[i % len(texts)]}]} for i in range(n_general)]
    else:
        general = [{"prompt": "", "completion": texts[i % len(texts)]} for i in range(n_general)]
    mixed = rows + general
    rng.shuffle(mixed)
    return mixed
