"""Prompt formatting and label masking: the instruction / input / response template, and loss on responses only."""
from __future__ import annotations

from coursekit.validate import positive_int

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


def uses_chat_template(tokenizer) -> bool:
    """Whether prompts for this tokenizer's model go through its chat template (instruct models have one)."""
    return bool(getattr(tokenizer, "chat_template", None))


def user_message(example) -> str:
    """The user's turn: the instruction, a blank line, the ticket."""
    _check_example(example)
    text = str(example["instruction"]).strip()
    if example.get("input"):
        text += "\n\n" + str(example["input"]).strip()
    return text


def task_messages(example, system: str | None = None, shots=(), answer: bool = False) -> list[dict]:
    """The example as chat messages: [system], each shot as a user/assistant pair, the user's turn [and the answer].

    Without ``system`` the chat template adds the model's own default system message, if it has one.
    """
    messages = [{"role": "system", "content": system}] if system else []
    for shot in shots:
        messages += [{"role": "user", "content": user_message(shot)},
                     {"role": "assistant", "content": str(shot["output"])}]
    messages.append({"role": "user", "content": user_message(example)})
    if answer:
        messages.append({"role": "assistant", "content": str(example["output"])})
    return messages


def task_prompt(example, tokenizer=None, system: str | None = None) -> str:
    """The text a model is prompted with for ``example``, up to where its answer starts.

    A tokenizer with a chat template gets the chat format (``apply_chat_template(..., add_generation_prompt=True)``);
    otherwise the ``### Instruction`` template of :func:`format_prompt`, with ``system`` text in front if given.
    """
    if tokenizer is not None and uses_chat_template(tokenizer):
        return tokenizer.apply_chat_template(task_messages(example, system), tokenize=False,
                                             add_generation_prompt=True)
    return (system.strip() + "\n\n" if system else "") + format_prompt(example)


def format_chat(example, tokenizer) -> str:
    """The same example, prompt and answer, through the tokenizer's chat template, for models that have one."""
    _check_example(example)
    if not uses_chat_template(tokenizer):
        raise ValueError("this tokenizer has no chat template; use format_example (the ### Instruction template)")
    return tokenizer.apply_chat_template(task_messages(example, answer=True), tokenize=False)


def _chat_with_labels(example, tokenizer, max_length: int) -> dict:
    # What TRL's SFTTrainer does with a conversational prompt/completion row: the prompt rendered with the
    # generation prompt, then prompt + answer; the loss covers the tokens after the common prefix.
    prompt = task_prompt(example, tokenizer)
    full = format_chat(example, tokenizer)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError("the chat template renders the prompt differently alone and with the answer; the loss "
                         "mask would be wrong. Check the template's add_generation_prompt part")
    if len(ids) > max_length:
        raise ValueError(f"example is {len(ids)} tokens long, more than max_length={max_length}")
    labels = [IGNORE_INDEX] * len(prompt_ids) + ids[len(prompt_ids):]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def tokenize_with_labels(example, tokenizer, max_length: int) -> dict:
    """Token ids of prompt + response + eos, with labels masked (``-100``) on the prompt: loss on the response only.

    This is what SFTTrainer's prompt/completion mode does; written out here so the lesson can show it. A tokenizer
    with a chat template gets the conversational format (the answer is the assistant turn, ending with the
    template's end-of-turn token, which is what teaches the model to stop).
    """
    positive_int("max_length", max_length)
    _check_example(example)
    if uses_chat_template(tokenizer):
        return _chat_with_labels(example, tokenizer, max_length)
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


def show_learned_tokens(encoded: dict, tokenizer) -> str:
    """The sequence as text with the tokens the loss covers in ⟦ ⟧: a look at what training will teach.

    Two classic silent bugs show here: a prompt inside the brackets (training on the prompt), and no end-of-turn
    or end-of-sequence token inside them (the model never learns to stop).
    """
    parts, learning = [], False
    for tok_id, label in zip(encoded["input_ids"], encoded["labels"]):
        now = label != IGNORE_INDEX
        if now != learning:
            parts.append("⟦" if now else "⟧")
            learning = now
        parts.append(tokenizer.decode([tok_id]))
    if learning:
        parts.append("⟧")
    return "".join(parts)


def learned_text(encoded: dict, tokenizer) -> str:
    """The tokens the loss covers, decoded (special tokens kept, so an end-of-turn token is visible)."""
    return tokenizer.decode([t for t, lab in zip(encoded["input_ids"], encoded["labels"]) if lab != IGNORE_INDEX])
