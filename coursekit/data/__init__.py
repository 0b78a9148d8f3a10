"""Generated data: the general corpus and probe, the support task, and prompt formatting with label masking."""
from coursekit.data.corpus import general_probe, general_texts
from coursekit.data.prompts import (
    IGNORE_INDEX,
    RESPONSE_TEMPLATE,
    format_chat,
    format_example,
    format_prompt,
    learned_text,
    show_learned_tokens,
    task_messages,
    task_prompt,
    to_prompt_completion,
    tokenize_with_labels,
    user_message,
    uses_chat_template,
)
from coursekit.data.support import (
    INTENTS,
    house_rules,
    load_task_dataset,
    make_examples,
    parse_answer,
    score_answer,
    validate_dataset,
    write_task_files,
)

__all__ = [
    "IGNORE_INDEX", "INTENTS", "RESPONSE_TEMPLATE", "format_chat", "format_example", "format_prompt",
    "general_probe", "general_texts", "load_task_dataset", "make_examples", "parse_answer", "score_answer",
    "to_prompt_completion", "tokenize_with_labels", "validate_dataset", "write_task_files", "house_rules",
    "learned_text", "show_learned_tokens", "task_messages", "task_prompt", "user_message", "uses_chat_template",
]
