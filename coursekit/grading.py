"""Grading, shared by the try-it exercises (``coursekit.exercises``) and the quizzes (``coursekit.quiz``).

Numbers: an answer is ``correct`` within the tolerance, ``close`` within ``close_factor`` times it, otherwise
``wrong``; a wrong answer off by a typical unit slip (1000x, GB vs GiB, bits vs bytes) says so. Anything that is not
a finite number is ``invalid`` (and does not count as a try where the caller says so).

Choices: the correct option is stored as ``sha256(salt:scope:key)``; checking hashes the learner's choice the same
way. The explanation of a choice question is XOR-sealed with a key stream derived from the correct choice, so it
opens only once the right answer is known (after a correct try, or by trying each option after the last allowed
try). This is not secrecy against someone determined to read the code, only no answer key in plain text on the
learner's path.
"""
from __future__ import annotations

import base64
import hashlib
import math

from coursekit.units import GB, GIB

#: What a grade says, best first.
STATUSES = ("correct", "close", "wrong", "invalid")
DEFAULT_SALT = "coursekit-finetuning-course"


# ------------------------------------------------------------------------------------------------ numbers


def as_number(answer) -> float | None:
    """A float from an int / float / numpy or torch scalar (or one-element tensor), else None (bools are not
    numbers here)."""
    if isinstance(answer, bool) or answer is None or isinstance(answer, (str, bytes)):
        return None
    if isinstance(answer, (int, float)):
        return float(answer)
    if hasattr(answer, "item") and getattr(answer, "ndim", getattr(answer, "dim", lambda: 1)) in (0,):
        try:
            return float(answer.item())
        except (TypeError, ValueError):
            return None
    if hasattr(answer, "numel") and callable(answer.numel):
        try:
            if answer.numel() == 1:
                return float(answer.item())
        except (TypeError, ValueError, RuntimeError):
            return None
    return None


def tolerance_text(rel_tol: float, abs_tol: float = 0.0, unit: str = "") -> str:
    """``'1% relative'``, ``'0.5 GB absolute'``, both joined with 'or', or ``'exact'``."""
    parts = []
    if rel_tol:
        parts.append(f"{rel_tol * 100:g}% relative")
    if abs_tol:
        unit = unit[:-1] if abs_tol == 1 and unit.endswith("s") else unit  # "1 step", "2 steps"
        parts.append(f"{abs_tol:g}{(' ' + unit) if unit else ''} absolute")
    return " or ".join(parts) or "exact"


#: Ratios of a wrong answer to the right one that point at a unit slip, and what to call them.
UNIT_SLIPS = ((1e3, "1000x"), (1e-3, "1/1000x"), (1e9, "1e9x"), (1e-9, "1e-9x"), (GIB / GB, "GiB vs GB"),
              (GB / GIB, "GB vs GiB"), (8, "8x (bits vs bytes?)"), (1 / 8, "1/8x (bytes vs bits?)"))


def unit_slip(value: float, expected: float) -> str | None:
    """The unit slip ``value`` is off by (within 2 %), or None."""
    if expected == 0 or value == 0:
        return None
    ratio = value / expected
    return next((note for factor, note in UNIT_SLIPS if abs(ratio - factor) <= 0.02 * factor), None)


def grade_number(answer, expected: float, *, rel_tol: float = 0.01, abs_tol: float = 0.0,
                 close_factor: float = 10.0, unit: str = "") -> tuple[str, str]:
    """``(status, message)`` for a numeric ``answer`` against ``expected``: correct within
    ``max(rel_tol * |expected|, abs_tol)``, close within ``close_factor`` times that, else wrong."""
    value = as_number(answer)
    in_unit = f" in {unit}" if unit else ""
    if value is None:
        return "invalid", f"expected a number{in_unit}, got {type(answer).__name__} {answer!r:.60}"
    if not math.isfinite(value):
        return "invalid", f"expected a finite number, got {value!r}"
    error = abs(value - expected)
    allowed = max(rel_tol * abs(expected), abs_tol)
    if error <= allowed:
        return "correct", f"{value:,.6g}{(' ' + unit) if unit else ''} is right."
    if error <= allowed * close_factor:
        direction = "high" if value > expected else "low"
        return "close", (f"{value:,.6g} is close but a little {direction}: the tolerance is "
                         f"{tolerance_text(rel_tol, abs_tol, unit)}.")
    slip = unit_slip(value, expected)
    if slip:
        return "wrong", f"{value:,.6g} is off by a factor of about {slip}: check the units."
    return "wrong", f"{value:,.6g} is not it."


# ------------------------------------------------------------------------------------------------ choices


def normalize_choice(value) -> str:
    """How a choice is compared: stripped, lower case."""
    return str(value).strip().lower()


def choice_digest(scope: str, key, salt: str = DEFAULT_SALT) -> str:
    """The salted hash of choice ``key`` for the question ``scope`` (e.g. ``"02.fits_a100_70b"``)."""
    text = f"{salt}:{scope}:{normalize_choice(key)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def find_choice(scope: str, digest: str, options, salt: str = DEFAULT_SALT) -> str | None:
    """Which of ``options`` hashes to ``digest`` (how the course reveals an answer after the last try)."""
    for key in options:
        if choice_digest(scope, key, salt) == digest:
            return str(key)
    return None


def choice_key(answer, options: dict, *, match_text: bool = False) -> str | None:
    """The option ``answer`` names: its key (any case, spaces around ignored) or, with ``match_text``, its text."""
    if not isinstance(answer, str):
        return None
    norm = normalize_choice(answer)
    if norm in options:
        return norm
    if match_text:
        return next((key for key, text in options.items() if normalize_choice(text) == norm), None)
    return None


def grade_choice(answer, options: dict, digest: str, scope: str, salt: str = DEFAULT_SALT, *,
                 match_text: bool = False) -> tuple[str, str]:
    """``(status, message)`` for a choice ``answer`` among ``options`` whose correct key hashes to ``digest``."""
    key = choice_key(answer, options, match_text=match_text)
    if key is None:
        return "invalid", (f"expected one of {', '.join(repr(k) for k in options)} (a string), got "
                           f"{type(answer).__name__} {answer!r:.60}")
    if choice_digest(scope, key, salt) == digest:
        return "correct", f"({key}) is right."
    return "wrong", f"({key}) is not the best answer."


# ------------------------------------------------------------------------------------------------ sealed explanations

_MAGIC = b"ck1:"


def _stream(secret: str, n: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{secret}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def seal(text: str, scope: str, key: str, salt: str = DEFAULT_SALT) -> str:
    """Seal ``text`` so that only the correct ``key`` opens it (base64 text)."""
    data = _MAGIC + text.encode("utf-8")
    stream = _stream(f"{salt}:{scope}:explain:{normalize_choice(key)}", len(data))
    return base64.b64encode(bytes(a ^ b for a, b in zip(data, stream))).decode("ascii")


def unseal(sealed: str, scope: str, key: str, salt: str = DEFAULT_SALT) -> str | None:
    """The text sealed with ``key``, or None when ``key`` is not the one it was sealed with."""
    try:
        raw = base64.b64decode(sealed.encode("ascii"), validate=True)
    except (ValueError, UnicodeError):
        return None
    stream = _stream(f"{salt}:{scope}:explain:{normalize_choice(key)}", len(raw))
    data = bytes(a ^ b for a, b in zip(raw, stream))
    if not data.startswith(_MAGIC):
        return None
    try:
        return data[len(_MAGIC):].decode("utf-8")
    except UnicodeDecodeError:
        return None


__all__ = ["DEFAULT_SALT", "STATUSES", "UNIT_SLIPS", "as_number", "choice_digest", "choice_key", "find_choice",
           "grade_choice", "grade_number", "normalize_choice", "seal", "tolerance_text", "unit_slip", "unseal"]
