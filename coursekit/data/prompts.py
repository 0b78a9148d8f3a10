"""Prompt formatting and label masking: the instruction / input / response template, and loss on responses only."""
from __future__ import annotations

REQUIRED_FIELDS = ("instruction", "output")
INSTRUCTION_TEMPLATE = "### Instruction:\n"
INPUT_TEMPLATE = "\n\n### Input:\n"
RESPONSE_TEMPLATE = "### Response:\n"
IGNORE_INDEX = -100  # label value the loss ignores (torch.nn.CrossEntropyLoss's default ignore_index)


def _check_example(example) -> None:
    if not isinstance(example, dict) and not hasattr(example, "keys"):
        raise ValueError(f"an example must be a mapping with fields instruction, input, output; got {type(example).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in example]
    if missing:
        raise ValueError(f"example is missing field(s) {missing}; expected fields: instruction, input (optional), "
                         f"output; got {sorted(example.keys())}")


def format_prompt(example) -> str:
    """The prompt part (everything up to and including ``### Response:\\n``)."""
    if "instruction" not in example:
        _check_example(example)
    text = INSTRUCTION_TEMPLATE + str(example["instruction"]).strip()
    inp = str(example.get("input") or "").strip()
    if inp:
        text += INPUT_TEMPLATE + inp
    return text + "\n\n" + RESPONSE_TEMPLATE


def format_example(example, eos: str = "") -> str:
    """Prompt + response (+ ``eos`` text), the whole training sequence."""
    _check_example(example)
    return format_prompt(example) + str(example["output"]) + eos


def to_prompt_completion(example, eos: str = "") -> dict:
    """The prompt/completion pair TRL's SFTTrainer trains on (loss on the completion only)."""
    _check_example(example)
    return {"prompt": format_prompt(example), "completion": str(example["output"]) + eos}


def format_chat(example, tokenizer) -> str:
    """The same example through the tokenizer's chat template, for models that have one."""
    _check_example(example)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("this tokenizer has no chat template; use format_example (the ### Instruction template)")
    user = str(example["instruction"]).strip()
    if example.get("input"):
        user += "\n\n" + str(example["input"]).strip()
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": str(example["output"])}]
    return tokenizer.apply_chat_template(messages, tokenize=False)


def tokenize_with_labels(example, tokenizer, max_length: int) -> dict:
    """Token ids of prompt + response + eos, with labels masked (``-100``) on the prompt: loss on the response only.

    This is what SFTTrainer's prompt/completion mode does; written out here so the lesson can show it.
    """
    if max_length <= 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    prompt_ids = tokenizer(format_prompt(example), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(str(example["output"]), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids = bos + prompt_ids + answer_ids
    if len(ids) > max_length:
        raise ValueError(f"example is {len(ids)} tokens long, more than max_length={max_length}; "
                         f"raise max_length (the model allows {getattr(tokenizer, 'model_max_length', '?')}) "
                         "or shorten the example")
    labels = [IGNORE_INDEX] * (len(bos) + len(prompt_ids)) + answer_ids
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}
