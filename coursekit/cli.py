"""The command line: ``python -m coursekit COMMAND ...``.

Each command lives in the module that owns its concern; this file only dispatches. A command module exposes
``main(argv: list[str]) -> int``. A ``ValueError`` from coursekit becomes exit status 2 and its message.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "doctor": ("coursekit.env", "versions, device, bitsandbytes support; exits non-zero with a fix"),
    "params": ("coursekit.archs.cli", "exact parameter counts of an architecture (and what LoRA adds)"),
    "memory": ("coursekit.memory.cli", "estimate training memory for full / lora / qlora"),
    "course": ("coursekit.runner", "run every notebook headless with papermill and print a table"),
    "build-base-model": ("coursekit.models.build", "pretrain the embedded base model from its recipe"),
    "data": ("coursekit.data.cli", "write the generated datasets as JSONL files"),
    "quiz": ("coursekit.quiz.cli", "quizzes and the nbgrader course (quiz build --out DIR)"),
    "compare": ("coursekit.comparison", "train every method on one budget and write the comparison report"),
    "retarget": ("coursekit.retarget", "point badges, Colab install cells, README and pyproject at OWNER/NAME"),
}


def _usage() -> str:
    lines = ["usage: python -m coursekit COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<18} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `python -m coursekit COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; known commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
