"""Library messages the course explains instead of printing.

bitsandbytes 0.50+ on a CPU with AVX512-BF16 tries, when its CPU backend loads, to fetch an optional faster 4-bit
matmul from the Hugging Face Hub through the ``kernels`` package (``get_kernel("kernels-community/
quantization-bitsandbytes")`` in ``bitsandbytes/backends/cpu/ops.py``). Without that package, or offline, it logs
"Failed to load CPU gemm_4bit_forward from kernels-community: ..." and uses its own CPU code for the same 4-bit
matmul. The course runs offline on purpose, so the message is expected; printed in a learner's first cell it reads
like an error. :data:`BNB_HUB_KERNEL` keeps it out of the lessons and remembers it, and ``coursekit doctor`` says in
one line what happened.

Two warnings a learner can do nothing about are not shown either (:data:`LIBRARY_WARNINGS`, each with why): peft
and TRL still read transformers' old property name ``is_gradient_checkpointing`` (the course's own code uses
``activation_checkpointing``), and on a CPU the Trainer's ``dataloader_pin_memory=True`` default has no GPU to pin
memory for.

Importing ``coursekit`` installs the filters (the logger exists before bitsandbytes is imported, so the filter is in
place for its first message).
"""
from __future__ import annotations

import logging
import re
import warnings

BNB_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"


class ExplainedMessage(logging.Filter):
    """Drops the log records whose message starts with ``prefix`` and keeps the last one in ``seen``."""

    def __init__(self, prefix: str, explanation: str):
        super().__init__()
        self.prefix = prefix
        self.explanation = explanation
        self.seen: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith(self.prefix):
            self.seen = text
            return False
        return True


BNB_HUB_KERNEL = ExplainedMessage(
    "Failed to load CPU gemm_4bit_forward from kernels-community",
    "bitsandbytes computes 4-bit matmuls on this CPU with its own code (its optional faster kernel is fetched from "
    "the Hugging Face Hub by the `kernels` package, which the course does not install: it runs offline)",
)


#: (category, start of the message, why it is not shown): warnings raised inside the pinned libraries, not by the
#: learner's code.
LIBRARY_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (FutureWarning, "`is_gradient_checkpointing` is deprecated",
     "peft 0.21's PeftModel and TRL 1.16 read transformers' old name for is_activation_checkpointing"),
    (UserWarning, "'pin_memory' argument is set as true but no accelerator is found",
     "the Trainer's dataloader_pin_memory=True default, on a machine without a GPU to pin memory for"),
)


def install() -> None:
    """Attach the filters once (importing coursekit calls this)."""
    logger = logging.getLogger(BNB_CPU_LOGGER)
    if BNB_HUB_KERNEL not in logger.filters:
        logger.addFilter(BNB_HUB_KERNEL)
    for category, message, _why in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(message), category=category)
