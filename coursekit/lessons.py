"""The course map, defined once: the lessons in order, what each teaches, its CPU time on the embedded and on the
real model, and its real-size path.

``LESSONS`` drives the runner's table and lesson 00's course map; ``PRACTICE_LESSONS`` are the lessons with
try-it exercises and a quiz (01-06; lesson 00 sets up the machine).
"""
from __future__ import annotations

from typing import NamedTuple


class Lesson(NamedTuple):
    number: str  # "00" ... "06", the notebook's prefix
    notebook: str  # the notebook's stem, e.g. "02_memory_math"
    title: str
    learn: str  # what you learn
    cpu_minutes: float  # minutes measured at the CPU defaults on the embedded model (2 cores; README's course map)
    # what runs the real-size path (SmolLM2-135M: full fine-tuning at batch 4 x 512 needs about 2.5 GiB, checked in
    # tests/test_hygiene.py)
    hardware: str
    # minutes measured on the real model (MODEL = "smollm2-135m-instruct", its "real-cpu" budget) on the same CPU by
    # `make course-real`: README's "real model, CPU" column
    real_cpu_minutes: float


LESSONS: tuple[Lesson, ...] = (
    Lesson("00", "00_start_here", "Start here", "check your machine, meet the embedded model and the task data", 0.5,
           "CPU is enough", real_cpu_minutes=0.5),
    Lesson("01", "01_why_fine_tune", "Why fine-tune",
           "when fine-tuning beats prompting or retrieval; the decision framework", 1, "CPU is enough",
           real_cpu_minutes=9.5),
    Lesson("02", "02_memory_math", "Memory math", "what weights, gradients, optimizer states and activations cost; "
           "will it fit", 0.5, "CPU is enough", real_cpu_minutes=3),
    Lesson("03", "03_full_fine_tuning", "Full fine-tuning", "a full fine-tuning run, hyperparameters, catastrophic "
           "forgetting", 2, "CUDA GPU, 4 GiB+ (Colab T4)", real_cpu_minutes=6.5),
    Lesson("04", "04_lora", "LoRA", "low-rank adapters from scratch and with peft; rank, alpha, target modules", 1.5,
           "CUDA GPU, 4 GiB+ (Colab T4)", real_cpu_minutes=5),
    Lesson("05", "05_qlora", "QLoRA", "NF4, double quantization, paged optimizers; a QLoRA run", 1,
           "CUDA GPU, 4 GiB+ (bitsandbytes 4-bit)", real_cpu_minutes=2.5),
    Lesson("06", "06_peft_comparison", "PEFT comparison", "adapters, prefix tuning, LoRA, QLoRA side by side; "
           "choosing a method", 2, "CUDA GPU, 4 GiB+ (Colab T4)", real_cpu_minutes=10.5),
)
LESSON_NUMBERS: tuple[str, ...] = tuple(lesson.number for lesson in LESSONS)
#: The lessons with exercises and a quiz.
PRACTICE_LESSONS: tuple[str, ...] = LESSON_NUMBERS[1:]


def check_lesson(lesson, allowed=PRACTICE_LESSONS) -> str:
    """``lesson`` as its two-digit string (``2`` and ``"02"`` both give ``"02"``) if it is in ``allowed``."""
    if isinstance(lesson, int) and not isinstance(lesson, bool):
        lesson = f"{lesson:02d}"
    if not isinstance(lesson, str) or lesson not in allowed:
        raise ValueError(f"lesson must be one of {', '.join(allowed)} (a string like '02'), got {lesson!r}")
    return lesson


__all__ = ["LESSONS", "LESSON_NUMBERS", "Lesson", "PRACTICE_LESSONS", "check_lesson"]
