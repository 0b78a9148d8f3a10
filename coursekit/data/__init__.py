"""Generated data: the general corpus and probe, the support task, and prompt formatting with label masking."""
from coursekit.data.corpus import general_probe, general_texts
from coursekit.data.prompts import (
    IGNORE_INDEX,
    RESPONSE_TEMPLATE,
    format_chat,
    format_example,
    format_prompt,
    to_prompt_completion,
    tokenize_with_labels,
)
from coursekit.data.support import (
    INTENTS,
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
    "to_prompt_completion", "tokenize_with_labels", "validate_dataset", "write_task_files",
]
