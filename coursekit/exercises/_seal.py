"""Answer keys that are not readable as text: salted hashes for choices, sealed explanations.

A choice answer is stored as ``sha256(salt:scope:key)``; checking hashes the learner's choice the same way. The
explanation of a choice question is XOR-sealed with a key stream derived from the correct choice, so it opens only
once the right answer is known (after a correct try, or by trying each option after the last allowed try). This is
not secrecy against someone determined to read the code, only no answer key in plain text on the learner's path.
"""
from __future__ import annotations

import base64
import hashlib

DEFAULT_SALT = "coursekit-finetuning-course"


def normalize_choice(value) -> str:
    """How a choice is compared: stripped, lower case."""
    return str(value).strip().lower()


def choice_digest(scope: str, key, salt: str = DEFAULT_SALT) -> str:
    """The salted hash of choice ``key`` for the question ``scope`` (e.g. ``"02.fits_a100_70b"``)."""
    text = f"{salt}:{scope}:{normalize_choice(key)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stream(secret: str, n: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{secret}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


_MAGIC = b"ck1:"


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


def find_choice(scope: str, digest: str, options, salt: str = DEFAULT_SALT) -> str | None:
    """Which of ``options`` hashes to ``digest`` (how the course reveals an answer after the last try)."""
    for key in options:
        if choice_digest(scope, key, salt) == digest:
            return str(key)
    return None
