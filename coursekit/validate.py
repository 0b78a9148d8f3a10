"""Checks at the door: one place for "X must be a positive integer, got ..." and its siblings.

Each check returns the value it accepted, so a function can write ``n = positive_int("n", n)``, and raises a
``ValueError`` that names the argument, says what is allowed and shows what it got. ``bool`` is not a number here
(``True`` is an ``int`` to Python, never a batch size to a learner).

    positive_int("batch_size", 0)                 # batch_size must be a positive integer, got 0
    positive_int("timeout_s", 0, of="seconds")    # timeout_s must be a positive whole number of seconds, got 0
    non_negative_int("k", -1, hint="0 = zero-shot")  # k must be a non-negative integer (0 = zero-shot), got -1
"""
from __future__ import annotations

import math


def is_int(value) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """An ``int`` or ``float`` that is not a ``bool`` (NaN and infinities included; see :func:`is_finite_number`)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value) -> bool:
    """A number that is not NaN or infinite (every ``int`` is finite)."""
    return is_number(value) and (isinstance(value, int) or math.isfinite(value))


def _fail(name: str, what: str, value, hint: str = ""):
    raise ValueError(f"{name} must be {what}{f' ({hint})' if hint else ''}, got {value!r}")


def positive_int(name: str, value, *, of: str | None = None, hint: str = "") -> int:
    """``value`` if it is an integer > 0 (``of``: the unit, "seconds" gives "a positive whole number of seconds")."""
    if not is_int(value) or value <= 0:
        _fail(name, f"a positive whole number of {of}" if of else "a positive integer", value, hint)
    return value


def non_negative_int(name: str, value, *, of: str | None = None, hint: str = "") -> int:
    """``value`` if it is an integer >= 0."""
    if not is_int(value) or value < 0:
        _fail(name, f"a non-negative whole number of {of}" if of else "a non-negative integer", value, hint)
    return value


def positive_number(name: str, value, *, of: str | None = None, hint: str = "") -> float:
    """``value`` if it is a finite int or float > 0."""
    if not is_finite_number(value) or value <= 0:
        _fail(name, "a positive, finite number" + (f" of {of}" if of else ""), value, hint)
    return value


def non_negative_number(name: str, value, *, of: str | None = None, hint: str = "") -> float:
    """``value`` if it is a finite int or float >= 0."""
    if not is_finite_number(value) or value < 0:
        _fail(name, "a non-negative, finite number" + (f" of {of}" if of else ""), value, hint)
    return value


def fraction(name: str, value, *, hint: str = "") -> float:
    """``value`` if it is a number in [0, 1) (a dropout probability, for instance)."""
    if not is_number(value) or not 0 <= value < 1:
        _fail(name, "in [0, 1)", value, hint)
    return value


def boolean(name: str, value) -> bool:
    """``value`` if it is ``True`` or ``False`` (not 1, not "yes")."""
    if not isinstance(value, bool):
        _fail(name, "True or False", value)
    return value


def one_of(what: str, value, allowed) -> str:
    """``value`` if it is a string in ``allowed``; else "unknown <what> 'x'; allowed: a, b, c"."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value


__all__ = ["boolean", "fraction", "is_finite_number", "is_int", "is_number", "non_negative_int",
           "non_negative_number", "one_of", "positive_int", "positive_number"]
